package kubernetes

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reana-site/reana-site/batch"
)

// TestStatusFromTheInformer drives each pod outcome through the fake
// cluster and checks what the step is told.
func TestStatusFromTheInformer(t *testing.T) {
	tests := []struct {
		name    string
		spec    func(*batch.Spec)
		kubelet func(h *harness) func(*corev1.PodStatus)
		// before is the state while the grace runs, if any; advance moves
		// the clock past it.
		before  batch.State
		advance time.Duration
		want    batch.State
		code    *int
		reason  []string
		retry   bool
		deleted bool // the backend deleted the pod
	}{
		{
			name: "running",
			kubelet: func(*harness) func(*corev1.PodStatus) {
				return func(s *corev1.PodStatus) { s.Phase = corev1.PodRunning }
			},
			want: batch.Running,
		},
		{
			name:    "succeeded",
			kubelet: func(*harness) func(*corev1.PodStatus) { return terminated(0, "Completed", "") },
			want:    batch.Succeeded, code: ptr(0),
		},
		{
			name:    "failed with exit 2",
			kubelet: func(*harness) func(*corev1.PodStatus) { return terminated(2, "Error", "") },
			want:    batch.Failed, code: ptr(2),
			reason: []string{"command exited with status 2", "ran as uid 4101 gid 4100 groups [5001 5002]"},
		},
		{
			name:    "out of memory",
			spec:    func(s *batch.Spec) { s.Hints.MemoryLimit = "1Gi" },
			kubelet: func(*harness) func(*corev1.PodStatus) { return terminated(137, "OOMKilled", "") },
			want:    batch.Failed, code: ptr(137),
			reason: []string{"the step ran out of memory (limit 1Gi; raise kubernetes_memory_limit)"},
		},
		{
			name: "deadline exceeded",
			spec: func(s *batch.Spec) { s.Hints.JobTimeoutSeconds = 60 },
			kubelet: func(*harness) func(*corev1.PodStatus) {
				return func(s *corev1.PodStatus) {
					s.Phase, s.Reason, s.Message = corev1.PodFailed, "DeadlineExceeded", "Pod was active on the node longer than the specified deadline"
				}
			},
			want:   batch.Failed,
			reason: []string{"the step exceeded kubernetes_job_timeout of 60 s"},
		},
		{
			name: "evicted is retried",
			kubelet: func(*harness) func(*corev1.PodStatus) {
				return func(s *corev1.PodStatus) {
					s.Phase, s.Reason, s.Message = corev1.PodFailed, "Evicted", "The node was low on resource: memory."
				}
			},
			want: batch.Failed, retry: true,
			reason: []string{"Kubernetes evicted the step's pod", "The node was low on resource: memory."},
		},
		{
			name: "drained node (DisruptionTarget) is retried",
			kubelet: func(*harness) func(*corev1.PodStatus) {
				return func(s *corev1.PodStatus) {
					terminated(143, "Error", "")(s)
					s.Conditions = []corev1.PodCondition{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
						Reason: "EvictionByEvictionAPI", Message: "Eviction API: evicting"}}
				}
			},
			want: batch.Failed, retry: true,
			reason: []string{"EvictionByEvictionAPI"},
		},
		{
			name: "unschedulable past its grace",
			kubelet: func(h *harness) func(*corev1.PodStatus) {
				return func(s *corev1.PodStatus) {
					s.Phase = corev1.PodPending
					s.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
						Reason: corev1.PodReasonUnschedulable, LastTransitionTime: metav1.Time{Time: h.clock.Now()},
						Message: "0/3 nodes are available: 3 Insufficient memory."}}
				}
			},
			before: batch.Pending, advance: 11 * time.Minute,
			want: batch.Failed, deleted: true,
			reason: []string{"Kubernetes could not find a node for the step's pod", "for 10m0s", "0/3 nodes are available: 3 Insufficient memory."},
		},
		{
			name: "unbound claim",
			kubelet: func(h *harness) func(*corev1.PodStatus) {
				return func(s *corev1.PodStatus) {
					s.Phase = corev1.PodPending
					s.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionFalse,
						Reason: corev1.PodReasonUnschedulable, LastTransitionTime: metav1.Time{Time: h.clock.Now()},
						Message: "0/3 nodes are available: pod has unbound immediate PersistentVolumeClaims."}}
				}
			},
			before: batch.Pending, advance: 11 * time.Minute,
			want: batch.Failed, deleted: true,
			reason: []string{`the site's workspace claim "reana-workspaces" is missing or not bound`},
		},
		{
			name: "image pull back-off past its grace",
			kubelet: func(h *harness) func(*corev1.PodStatus) {
				return waiting("ImagePullBackOff", `Back-off pulling image "docker.io/library/debian:12-slim"`, h.clock.Now())
			},
			before: batch.Pending, advance: 6 * time.Minute,
			want: batch.Failed, deleted: true,
			reason: []string{"the image docker.io/library/debian:12-slim cannot be pulled (ImagePullBackOff for more than 5m0s", "Back-off pulling image"},
		},
		{
			name: "invalid image name fails at once",
			kubelet: func(h *harness) func(*corev1.PodStatus) {
				return waiting("InvalidImageName", `couldn't parse image name`, h.clock.Now())
			},
			want: batch.Failed, deleted: true,
			reason: []string{"is not a valid image name"},
		},
		{
			name: "container config error fails at once",
			kubelet: func(h *harness) func(*corev1.PodStatus) {
				return waiting("CreateContainerConfigError", `container has runAsNonRoot and image has non-numeric user (app), cannot verify user is non-root`, h.clock.Now())
			},
			want: batch.Failed, deleted: true,
			reason: []string{"Kubernetes cannot create the step's container", "image has non-numeric user"},
		},
		{
			name: "stuck creating the container, with the latest warning",
			kubelet: func(h *harness) func(*corev1.PodStatus) {
				return waiting("ContainerCreating", "", h.clock.Now())
			},
			before: batch.Pending, advance: 31 * time.Minute,
			want: batch.Failed, deleted: true,
			reason: []string{"did not start within 30m0s", "latest event: FailedMount: MountVolume.SetUp failed"},
		},
		{
			name: "the container could not run",
			kubelet: func(*harness) func(*corev1.PodStatus) {
				return terminated(128, "StartError", `exec: "/bin/sh": stat /bin/sh: no such file or directory`)
			},
			want: batch.Failed, code: ptr(128),
			reason: []string{"the step's container could not start", "/bin/sh"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, nil, nil)
			spec := testSpec()
			if tt.spec != nil {
				tt.spec(&spec)
			}
			j := h.submit(spec)
			h.eventually(j, batch.Pending)
			ctx := context.Background()
			_, err := h.client.CoreV1().Events("reana").Create(ctx, &corev1.Event{
				ObjectMeta:     metav1.ObjectMeta{Name: j.Handle.ID + ".1", Namespace: "reana"},
				InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: j.Handle.ID, Namespace: "reana"},
				Type:           corev1.EventTypeWarning, Reason: "FailedMount",
				Message:       `MountVolume.SetUp failed for volume "pvc-1": mount failed: exit status 32`,
				LastTimestamp: metav1.Time{Time: h.clock.Now()},
			}, metav1.CreateOptions{})
			require.NoError(t, err)

			h.kubelet(j.Handle.ID, tt.kubelet(h))
			if tt.advance > 0 {
				// The grace has not passed yet: the step waits.
				time.Sleep(50 * time.Millisecond)
				h.eventually(j, tt.before)
				h.clock.Add(tt.advance)
			}
			st := h.eventually(j, tt.want)
			assert.Equal(t, tt.code, st.ExitCode)
			for _, r := range tt.reason {
				assert.Contains(t, st.Reason, r)
			}
			assert.Equal(t, tt.retry, st.Retry)
			_, err = h.client.CoreV1().Pods("reana").Get(ctx, j.Handle.ID, metav1.GetOptions{})
			assert.Equal(t, tt.deleted, apierrors.IsNotFound(err), "pod deleted: %v", err)
			if tt.deleted {
				// Once its pod is gone the step keeps its verdict.
				again := h.status(j)
				assert.Equal(t, st, again)
			}
		})
	}
}

// TestWaitingWithinGrace: the step waits, with the reason, while a grace
// runs, the scheduler's message included.
func TestWaitingWithinGrace(t *testing.T) {
	h := newHarness(t, nil, nil)
	j := h.submit(testSpec())
	h.kubelet(j.Handle.ID, waiting("ErrImagePull", "manifest unknown", h.clock.Now()))
	h.clock.Add(4 * time.Minute)
	var st batch.Status
	require.Eventually(t, func() bool {
		st = h.status(j)
		return strings.Contains(st.Reason, "pulling the image")
	}, 5*time.Second, 5*time.Millisecond)
	assert.Equal(t, batch.Pending, st.State)
	assert.Contains(t, st.Reason, "pulling the image docker.io/library/debian:12-slim is failing (ErrImagePull): manifest unknown")
}

func TestDeletedPods(t *testing.T) {
	ctx := context.Background()
	t.Run("deleted by someone else while running", func(t *testing.T) {
		h := newHarness(t, nil, nil)
		j := h.submit(testSpec())
		h.kubelet(j.Handle.ID, func(s *corev1.PodStatus) { s.Phase = corev1.PodRunning })
		h.eventually(j, batch.Running)
		require.NoError(t, h.client.CoreV1().Pods("reana").Delete(ctx, j.Handle.ID, metav1.DeleteOptions{}))
		st := h.eventually(j, batch.Failed)
		assert.Contains(t, st.Reason, "was deleted before it finished, not by reana-site")
	})
	t.Run("deleted after it succeeded keeps its outcome", func(t *testing.T) {
		h := newHarness(t, nil, nil)
		j := h.submit(testSpec())
		h.kubelet(j.Handle.ID, terminated(0, "Completed", ""))
		h.eventually(j, batch.Succeeded)
		require.NoError(t, h.client.CoreV1().Pods("reana").Delete(ctx, j.Handle.ID, metav1.DeleteOptions{}))
		require.Eventually(t, func() bool {
			_, err := h.b.pods.Pods("reana").Get(j.Handle.ID)
			return apierrors.IsNotFound(err)
		}, 5*time.Second, 5*time.Millisecond)
		// The delete handler runs a moment after the cache drops the pod.
		h.eventually(j, batch.Succeeded)
	})
	t.Run("deleted by a node drain is retried", func(t *testing.T) {
		h := newHarness(t, nil, nil)
		j := h.submit(testSpec())
		h.kubelet(j.Handle.ID, func(s *corev1.PodStatus) {
			s.Phase = corev1.PodRunning
			s.Conditions = []corev1.PodCondition{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
				Reason: "EvictionByEvictionAPI", Message: "Eviction API: evicting"}}
		})
		h.eventually(j, batch.Running)
		require.NoError(t, h.client.CoreV1().Pods("reana").Delete(ctx, j.Handle.ID, metav1.DeleteOptions{}))
		st := h.eventually(j, batch.Failed)
		assert.True(t, st.Retry)
		assert.Contains(t, st.Reason, "Kubernetes evicted the step's pod")
		assert.Contains(t, st.Reason, "EvictionByEvictionAPI")
		assert.Contains(t, st.Reason, "Eviction API: evicting")
		assert.NotContains(t, st.Reason, "kubectl delete")
	})
	t.Run("deleted by the taint manager while pending is retried", func(t *testing.T) {
		h := newHarness(t, nil, nil)
		j := h.submit(testSpec())
		h.kubelet(j.Handle.ID, func(s *corev1.PodStatus) {
			waiting("ContainerCreating", "", h.clock.Now())(s)
			s.Conditions = append(s.Conditions, corev1.PodCondition{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
				Reason: "DeletionByTaintManager", Message: "Taint manager: deleting due to NoExecute taint"})
		})
		require.Eventually(t, func() bool {
			p, err := h.b.pods.Pods("reana").Get(j.Handle.ID)
			return err == nil && disruption(p) != nil
		}, 5*time.Second, 5*time.Millisecond)
		require.NoError(t, h.client.CoreV1().Pods("reana").Delete(ctx, j.Handle.ID, metav1.DeleteOptions{}))
		st := h.eventually(j, batch.Failed)
		assert.True(t, st.Retry)
		assert.Contains(t, st.Reason, "DeletionByTaintManager")
	})
	t.Run("gone while the daemon was down", func(t *testing.T) {
		h := newHarness(t, nil, nil)
		j := h.submit(testSpec())
		h.eventually(j, batch.Pending)
		require.NoError(t, h.client.CoreV1().Pods("reana").Delete(ctx, j.Handle.ID, metav1.DeleteOptions{}))
		// A restarted daemon: no memory of the pod, its cache never had it.
		h2 := newHarness(t, h.client, nil)
		h2.clock.Add(2 * time.Minute)
		st := h2.status(j)
		assert.Equal(t, batch.Failed, st.State)
		assert.Contains(t, st.Reason, "no longer exists: it was deleted while reana-site was not watching")
	})
	t.Run("just created, not yet in the cache", func(t *testing.T) {
		h := newHarness(t, nil, nil)
		spec := testSpec()
		pod, err := BuildPod(spec, h.b.cfg)
		require.NoError(t, err)
		// A handle for a pod that the cache has not seen (and the API
		// server does not have either): pending within the grace.
		j := batch.Job{Spec: spec, Handle: h.b.handle(pod)}
		assert.Equal(t, batch.Pending, h.status(j).State)
		h.clock.Add(2 * time.Minute)
		assert.Equal(t, batch.Failed, h.status(j).State)
	})
}

// TestForeignPodIsNotAdopted: a pod with the job's name but not made for
// it (the fake watch delivers unlabelled pods too) is never taken for the
// step's.
func TestForeignPodIsNotAdopted(t *testing.T) {
	h := newHarness(t, nil, nil)
	spec := testSpec()
	name := PodName(spec.JobID, spec.StepName)
	_, err := h.client.CoreV1().Pods("reana").Create(context.Background(), &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "reana"},
		Status:     corev1.PodStatus{Phase: corev1.PodSucceeded},
	}, metav1.CreateOptions{})
	require.NoError(t, err)

	_, err = h.b.Submit(context.Background(), spec)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "already exists in namespace reana and is not this step's")

	pod, _ := BuildPod(spec, h.b.cfg)
	j := batch.Job{Spec: spec, Handle: h.b.handle(pod)}
	st := h.eventually(j, batch.Failed)
	assert.Contains(t, st.Reason, "is not this step's")
}

func TestStatusBeforeStartIsAnOutage(t *testing.T) {
	b, err := New(testConfig(), ClientsetAPI(newFakeClient()), quiet())
	require.NoError(t, err)
	_, err = b.Status(context.Background(), []batch.Job{{Spec: testSpec()}})
	assert.ErrorIs(t, err, batch.ErrUnavailable)
}

// podFor is the pod BuildPod makes for testSpec, with a status and, if
// given, spec changes (what a webhook or the scheduler would set).
func podFor(t *testing.T, spec func(*corev1.PodSpec), status corev1.PodStatus) *corev1.Pod {
	t.Helper()
	pod, err := BuildPod(testSpec(), testConfig())
	require.NoError(t, err)
	if spec != nil {
		spec(&pod.Spec)
	}
	pod.Status = status
	return pod
}

func stepState(s corev1.ContainerState) corev1.ContainerStatus {
	return corev1.ContainerStatus{Name: ContainerName, State: s}
}

func exited(code int32, reason string) corev1.ContainerState {
	return corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason}}
}

var (
	sidecarRunning  = corev1.ContainerStatus{Name: "istio-proxy", State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{}}}
	podInitializing = corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "PodInitializing"}}
)

// TestMapPod: the pure mapping of pod states that the fake cluster does
// not easily produce (sidecars, init containers, scheduling without an
// Unschedulable condition, node refusals).
func TestMapPod(t *testing.T) {
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	submitted := now.Add(-time.Minute)
	long := now.Add(-11 * time.Minute)
	tests := []struct {
		name      string
		spec      func(*corev1.PodSpec)
		status    corev1.PodStatus
		submitted time.Time
		want      batch.State
		code      *int
		retry     bool
		delete    bool
		afterLogs bool
		reason    []string
	}{
		{
			name: "step succeeded, a sidecar runs on",
			status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
				stepState(exited(0, "Completed")), sidecarRunning}},
			want: batch.Succeeded, code: ptr(0), delete: true, afterLogs: true,
		},
		{
			name: "step failed, a sidecar runs on",
			status: corev1.PodStatus{Phase: corev1.PodRunning, ContainerStatuses: []corev1.ContainerStatus{
				sidecarRunning, stepState(exited(2, "Error"))}},
			want: batch.Failed, code: ptr(2), delete: true, afterLogs: true,
			reason: []string{"command exited with status 2"},
		},
		{
			name: "step succeeded, a sidecar failed the pod",
			status: corev1.PodStatus{Phase: corev1.PodFailed, ContainerStatuses: []corev1.ContainerStatus{
				stepState(exited(0, "Completed")),
				{Name: "istio-proxy", State: exited(1, "Error")}}},
			want: batch.Succeeded, code: ptr(0),
		},
		{
			name: "step killed by a drain while a sidecar stops",
			status: corev1.PodStatus{Phase: corev1.PodRunning,
				Conditions: []corev1.PodCondition{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
					Reason: "EvictionByEvictionAPI", Message: "Eviction API: evicting"}},
				ContainerStatuses: []corev1.ContainerStatus{stepState(exited(143, "Error")), sidecarRunning}},
			want: batch.Failed, retry: true, delete: true, afterLogs: true,
			reason: []string{"Kubernetes evicted the step's pod", "EvictionByEvictionAPI", "Eviction API: evicting"},
		},
		{
			name: "preempted",
			status: corev1.PodStatus{Phase: corev1.PodFailed,
				Conditions: []corev1.PodCondition{{Type: corev1.DisruptionTarget, Status: corev1.ConditionTrue,
					Reason: "PreemptionByScheduler", Message: "preempted by a pod of higher priority"}},
				ContainerStatuses: []corev1.ContainerStatus{stepState(exited(137, "Error"))}},
			want: batch.Failed, retry: true, reason: []string{"PreemptionByScheduler"},
		},
		{
			name: "a failed init container, no step container state",
			status: corev1.PodStatus{Phase: corev1.PodFailed,
				InitContainerStatuses: []corev1.ContainerStatus{{Name: "istio-init",
					State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: 1, Reason: "Error", Message: "iptables: permission denied\n"}}}},
				ContainerStatuses: []corev1.ContainerStatus{stepState(podInitializing)}},
			want:   batch.Failed,
			reason: []string{"the step's pod failed (reana-gendata-", `init container "istio-init" exited with status 1 (Error): iptables: permission denied`},
		},
		{
			name:   "no state at all",
			status: corev1.PodStatus{Phase: corev1.PodFailed},
			want:   batch.Failed, reason: []string{"no container state was recorded"},
		},
		{
			name: "an init container's image cannot be pulled, past the start grace",
			status: corev1.PodStatus{Phase: corev1.PodPending, StartTime: &metav1.Time{Time: now.Add(-31 * time.Minute)},
				Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}},
				InitContainerStatuses: []corev1.ContainerStatus{{Name: "vault-agent-init",
					State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff", Message: "Back-off pulling image \"vault\""}}}},
				ContainerStatuses: []corev1.ContainerStatus{stepState(podInitializing)}},
			want: batch.Failed, delete: true,
			reason: []string{"did not start within 30m0s (PodInitializing)", `init container "vault-agent-init" is waiting (ImagePullBackOff): Back-off pulling image "vault"`},
		},
		{
			name: "an init container waiting, within the start grace",
			status: corev1.PodStatus{Phase: corev1.PodPending, StartTime: &metav1.Time{Time: now.Add(-time.Minute)},
				Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}},
				InitContainerStatuses: []corev1.ContainerStatus{{Name: "vault-agent-init",
					State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ImagePullBackOff"}}}},
				ContainerStatuses: []corev1.ContainerStatus{stepState(podInitializing)}},
			want: batch.Pending, reason: []string{`starting the container (PodInitializing): init container "vault-agent-init" is waiting (ImagePullBackOff)`},
		},
		{
			name:   "no scheduler has taken it, within the grace",
			status: corev1.PodStatus{Phase: corev1.PodPending},
			want:   batch.Pending, reason: []string{"waiting for a node: no scheduler has taken the pod yet"},
		},
		{
			name:   "no scheduler has taken it, past the grace",
			status: corev1.PodStatus{Phase: corev1.PodPending}, submitted: long,
			want: batch.Failed, delete: true,
			reason: []string{"Kubernetes did not schedule the step's pod reana-gendata-", "within 10m0s: no scheduler has taken the pod yet"},
		},
		{
			name: "scheduling gated, past the grace",
			spec: func(s *corev1.PodSpec) {
				s.SchedulingGates = []corev1.PodSchedulingGate{{Name: "kueue.x-k8s.io/admission"}}
			},
			status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled,
				Status: corev1.ConditionFalse, Reason: corev1.PodReasonSchedulingGated, Message: "Scheduling is blocked due to non-empty scheduling gates"}}},
			submitted: long,
			want:      batch.Failed, delete: true,
			reason: []string{"did not schedule", "scheduling gates [kueue.x-k8s.io/admission] have not been removed"},
		},
		{
			name: "scheduling gated by condition only, within the grace",
			status: corev1.PodStatus{Phase: corev1.PodPending, Conditions: []corev1.PodCondition{{Type: corev1.PodScheduled,
				Status: corev1.ConditionFalse, Reason: corev1.PodReasonSchedulingGated}}},
			want: batch.Pending, reason: []string{"held back from scheduling (SchedulingGated)"},
		},
		{
			name:      "a scheduler that does not exist, past the grace",
			spec:      func(s *corev1.PodSpec) { s.SchedulerName = "volcano" },
			status:    corev1.PodStatus{Phase: corev1.PodPending},
			submitted: long,
			want:      batch.Failed, delete: true,
			reason: []string{`its schedulerName is "volcano", which may be no scheduler of this cluster`},
		},
		{
			name: "the node cannot apply the Strict groups policy",
			spec: func(s *corev1.PodSpec) { s.NodeName = "node-7" },
			status: corev1.PodStatus{Phase: corev1.PodFailed, Reason: "SupplementalGroupsPolicyNotSupported",
				Message: "Pod was rejected: SupplementalGroupsPolicy=Strict is not supported in this node"},
			want: batch.Failed, retry: true,
			reason: []string{"the node node-7 cannot run the step's pod", "supplementalGroupsPolicy Strict", "report this to the site admin", "is not supported in this node"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod := podFor(t, tt.spec, tt.status)
			sub := submitted
			if !tt.submitted.IsZero() {
				sub = tt.submitted
			}
			v := podView{cfg: testConfig().withDefaults(), now: now, submitted: sub}.mapPod(pod)
			assert.Equal(t, tt.want, v.State, "%+v", v)
			assert.Equal(t, tt.code, v.ExitCode)
			assert.Equal(t, tt.retry, v.Retry)
			assert.Equal(t, tt.delete, v.deletePod, "delete the pod")
			assert.Equal(t, tt.afterLogs, v.afterLogs, "delete after its logs")
			for _, r := range tt.reason {
				assert.Contains(t, v.Reason, r)
			}
		})
	}
}

// TestSidecarPodIsDeletedOnceItsOutputIsRead: the step's container ended
// while a sidecar keeps the pod running; the step's status comes from its
// container, and the pod goes once the engine has read the output, so
// the sidecar stops.
func TestSidecarPodIsDeletedOnceItsOutputIsRead(t *testing.T) {
	for _, tt := range []struct {
		name string
		code int32
		want batch.State
	}{{"succeeded", 0, batch.Succeeded}, {"failed", 3, batch.Failed}} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			h := newHarness(t, nil, nil)
			j := h.submit(testSpec())
			h.kubelet(j.Handle.ID, func(s *corev1.PodStatus) {
				s.Phase = corev1.PodRunning
				s.ContainerStatuses = []corev1.ContainerStatus{stepState(exited(tt.code, "Error")), sidecarRunning}
			})
			st := h.eventually(j, tt.want)
			require.NotNil(t, st.ExitCode)
			assert.Equal(t, int(tt.code), *st.ExitCode)
			_, err := h.client.CoreV1().Pods("reana").Get(ctx, j.Handle.ID, metav1.GetOptions{})
			require.NoError(t, err, "the pod stays until its output is read")

			out, err := h.b.Logs(ctx, j)
			require.NoError(t, err)
			assert.Equal(t, "fake logs", out)
			_, err = h.client.CoreV1().Pods("reana").Get(ctx, j.Handle.ID, metav1.GetOptions{})
			assert.True(t, apierrors.IsNotFound(err), "deleted once its output was read: %v", err)
			assert.Equal(t, st, h.status(j), "the step keeps its outcome")
		})
	}
}

// TestJanitorDeletesSidecarPodsNobodyRead: a pod whose step ended but
// whose sidecar runs on is deleted sidecarGrace later even if its output
// is never asked for.
func TestJanitorDeletesSidecarPodsNobodyRead(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil, nil)
	j := h.submit(testSpec())
	h.kubelet(j.Handle.ID, func(s *corev1.PodStatus) {
		s.Phase = corev1.PodRunning
		st := stepState(exited(0, "Completed"))
		st.State.Terminated.FinishedAt = metav1.Time{Time: h.clock.Now()}
		s.ContainerStatuses = []corev1.ContainerStatus{st, sidecarRunning}
	})
	require.Eventually(t, func() bool {
		p, err := h.b.pods.Pods("reana").Get(j.Handle.ID)
		return err == nil && stepTerminated(p) != nil
	}, 5*time.Second, 5*time.Millisecond)
	h.b.collect(ctx)
	_, err := h.client.CoreV1().Pods("reana").Get(ctx, j.Handle.ID, metav1.GetOptions{})
	require.NoError(t, err, "kept within the grace")
	h.clock.Add(sidecarGrace + time.Minute)
	h.b.collect(ctx)
	_, err = h.client.CoreV1().Pods("reana").Get(ctx, j.Handle.ID, metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "deleted past the grace: %v", err)
}
