package kubeapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/client-go/rest"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
)

// Defaults of a stand-in started without options: the namespace, claim
// and service accounts of deploy/kubernetes, and a node name for
// spec.nodeName and events.
const (
	DefaultNamespace = "reana"
	DefaultClaim     = "reana-workspaces"
	NodeName         = "standin-node"
	// DaemonAccount is the service account the token authenticates as; it
	// names the user in RBAC refusals.
	DaemonAccount = "reana-site"
)

var (
	podsResource   = schema.GroupResource{Resource: "pods"}
	claimsResource = schema.GroupResource{Resource: "persistentvolumeclaims"}
	nsResource     = schema.GroupResource{Resource: "namespaces"}
)

// Option configures a stand-in at Start.
type Option func(*Server)

// WithNamespace makes ns the namespace that exists (and that the name-only
// helpers use); the default is DefaultNamespace.
func WithNamespace(ns string) Option { return func(s *Server) { s.namespace = ns } }

// WithClaim names the workspace claim of the namespace, Bound, and the
// directory of this host that its volume is (the NFS export as the host
// mounts it). The default is DefaultClaim with no directory, which the
// kubelet refuses to mount.
func WithClaim(name, root string) Option {
	return func(s *Server) { s.claimName, s.claimRoot = name, root }
}

// WithoutKubelet leaves created pods Pending until the test sets their
// status (SetPodStatus), as the unit tests of the transport do.
func WithoutKubelet() Option { return func(s *Server) { s.kubelet = false } }

// WithKubeletDelay sets how long each of the scheduler's and the kubelet's
// steps (scheduling, creating the container) takes; 100 ms by default.
func WithKubeletDelay(d time.Duration) Option { return func(s *Server) { s.delay = d } }

// WithStopGrace caps the grace period a deleted pod's process gets between
// SIGTERM and SIGKILL (terminationGracePeriodSeconds, 30 s on a cluster,
// would make every test of a stop slow); 2 s by default.
func WithStopGrace(d time.Duration) Option { return func(s *Server) { s.stopGrace = d } }

// WithPodSecurity sets the namespace's enforced Pod Security level
// (pod-security.kubernetes.io/enforce); restricted by default, privileged
// turns the check off.
func WithPodSecurity(level psaapi.Level) Option { return func(s *Server) { s.level = level } }

// Request is one request the stand-in received, for tests to check what
// the client sent.
type Request struct {
	Method string
	URL    *url.URL
	Header http.Header
}

// Creation is one pod create the stand-in answered.
type Creation struct {
	Namespace, Name string
	DryRun          bool
	// Code is the HTTP status of the answer: 201 when created (or, for a
	// dry-run, when it would have been).
	Code int
}

// Server is a running stand-in. Its methods are safe for concurrent use.
type Server struct {
	// URL is the API server's address, https://127.0.0.1:port. It serves
	// TLS because client-go's kubeconfig loader (clientcmd) reads a user's
	// credentials only for a TLS server: over plain HTTP the token would
	// silently not be sent.
	URL string
	// CAData is the PEM certificate a client trusts the server with.
	CAData []byte
	// Token is the bearer token every request must carry.
	Token string

	t         testing.TB
	srv       *httptest.Server
	decode    runtime.Decoder
	params    runtime.ParameterCodec
	evaluator policy.Evaluator
	done      chan struct{} // closed when the test ends: watches and kubelets stop
	kubelets  sync.WaitGroup

	namespace string
	claimName string
	claimRoot string
	kubelet   bool
	delay     time.Duration
	stopGrace time.Duration
	level     psaapi.Level

	mu        sync.Mutex
	closed    bool
	rv        int64
	compacted int64 // watches from before this resourceVersion get 410 Gone
	history   []change
	watchers  map[*watcher]struct{}
	pods      map[string]*podEntry // by namespace/name
	claims    map[string]*corev1.PersistentVolumeClaim
	secrets   map[string]*corev1.Secret // by namespace/name
	accounts  map[string]bool           // service accounts, by namespace/name
	events    []corev1.Event
	requests  []Request
	creations []Creation
	refusal   *metav1.Status
	intercept func(*http.Request) (int, string)
	held      map[string]bool
	wake      chan struct{} // closed and replaced when a hold or a claim changes
}

// Start starts a stand-in for the test; it stops when the test ends,
// killing whatever its kubelet still runs.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	scheme := runtime.NewScheme()
	if err := corev1.AddToScheme(scheme); err != nil {
		t.Fatalf("kubeapi: core/v1 scheme: %v", err)
	}
	ev, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	if err != nil {
		t.Fatalf("kubeapi: Pod Security evaluator: %v", err)
	}
	s := &Server{
		Token:     randomHex(16),
		t:         t,
		decode:    serializer.NewCodecFactory(scheme).UniversalDeserializer(),
		params:    runtime.NewParameterCodec(scheme),
		evaluator: ev,
		done:      make(chan struct{}),
		namespace: DefaultNamespace,
		claimName: DefaultClaim,
		kubelet:   true,
		delay:     100 * time.Millisecond,
		stopGrace: 2 * time.Second,
		level:     psaapi.LevelRestricted,
		// Resource versions are opaque to clients; starting well above
		// zero keeps "0" (which means "any") from ever being a real one.
		rv:       1000,
		watchers: map[*watcher]struct{}{},
		pods:     map[string]*podEntry{},
		claims:   map[string]*corev1.PersistentVolumeClaim{},
		secrets:  map[string]*corev1.Secret{},
		accounts: map[string]bool{},
		held:     map[string]bool{},
		wake:     make(chan struct{}),
	}
	for _, o := range opts {
		o(s)
	}
	s.compacted = s.rv
	s.claims[s.namespace+"/"+s.claimName] = s.newClaim(s.claimName, corev1.ClaimBound)
	// deploy/kubernetes/serviceaccount.yaml's accounts, and the one every
	// namespace has.
	for _, sa := range []string{"default", DaemonAccount, "reana-site-step"} {
		s.accounts[s.namespace+"/"+sa] = true
	}
	s.srv = httptest.NewTLSServer(s)
	s.URL = s.srv.URL
	s.CAData = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw})
	t.Cleanup(s.stop)
	return s
}

// stop ends the watches (which httptest's Close would wait for) and the
// kubelet's processes, then the server.
func (s *Server) stop() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	close(s.done)
	s.kubelets.Wait()
	s.srv.Close()
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// Namespace is the namespace that exists.
func (s *Server) Namespace() string { return s.namespace }

// Claim is the workspace claim's name and the host directory of its volume.
func (s *Server) Claim() (name, root string) { return s.claimName, s.claimRoot }

// User is who the token authenticates as, as RBAC names it.
func (s *Server) User() string {
	return "system:serviceaccount:" + s.namespace + ":" + DaemonAccount
}

// RESTConfig is a client configuration for the stand-in.
func (s *Server) RESTConfig() *rest.Config {
	return &rest.Config{Host: s.URL, BearerToken: s.Token, TLSClientConfig: rest.TLSClientConfig{CAData: s.CAData}}
}

// errorf fails the test from a handler or the kubelet, unless the test has
// ended (testing forbids logging then).
func (s *Server) errorf(format string, args ...any) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if !closed {
		s.t.Errorf("kubeapi: "+format, args...)
	}
}

// Requests lists the requests received so far, oldest first.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.requests)
}

// Creations lists the pod creates answered so far, dry-runs included.
func (s *Server) Creations() []Creation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.creations)
}

// Intercept makes f see every request first: when it returns a non-zero
// code, the request is answered with that code and body (a Status, as
// JSON) instead. It injects the faults that have no knob of their own;
// nil removes it.
func (s *Server) Intercept(f func(r *http.Request) (code int, body string)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.intercept = f
}

// SetCreateRefusal makes every pod create, dry-run or not, fail with a
// Status of that code, reason and message, as admission (SCC, quota,
// LimitRange, webhooks) or authorization (RBAC) refuse one. In message,
// {name} stands for the pod's name, {namespace} for its namespace and
// {uid} for its runAsUser. A zero code removes the refusal. The
// functions SCCRefusal, RBACRefusal and QuotaRefusal give the usual ones.
func (s *Server) SetCreateRefusal(code int, reason, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if code == 0 {
		s.refusal = nil
		return
	}
	s.refusal = &metav1.Status{Status: metav1.StatusFailure, Code: int32(code), Reason: metav1.StatusReason(reason), Message: message}
}

// SCCRefusal is OpenShift's refusal of a pod whose service account may not
// use nonroot-v2, so that only restricted-v2 was tried, whose uid range
// (the project's) does not hold the user's uid. The text is
// apiserver-library-go's sccadmission (see the project's notes,
// shared/notes/kubernetes-openshift.md).
func SCCRefusal() (code int, reason, message string) {
	return http.StatusForbidden, string(metav1.StatusReasonForbidden),
		`pods "{name}" is forbidden: unable to validate against any security context constraint: [provider "anyuid": Forbidden: not usable by user or serviceaccount, ` +
			`provider restricted-v2: .spec.securityContext.runAsUser: Invalid value: {uid}: must be in the ranges: [1000650000, 1000659999], ` +
			`provider "nonroot-v2": Forbidden: not usable by user or serviceaccount, provider "hostnetwork-v2": Forbidden: not usable by user or serviceaccount]`
}

// RBACRefusal is the authorizer's refusal of a create by user, who lacks
// the Role's "create pods". Authorization comes before the object is read,
// so the message names no pod.
func RBACRefusal(user string) (code int, reason, message string) {
	return http.StatusForbidden, string(metav1.StatusReasonForbidden),
		`pods is forbidden: User "` + user + `" cannot create resource "pods" in API group "" in the namespace "{namespace}"`
}

// QuotaRefusal is the ResourceQuota admission plugin's refusal of a pod
// that would exceed the namespace's memory quota.
func QuotaRefusal() (code int, reason, message string) {
	return http.StatusForbidden, string(metav1.StatusReasonForbidden),
		`pods "{name}" is forbidden: exceeded quota: compute, requested: limits.memory=4Gi, used: limits.memory=6Gi, limited: limits.memory=8Gi`
}

// SetServiceAccount creates or removes a service account of the namespace;
// a pod naming a missing one is refused by ServiceAccount admission.
func (s *Server) SetServiceAccount(name string, exists bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.accounts[s.namespace+"/"+name] = exists
}

// ClaimMissing, given to SetClaim, deletes the claim.
const ClaimMissing corev1.PersistentVolumeClaimPhase = ""

// SetClaim sets the phase of a claim of the namespace, creating it, or
// deletes it (ClaimMissing). Pods waiting for it are scheduled once it is
// Bound.
func (s *Server) SetClaim(name string, phase corev1.PersistentVolumeClaimPhase) {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := s.namespace + "/" + name
	if phase == ClaimMissing {
		delete(s.claims, key)
	} else {
		s.claims[key] = s.newClaim(name, phase)
	}
	s.wakeLocked()
}

func (s *Server) newClaim(name string, phase corev1.PersistentVolumeClaimPhase) *corev1.PersistentVolumeClaim {
	s.rv++
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: s.namespace, UID: newUID(),
			ResourceVersion: fmt.Sprint(s.rv), CreationTimestamp: metav1.Now()},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes:      []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			StorageClassName: ptr(""),
		},
		Status: corev1.PersistentVolumeClaimStatus{Phase: phase},
	}
	if phase == corev1.ClaimBound {
		pvc.Spec.VolumeName = name
		pvc.Status.AccessModes = pvc.Spec.AccessModes
	}
	return pvc
}

// wakeLocked tells pods waiting to be scheduled to look again; the caller
// holds s.mu.
func (s *Server) wakeLocked() {
	close(s.wake)
	s.wake = make(chan struct{})
}

// AddEvent stores an event, as a component of the cluster would post it.
func (s *Server) AddEvent(e corev1.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e.Namespace == "" {
		e.Namespace = s.namespace
	}
	s.rv++
	e.ResourceVersion = fmt.Sprint(s.rv)
	s.events = append(s.events, e)
}

// Events lists the events about a pod of the namespace, oldest first.
func (s *Server) Events(pod string) []corev1.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []corev1.Event
	for _, e := range s.events {
		if e.Namespace == s.namespace && e.InvolvedObject.Kind == "Pod" && e.InvolvedObject.Name == pod {
			out = append(out, e)
		}
	}
	return out
}

// Compact forgets the change history, as etcd's compaction does: a watch
// from an older resourceVersion then gets 410 Gone.
func (s *Server) Compact() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.history = nil
	s.compacted = s.rv
}

// ServeHTTP answers one request of the API.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests = append(s.requests, Request{Method: r.Method, URL: cloneURL(r.URL), Header: r.Header.Clone()})
	intercept := s.intercept
	s.mu.Unlock()
	// Authentication comes first, as in kube-apiserver: without the token
	// nothing else is looked at.
	if r.Header.Get("Authorization") != "Bearer "+s.Token {
		writeStatus(w, &apierrors.NewUnauthorized("Unauthorized").ErrStatus)
		return
	}
	if intercept != nil {
		if code, body := intercept(r); code != 0 {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			_, _ = io.WriteString(w, body)
			return
		}
	}
	s.route(w, r)
}

func cloneURL(u *url.URL) *url.URL {
	c := *u
	return &c
}

// route dispatches on the path: /api/v1/namespaces/{ns}/{resource}[/{name}[/{sub}]]
// and the cluster-wide /api/v1/{resource} lists and watches.
func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, "/api/v1/")
	if !ok {
		s.unsupported(w, r)
		return
	}
	var ns, resource, name, sub string
	parts := strings.Split(rest, "/")
	if parts[0] == "namespaces" && len(parts) >= 3 {
		ns, resource = parts[1], parts[2]
		parts = parts[3:]
	} else {
		resource = parts[0]
		parts = parts[1:]
	}
	if len(parts) > 0 {
		name = parts[0]
	}
	if len(parts) > 1 {
		sub = parts[1]
	}
	if len(parts) > 2 || (ns == "" && name != "") {
		s.unsupported(w, r)
		return
	}
	watching := r.URL.Query().Get("watch") == "true" || r.URL.Query().Get("watch") == "1"
	switch {
	case resource == "pods" && name == "" && r.Method == http.MethodGet && watching:
		s.watchPods(w, r, ns)
	case resource == "pods" && name == "" && r.Method == http.MethodGet:
		s.listPods(w, r, ns)
	case resource == "pods" && name == "" && r.Method == http.MethodPost && ns != "":
		s.createPod(w, r, ns)
	case resource == "pods" && name != "" && sub == "" && r.Method == http.MethodGet:
		s.getPod(w, ns, name)
	case resource == "pods" && name != "" && sub == "" && r.Method == http.MethodDelete:
		s.deletePod(w, r, ns, name)
	case resource == "pods" && sub == "log" && r.Method == http.MethodGet:
		s.podLog(w, r, ns, name)
	case resource == "events" && name == "" && r.Method == http.MethodGet && !watching:
		s.listEvents(w, r, ns)
	case resource == "secrets" && name == "" && r.Method == http.MethodPost && ns != "":
		s.createSecret(w, r, ns)
	case resource == "persistentvolumeclaims" && name != "" && sub == "" && r.Method == http.MethodGet:
		s.getClaim(w, ns, name)
	default:
		s.unsupported(w, r)
	}
}

// unsupported answers what kube-apiserver would serve but the stand-in
// does not, and fails the test: the backend started using more of the API
// than the stand-in (and deploy/kubernetes/role.yaml) covers.
func (s *Server) unsupported(w http.ResponseWriter, r *http.Request) {
	s.errorf("request the stand-in does not implement: %s %s", r.Method, r.URL)
	writeStatus(w, &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusNotFound, Reason: metav1.StatusReasonNotFound,
		Message: "the server could not find the requested resource", Details: &metav1.StatusDetails{}})
}

// writeStatus answers with a Status object, as every refusal of the API is.
func writeStatus(w http.ResponseWriter, st *metav1.Status) {
	st = st.DeepCopy()
	st.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
	if st.Status == "" {
		st.Status = metav1.StatusFailure
	}
	writeJSON(w, int(st.Code), st)
}

func writeJSON(w http.ResponseWriter, code int, obj any) {
	data, err := json.Marshal(obj)
	if err != nil {
		code, data = http.StatusInternalServerError, []byte(`{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","reason":"InternalError","code":500}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(data)
}

// sleep waits d, or less if ctx ends or the stand-in stops; it reports
// whether the whole time passed.
func (s *Server) sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
	case <-s.done:
	}
	return false
}

func ptr[T any](v T) *T { return &v }
