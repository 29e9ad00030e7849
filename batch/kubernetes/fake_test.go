package kubernetes

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/reana-site/reana-site/batch"
)

// The fake clientset has no admission, scheduler or kubelet: tests play
// those parts. Admission refusals come from reactors, and pods move through
// their phases by UpdateStatus, which the informer sees as a real watch
// would (but unfiltered by labels: the backend re-checks them).

func boundClaim(name string, phase corev1.PersistentVolumeClaimPhase) *corev1.PersistentVolumeClaim {
	return &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "reana"},
		Status:     corev1.PersistentVolumeClaimStatus{Phase: phase},
	}
}

// newFakeClient is a cluster whose workspace claim is bound and whose API
// server, like a real one, stores nothing for a dry-run create.
func newFakeClient(objs ...runtime.Object) *fake.Clientset {
	if len(objs) == 0 {
		objs = []runtime.Object{boundClaim("reana-workspaces", corev1.ClaimBound)}
	}
	c := fake.NewClientset(objs...)
	c.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if dryRun(a) {
			return true, a.(k8stesting.CreateAction).GetObject(), nil
		}
		return false, nil, nil
	})
	// The fake serves "fake logs" whether the pod exists or not, and its
	// log action does not carry the pod's name; a real server answers 404
	// for a pod that is gone. Tests that read logs have one pod at most.
	c.PrependReactor("get", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if a.GetSubresource() != "log" {
			return false, nil, nil
		}
		pods, err := c.Tracker().List(corev1.SchemeGroupVersion.WithResource("pods"), corev1.SchemeGroupVersion.WithKind("Pod"), a.GetNamespace())
		if err == nil && meta.LenList(pods) == 0 {
			return true, nil, apierrors.NewNotFound(corev1.Resource("pods"), "")
		}
		return false, nil, nil
	})
	return c
}

// dryRun reports whether a is a dry-run create.
func dryRun(a k8stesting.Action) bool {
	ca, ok := a.(k8stesting.CreateActionImpl)
	return ok && len(ca.CreateOptions.DryRun) > 0
}

// clock is a settable time for the graces.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type harness struct {
	t      *testing.T
	client *fake.Clientset
	b      *Backend
	clock  *clock
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// newHarness starts a backend on client (a new fake cluster if nil).
func newHarness(t *testing.T, client *fake.Clientset, cfg func(*Config)) *harness {
	t.Helper()
	if client == nil {
		client = newFakeClient()
	}
	c := testConfig()
	if cfg != nil {
		cfg(&c)
	}
	b, err := New(c, ClientsetAPI(client), quiet())
	require.NoError(t, err)
	clk := &clock{t: time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)}
	b.now = clk.Now
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	require.NoError(t, b.Start(ctx))
	return &harness{t: t, client: client, b: b, clock: clk}
}

func (h *harness) submit(spec batch.Spec) batch.Job {
	h.t.Helper()
	hd, err := h.b.Submit(context.Background(), spec)
	require.NoError(h.t, err)
	return batch.Job{Spec: spec, Handle: hd}
}

// kubelet sets the pod's status as a kubelet would report it.
func (h *harness) kubelet(pod string, mutate func(*corev1.PodStatus)) {
	h.t.Helper()
	ctx := context.Background()
	p, err := h.client.CoreV1().Pods("reana").Get(ctx, pod, metav1.GetOptions{})
	require.NoError(h.t, err)
	mutate(&p.Status)
	_, err = h.client.CoreV1().Pods("reana").UpdateStatus(ctx, p, metav1.UpdateOptions{})
	require.NoError(h.t, err)
}

func (h *harness) status(j batch.Job) batch.Status {
	h.t.Helper()
	out, err := h.b.Status(context.Background(), []batch.Job{j})
	require.NoError(h.t, err)
	return out[j.Spec.JobID]
}

// eventually waits for the informer to bring the backend to the state.
func (h *harness) eventually(j batch.Job, want batch.State) batch.Status {
	h.t.Helper()
	var st batch.Status
	require.Eventually(h.t, func() bool {
		st = h.status(j)
		return st.State == want
	}, 5*time.Second, 5*time.Millisecond, "job %s never became %s; last: %+v", j.Spec.JobID, want, st)
	return st
}

func terminated(code int32, reason, message string) func(*corev1.PodStatus) {
	return func(s *corev1.PodStatus) {
		s.Phase = corev1.PodFailed
		if code == 0 && reason == "Completed" {
			s.Phase = corev1.PodSucceeded
		}
		s.ContainerStatuses = []corev1.ContainerStatus{{
			Name:  ContainerName,
			State: corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{ExitCode: code, Reason: reason, Message: message}},
		}}
	}
}

func waiting(reason, message string, started time.Time) func(*corev1.PodStatus) {
	return func(s *corev1.PodStatus) {
		s.Phase = corev1.PodPending
		s.StartTime = &metav1.Time{Time: started}
		s.Conditions = []corev1.PodCondition{{Type: corev1.PodScheduled, Status: corev1.ConditionTrue}}
		s.ContainerStatuses = []corev1.ContainerStatus{{
			Name:  ContainerName,
			Image: "docker.io/library/debian:12-slim",
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: reason, Message: message}},
		}}
	}
}
