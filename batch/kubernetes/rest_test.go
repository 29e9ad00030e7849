package kubernetes

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	clientfeatures "k8s.io/client-go/features"
	clientfeaturestesting "k8s.io/client-go/features/testing"
	"k8s.io/client-go/rest"

	"github.com/reana-site/reana-site/batch"
)

// These tests check the production transport, restAPI, against an HTTP
// server that answers as a real API server does: the same paths, Status
// bodies for refusals, newline-delimited JSON watch events (with the
// streaming initial list of client-go's WatchListClient feature), and
// plain-text logs. The fake clientset the other tests use never goes
// through HTTP, so only these tests would catch a wrong path, a lost
// query parameter or an error that no longer maps to its reason.

// Status bodies as kube-apiserver words them; %[1]s is the pod's name.
const (
	statusPodSecurity = `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",` +
		`"message":"pods \"%[1]s\" is forbidden: violates PodSecurity \"restricted:latest\": allowPrivilegeEscalation != false (container \"step\" must set securityContext.allowPrivilegeEscalation=false)",` +
		`"reason":"Forbidden","details":{"name":"%[1]s","kind":"pods"},"code":403}`
	statusNotFound = `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",` +
		`"message":"pods \"%[1]s\" not found","reason":"NotFound","details":{"name":"%[1]s","kind":"pods"},"code":404}`
	statusAlreadyExists = `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",` +
		`"message":"pods \"%[1]s\" already exists","reason":"AlreadyExists","details":{"name":"%[1]s","kind":"pods"},"code":409}`
	statusWaiting = `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",` +
		`"message":"container \"step\" in pod \"%[1]s\" is waiting to start: ContainerCreating","reason":"BadRequest","code":400}`
	statusListForbidden = `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",` +
		`"message":"pods is forbidden: User \"system:serviceaccount:reana:reana-site\" cannot list resource \"pods\" in API group \"\" in the namespace \"reana\"",` +
		`"reason":"Forbidden","details":{"kind":"pods"},"code":403}`
)

// apiServer is a small core/v1 API server for one test.
type apiServer struct {
	t      *testing.T
	url    string
	decode runtime.Decoder
	done   chan struct{}

	mu       sync.Mutex
	rv       int
	pods     map[string]*corev1.Pod // by namespace/name
	claims   map[string]*corev1.PersistentVolumeClaim
	events   []corev1.Event
	watchers map[chan watchEvent]labels.Selector
	logs     string
	requests []*http.Request
	bodyType []string // Content-Type of each pod create
	// override answers a request instead of the server when it returns
	// a code; body is then a Status.
	override func(r *http.Request) (code int, body string)
}

type watchEvent struct {
	Type   watch.EventType `json:"type"`
	Object *corev1.Pod     `json:"object"`
}

func newAPIServer(t *testing.T) *apiServer {
	t.Helper()
	scheme := runtime.NewScheme()
	require.NoError(t, corev1.AddToScheme(scheme))
	s := &apiServer{
		t:        t,
		decode:   serializer.NewCodecFactory(scheme).UniversalDeserializer(),
		done:     make(chan struct{}),
		pods:     map[string]*corev1.Pod{},
		claims:   map[string]*corev1.PersistentVolumeClaim{"reana/reana-workspaces": boundClaim("reana-workspaces", corev1.ClaimBound)},
		watchers: map[chan watchEvent]labels.Selector{},
		logs:     "hello\n",
	}
	srv := httptest.NewServer(s)
	s.url = srv.URL
	t.Cleanup(func() {
		close(s.done) // ends the watches, which Close would wait for
		srv.Close()
	})
	return s
}

// api is a production client of the server.
func (s *apiServer) api(t *testing.T) *restAPI {
	t.Helper()
	a, err := newRESTAPI(&rest.Config{Host: s.url, UserAgent: "reana-site"})
	require.NoError(t, err)
	return a
}

// seen lists the requests so far.
func (s *apiServer) seen() []*http.Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*http.Request(nil), s.requests...)
}

func typed(p *corev1.Pod) *corev1.Pod {
	p = p.DeepCopy()
	p.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}
	return p
}

func (s *apiServer) reply(w http.ResponseWriter, code int, obj any) {
	data, err := json.Marshal(obj)
	if err != nil {
		s.t.Errorf("encode %T: %v", obj, err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(data)
}

// bad fails the test from a handler (where require may not be used) and
// answers 500.
func (s *apiServer) bad(w http.ResponseWriter, format string, args ...any) {
	s.t.Errorf(format, args...)
	s.status(w, http.StatusInternalServerError, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"InternalError","code":500}`)
}

func (s *apiServer) status(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
}

// broadcast sends an event to the watches whose selector takes the pod;
// the caller holds s.mu.
func (s *apiServer) broadcast(typ watch.EventType, pod *corev1.Pod) {
	for ch, sel := range s.watchers {
		if sel.Matches(labels.Set(pod.Labels)) {
			ch <- watchEvent{Type: typ, Object: typed(pod)}
		}
	}
}

func (s *apiServer) nextRV() string {
	s.rv++
	return strconv.Itoa(s.rv)
}

// kubelet sets a stored pod's status, as the kubelet would.
func (s *apiServer) kubelet(name string, mutate func(*corev1.PodStatus)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pods["reana/"+name]
	require.True(s.t, ok, "no pod %s", name)
	mutate(&p.Status)
	p.ResourceVersion = s.nextRV()
	s.broadcast(watch.Modified, p)
}

func (s *apiServer) stored(name string) (*corev1.Pod, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	p, ok := s.pods["reana/"+name]
	if ok {
		p = p.DeepCopy()
	}
	return p, ok
}

func (s *apiServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, r)
	override := s.override
	s.mu.Unlock()
	if override != nil {
		if code, body := override(r); code != 0 {
			s.status(w, code, body)
			return
		}
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/api/v1/namespaces/")
	parts := strings.Split(rest, "/")
	if !ok || len(parts) < 2 {
		s.status(w, http.StatusNotFound, `{"kind":"Status","apiVersion":"v1","status":"Failure","reason":"NotFound","code":404}`)
		return
	}
	ns, resource := parts[0], parts[1]
	var name, sub string
	if len(parts) > 2 {
		name = parts[2]
	}
	if len(parts) > 3 {
		sub = parts[3]
	}
	q := r.URL.Query()
	key := ns + "/" + name
	switch {
	case resource == "persistentvolumeclaims" && r.Method == http.MethodGet && name != "":
		s.mu.Lock()
		pvc, ok := s.claims[key]
		s.mu.Unlock()
		if !ok {
			s.status(w, http.StatusNotFound, fmt.Sprintf(`{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",`+
				`"message":"persistentvolumeclaims \"%[1]s\" not found","reason":"NotFound","details":{"name":"%[1]s","kind":"persistentvolumeclaims"},"code":404}`, name))
			return
		}
		pvc = pvc.DeepCopy()
		pvc.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"}
		s.reply(w, http.StatusOK, pvc)
	case resource == "pods" && r.Method == http.MethodGet && name == "" && q.Get("watch") == "true":
		s.watch(w, r, ns)
	case resource == "pods" && r.Method == http.MethodGet && name == "":
		sel, err := labels.Parse(q.Get("labelSelector"))
		if err != nil {
			s.bad(w, "label selector: %v", err)
			return
		}
		s.mu.Lock()
		list := &corev1.PodList{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "PodList"}, ListMeta: metav1.ListMeta{ResourceVersion: strconv.Itoa(s.rv)}}
		for _, p := range s.pods {
			if p.Namespace == ns && sel.Matches(labels.Set(p.Labels)) {
				list.Items = append(list.Items, *p.DeepCopy())
			}
		}
		s.mu.Unlock()
		s.reply(w, http.StatusOK, list)
	case resource == "pods" && r.Method == http.MethodPost && name == "":
		s.create(w, r, ns)
	case resource == "pods" && r.Method == http.MethodGet && sub == "log":
		s.mu.Lock()
		_, ok := s.pods[key]
		logs := s.logs
		s.mu.Unlock()
		switch {
		case !ok:
			s.status(w, http.StatusNotFound, fmt.Sprintf(statusNotFound, name))
		case q.Get("container") != ContainerName:
			s.status(w, http.StatusBadRequest, `{"kind":"Status","apiVersion":"v1","status":"Failure","message":"a container name must be specified","reason":"BadRequest","code":400}`)
		default:
			w.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(w, logs)
		}
	case resource == "pods" && r.Method == http.MethodGet && sub == "":
		s.mu.Lock()
		p, ok := s.pods[key]
		if ok {
			p = typed(p)
		}
		s.mu.Unlock()
		if !ok {
			s.status(w, http.StatusNotFound, fmt.Sprintf(statusNotFound, name))
			return
		}
		s.reply(w, http.StatusOK, p)
	case resource == "pods" && r.Method == http.MethodDelete && sub == "":
		s.mu.Lock()
		p, ok := s.pods[key]
		if ok {
			delete(s.pods, key)
			p.ResourceVersion = s.nextRV()
			s.broadcast(watch.Deleted, p)
			p = typed(p)
		}
		s.mu.Unlock()
		if !ok {
			s.status(w, http.StatusNotFound, fmt.Sprintf(statusNotFound, name))
			return
		}
		s.reply(w, http.StatusOK, p)
	case resource == "events" && r.Method == http.MethodGet && name == "":
		sel, err := fields.ParseSelector(q.Get("fieldSelector"))
		if err != nil {
			s.bad(w, "field selector: %v", err)
			return
		}
		s.mu.Lock()
		list := &corev1.EventList{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "EventList"}}
		for _, e := range s.events {
			if e.Namespace == ns && sel.Matches(fields.Set{"involvedObject.kind": e.InvolvedObject.Kind, "involvedObject.name": e.InvolvedObject.Name}) {
				list.Items = append(list.Items, e)
			}
		}
		s.mu.Unlock()
		s.reply(w, http.StatusOK, list)
	default:
		s.bad(w, "unexpected request %s %s", r.Method, r.URL)
	}
}

func (s *apiServer) create(w http.ResponseWriter, r *http.Request, ns string) {
	body, err := io.ReadAll(r.Body)
	if err != nil {
		s.bad(w, "read the body: %v", err)
		return
	}
	obj, _, err := s.decode.Decode(body, nil, nil)
	if err != nil {
		s.bad(w, "decode the pod sent as %s: %v", r.Header.Get("Content-Type"), err)
		return
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		s.bad(w, "created a %T", obj)
		return
	}
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.bodyType = append(s.bodyType, r.Header.Get("Content-Type"))
	key := ns + "/" + pod.Name
	if _, ok := s.pods[key]; ok {
		s.status(w, http.StatusConflict, fmt.Sprintf(statusAlreadyExists, pod.Name))
		return
	}
	pod.Namespace = ns
	pod.UID = types.UID("uid-" + pod.Name)
	pod.CreationTimestamp = metav1.Now()
	pod.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: q.Get("fieldManager"), Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "v1"}}
	if q.Get("dryRun") == metav1.DryRunAll {
		s.reply(w, http.StatusCreated, typed(pod))
		return
	}
	pod.ResourceVersion = s.nextRV()
	s.pods[key] = pod
	s.broadcast(watch.Added, pod)
	s.reply(w, http.StatusCreated, typed(pod))
}

// watch streams events as kube-apiserver does: one JSON object a line,
// first the current pods and a bookmark closing the initial list when
// sendInitialEvents is set, then changes as they happen.
func (s *apiServer) watch(w http.ResponseWriter, r *http.Request, ns string) {
	q := r.URL.Query()
	sel, err := labels.Parse(q.Get("labelSelector"))
	if err != nil {
		s.bad(w, "label selector: %v", err)
		return
	}
	ch := make(chan watchEvent, 100)
	var initial []watchEvent
	s.mu.Lock()
	if q.Get("sendInitialEvents") == "true" {
		for _, p := range s.pods {
			if p.Namespace == ns && sel.Matches(labels.Set(p.Labels)) {
				initial = append(initial, watchEvent{Type: watch.Added, Object: typed(p)})
			}
		}
		initial = append(initial, watchEvent{Type: watch.Bookmark, Object: &corev1.Pod{
			TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{ResourceVersion: strconv.Itoa(s.rv),
				Annotations: map[string]string{metav1.InitialEventsAnnotationKey: "true"}},
		}})
	}
	s.watchers[ch] = sel
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.watchers, ch)
		s.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w) // one event a line
	flush := w.(http.Flusher).Flush
	for _, e := range initial {
		if enc.Encode(e) != nil {
			return
		}
	}
	flush()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		case e := <-ch:
			if enc.Encode(e) != nil {
				return
			}
			flush()
		}
	}
}

// TestRESTAPI calls each method of the production client against the
// server and checks the requests and what comes back, errors included.
func TestRESTAPI(t *testing.T) {
	ctx := context.Background()
	s := newAPIServer(t)
	api := s.api(t)
	spec := testSpec()
	pod, err := BuildPod(spec, testConfig())
	require.NoError(t, err)
	name := pod.Name

	last := func() *http.Request { r := s.seen(); return r[len(r)-1] }

	// A dry-run create: protobuf body, options as query parameters.
	got, err := api.CreatePod(ctx, "reana", pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldManager: ManagedBy})
	require.NoError(t, err)
	assert.Equal(t, name, got.Name)
	assert.Equal(t, int64(4101), *got.Spec.SecurityContext.RunAsUser, "the pod went there and back whole")
	assert.Equal(t, []int64{5001, 5002}, got.Spec.SecurityContext.SupplementalGroups)
	r := last()
	assert.Equal(t, "/api/v1/namespaces/reana/pods", r.URL.Path)
	assert.Equal(t, "All", r.URL.Query().Get("dryRun"))
	assert.Equal(t, ManagedBy, r.URL.Query().Get("fieldManager"))
	assert.Equal(t, "reana-site", r.Header.Get("User-Agent"))
	assert.Equal(t, []string{"application/vnd.kubernetes.protobuf"}, s.bodyType, "protobuf, as the clientset sends")
	_, stored := s.stored(name)
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
	s.kubelet(name, func(st *corev1.PodStatus) { st.Phase = corev1.PodRunning })
	for _, want := range []struct {
		typ   watch.EventType
		phase corev1.PodPhase
	}{{watch.Added, ""}, {watch.Modified, corev1.PodRunning}} {
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

	logs, err := api.PodLogs(ctx, "reana", name, &corev1.PodLogOptions{Container: ContainerName})
	require.NoError(t, err)
	text, err := io.ReadAll(logs)
	require.NoError(t, err)
	require.NoError(t, logs.Close())
	assert.Equal(t, "hello\n", string(text))
	assert.Equal(t, "/api/v1/namespaces/reana/pods/"+name+"/log", last().URL.Path)

	s.mu.Lock()
	s.events = []corev1.Event{
		{ObjectMeta: metav1.ObjectMeta{Name: "e1", Namespace: "reana"}, InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: name},
			Type: corev1.EventTypeWarning, Reason: "FailedMount", Message: "mount failed"},
		{ObjectMeta: metav1.ObjectMeta{Name: "e2", Namespace: "reana"}, InvolvedObject: corev1.ObjectReference{Kind: "Pod", Name: "other"},
			Type: corev1.EventTypeWarning, Reason: "Other"},
	}
	s.mu.Unlock()
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

	// The kubelet's answer for a container that never started.
	s.mu.Lock()
	s.override = func(r *http.Request) (int, string) {
		if strings.HasSuffix(r.URL.Path, "/log") {
			return http.StatusBadRequest, fmt.Sprintf(statusWaiting, name)
		}
		return 0, ""
	}
	s.mu.Unlock()
	_, err = api.PodLogs(ctx, "reana", name, &corev1.PodLogOptions{Container: ContainerName})
	assert.True(t, apierrors.IsBadRequest(err), "%v", err)
	assert.True(t, neverStarted(err), "%v", err)

	// 403 from Pod Security admission.
	s.mu.Lock()
	s.override = func(r *http.Request) (int, string) {
		if r.Method == http.MethodPost {
			return http.StatusForbidden, fmt.Sprintf(statusPodSecurity, name)
		}
		return 0, ""
	}
	s.mu.Unlock()
	_, err = api.CreatePod(ctx, "reana", pod, metav1.CreateOptions{})
	require.True(t, errors.As(err, &se), "%T %v", err, err)
	assert.True(t, apierrors.IsForbidden(err))
	assert.Contains(t, err.Error(), `pods "`+name+`" is forbidden: violates PodSecurity "restricted:latest"`)
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
			b, err := New(testConfig(), s.api(t), quiet())
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
			p, ok := s.stored(j.ID)
			require.True(t, ok)
			assert.Equal(t, int64(4101), *p.Spec.SecurityContext.RunAsUser)
			s.mu.Lock()
			assert.Len(t, s.pods, 1, "the preflight's dry-run stored nothing")
			s.mu.Unlock()

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

			s.kubelet(j.ID, func(st *corev1.PodStatus) { st.Phase = corev1.PodRunning })
			eventually(batch.Running)

			again, err := b.Submit(ctx, testSpec())
			require.NoError(t, err, "AlreadyExists, then the existing pod")
			assert.Equal(t, j.ID, again.ID)

			out, err := b.Logs(ctx, job)
			require.NoError(t, err)
			assert.Equal(t, "hello\n", out)

			s.kubelet(j.ID, terminated(0, "Completed", ""))
			st := eventually(batch.Succeeded)
			require.NotNil(t, st.ExitCode)
			assert.Equal(t, 0, *st.ExitCode)

			require.NoError(t, b.Cancel(ctx, job))
			_, ok = s.stored(j.ID)
			assert.False(t, ok, "cancel deleted the pod")
			require.Eventually(t, func() bool { _, ok := b.recall(b.gone, j.ID); return ok }, 5*time.Second, 5*time.Millisecond,
				"the informer saw the pod go")
			_, err = b.Logs(ctx, job)
			assert.ErrorContains(t, err, "no longer exists, so the step's output is gone")

			// How the informer read the pods: always this backend's
			// label, streamed or listed as the feature says.
			var watches, lists int
			for _, r := range s.seen() {
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
		s := newAPIServer(t)
		s.override = func(r *http.Request) (int, string) {
			if r.Method == http.MethodPost {
				return http.StatusForbidden, fmt.Sprintf(statusPodSecurity, "x")
			}
			return 0, ""
		}
		b, err := New(testConfig(), s.api(t), quiet())
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
		s.override = func(r *http.Request) (int, string) {
			if r.Method == http.MethodGet && r.URL.Path == "/api/v1/namespaces/reana/pods" {
				return http.StatusForbidden, statusListForbidden
			}
			return 0, ""
		}
		b, err := New(testConfig(), s.api(t), quiet())
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
