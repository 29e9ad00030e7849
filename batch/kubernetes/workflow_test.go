package kubernetes_test

// These tests drive the real engine, with a real store, over the
// Kubernetes backend on a fake cluster: the seed-shaped root6-fit workflow
// (gendata, then fitdata) with its pods played to success and failure,
// a stop, a restart, an eviction, and a workflow mixing a local step with
// a Kubernetes one.

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/batch/kubernetes"
	"github.com/reana-site/reana-site/containers"
	"github.com/reana-site/reana-site/daemon/engine"
	"github.com/reana-site/reana-site/daemon/store"
)

const workspaceRoot = "/srv/reana"

var alice = asuser.Account{Name: "alice", UID: 4101, GID: 4100, Groups: []uint32{4100, 5001}}

// fakeLocal stands in for the local backend: its steps succeed at once.
type fakeLocal struct {
	mu   sync.Mutex
	cmds []string
}

func (f *fakeLocal) Name() string { return "local" }
func (f *fakeLocal) Submit(_ context.Context, s batch.Spec) (batch.Handle, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cmds = append(f.cmds, s.Command)
	return batch.Handle{Backend: "local", ID: "local-" + s.JobID}, nil
}
func (f *fakeLocal) Status(_ context.Context, jobs []batch.Job) (map[string]batch.Status, error) {
	out := map[string]batch.Status{}
	zero := 0
	for _, j := range jobs {
		out[j.Spec.JobID] = batch.Status{State: batch.Succeeded, ExitCode: &zero}
	}
	return out, nil
}
func (f *fakeLocal) Cancel(context.Context, batch.Job) error { return nil }
func (f *fakeLocal) Logs(_ context.Context, j batch.Job) (string, error) {
	return "local output of " + j.Spec.StepName + "\n", nil
}

// site is a daemon: store, engine, and a Kubernetes backend on a cluster.
type site struct {
	db     *store.DB
	client *fake.Clientset
	kube   *kubernetes.Backend
	local  *fakeLocal
	eng    *engine.Engine
	owner  string
	cancel context.CancelFunc
}

func newCluster() *fake.Clientset {
	c := fake.NewClientset(&corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: "reana-workspaces", Namespace: "reana"},
		Status:     corev1.PersistentVolumeClaimStatus{Phase: corev1.ClaimBound},
	})
	// Like a real API server, store nothing for a dry-run.
	c.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if ca, ok := a.(k8stesting.CreateActionImpl); ok && len(ca.CreateOptions.DryRun) > 0 {
			return true, ca.Object, nil
		}
		return false, nil, nil
	})
	return c
}

// newSite starts a daemon on db and client (new ones when nil).
func newSite(t *testing.T, db *store.DB, client *fake.Clientset) *site {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if db == nil {
		var err error
		db, err = store.Open(context.Background(), filepath.Join(t.TempDir(), "test.db"))
		require.NoError(t, err)
		t.Cleanup(func() { db.Close() })
	}
	if client == nil {
		client = newCluster()
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	kube, err := kubernetes.New(kubernetes.Config{
		Namespace: "reana", ClaimName: "reana-workspaces", WorkspaceRoot: workspaceRoot,
		StepServiceAccount: "reana-site-step", MinUID: 1000, OpenShift: true,
	}, kubernetes.ClientsetAPI(client), log)
	require.NoError(t, err)
	require.NoError(t, kube.Start(ctx))
	local := &fakeLocal{}
	eng := &engine.Engine{
		DB:             db,
		Backends:       map[string]batch.Backend{"kubernetes": kube, "local": local},
		DefaultBackend: "kubernetes",
		Retries:        1,
		Log:            log,
		Account:        func(context.Context, string) (asuser.Account, error) { return alice, nil },
	}
	s := &site{db: db, client: client, kube: kube, local: local, eng: eng, cancel: cancel}
	users, err := db.ListUsers(ctx)
	require.NoError(t, err)
	if len(users) > 0 {
		s.owner = users[0].ID
	} else {
		u, err := db.CreateUser(ctx, store.User{Name: "alice", UID: alice.UID})
		require.NoError(t, err)
		s.owner = u.ID
	}
	return s
}

// queueRoot6Fit stores the seed workflow; fitdata runs on backend ("" for
// the site default).
func (s *site) queueRoot6Fit(t *testing.T, gendataBackend string) string {
	t.Helper()
	gendata := map[string]any{"name": "gendata", "environment": "docker.io/library/debian:12-slim",
		"commands": []string{"mkdir -p results && bash code/gendata.sh ${events} ${data}"}}
	if gendataBackend != "" {
		gendata["compute_backend"] = gendataBackend
	}
	fitdata := map[string]any{"name": "fitdata", "environment": "docker.io/library/debian:12-slim",
		"kubernetes_memory_limit": "1Gi", "kubernetes_job_timeout": 600,
		"commands": []string{"bash code/fitdata.sh ${data} ${plot}"}}
	spec, err := json.Marshal(map[string]any{
		"version": "0.9.0",
		"inputs": map[string]any{"parameters": map[string]any{
			"events": 20000, "data": "results/data.txt", "plot": "results/plot.png"}},
		"workflow": map[string]any{"type": "serial", "specification": map[string]any{"steps": []any{gendata, fitdata}}},
	})
	require.NoError(t, err)
	id := uuid.NewString()
	require.NoError(t, s.db.CreateWorkflow(context.Background(), &store.Workflow{
		ID: id, OwnerID: s.owner, Name: "root6-fit", Status: store.StatusQueued, Spec: spec,
		WorkspacePath: workspaceRoot + "/users/alice/workflows/" + id, JobsPath: "/var/lib/reana-site/jobs/" + id,
	}))
	return id
}

// outcome is what the kubelet does with a new pod.
type outcome func(*corev1.Pod) *corev1.PodStatus

func succeed(*corev1.Pod) *corev1.PodStatus {
	return &corev1.PodStatus{Phase: corev1.PodSucceeded, ContainerStatuses: []corev1.ContainerStatus{{
		Name: "step", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 0, Reason: "Completed"}}}}}
}

// failStep fails the pods of one step with exit status 2.
func failStep(step string) outcome {
	return func(p *corev1.Pod) *corev1.PodStatus {
		if p.Labels[kubernetes.LabelStep] != step {
			return succeed(p)
		}
		return &corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{{
			Name: "step", State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 2, Reason: "Error"}}}}}
	}
}

func running(*corev1.Pod) *corev1.PodStatus { return &corev1.PodStatus{Phase: corev1.PodRunning} }

// play acts as scheduler and kubelet: every pod that has no phase yet gets
// the outcome's status.
func (s *site) play(t *testing.T, o outcome) {
	t.Helper()
	ctx := context.Background()
	pods, err := s.client.CoreV1().Pods("reana").List(ctx, metav1.ListOptions{})
	require.NoError(t, err)
	for i := range pods.Items {
		p := &pods.Items[i]
		if p.Status.Phase != "" {
			continue
		}
		p.Status = *o(p)
		_, err := s.client.CoreV1().Pods("reana").UpdateStatus(ctx, p, metav1.UpdateOptions{})
		require.NoError(t, err)
	}
}

// runUntil ticks the engine, playing the pods, until the workflow is in
// one of the statuses.
func (s *site) runUntil(t *testing.T, id string, o outcome, want ...store.WorkflowStatus) store.Workflow {
	t.Helper()
	ctx := context.Background()
	for deadline := time.Now().Add(10 * time.Second); ; {
		s.eng.Tick(ctx)
		s.play(t, o)
		wf, err := s.db.GetWorkflow(ctx, id)
		require.NoError(t, err)
		for _, w := range want {
			if wf.Status == w {
				return wf
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("workflow never became %v; it is %s: %s", want, wf.Status, wf.Logs)
		}
		// The informer sees what play did a moment later, as a real
		// watch would.
		time.Sleep(5 * time.Millisecond)
	}
}

func (s *site) pods(t *testing.T) []corev1.Pod {
	t.Helper()
	pods, err := s.client.CoreV1().Pods("reana").List(context.Background(), metav1.ListOptions{LabelSelector: kubernetes.ManagedSelector})
	require.NoError(t, err)
	return pods.Items
}

func (s *site) jobs(t *testing.T, id string) []store.Job {
	t.Helper()
	jobs, err := s.db.JobsForWorkflow(context.Background(), id)
	require.NoError(t, err)
	return jobs
}

func TestEngineRoot6FitOnKubernetes(t *testing.T) {
	s := newSite(t, nil, nil)
	require.NoError(t, s.kube.Preflight())
	id := s.queueRoot6Fit(t, "")
	wf := s.runUntil(t, id, succeed, store.StatusFinished, store.StatusFailed)
	require.Equal(t, store.StatusFinished, wf.Status, wf.Logs)

	pods := s.pods(t)
	require.Len(t, pods, 2)
	steps := map[string]corev1.Pod{}
	for _, p := range pods {
		steps[p.Labels[kubernetes.LabelStep]] = p
		sc := p.Spec.SecurityContext
		assert.Equal(t, int64(4101), *sc.RunAsUser)
		assert.Equal(t, int64(4100), *sc.RunAsGroup)
		assert.Equal(t, []int64{5001}, sc.SupplementalGroups)
		assert.Equal(t, id, p.Labels[kubernetes.LabelWorkflow])
		assert.Equal(t, "root6-fit.1", p.Labels[kubernetes.LabelRun])
		assert.Equal(t, "alice", p.Labels[kubernetes.LabelUser])
		assert.Equal(t, "nonroot-v2", p.Annotations[kubernetes.AnnotationRequiredSCC])
		mount := p.Spec.Containers[0].VolumeMounts[0]
		assert.Equal(t, wf.WorkspacePath, mount.MountPath)
		assert.Equal(t, "users/alice/workflows/"+id, mount.SubPath)
		assert.Equal(t, "docker.io/library/debian:12-slim", p.Spec.Containers[0].Image)
	}
	require.Contains(t, steps, "gendata")
	require.Contains(t, steps, "fitdata")
	assert.Equal(t, "mkdir -p results && bash code/gendata.sh 20000 results/data.txt", steps["gendata"].Spec.Containers[0].Command[4])
	assert.Equal(t, "1Gi", steps["fitdata"].Spec.Containers[0].Resources.Limits.Memory().String())
	assert.Equal(t, int64(600), *steps["fitdata"].Spec.ActiveDeadlineSeconds)

	for _, j := range s.jobs(t, id) {
		assert.Equal(t, store.JobStatus("finished"), j.Status)
		assert.Equal(t, "kubernetes", j.Backend)
		assert.Contains(t, j.Logs, "fake logs", "the pod's output becomes the step's log")
	}
}

func TestEngineRoot6FitFailingStep(t *testing.T) {
	s := newSite(t, nil, nil)
	id := s.queueRoot6Fit(t, "")
	wf := s.runUntil(t, id, failStep("fitdata"), store.StatusFinished, store.StatusFailed)
	require.Equal(t, store.StatusFailed, wf.Status)
	jobs := s.jobs(t, id)
	require.Len(t, jobs, 2)
	assert.Equal(t, store.JobStatus("finished"), jobs[0].Status)
	assert.Equal(t, store.JobStatus("failed"), jobs[1].Status)
	require.NotNil(t, jobs[1].ExitCode)
	assert.Equal(t, 2, *jobs[1].ExitCode)
	assert.Contains(t, jobs[1].Logs, "reana-site: command exited with status 2 (pod "+jobs[1].BackendJobID+", ran as uid 4101 gid 4100 groups [5001])")
}

func TestEngineMixedLocalAndKubernetes(t *testing.T) {
	s := newSite(t, nil, nil)
	id := s.queueRoot6Fit(t, "local")
	wf := s.runUntil(t, id, succeed, store.StatusFinished, store.StatusFailed)
	require.Equal(t, store.StatusFinished, wf.Status, wf.Logs)
	assert.Equal(t, []string{"mkdir -p results && bash code/gendata.sh 20000 results/data.txt"}, s.local.cmds)
	pods := s.pods(t)
	require.Len(t, pods, 1)
	assert.Equal(t, "fitdata", pods[0].Labels[kubernetes.LabelStep])
	jobs := s.jobs(t, id)
	assert.Equal(t, "local", jobs[0].Backend)
	assert.Equal(t, "kubernetes", jobs[1].Backend)
}

func TestEngineStopDeletesThePod(t *testing.T) {
	s := newSite(t, nil, nil)
	id := s.queueRoot6Fit(t, "")
	s.runUntil(t, id, running, store.StatusRunning)
	require.Len(t, s.pods(t), 1)
	wf, err := s.eng.Stop(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, store.StatusStopped, wf.Status)
	assert.Empty(t, s.pods(t), "the running step's pod is deleted")
	jobs := s.jobs(t, id)
	assert.Equal(t, store.JobStatus("stopped"), jobs[0].Status)
}

// TestEngineRestartReattaches: the daemon stops while gendata runs; a new one
// on the same store and cluster finds the pod and submits nothing twice.
func TestEngineRestartReattaches(t *testing.T) {
	s := newSite(t, nil, nil)
	id := s.queueRoot6Fit(t, "")
	s.runUntil(t, id, running, store.StatusRunning)
	require.Len(t, s.pods(t), 1)
	s.cancel() // the daemon goes away, and gendata ends meanwhile
	p := s.pods(t)[0]
	p.Status = *succeed(&p)
	_, err := s.client.CoreV1().Pods("reana").UpdateStatus(context.Background(), &p, metav1.UpdateOptions{})
	require.NoError(t, err)

	again := newSite(t, s.db, s.client)
	wf := again.runUntil(t, id, succeed, store.StatusFinished, store.StatusFailed)
	require.Equal(t, store.StatusFinished, wf.Status, wf.Logs)
	assert.Len(t, again.pods(t), 2, "one pod per step, none resubmitted")
	assert.Len(t, again.jobs(t, id), 2)
}

// TestEngineEvictedStepIsRetriedOnce: an eviction is not the step's fault; the
// engine submits it again as a new job, with a new pod.
func TestEngineEvictedStepIsRetriedOnce(t *testing.T) {
	s := newSite(t, nil, nil)
	id := s.queueRoot6Fit(t, "")
	evicted := false
	wf := s.runUntil(t, id, func(p *corev1.Pod) *corev1.PodStatus {
		if p.Labels[kubernetes.LabelStep] == "gendata" && !evicted {
			evicted = true
			return &corev1.PodStatus{Phase: corev1.PodFailed, Reason: "Evicted", Message: "The node was low on resource: memory."}
		}
		return succeed(p)
	}, store.StatusFinished, store.StatusFailed)
	require.Equal(t, store.StatusFinished, wf.Status, wf.Logs)
	jobs := s.jobs(t, id)
	require.Len(t, jobs, 3)
	assert.Equal(t, store.JobStatus("retried"), jobs[0].Status)
	assert.Contains(t, jobs[0].Logs, "Kubernetes evicted the step's pod")
	assert.Contains(t, jobs[0].Logs, "submitting it again (attempt 2 of 2)")
	assert.Len(t, s.pods(t), 3)
}

// TestEngineAdmissionRefusalReachesTheUser: the SCC refusal of OpenShift
// fails the step with the command the cluster admin must run, and the
// preflight said the same before any step was submitted.
func TestEngineAdmissionRefusalReachesTheUser(t *testing.T) {
	c := newCluster()
	c.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods"}, "x", errors.New(
			`unable to validate against any security context constraint: [provider "nonroot-v2": Forbidden: not usable by user or serviceaccount]`))
	})
	s := newSite(t, nil, c)
	want := "a cluster admin must run once: oc create rolebinding reana-site-step-scc -n reana " +
		"--clusterrole=system:openshift:scc:nonroot-v2 --serviceaccount=reana:reana-site-step " +
		"(or, the same grant made by oc: oc adm policy add-scc-to-user nonroot-v2 -z reana-site-step -n reana)"
	require.ErrorContains(t, s.kube.Preflight(), want)

	id := s.queueRoot6Fit(t, "")
	wf := s.runUntil(t, id, succeed, store.StatusFinished, store.StatusFailed)
	require.Equal(t, store.StatusFailed, wf.Status)
	jobs := s.jobs(t, id)
	require.Len(t, jobs, 1)
	assert.Contains(t, jobs[0].Logs, "reana-site: submission failed: kubernetes: OpenShift refused the step pod")
	assert.Contains(t, jobs[0].Logs, want)
}

// noImages is an image resolver's runner that must never be asked.
type noImages struct{ t *testing.T }

func (n noImages) Call(context.Context, asuser.Account, asuser.Op, any, any) error {
	n.t.Error("the engine resolved an image for a Kubernetes step")
	return errors.New("no images here")
}

// TestEngineKubernetesStepsSkipApptainer: with containers on for the
// site's other backends, Kubernetes steps still go to the kubelet as
// registry images, with no Apptainer resolution or wrapping.
func TestEngineKubernetesStepsSkipApptainer(t *testing.T) {
	s := newSite(t, nil, nil)
	s.eng.Images = &containers.Resolver{Config: containers.Config{Enabled: true}, Runner: noImages{t}}
	id := s.queueRoot6Fit(t, "")
	wf := s.runUntil(t, id, succeed, store.StatusFinished, store.StatusFailed)
	require.Equal(t, store.StatusFinished, wf.Status, wf.Logs)
	for _, p := range s.pods(t) {
		assert.Equal(t, "/bin/sh", p.Spec.Containers[0].Command[0], "not wrapped in apptainer exec")
		assert.Equal(t, "docker.io/library/debian:12-slim", p.Spec.Containers[0].Image)
	}
}
