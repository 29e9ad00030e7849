package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	clientfeatures "k8s.io/client-go/features"
	clientfeaturestesting "k8s.io/client-go/features/testing"
	"k8s.io/client-go/rest"

	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/test/kubeapi"
)

// These tests check the production transport, restAPI, against an HTTP
// server that answers as a real API server does: test/kubeapi, the
// project's Kubernetes API stand-in (the same paths, Status bodies for
// refusals, newline-delimited JSON watch events with the streaming initial
// list of client-go's WatchListClient feature, plain-text logs, and the
// real Pod Security evaluator at admission). Its kubelet is off here: the
// tests move pods through their phases themselves. The fake clientset the
// other tests use never goes through HTTP, so only these tests would
// catch a wrong path, a lost query parameter or an error that no longer
// maps to its reason.

// A raw kube-apiserver refusal the stand-in has no knob for: the
// authorizer's answer to a list without the Role's "list pods".
const statusListForbidden = `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",` +
	`"message":"pods is forbidden: User \"system:serviceaccount:reana:reana-site\" cannot list resource \"pods\" in API group \"\" in the namespace \"reana\"",` +
	`"reason":"Forbidden","details":{"kind":"pods"},"code":403}`

// newAPIServer is a stand-in API server for one test, without kubelet.
func newAPIServer(t *testing.T) *kubeapi.Server {
	t.Helper()
	return kubeapi.Start(t, kubeapi.WithoutKubelet())
}

// newAPI is a production client of the stand-in.
func newAPI(t *testing.T, s *kubeapi.Server) *restAPI {
	t.Helper()
	cfg := s.RESTConfig()
	cfg.UserAgent = "reana-site"
	a, err := newRESTAPI(cfg)
	require.NoError(t, err)
	return a
}

// setStatus sets a pod's status as the kubelet would.
func setStatus(t *testing.T, s *kubeapi.Server, name string, mutate func(*corev1.PodStatus)) {
	t.Helper()
	require.NoError(t, s.SetPodStatus(name, mutate))
}

// createTypes lists the Content-Type of each pod create so far.
func createTypes(s *kubeapi.Server) []string {
	var types []string
	for _, r := range s.Requests() {
		if r.Method == http.MethodPost {
			types = append(types, r.Header.Get("Content-Type"))
		}
	}
	return types
}

// TestRESTAPI calls each method of the production client against the
// server and checks the requests and what comes back, errors included.
func TestRESTAPI(t *testing.T) {
	ctx := context.Background()
	s := newAPIServer(t)
	api := newAPI(t, s)
	spec := testSpec()
	pod, err := BuildPod(spec, testConfig())
	require.NoError(t, err)
	name := pod.Name

	last := func() kubeapi.Request { r := s.Requests(); return r[len(r)-1] }

	// A dry-run create: protobuf body, options as query parameters.
	got, err := api.CreatePod(ctx, "reana", pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldManager: ManagedBy})
	require.NoError(t, err)
	assert.Equal(t, name, got.Name)
	assert.Equal(t, int64(4101), *got.Spec.SecurityContext.RunAsUser, "the pod went there and back whole")
	assert.Equal(t, []int64{5001, 5002}, got.Spec.SecurityContext.SupplementalGroups)
	require.NotNil(t, got.Spec.SecurityContext.SupplementalGroupsPolicy, "the stand-in, like an API server of 1.33 or later, keeps the field")
	assert.Equal(t, corev1.SupplementalGroupsPolicyStrict, *got.Spec.SecurityContext.SupplementalGroupsPolicy)
	r := last()
	assert.Equal(t, "/api/v1/namespaces/reana/pods", r.URL.Path)
	assert.Equal(t, "All", r.URL.Query().Get("dryRun"))
	assert.Equal(t, ManagedBy, r.URL.Query().Get("fieldManager"))
	assert.Equal(t, "reana-site", r.Header.Get("User-Agent"))
	assert.Equal(t, []string{"application/vnd.kubernetes.protobuf"}, createTypes(s), "protobuf, as the clientset sends")
	_, stored := s.Pod(name)
	assert.False(t, stored, "a dry-run stores nothing")

	// A watch opened before the pod exists sees it come and change.
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	w, err := api.WatchPods(wctx, "reana", metav1.ListOptions{LabelSelector: ManagedSelector})
	require.NoError(t, err)
	defer w.Stop()
	r = last()
	assert.Equal(t, "true", r.URL.Query().Get("watch"))
	assert.Equal(t, ManagedSelector, r.URL.Query().Get("labelSelector"))

	_, err = api.CreatePod(ctx, "reana", pod, metav1.CreateOptions{FieldManager: ManagedBy})
	require.NoError(t, err)
	setStatus(t, s, name, func(st *corev1.PodStatus) { st.Phase = corev1.PodRunning })
	for _, want := range []struct {
		typ   watch.EventType
		phase corev1.PodPhase
	}{{watch.Added, corev1.PodPending}, {watch.Modified, corev1.PodRunning}} {
		select {
		case e := <-w.ResultChan():
			require.Equal(t, want.typ, e.Type, "%+v", e.Object)
			p, ok := e.Object.(*corev1.Pod)
			require.True(t, ok, "%T", e.Object)
			assert.Equal(t, name, p.Name)
			assert.Equal(t, want.phase, p.Status.Phase)
		case <-time.After(5 * time.Second):
			t.Fatalf("no %s event", want.typ)
		}
	}

	// 409 AlreadyExists, as Submit expects it.
	_, err = api.CreatePod(ctx, "reana", pod, metav1.CreateOptions{FieldManager: ManagedBy})
	var se *apierrors.StatusError
	require.True(t, errors.As(err, &se), "%T %v", err, err)
	assert.True(t, apierrors.IsAlreadyExists(err), "%v", err)

	p, err := api.GetPod(ctx, "reana", name)
	require.NoError(t, err)
	assert.Equal(t, corev1.PodRunning, p.Status.Phase)
	assert.Equal(t, "/api/v1/namespaces/reana/pods/"+name, last().URL.Path)

	list, err := api.ListPods(ctx, "reana", metav1.ListOptions{LabelSelector: ManagedSelector, Limit: 1})
	require.NoError(t, err)
	require.Len(t, list.Items, 1)
	assert.Equal(t, "1", last().URL.Query().Get("limit"))
	list, err = api.ListPods(ctx, "reana", metav1.ListOptions{LabelSelector: LabelUser + "=bob"})
	require.NoError(t, err)
	assert.Empty(t, list.Items)

	require.NoError(t, s.SetLogs(name, "hello\n"))
	logs, err := api.PodLogs(ctx, "reana", name, &corev1.PodLogOptions{Container: ContainerName})
	require.NoError(t, err)
	text, err := io.ReadAll(logs)
	require.NoError(t, err)
	require.NoError(t, logs.Close())
	assert.Equal(t, "hello\n", string(text))
	assert.Equal(t, "/api/v1/namespaces/reana/pods/"+name+"/log", last().URL.Path)

	s.AddEvent(corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e1", Namespace: "reana"}, InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: name},
		Type: corev1.EventTypeWarning, Reason: "FailedMount", Message: "mount failed"})
	s.AddEvent(corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: "e2", Namespace: "reana"}, InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "other"},
		Type: corev1.EventTypeWarning, Reason: "Other"})
	evs, err := api.ListEvents(ctx, "reana", metav1.ListOptions{FieldSelector: "involvedObject.kind=Pod,involvedObject.name=" + name})
	require.NoError(t, err)
	require.Len(t, evs.Items, 1)
	assert.Equal(t, "FailedMount", evs.Items[0].Reason)
	assert.Equal(t, "/api/v1/namespaces/reana/events", last().URL.Path)

	pvc, err := api.GetClaim(ctx, "reana", "reana-workspaces")
	require.NoError(t, err)
	assert.Equal(t, corev1.ClaimBound, pvc.Status.Phase)
	_, err = api.GetClaim(ctx, "reana", "nope")
	assert.True(t, apierrors.IsNotFound(err), "%v", err)

	require.NoError(t, api.DeletePod(ctx, "reana", name))
	assert.Equal(t, http.MethodDelete, last().Method)
	assert.Equal(t, "/api/v1/namespaces/reana/pods/"+name, last().URL.Path)
	select {
	case e := <-w.ResultChan():
		assert.Equal(t, watch.Deleted, e.Type)
	case <-time.After(5 * time.Second):
		t.Fatal("no DELETED event")
	}

	// 404 NotFound, for each kind of call that the backend checks.
	_, err = api.GetPod(ctx, "reana", name)
	assert.True(t, apierrors.IsNotFound(err), "%v", err)
	assert.True(t, apierrors.IsNotFound(api.DeletePod(ctx, "reana", name)))
	_, err = api.PodLogs(ctx, "reana", name, &corev1.PodLogOptions{Container: ContainerName})
	assert.True(t, apierrors.IsNotFound(err), "%v", err)

	// The kubelet's answer for a container that never started: a new pod
	// of the same name, scheduled, its container being created.
	_, err = api.CreatePod(ctx, "reana", pod, metav1.CreateOptions{FieldManager: ManagedBy})
	require.NoError(t, err)
	setStatus(t, s, name, waiting("ContainerCreating", "", time.Now()))
	_, err = api.PodLogs(ctx, "reana", name, &corev1.PodLogOptions{Container: ContainerName})
	assert.True(t, apierrors.IsBadRequest(err), "%v", err)
	assert.True(t, neverStarted(err), "%v", err)
	assert.ErrorContains(t, err, `container "step" in pod "`+name+`" is waiting to start: ContainerCreating`)
	require.NoError(t, api.DeletePod(ctx, "reana", name))

	// 403 from Pod Security admission, the real evaluator's, for a pod
	// that a namespace enforcing "restricted" refuses.
	bad := pod.DeepCopy()
	bad.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil
	_, err = api.CreatePod(ctx, "reana", bad, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	require.True(t, errors.As(err, &se), "%T %v", err, err)
	assert.True(t, apierrors.IsForbidden(err))
	assert.Contains(t, err.Error(), `pods "`+name+`" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "step" must set securityContext.allowPrivilegeEscalation=false)`)
	assert.Equal(t, int32(http.StatusForbidden), se.ErrStatus.Code)
	assert.Equal(t, name, se.ErrStatus.Details.Name)
}

// TestBackendOverREST runs a backend on the production client: Start
// with its informer, preflight, Submit, Status from the watch, Logs,
// Cancel, with the streaming initial list (client-go's default) and with
// the list-then-watch an older API server gets.
func TestBackendOverREST(t *testing.T) {
	for _, watchList := range []bool{true, false} {
		t.Run(fmt.Sprintf("watch-list=%v", watchList), func(t *testing.T) {
			clientfeaturestesting.SetFeatureDuringTest(t, clientfeatures.WatchListClient, watchList)
			ctx := context.Background()
			s := newAPIServer(t)
			b, err := New(testConfig(), newAPI(t, s), quiet())
			require.NoError(t, err)
			clk := &clock{t: time.Now()}
			b.now = clk.Now
			bctx, cancel := context.WithCancel(ctx)
			t.Cleanup(cancel)
			require.NoError(t, b.Start(bctx))
			require.NoError(t, b.Preflight())

			j, err := b.Submit(ctx, testSpec())
			require.NoError(t, err)
			job := batch.Job{Spec: testSpec(), Handle: j}
			p, ok := s.Pod(j.ID)
			require.True(t, ok)
			assert.Equal(t, int64(4101), *p.Spec.SecurityContext.RunAsUser)
			assert.Len(t, s.Pods(), 1, "the preflight's dry-run stored nothing")

			status := func() batch.Status {
				out, err := b.Status(ctx, []batch.Job{job})
				require.NoError(t, err)
				return out[job.Spec.JobID]
			}
			eventually := func(want batch.State) batch.Status {
				var st batch.Status
				require.Eventually(t, func() bool { st = status(); return st.State == want }, 5*time.Second, 5*time.Millisecond,
					"never %s; last %+v", want, st)
				return st
			}
			require.Eventually(t, func() bool { _, err := b.pods.Pods("reana").Get(j.ID); return err == nil }, 5*time.Second, 5*time.Millisecond,
				"the informer never saw the pod")
			cached, err := b.pods.Pods("reana").Get(j.ID)
			require.NoError(t, err)
			assert.Nil(t, cached.ManagedFields, "the transform strips field management")
			assert.Equal(t, batch.Pending, status().State)

			setStatus(t, s, j.ID, func(st *corev1.PodStatus) { st.Phase = corev1.PodRunning })
			eventually(batch.Running)

			again, err := b.Submit(ctx, testSpec())
			require.NoError(t, err, "AlreadyExists, then the existing pod")
			assert.Equal(t, j.ID, again.ID)

			require.NoError(t, s.SetLogs(j.ID, "hello\n"))
			out, err := b.Logs(ctx, job)
			require.NoError(t, err)
			assert.Equal(t, "hello\n", out)

			setStatus(t, s, j.ID, terminated(0, "Completed", ""))
			st := eventually(batch.Succeeded)
			require.NotNil(t, st.ExitCode)
			assert.Equal(t, 0, *st.ExitCode)

			require.NoError(t, b.Cancel(ctx, job))
			_, ok = s.Pod(j.ID)
			assert.False(t, ok, "cancel deleted the pod")
			require.Eventually(t, func() bool { _, ok := b.recall(b.gone, j.ID); return ok }, 5*time.Second, 5*time.Millisecond,
				"the informer saw the pod go")
			_, err = b.Logs(ctx, job)
			assert.ErrorContains(t, err, "no longer exists, so the step's output is gone")

			// How the informer read the pods: always this backend's
			// label, streamed or listed as the feature says.
			var watches, lists int
			for _, r := range s.Requests() {
				q := r.URL.Query()
				if r.Method != http.MethodGet || r.URL.Path != "/api/v1/namespaces/reana/pods" {
					continue
				}
				assert.Equal(t, ManagedSelector, q.Get("labelSelector"), "%s", r.URL)
				switch {
				case q.Get("watch") == "true":
					watches++
					assert.Equal(t, watchList, q.Get("sendInitialEvents") == "true", "%s", r.URL)
				case q.Get("limit") != "1": // not Start's probe
					lists++
				}
			}
			assert.Positive(t, watches)
			if watchList {
				assert.Zero(t, lists, "the initial list came in the watch")
			} else {
				assert.Positive(t, lists)
			}
		})
	}
}

// TestBackendOverRESTRefusals: the API server's refusals, as Status
// bodies over HTTP, reach the admin and the user worded as for the fake.
func TestBackendOverRESTRefusals(t *testing.T) {
	ctx := context.Background()
	t.Run("pod security", func(t *testing.T) {
		// Step pods pass "restricted", so the refusal is injected, worded
		// as the Pod Security plugin words it.
		s := newAPIServer(t)
		s.SetCreateRefusal(http.StatusForbidden, string(metav1.StatusReasonForbidden),
			`pods "{name}" is forbidden: violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "step" must set securityContext.allowPrivilegeEscalation=false)`)
		b, err := New(testConfig(), newAPI(t, s), quiet())
		require.NoError(t, err)
		bctx, cancel := context.WithCancel(ctx)
		t.Cleanup(cancel)
		require.NoError(t, b.Start(bctx))
		assert.ErrorContains(t, b.Preflight(), "preflight (a dry-run step pod running as uid 1000)")
		assert.ErrorContains(t, b.Preflight(), `violates PodSecurity "restricted:latest"`)
		_, err = b.Submit(ctx, testSpec())
		require.Error(t, err)
		assert.Contains(t, err.Error(), "site misconfiguration: the step pod reana-gendata-0b7c9a4e-5d7f-4a43-9d8e-2f0b8c1d2e3f was refused by Pod Security admission")
		assert.Contains(t, err.Error(), `violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false`)
	})
	t.Run("no right to list pods", func(t *testing.T) {
		s := newAPIServer(t)
		s.Intercept(func(r *http.Request) (int, string) {
			if r.Method == http.MethodGet && r.URL.Path == "/api/v1/namespaces/reana/pods" {
				return http.StatusForbidden, statusListForbidden
			}
			return 0, ""
		})
		b, err := New(testConfig(), newAPI(t, s), quiet())
		require.NoError(t, err)
		bctx, cancel := context.WithCancel(ctx)
		t.Cleanup(cancel)
		err = b.Start(bctx)
		require.Error(t, err)
		assert.Contains(t, err.Error(), `the daemon's identity "system:serviceaccount:reana:reana-site" may not list pods in namespace reana`)
		assert.False(t, errors.Is(err, batch.ErrUnavailable))
	})
	t.Run("API server down", func(t *testing.T) {
		srv := httptest.NewServer(http.NotFoundHandler())
		srv.Close()
		api, err := newRESTAPI(&rest.Config{Host: srv.URL})
		require.NoError(t, err)
		b, err := New(testConfig(), api, quiet())
		require.NoError(t, err)
		_, err = b.Submit(ctx, testSpec())
		assert.ErrorIs(t, err, batch.ErrUnavailable)
		assert.ErrorContains(t, err, "connection refused")
	})
}

// TestPreflightAndJanitorCallsAreBounded: an API server that accepts a
// request and never answers holds the preflight and the janitor for
// RequestTimeout at most, and the preflight reports it as an outage.
func TestPreflightAndJanitorCallsAreBounded(t *testing.T) {
	ctx := context.Background()
	s := newAPIServer(t)
	var hang atomic.Bool
	s.Intercept(func(r *http.Request) (int, string) {
		if !hang.Load() || r.Method == http.MethodGet && r.URL.Query().Get("watch") == "true" {
			return 0, ""
		}
		if r.Method == http.MethodPost || r.Method == http.MethodDelete || strings.Contains(r.URL.Path, "/persistentvolumeclaims/") {
			// With the body read, the server notices the client going
			// away (HTTP/1.1 watches the connection only then).
			_, _ = io.Copy(io.Discard, r.Body)
			<-r.Context().Done()
			return http.StatusGatewayTimeout, ""
		}
		return 0, ""
	})
	cfg := testConfig()
	cfg.RequestTimeout, cfg.PodRetention = 200*time.Millisecond, time.Hour
	b, err := New(cfg, newAPI(t, s), quiet())
	require.NoError(t, err)
	clk := &clock{t: time.Now()}
	b.now = clk.Now
	bctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	require.NoError(t, b.Start(bctx))
	require.NoError(t, b.Preflight())

	j, err := b.Submit(ctx, testSpec())
	require.NoError(t, err)
	setStatus(t, s, j.ID, terminated(0, "Completed", ""))
	require.Eventually(t, func() bool {
		p, err := b.pods.Pods("reana").Get(j.ID)
		return err == nil && p.Status.Phase == corev1.PodSucceeded
	}, 5*time.Second, 5*time.Millisecond)

	hang.Store(true)
	start := time.Now()
	err = b.RunPreflight(ctx)
	assert.Less(t, time.Since(start), 5*time.Second, "the preflight waited for a hung request")
	require.Error(t, err)
	assert.ErrorIs(t, err, batch.ErrUnavailable, "a request that timed out is an outage")
	assert.ErrorContains(t, err, "workspace volume claim", "the claim's read was bounded too")

	clk.Add(2 * time.Hour)
	start = time.Now()
	b.collect(ctx)
	assert.Less(t, time.Since(start), 5*time.Second, "the janitor waited for a hung delete")
	_, still := s.Pod(j.ID)
	assert.True(t, still, "the hung delete did not happen")

	hang.Store(false)
	b.collect(ctx)
	_, still = s.Pod(j.ID)
	assert.False(t, still, "the next round deletes it")
}
