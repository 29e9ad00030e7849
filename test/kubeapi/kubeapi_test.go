package kubeapi_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/batch/kubernetes"
	"github.com/reana-site/reana-site/test/kubeapi"
)

// site is a stand-in with a workspace root on this host and the
// production client and backend on it, as the daemon wires them.
type site struct {
	s    *kubeapi.Server
	api  kubernetes.API
	cfg  kubernetes.Config
	root string
	// uid and gid the steps run as: an unused account when the tests run
	// as root (the kubelet switches to it), else the tests' own.
	uid, gid uint32
}

func newSite(t *testing.T, opts ...kubeapi.Option) *site {
	t.Helper()
	root := t.TempDir()
	st := &site{root: root, uid: 4242, gid: 4242}
	if os.Geteuid() != 0 {
		st.uid, st.gid = uint32(os.Geteuid()), uint32(os.Getegid())
	}
	// The step's account must reach the workspace: open the temporary
	// directories above it, as a site's NFS export is.
	for _, d := range []string{filepath.Dir(root), root} {
		require.NoError(t, os.Chmod(d, 0o755))
	}
	st.s = kubeapi.Start(t, append([]kubeapi.Option{kubeapi.WithClaim("reana-workspaces", root), kubeapi.WithKubeletDelay(20 * time.Millisecond)}, opts...)...)
	var err error
	st.api, err = kubernetes.NewClient(st.s.KubeconfigFile(t.TempDir(), "reana"))
	require.NoError(t, err)
	st.cfg = kubernetes.Config{Namespace: "reana", ClaimName: "reana-workspaces", WorkspaceRoot: root,
		StepServiceAccount: "reana-site-step", MinUID: 1000}
	return st
}

// workspace makes a workflow's workspace, the step account's own.
func (st *site) workspace(t *testing.T, name string) string {
	t.Helper()
	ws := filepath.Join(st.root, "users", name)
	require.NoError(t, os.MkdirAll(ws, 0o755))
	if os.Geteuid() == 0 {
		require.NoError(t, os.Chown(ws, int(st.uid), int(st.gid)))
	}
	return ws
}

func (st *site) spec(t *testing.T, step, command string) batch.Spec {
	ws := st.workspace(t, "w-"+step)
	return batch.Spec{
		JobID: "job-" + step, WorkflowID: "wf-1", WorkflowName: "standin.1", StepName: step,
		Command: command, Image: "docker.io/library/debian:12-slim", Workspace: ws,
		Env:  map[string]string{"REANA_WORKSPACE": ws, "REANA_WORKFLOW_UUID": "wf-1"},
		User: asuser.Account{Name: "stepuser", UID: st.uid, GID: st.gid, Groups: []uint32{st.gid, st.gid + 1}},
	}
}

// backend is the production backend on the stand-in, started.
func (st *site) backend(t *testing.T) *kubernetes.Backend {
	t.Helper()
	b, err := kubernetes.New(st.cfg, st.api, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	require.NoError(t, b.Start(ctx))
	return b
}

func waitState(t *testing.T, b *kubernetes.Backend, j batch.Job, want batch.State) batch.Status {
	t.Helper()
	var st batch.Status
	require.Eventually(t, func() bool {
		out, err := b.Status(context.Background(), []batch.Job{j})
		require.NoError(t, err)
		st = out[j.Spec.JobID]
		return st.State == want
	}, 10*time.Second, 10*time.Millisecond, "never %s; last %+v", want, st)
	return st
}

func submit(t *testing.T, b *kubernetes.Backend, spec batch.Spec) batch.Job {
	t.Helper()
	h, err := b.Submit(context.Background(), spec)
	require.NoError(t, err)
	return batch.Job{Spec: spec, Handle: h}
}

// TestKubeconfig: client-go's own loader takes the file, and the token in
// it is what lets a request in.
func TestKubeconfig(t *testing.T) {
	s := kubeapi.Start(t)
	path := s.KubeconfigFile(t.TempDir(), "reana")
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	cfg, err := clientcmd.BuildConfigFromFlags("", path)
	require.NoError(t, err)
	assert.Equal(t, s.URL, cfg.Host)
	assert.Equal(t, s.Token, cfg.BearerToken)
	raw, err := clientcmd.LoadFromFile(path)
	require.NoError(t, err)
	assert.Equal(t, "reana", raw.Contexts[raw.CurrentContext].Namespace)

	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(s.CAData))
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	resp, err := client.Get(s.URL + "/api/v1/namespaces/reana/pods")
	require.NoError(t, err)
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.JSONEq(t, `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized","reason":"Unauthorized","code":401}`, string(body))
}

// TestStepRunsAsTheUser: the production backend submits a step; the
// stand-in kubelet runs its command as the pod's uid, gid and groups, in
// its working directory, with its environment, and the pod goes through
// its phases with its exit code and its output as the log.
func TestStepRunsAsTheUser(t *testing.T) {
	st := newSite(t)
	b := st.backend(t)
	require.NoError(t, b.Preflight())
	spec := st.spec(t, "hello", `echo "hello from $(id -u):$(id -g) [$(id -G)] in $PWD ws=$REANA_WORKSPACE path=$PATH"; echo out > made.txt`)
	j := submit(t, b, spec)
	done := waitState(t, b, j, batch.Succeeded)
	assert.Equal(t, 0, *done.ExitCode)

	out, err := b.Logs(context.Background(), j)
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf("hello from %d:%d [%d %d] in %s ws=%s path=/usr/local/bin:/usr/bin:/bin\n",
		st.uid, st.gid, st.gid, st.gid+1, spec.Workspace, spec.Workspace), out)
	fi, err := os.Stat(filepath.Join(spec.Workspace, "made.txt"))
	require.NoError(t, err)
	assert.Equal(t, st.uid, fi.Sys().(*syscall.Stat_t).Uid, "the step's files are the user's")

	// What the watches saw, and where the pod ended.
	pod, ok := st.s.Pod(j.Handle.ID)
	require.True(t, ok)
	cs := pod.Status.ContainerStatuses[0]
	require.NotNil(t, cs.State.Terminated)
	assert.Equal(t, "Completed", cs.State.Terminated.Reason)
	assert.Equal(t, kubeapi.NodeName, pod.Spec.NodeName)
	assert.NotNil(t, pod.Status.StartTime)
	var reasons []string
	for _, e := range st.s.Events(pod.Name) {
		reasons = append(reasons, e.Reason)
	}
	assert.Equal(t, []string{"Scheduled", "Pulled", "Created", "Started"}, reasons)
}

// TestCommandReachesTheShellVerbatim: the kubelet expands $(VAR) and
// turns $$ into $ in a container's command, args and env values; the
// backend escapes every $, so the user's command and environment mean in
// the pod what they mean in bash.
func TestCommandReachesTheShellVerbatim(t *testing.T) {
	st := newSite(t)
	b := st.backend(t)
	spec := st.spec(t, "dollars$", `echo "$$ $(echo hi) ${REANA_WORKSPACE}"; echo "[$ODD]"; echo "home=$HOME"; echo '$(REANA_WORKSPACE) $$'`)
	spec.Env["ODD"] = "$(REANA_WORKSPACE) $$ ${HOME} 5$"
	j := submit(t, b, spec)
	waitState(t, b, j, batch.Succeeded)
	out, err := b.Logs(context.Background(), j)
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	require.Len(t, lines, 4, "%q", out)
	// What bash prints: its pid, the command substitution, the variable.
	pid, rest, ok := strings.Cut(lines[0], " ")
	require.True(t, ok, "%q", lines[0])
	assert.Regexp(t, `^[0-9]+$`, pid, "$$ is the shell's pid")
	assert.Equal(t, "hi "+spec.Workspace, rest)
	assert.Equal(t, "[$(REANA_WORKSPACE) $$ ${HOME} 5$]", lines[1], "env values arrive as written")
	assert.Equal(t, "home="+spec.Workspace, lines[2], "HOME is the workspace")
	assert.Equal(t, "$(REANA_WORKSPACE) $$", lines[3])

	// The same command, with the escaping undone, as Kubernetes would
	// have mangled it: the stand-in does expand.
	pod, err := kubernetes.BuildPod(st.spec(t, "raw", "true"), st.cfg)
	require.NoError(t, err)
	pod.Spec.Containers[0].Command = []string{"/bin/sh", "-c", `echo "$$ $(REANA_WORKSPACE)"`}
	_, err = st.api.CreatePod(context.Background(), "reana", pod, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		p, _ := st.s.Pod(pod.Name)
		return p.Status.Phase == corev1.PodSucceeded
	}, 10*time.Second, 10*time.Millisecond)
	raw, _ := st.s.Logs(pod.Name)
	ws := pod.Spec.Containers[0].WorkingDir
	assert.Equal(t, "$ "+ws+"\n", raw, "unescaped, $$ and $(VAR) are Kubernetes'")
}

// TestStepOutcomes: how each way a container can end reaches the backend.
func TestStepOutcomes(t *testing.T) {
	tests := []struct {
		name    string
		command string
		act     func(t *testing.T, s *kubeapi.Server, pod string)
		want    batch.State
		reason  []string
		code    int
	}{
		{name: "exit status", command: "echo before; exit 3", want: batch.Failed, code: 3,
			reason: []string{"command exited with status 3", "ran as uid"}},
		{name: "OOM killed", command: "echo started; sleep 60", want: batch.Failed, code: 137,
			act: func(t *testing.T, s *kubeapi.Server, pod string) {
				require.Eventually(t, func() bool { return s.OOMKill(pod) == nil }, 5*time.Second, 10*time.Millisecond)
			},
			reason: []string{"the step ran out of memory"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newSite(t)
			b := st.backend(t)
			j := submit(t, b, st.spec(t, "outcome", tt.command))
			if tt.act != nil {
				tt.act(t, st.s, j.Handle.ID)
			}
			got := waitState(t, b, j, tt.want)
			require.NotNil(t, got.ExitCode)
			assert.Equal(t, tt.code, *got.ExitCode)
			for _, r := range tt.reason {
				assert.Contains(t, got.Reason, r)
			}
		})
	}
}

// TestDeadline: activeDeadlineSeconds ends the pod as the kubelet does.
func TestDeadline(t *testing.T) {
	st := newSite(t)
	b := st.backend(t)
	spec := st.spec(t, "late", "sleep 60")
	spec.Hints.JobTimeoutSeconds = 1
	j := submit(t, b, spec)
	got := waitState(t, b, j, batch.Failed)
	assert.Contains(t, got.Reason, "the step exceeded kubernetes_job_timeout of 1 s")
}

// TestCancelStopsTheProcess: a delete stops the process group with
// SIGTERM, the watches see the pod end and go, and the backend too.
func TestCancelStopsTheProcess(t *testing.T) {
	st := newSite(t)
	b := st.backend(t)
	spec := st.spec(t, "nap", "trap 'echo got TERM; exit 143' TERM; echo napping; sleep 60 & wait")
	j := submit(t, b, spec)
	waitState(t, b, j, batch.Running)
	require.Eventually(t, func() bool { l, _ := st.s.Logs(j.Handle.ID); return strings.Contains(l, "napping") }, 5*time.Second, 10*time.Millisecond)
	pid := processOf(t, spec.Workspace)

	ctx := context.Background()
	w, err := st.api.WatchPods(ctx, "reana", metav1.ListOptions{ResourceVersion: resourceVersion(t, st)})
	require.NoError(t, err)
	defer w.Stop()
	require.NoError(t, b.Cancel(ctx, j))
	var types []watch.EventType
	var last *corev1.Pod
	for len(types) == 0 || types[len(types)-1] != watch.Deleted {
		select {
		case e := <-w.ResultChan():
			types = append(types, e.Type)
			last = e.Object.(*corev1.Pod)
		case <-time.After(10 * time.Second):
			t.Fatalf("no DELETED event; saw %v", types)
		}
	}
	assert.Equal(t, []watch.EventType{watch.Modified, watch.Modified, watch.Deleted}, types, "deletionTimestamp, the container's end, then gone")
	assert.NotNil(t, last.DeletionTimestamp)
	assert.Equal(t, int32(143), last.Status.ContainerStatuses[0].State.Terminated.ExitCode)
	assert.Error(t, syscall.Kill(pid, 0), "the process is gone")
	_, ok := st.s.Pod(j.Handle.ID)
	assert.False(t, ok)
	assert.Equal(t, batch.Stopped, waitState(t, b, j, batch.Stopped).State)
}

// resourceVersion is the stand-in's latest, from a list.
func resourceVersion(t *testing.T, st *site) string {
	t.Helper()
	l, err := st.api.ListPods(context.Background(), "reana", metav1.ListOptions{})
	require.NoError(t, err)
	return l.ResourceVersion
}

// processOf is the pid of the step's shell, found by its working directory.
func processOf(t *testing.T, dir string) int {
	t.Helper()
	var pid int
	require.Eventually(t, func() bool {
		ents, _ := os.ReadDir("/proc")
		for _, e := range ents {
			if cwd, err := os.Readlink("/proc/" + e.Name() + "/cwd"); err == nil && cwd == dir {
				_, err := fmt.Sscan(e.Name(), &pid)
				return err == nil
			}
		}
		return false
	}, 5*time.Second, 10*time.Millisecond, "no process in %s", dir)
	return pid
}

// TestSchedulingWaits: a held pod, and one whose claim is missing or not
// bound, stay Pending with the scheduler's message, which the backend
// passes on, and run once released. The pods are created directly: the
// backend would not submit with the claim not bound.
func TestSchedulingWaits(t *testing.T) {
	tests := []struct {
		name    string
		block   func(s *kubeapi.Server, pod string)
		message string
		release func(s *kubeapi.Server, pod string)
	}{
		{name: "hold", block: func(s *kubeapi.Server, pod string) { s.Hold(pod) },
			message: "waiting for a node: 0/1 nodes are available: 1 Insufficient cpu.",
			release: func(s *kubeapi.Server, pod string) { s.Release(pod) }},
		{name: "claim pending", block: func(s *kubeapi.Server, _ string) { s.SetClaim("reana-workspaces", corev1.ClaimPending) },
			message: "pod has unbound immediate PersistentVolumeClaims",
			release: func(s *kubeapi.Server, _ string) { s.SetClaim("reana-workspaces", corev1.ClaimBound) }},
		{name: "claim missing", block: func(s *kubeapi.Server, _ string) { s.SetClaim("reana-workspaces", kubeapi.ClaimMissing) },
			message: `persistentvolumeclaim "reana-workspaces" not found`,
			release: func(s *kubeapi.Server, _ string) { s.SetClaim("reana-workspaces", corev1.ClaimBound) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newSite(t)
			b := st.backend(t)
			spec := st.spec(t, "wait", "echo ran")
			pod, err := kubernetes.BuildPod(spec, st.cfg)
			require.NoError(t, err)
			tt.block(st.s, pod.Name)
			_, err = st.api.CreatePod(context.Background(), "reana", pod, metav1.CreateOptions{})
			require.NoError(t, err)
			j := batch.Job{Spec: spec}
			var got batch.Status
			require.Eventually(t, func() bool {
				out, err := b.Status(context.Background(), []batch.Job{j})
				require.NoError(t, err)
				got = out[spec.JobID]
				return strings.Contains(got.Reason, tt.message)
			}, 10*time.Second, 10*time.Millisecond, "last %+v", got)
			assert.Equal(t, batch.Pending, got.State)
			p, _ := st.s.Pod(pod.Name)
			require.NotEmpty(t, p.Status.Conditions)
			assert.Equal(t, corev1.PodReasonUnschedulable, p.Status.Conditions[0].Reason)
			ev := st.s.Events(pod.Name)
			require.NotEmpty(t, ev)
			assert.Equal(t, "FailedScheduling", ev[0].Reason)
			assert.Equal(t, corev1.EventTypeWarning, ev[0].Type)
			tt.release(st.s, pod.Name)
			waitState(t, b, j, batch.Succeeded)
		})
	}
}

// TestContainerConfigErrors: what the kubelet cannot run leaves the
// container waiting with CreateContainerConfigError, which fails the step
// at once; a command that does not exist ends with StartError.
func TestContainerConfigErrors(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(st *site, p *corev1.Pod)
		reason string
		want   string
	}{
		{name: "mount is not the host directory", reason: "CreateContainerConfigError",
			mutate: func(_ *site, p *corev1.Pod) { p.Spec.Containers[0].VolumeMounts[0].SubPath = "users" },
			want:   "not its mountPath"},
		{name: "no runAsUser", reason: "CreateContainerConfigError",
			mutate: func(_ *site, p *corev1.Pod) { p.Spec.SecurityContext.RunAsUser = nil },
			want:   "no runAsUser"},
		{name: "command not found", reason: "StartError",
			mutate: func(_ *site, p *corev1.Pod) { p.Spec.Containers[0].Command = []string{"/no/such/command"} },
			want:   "/no/such/command"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newSite(t)
			pod, err := kubernetes.BuildPod(st.spec(t, "cfg", "true"), st.cfg)
			require.NoError(t, err)
			tt.mutate(st, pod)
			_, err = st.api.CreatePod(context.Background(), "reana", pod, metav1.CreateOptions{})
			require.NoError(t, err)
			var cs corev1.ContainerStatus
			require.Eventually(t, func() bool {
				p, _ := st.s.Pod(pod.Name)
				if len(p.Status.ContainerStatuses) == 0 {
					return false
				}
				cs = p.Status.ContainerStatuses[0]
				return cs.State.Waiting != nil && cs.State.Waiting.Reason == tt.reason ||
					cs.State.Terminated != nil && cs.State.Terminated.Reason == tt.reason
			}, 5*time.Second, 10*time.Millisecond, "last %+v", cs)
			msg := ""
			if cs.State.Waiting != nil {
				msg = cs.State.Waiting.Message
			} else {
				msg = cs.State.Terminated.Message
			}
			assert.Contains(t, msg, tt.want)
			_, err = st.api.PodLogs(context.Background(), "reana", pod.Name, &corev1.PodLogOptions{Container: "step"})
			if tt.reason == "CreateContainerConfigError" {
				assert.ErrorContains(t, err, "is waiting to start: CreateContainerConfigError")
			}
		})
	}
}

// TestAdmission: what a create goes through, dry-run or not, and the
// refusals as the API server words them.
func TestAdmission(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(s *kubeapi.Server)
		mutate func(p *corev1.Pod)
		check  func(err error) bool
		want   string
	}{
		{name: "admitted", check: func(err error) bool { return err == nil }},
		{name: "pod security", mutate: func(p *corev1.Pod) {
			p.Spec.Containers[0].SecurityContext.Capabilities = nil
			p.Spec.SecurityContext.SeccompProfile = nil
		}, check: apierrors.IsForbidden,
			want: `pods "reana-adm-job-adm" is forbidden: violates PodSecurity "restricted:latest": unrestricted capabilities (container "step" must set securityContext.capabilities.drop=["ALL"]), seccompProfile (pod or container "step" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")`},
		{name: "SCC", setup: func(s *kubeapi.Server) { s.SetCreateRefusal(kubeapi.SCCRefusal()) }, check: apierrors.IsForbidden,
			want: `pods "reana-adm-job-adm" is forbidden: unable to validate against any security context constraint: [provider "anyuid": Forbidden: not usable by user or serviceaccount, provider restricted-v2: .spec.securityContext.runAsUser: Invalid value: `},
		{name: "RBAC", setup: func(s *kubeapi.Server) { s.SetCreateRefusal(kubeapi.RBACRefusal(s.User())) }, check: apierrors.IsForbidden,
			want: `pods is forbidden: User "system:serviceaccount:reana:reana-site" cannot create resource "pods" in API group "" in the namespace "reana"`},
		{name: "quota", setup: func(s *kubeapi.Server) { s.SetCreateRefusal(kubeapi.QuotaRefusal()) }, check: apierrors.IsForbidden,
			want: `pods "reana-adm-job-adm" is forbidden: exceeded quota: compute`},
		{name: "service account missing", setup: func(s *kubeapi.Server) { s.SetServiceAccount("reana-site-step", false) }, check: apierrors.IsForbidden,
			want: `pods "reana-adm-job-adm" is forbidden: error looking up service account reana/reana-site-step: serviceaccount "reana-site-step" not found`},
		{name: "invalid", mutate: func(p *corev1.Pod) { p.Spec.Containers[0].Image = "" }, check: apierrors.IsInvalid,
			want: `Pod "reana-adm-job-adm" is invalid: spec.containers[0].image: Required value`},
	}
	for _, tt := range tests {
		for _, dryRun := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/dry-run=%v", tt.name, dryRun), func(t *testing.T) {
				st := newSite(t, kubeapi.WithoutKubelet())
				if tt.setup != nil {
					tt.setup(st.s)
				}
				pod, err := kubernetes.BuildPod(st.spec(t, "adm", "true"), st.cfg)
				require.NoError(t, err)
				if tt.mutate != nil {
					tt.mutate(pod)
				}
				opts := metav1.CreateOptions{FieldManager: "reana-site"}
				if dryRun {
					opts.DryRun = []string{metav1.DryRunAll}
				}
				got, err := st.api.CreatePod(context.Background(), "reana", pod, opts)
				assert.True(t, tt.check(err), "%v", err)
				if tt.want != "" {
					assert.ErrorContains(t, err, tt.want)
				}
				_, stored := st.s.Pod(pod.Name)
				assert.Equal(t, err == nil && !dryRun, stored, "only an admitted, real create stores")
				if err == nil {
					assert.Equal(t, corev1.PodPending, got.Status.Phase, "defaulted as the API server does")
					assert.Equal(t, corev1.PodQOSBestEffort, got.Status.QOSClass)
				}
				c := st.s.Creations()
				require.Len(t, c, 1)
				assert.Equal(t, dryRun, c[0].DryRun)
			})
		}
	}
	t.Run("already exists", func(t *testing.T) {
		st := newSite(t, kubeapi.WithoutKubelet())
		pod, err := kubernetes.BuildPod(st.spec(t, "adm", "true"), st.cfg)
		require.NoError(t, err)
		_, err = st.api.CreatePod(context.Background(), "reana", pod, metav1.CreateOptions{})
		require.NoError(t, err)
		_, err = st.api.CreatePod(context.Background(), "reana", pod, metav1.CreateOptions{})
		assert.True(t, apierrors.IsAlreadyExists(err), "%v", err)
	})
	t.Run("no such namespace", func(t *testing.T) {
		st := newSite(t, kubeapi.WithoutKubelet())
		pod, err := kubernetes.BuildPod(st.spec(t, "adm", "true"), st.cfg)
		require.NoError(t, err)
		pod.Namespace = ""
		_, err = st.api.CreatePod(context.Background(), "elsewhere", pod, metav1.CreateOptions{})
		assert.EqualError(t, err, `namespaces "elsewhere" not found`)
	})
}

// TestPreflightRefusals: the backend's preflight dry-run meets each
// injected refusal and the claim knob, and words them for the admin.
func TestPreflightRefusals(t *testing.T) {
	tests := []struct {
		name  string
		setup func(s *kubeapi.Server)
		want  []string
	}{
		{name: "SCC", setup: func(s *kubeapi.Server) { s.SetCreateRefusal(kubeapi.SCCRefusal()) },
			want: []string{"OpenShift refused the step pod reana-site-preflight", "oc adm policy add-scc-to-user nonroot-v2 -z reana-site-step -n reana"}},
		{name: "RBAC", setup: func(s *kubeapi.Server) { s.SetCreateRefusal(kubeapi.RBACRefusal(s.User())) },
			want: []string{`the daemon's identity "system:serviceaccount:reana:reana-site" may not create pods in namespace reana`}},
		{name: "claim missing", setup: func(s *kubeapi.Server) { s.SetClaim("reana-workspaces", kubeapi.ClaimMissing) },
			want: []string{`the workspace volume claim "reana-workspaces" does not exist in namespace reana`}},
		{name: "claim pending", setup: func(s *kubeapi.Server) { s.SetClaim("reana-workspaces", corev1.ClaimPending) },
			want: []string{`the workspace volume claim "reana-workspaces" in namespace reana is not bound (phase Pending)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := newSite(t)
			tt.setup(st.s)
			b := st.backend(t)
			err := b.Preflight()
			require.Error(t, err)
			for _, w := range tt.want {
				assert.ErrorContains(t, err, w)
			}
			assert.Empty(t, st.s.Pods(), "a preflight stores nothing")
		})
	}
}

// TestWatchSemantics: where a watch starts, by resourceVersion and
// sendInitialEvents, as the API concepts page describes.
func TestWatchSemantics(t *testing.T) {
	st := newSite(t, kubeapi.WithoutKubelet())
	ctx := context.Background()
	create := func(step string) *corev1.Pod {
		pod, err := kubernetes.BuildPod(st.spec(t, step, "true"), st.cfg)
		require.NoError(t, err)
		got, err := st.api.CreatePod(ctx, "reana", pod, metav1.CreateOptions{})
		require.NoError(t, err)
		return got
	}
	a := create("a")
	rv := a.ResourceVersion
	b := create("b")
	require.NoError(t, st.s.SetPodStatus(b.Name, func(s *corev1.PodStatus) { s.Phase = corev1.PodRunning }))

	type ev struct {
		typ  watch.EventType
		name string
	}
	read := func(t *testing.T, w watch.Interface, n int) []ev {
		t.Helper()
		var got []ev
		for len(got) < n {
			select {
			case e, ok := <-w.ResultChan():
				require.True(t, ok, "watch ended after %v", got)
				name := ""
				if p, ok := e.Object.(*corev1.Pod); ok {
					name = p.Name
				}
				got = append(got, ev{e.Type, name})
			case <-time.After(5 * time.Second):
				t.Fatalf("only %v", got)
			}
		}
		return got
	}
	tests := []struct {
		name string
		opts metav1.ListOptions
		want []ev
	}{
		{name: "unset: the current pods, then changes", opts: metav1.ListOptions{},
			want: []ev{{watch.Added, a.Name}, {watch.Added, b.Name}}},
		{name: "exact: the changes after it", opts: metav1.ListOptions{ResourceVersion: rv},
			want: []ev{{watch.Added, b.Name}, {watch.Modified, b.Name}}},
		{name: "streaming list: the current pods and the closing bookmark", opts: metav1.ListOptions{
			SendInitialEvents: ptr(true), ResourceVersionMatch: metav1.ResourceVersionMatchNotOlderThan, AllowWatchBookmarks: true},
			want: []ev{{watch.Added, a.Name}, {watch.Added, b.Name}, {watch.Bookmark, ""}}},
		{name: "label selector", opts: metav1.ListOptions{LabelSelector: kubernetes.LabelStep + "=b"},
			want: []ev{{watch.Added, b.Name}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := st.api.WatchPods(ctx, "reana", tt.opts)
			require.NoError(t, err)
			defer w.Stop()
			assert.Equal(t, tt.want, read(t, w, len(tt.want)))
		})
	}

	t.Run("sendInitialEvents needs resourceVersionMatch", func(t *testing.T) {
		_, err := st.api.WatchPods(ctx, "reana", metav1.ListOptions{SendInitialEvents: ptr(true)})
		assert.True(t, apierrors.IsInvalid(err), "%v", err)
		assert.ErrorContains(t, err, "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan")
	})
	t.Run("too large", func(t *testing.T) {
		_, err := st.api.WatchPods(ctx, "reana", metav1.ListOptions{ResourceVersion: "99999999"})
		assert.True(t, apierrors.IsTimeout(err), "%v", err)
		assert.True(t, apierrors.HasStatusCause(err, metav1.CauseTypeResourceVersionTooLarge), "%v", err)
	})
	t.Run("compacted: 410 Gone", func(t *testing.T) {
		st.s.Compact()
		w, err := st.api.WatchPods(ctx, "reana", metav1.ListOptions{ResourceVersion: rv})
		require.NoError(t, err)
		defer w.Stop()
		e := <-w.ResultChan()
		require.Equal(t, watch.Error, e.Type)
		err = apierrors.FromObject(e.Object)
		assert.True(t, apierrors.IsResourceExpired(err), "%v", err)
		assert.ErrorContains(t, err, "too old resource version: "+rv)
	})
	t.Run("list in chunks", func(t *testing.T) {
		l, err := st.api.ListPods(ctx, "reana", metav1.ListOptions{Limit: 1})
		require.NoError(t, err)
		require.Len(t, l.Items, 1)
		assert.Equal(t, a.Name, l.Items[0].Name)
		assert.Equal(t, int64(1), *l.RemainingItemCount)
		l, err = st.api.ListPods(ctx, "reana", metav1.ListOptions{Limit: 1, Continue: l.Continue})
		require.NoError(t, err)
		require.Len(t, l.Items, 1)
		assert.Equal(t, b.Name, l.Items[0].Name)
		assert.Empty(t, l.Continue)
	})
	t.Run("field selector", func(t *testing.T) {
		l, err := st.api.ListPods(ctx, "reana", metav1.ListOptions{FieldSelector: "status.phase=Running"})
		require.NoError(t, err)
		require.Len(t, l.Items, 1)
		assert.Equal(t, b.Name, l.Items[0].Name)
		_, err = st.api.ListPods(ctx, "reana", metav1.ListOptions{FieldSelector: "spec.hostname=x"})
		assert.True(t, apierrors.IsBadRequest(err), "%v", err)
	})
}

func ptr[T any](v T) *T { return &v }

// TestNotImportedByProductionCode: only tests (and the test harness) may
// use the stand-in.
func TestNotImportedByProductionCode(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not in PATH")
	}
	out, err := exec.Command(goCmd, "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, "github.com/reana-site/reana-site/...").Output()
	require.NoError(t, err)
	// The stand-in and what it shares with the real API server's node
	// agent (test/kubelet, test/kubenode), like everything under test/.
	const tests = "github.com/reana-site/reana-site/test/"
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		pkg, imports, _ := strings.Cut(line, " ")
		if strings.HasPrefix(pkg, tests) {
			continue
		}
		for _, imp := range strings.Fields(imports) {
			assert.False(t, strings.HasPrefix(imp, tests), "%s, production code, imports %s, a test package", pkg, imp)
		}
	}
}
