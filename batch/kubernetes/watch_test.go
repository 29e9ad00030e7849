package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/reana-site/reana-site/batch"
)

// flakyCluster is a fake cluster whose pod lists and watches fail with
// the error set by fail, and whose open watches break can end, as the API
// server going away or refusing the daemon's token does.
type flakyCluster struct {
	*fake.Clientset
	err     atomic.Pointer[error]
	mu      sync.Mutex
	watches []watch.Interface
}

func newFlakyCluster() *flakyCluster {
	f := &flakyCluster{Clientset: newFakeClient()}
	f.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		if e := f.err.Load(); e != nil {
			return true, nil, *e
		}
		return false, nil, nil
	})
	f.PrependWatchReactor("pods", func(a k8stesting.Action) (bool, watch.Interface, error) {
		if e := f.err.Load(); e != nil {
			return true, nil, *e
		}
		w, err := f.Tracker().Watch(corev1.SchemeGroupVersion.WithResource("pods"), a.GetNamespace())
		if err == nil {
			f.mu.Lock()
			f.watches = append(f.watches, w)
			f.mu.Unlock()
		}
		return true, w, err
	})
	return f
}

// fail makes every list and watch fail with err (nil: work again) and
// breaks the open watches.
func (f *flakyCluster) fail(err error) {
	if err == nil {
		f.err.Store(nil)
		return
	}
	f.err.Store(&err)
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, w := range f.watches {
		w.Stop()
	}
	f.watches = nil
}

// TestWatchOutage: when the informer cannot list or watch the pods for
// longer than WatchErrorGrace, Status reports the backend unavailable,
// naming the error, and the preflight says so too; within the grace the
// cache answers; once a list or watch works again, so does Status.
func TestWatchOutage(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want []string
	}{
		{name: "API server down", err: errRefused, want: []string{"connection refused", "the API server cannot be reached or fails"}},
		{name: "token expired", err: apierrors.NewUnauthorized("Unauthorized"), want: []string{
			"Unauthorized", "a service-account token in the kubeconfig expires, and the daemon reads the kubeconfig only when it starts"}},
		{name: "Role removed", err: apierrors.NewForbidden(podsResource, "", errors.New(
			`User "system:serviceaccount:reana:reana-site" cannot watch resource "pods" in API group "" in the namespace "reana"`)),
			want: []string{"cannot watch resource", `check the Role "reana-site"`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFlakyCluster()
			h := newHarness(t, f.Clientset, nil)
			j := h.submit(testSpec())
			h.eventually(j, batch.Pending)
			require.NoError(t, h.b.Preflight())

			f.fail(tt.err)
			require.Eventually(t, func() bool {
				h.b.mu.Lock()
				defer h.b.mu.Unlock()
				return h.b.watchErr != nil
			}, 10*time.Second, 5*time.Millisecond, "the informer's failure was never recorded")
			assert.Equal(t, batch.Pending, h.status(j).State, "within the grace the cache answers")
			assert.NoError(t, h.b.Preflight())

			h.clock.Add(DefaultWatchErrorGrace + time.Second)
			out, err := h.b.Status(ctx, []batch.Job{j})
			require.ErrorIs(t, err, batch.ErrUnavailable)
			assert.Empty(t, out, "a stale cache judges nothing")
			for _, w := range append([]string{"the pods of namespace reana cannot be listed or watched since", "running steps go on"}, tt.want...) {
				assert.ErrorContains(t, err, w)
			}
			pre := h.b.Preflight()
			assert.ErrorIs(t, pre, batch.ErrUnavailable)
			assert.ErrorContains(t, pre, tt.want[0])

			f.fail(nil)
			// A watch merely accepted does not end the outage (after an
			// API server restart it is accepted and ends at once): a list
			// must succeed, or the watch deliver an event, as a real
			// server's bookmark about once a minute would.
			// The fake's watch replays nothing, so the change is made
			// until a watch sees one.
			n := 0
			require.Eventually(t, func() bool {
				n++
				h.kubelet(j.Handle.ID, func(s *corev1.PodStatus) { s.Message = fmt.Sprint("seen ", n) })
				_, err := h.b.Status(ctx, []batch.Job{j})
				return err == nil
			}, 20*time.Second, 50*time.Millisecond, "the outage never ended")
			assert.NoError(t, h.b.Preflight())
			assert.Equal(t, batch.Pending, h.status(j).State)
		})
	}
}

// TestWatchHealthSignal: how requests and the reflector's error handler
// move the recorded health.
func TestWatchHealthSignal(t *testing.T) {
	clk := &clock{t: time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)}
	b, err := New(testConfig(), ClientsetAPI(newFakeClient()), quiet())
	require.NoError(t, err)
	b.now = clk.Now
	ctx := context.Background()

	b.noteWatch(ctx, errRefused)
	clk.Add(30 * time.Second)
	b.noteWatch(ctx, errRefused)
	assert.NoError(t, b.watchOutage(), "within the grace")
	clk.Add(31 * time.Second)
	assert.ErrorIs(t, b.watchOutage(), batch.ErrUnavailable, "the outage counts from the first failure")

	b.noteWatch(ctx, nil)
	assert.NoError(t, b.watchOutage(), "a list or watch that works ends it")

	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	b.noteWatch(cancelled, errRefused)
	clk.Add(time.Hour)
	assert.NoError(t, b.watchOutage(), "a request the informer cancelled tells nothing")
}

// TestHealthWatch: which watch streams end an outage. After an API server
// restart the informer's watch from an expired resourceVersion is accepted
// and ends at once or with a 410; the cache is stale until a relist.
func TestHealthWatch(t *testing.T) {
	pod := func(annotations map[string]string) *corev1.Pod {
		return &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", ResourceVersion: "7", Annotations: annotations}}
	}
	expired := &apierrors.NewResourceExpired("too old resource version: 5 (7)").ErrStatus
	tests := []struct {
		name      string
		streaming bool
		events    []watch.Event
		ends      bool
	}{
		{name: "accepted, then closed", events: nil},
		{name: "accepted, then 410", events: []watch.Event{{Type: watch.Error, Object: expired}}},
		{name: "an event from a valid resourceVersion", events: []watch.Event{{Type: watch.Modified, Object: pod(nil)}}, ends: true},
		{name: "a periodic bookmark", events: []watch.Event{{Type: watch.Bookmark, Object: pod(nil)}}, ends: true},
		{name: "streaming list cut before its end", streaming: true, events: []watch.Event{{Type: watch.Added, Object: pod(nil)}}},
		{name: "streaming list to its end", streaming: true, events: []watch.Event{
			{Type: watch.Added, Object: pod(nil)},
			{Type: watch.Bookmark, Object: pod(map[string]string{metav1.InitialEventsAnnotationKey: "true"})}}, ends: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			clk := &clock{t: time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)}
			b, err := New(testConfig(), ClientsetAPI(newFakeClient()), quiet())
			require.NoError(t, err)
			b.now = clk.Now
			b.noteWatch(ctx, errRefused)
			clk.Add(DefaultWatchErrorGrace + time.Second)

			inner := watch.NewFake()
			w := newHealthWatch(ctx, inner, tt.streaming, b.noteWatch)
			go func() {
				for _, ev := range tt.events {
					inner.Action(ev.Type, ev.Object)
				}
				inner.Stop()
			}()
			var got []watch.Event
			for ev := range w.ResultChan() {
				got = append(got, ev)
			}
			assert.Equal(t, tt.events, got, "every event is passed on")
			if tt.ends {
				assert.NoError(t, b.watchOutage())
			} else {
				assert.ErrorIs(t, b.watchOutage(), batch.ErrUnavailable, "the outage goes on until a list")
			}
		})
	}
}
