//go:build e2e

package e2e

import (
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"

	"github.com/reana-site/reana-site/batch/kubernetes"
	"github.com/reana-site/reana-site/test/harness"
)

// These tests run the daemon's own wiring of the Kubernetes backend
// (configuration, kubeconfig, client, informer, preflight at start)
// against a real kube-apiserver and etcd (test/kubereal: RBAC, Pod
// Security restricted, ResourceQuota, LimitRanger, deploy/kubernetes
// applied) with a node agent (test/kubenode), or, without the kit, the
// stand-in (test/kubeapi) with its kubelet. Either runs each step pod's
// command on this host as the pod's uid, gid and groups, so the workspace
// files show who the pod ran as.

// kubeDaemon starts a Kubernetes API server and a daemon that offers it
// (and the local backend).
func kubeDaemon(t *testing.T) (*Daemon, *harness.Kubernetes, *User, *User) {
	t.Helper()
	k := harness.StartKubernetes(t, env)
	d := StartDaemon(t, k.DaemonEnv()...)
	return d, k, d.AddUser(t, "alice"), d.AddUser(t, "bob")
}

// workflowPods lists a workflow's pods in the order they were created
// (creation timestamps have only seconds).
func workflowPods(t *testing.T, k *harness.Kubernetes, workflowID string) []corev1.Pod {
	t.Helper()
	order := map[string]int{}
	for i, c := range k.Creations(t) {
		if _, seen := order[c.Name]; !seen && !c.DryRun && c.Code == http.StatusCreated {
			order[c.Name] = i
		}
	}
	var pods []corev1.Pod
	for _, p := range k.Pods(t) {
		if p.Labels[kubernetes.LabelWorkflow] == workflowID {
			pods = append(pods, p)
		}
	}
	slices.SortFunc(pods, func(a, b corev1.Pod) int { return order[a.Name] - order[b.Name] })
	return pods
}

// podRunning waits until one of the workflow's pods runs a process of
// the user matching match (each command is its own pod) and returns it.
func podRunning(t *testing.T, k *harness.Kubernetes, u *User, workflowID, match string) corev1.Pod {
	t.Helper()
	var pod corev1.Pod
	require.Eventually(t, func() bool {
		if len(stepProcesses(t, u.UID, match)) == 0 {
			return false
		}
		for _, p := range workflowPods(t, k, workflowID) {
			if p.Status.Phase == corev1.PodRunning && strings.Contains(strings.Join(p.Spec.Containers[0].Command, " "), match) {
				pod = p
				return true
			}
		}
		return false
	}, 30*time.Second, 50*time.Millisecond, "no running pod of workflow %s runs %q", workflowID, match)
	return pod
}

// processesIn are the user's processes matching match that run in dir:
// others may run the same command as the test users on this machine.
func processesIn(t *testing.T, uid int, match, dir string) []int {
	t.Helper()
	var pids []int
	for _, pid := range stepProcesses(t, uid, match) {
		if cwd, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "cwd")); err == nil && cwd == dir {
			pids = append(pids, pid)
		}
	}
	return pids
}

// assertOnePodPerCommand: each command became exactly one pod, created
// once (a second create of the same pod would have been refused, so
// successful creates are counted).
func assertOnePodPerCommand(t *testing.T, k *harness.Kubernetes, workflowID string, commands int) {
	t.Helper()
	pods := workflowPods(t, k, workflowID)
	assert.Len(t, pods, commands, "one pod per command")
	ours := map[string]bool{}
	for _, p := range pods {
		ours[p.Name] = true
	}
	created := map[string]int{}
	for _, c := range k.Creations(t) {
		if !c.DryRun && c.Code == http.StatusCreated && ours[c.Name] {
			created[c.Name]++
		}
	}
	for name, n := range created {
		assert.Equal(t, 1, n, "pod %s created %d times", name, n)
	}
	assert.Len(t, created, commands)
}

// supplementaryGroups are the user's groups other than the primary, as
// a step pod lists them.
func supplementaryGroups(t *testing.T, u *User) []int64 {
	t.Helper()
	pw, err := user.Lookup(u.Name)
	require.NoError(t, err)
	ids, err := pw.GroupIds()
	require.NoError(t, err)
	var gs []int64
	for _, id := range ids {
		g, err := strconv.ParseInt(id, 10, 64)
		require.NoError(t, err)
		if g != int64(u.GID) {
			gs = append(gs, g)
		}
	}
	slices.Sort(gs)
	return gs
}

func TestKubernetesRoot6FitAsTheUser(t *testing.T) {
	d, k, alice, _ := kubeDaemon(t)
	dir := alice.WorkDir(t, "root6-fit")
	out := alice.MustClient(t, dir, "run", "-w", "kube-fit", "-f", "reana-kubernetes.yaml", "-p", "events=2000")
	assert.Contains(t, out, "kube-fit.1")
	wf := alice.WaitStatus(t, "kube-fit.1", time.Minute, "finished")

	pods := workflowPods(t, k, wf.ID)
	require.Len(t, pods, 2, "one pod per command")
	groups := supplementaryGroups(t, alice)
	for i, step := range []string{"gendata", "fitdata"} {
		p := pods[i]
		sc := p.Spec.SecurityContext
		assert.Equal(t, int64(alice.UID), *sc.RunAsUser, "%s runs as alice", p.Name)
		assert.Equal(t, int64(alice.GID), *sc.RunAsGroup, "%s runs with alice's group", p.Name)
		assert.Equal(t, groups, sc.SupplementalGroups, "%s has alice's other groups", p.Name)
		assert.Equal(t, map[string]string{
			"app.kubernetes.io/managed-by": "reana-site", kubernetes.LabelWorkflow: wf.ID, kubernetes.LabelRun: "kube-fit.1",
			kubernetes.LabelStep: step, kubernetes.LabelUser: "alice", kubernetes.LabelJob: p.Annotations[kubernetes.AnnotationJobID],
		}, p.Labels)
		assert.Equal(t, corev1.PodSucceeded, p.Status.Phase)
		assert.Equal(t, "reana-site-step", p.Spec.ServiceAccountName)
		assert.Equal(t, d.WorkspaceOf(alice, wf.ID), p.Spec.Containers[0].WorkingDir)
	}
	assert.Equal(t, "256Mi", pods[0].Spec.Containers[0].Resources.Limits.Memory().String(), "kubernetes_memory_limit reaches the pod")

	logs := alice.MustClient(t, dir, "logs", "-w", "kube-fit.1")
	assert.Contains(t, logs, "fit result")
	assert.Contains(t, logs, "gendata")

	assertDownloadedPlot(t, alice, dir, "kube-fit.1", "2000")
	// The node ran each command as the pod says: the files
	// the steps wrote are alice's.
	assertOwnedBy(t, d.WorkspaceOf(alice, wf.ID), alice)
}

func TestKubernetesFailingStepShowsExitStatus(t *testing.T) {
	_, k, alice, _ := kubeDaemon(t)
	dir := alice.WorkDir(t, "failing")
	alice.MustClient(t, dir, "run", "-w", "kubefail", "-f", "reana-kubernetes.yaml")
	wf := alice.WaitStatus(t, "kubefail.1", time.Minute, "failed")
	logs := alice.Logs(t, "kubefail.1")
	assert.Contains(t, logs, "no-such-command-xyz")
	assert.Contains(t, logs, "command exited with status 127")
	assert.Contains(t, logs, "ran as uid "+strconv.Itoa(alice.UID))
	assert.NotContains(t, logs, "never-reached")
	pods := workflowPods(t, k, wf.ID)
	require.Len(t, pods, 3, "first, then broken's two commands; nothing after the failure")
	last := pods[2].Status.ContainerStatuses[0].State.Terminated
	require.NotNil(t, last)
	assert.Equal(t, int32(127), last.ExitCode)
	assert.Equal(t, "Error", last.Reason)
}

// TestKubernetesPreflightRefusesAtStart: with the step service account
// not granted its SCC, the daemon's preflight at start finds out, and a
// run is refused with the reason and the command that fixes it, before
// any pod is created. Once granted, the same workflow starts.
func TestKubernetesPreflightRefusesAtStart(t *testing.T) {
	d, k, alice, _ := kubeDaemon(t)
	// The preflight runs at start, then every 5 minutes: restart the
	// daemon to have it look now.
	k.RefuseLikeSCC(t, true)
	d.Stop()
	d.Start()

	dir := alice.WorkDir(t, "root6-fit")
	out, code := alice.Client(t, dir, "run", "-w", "kube-scc", "-f", "reana-kubernetes.yaml", "-p", "events=500")
	assert.NotZero(t, code, out)
	for _, want := range []string{
		"step gendata cannot run on kubernetes now",
		"OpenShift refused the step pod reana-site-preflight",
		"service account reana/reana-site-step may not use the SCC nonroot-v2",
		"oc adm policy add-scc-to-user nonroot-v2 -z reana-site-step -n reana",
	} {
		assert.Contains(t, out, want)
	}
	for _, c := range k.Creations(t) {
		assert.True(t, c.DryRun, "only the preflight's dry-runs reached the API: %+v", c)
	}
	w, _ := alice.Status(t, "kube-scc.1")
	assert.Equal(t, "created", w.Status)
	assert.Empty(t, workflowPods(t, k, w.ID), "nothing was created")

	// The cluster admin grants the SCC; the daemon sees it at its next
	// preflight (here: its next start) and the workflow starts.
	k.RefuseLikeSCC(t, false)
	d.Stop()
	d.Start()
	alice.MustClient(t, dir, "start", "-w", "kube-scc.1", "-p", "events=500")
	alice.WaitStatus(t, "kube-scc.1", time.Minute, "finished")
}

func TestKubernetesStopDeletesThePod(t *testing.T) {
	d, k, alice, bob := kubeDaemon(t)
	dir := alice.WorkDir(t, "sleepy")
	alice.MustClient(t, dir, "run", "-w", "kubenap", "-f", "reana-kubernetes.yaml", "-p", "seconds=300")
	wf := alice.WaitStatus(t, "kubenap.1", time.Minute, "running")
	pod := podRunning(t, k, alice, wf.ID, "sleep 300")
	assert.Equal(t, "nap", pod.Labels[kubernetes.LabelStep])
	ws := d.WorkspaceOf(alice, wf.ID)
	require.NotEmpty(t, processesIn(t, alice.UID, "sleep 300", ws), "the pod's process runs in the workspace")

	out, code := bob.Client(t, bob.WorkDir(t, ""), "stop", "-w", wf.ID, "--force")
	assert.NotZero(t, code, "bob may not stop alice's workflow: %s", out)
	_, ok := k.Pod(t, pod.Name)
	assert.True(t, ok, "bob's stop left the pod alone")

	alice.MustClient(t, dir, "stop", "-w", "kubenap.1", "--force")
	alice.WaitStatus(t, "kubenap.1", time.Minute, "stopped")
	assert.True(t, k.DeletedByDaemon(t, pod.Name), "stop deletes the pod")
	require.Eventually(t, func() bool { _, ok := k.Pod(t, pod.Name); return !ok }, 30*time.Second, 100*time.Millisecond, "the pod is gone")
	require.Eventually(t, func() bool { return len(processesIn(t, alice.UID, "sleep 300", ws)) == 0 }, 30*time.Second, 100*time.Millisecond,
		"the step's process is gone")
	assert.Len(t, workflowPods(t, k, wf.ID), 1, "the echo's pod stays (finished), nothing after the stop")
}

// TestKubernetesKillWhilePodRuns: kill -9 the daemon while a step's pod
// runs; the pod runs on (the cluster does not depend on the daemon), the
// new daemon finds it again, creates nothing twice, and the workflow ends.
func TestKubernetesKillWhilePodRuns(t *testing.T) {
	d, k, alice, _ := kubeDaemon(t)
	dir := alice.WorkDir(t, "crash")
	alice.MustClient(t, dir, "run", "-w", "kubecrash", "-f", "reana-kubernetes.yaml", "-p", "seconds=6")
	wf := alice.WaitStatus(t, "kubecrash.1", time.Minute, "running")
	pod := podRunning(t, k, alice, wf.ID, "sleep 6")
	d.Kill()
	time.Sleep(time.Second)
	p, ok := k.Pod(t, pod.Name)
	require.True(t, ok)
	assert.Equal(t, corev1.PodRunning, p.Status.Phase, "the pod runs on without the daemon")
	d.Start()
	alice.WaitStatus(t, "kubecrash.1", time.Minute, "finished")
	b, err := os.ReadFile(filepath.Join(d.WorkspaceOf(alice, wf.ID), "runs.log"))
	require.NoError(t, err)
	assert.Equal(t, "first\nslow-start\nslow-end\nlast\n", string(b))
	assertOnePodPerCommand(t, k, wf.ID, 5)
}

// TestKubernetesMixedWithLocalSteps: gendata runs on this host, fitdata
// in a pod, both as alice, in the same workspace.
func TestKubernetesMixedWithLocalSteps(t *testing.T) {
	d, k, alice, _ := kubeDaemon(t)
	dir := alice.WorkDir(t, "root6-fit")
	alice.MustClient(t, dir, "run", "-w", "kube-mixed", "-f", "reana-kube-mixed.yaml", "-p", "events=500")
	wf := alice.WaitStatus(t, "kube-mixed.1", time.Minute, "finished")
	pods := workflowPods(t, k, wf.ID)
	require.Len(t, pods, 1, "only fitdata runs on Kubernetes")
	assert.Equal(t, "fitdata", pods[0].Labels[kubernetes.LabelStep])
	got, err := os.ReadFile(filepath.Join(d.WorkspaceOf(alice, wf.ID), "results", "plot.png"))
	require.NoError(t, err)
	assert.Equal(t, expectedOutputs(t, alice, "500"), got)
	assertOwnedBy(t, d.WorkspaceOf(alice, wf.ID), alice)
}

// TestKubernetesOutOfMemory: the kernel's OOM killer ends a step's
// container, which no API server does on demand: the stand-in's kubelet
// does it, and the user reads why the step failed and what to raise.
func TestKubernetesOutOfMemory(t *testing.T) {
	k := harness.StartKubernetesStandin(t)
	d := StartDaemon(t, k.DaemonEnv()...)
	alice := d.AddUser(t, "alice")
	dir := alice.WorkDir(t, "sleepy")
	alice.MustClient(t, dir, "run", "-w", "kubeoom", "-f", "reana-kubernetes.yaml", "-p", "seconds=300")
	wf := alice.WaitStatus(t, "kubeoom.1", time.Minute, "running")
	pod := podRunning(t, k, alice, wf.ID, "sleep 300")
	require.NoError(t, k.Standin.OOMKill(pod.Name))
	alice.WaitStatus(t, "kubeoom.1", time.Minute, "failed")
	logs := alice.Logs(t, "kubeoom.1")
	assert.Contains(t, logs, "the step ran out of memory")
	assert.Contains(t, logs, "raise kubernetes_memory_limit")
}
