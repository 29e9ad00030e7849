package kubernetes

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/client-go/kubernetes/fake"
	k8stesting "k8s.io/client-go/testing"

	"github.com/reana-site/reana-site/batch"
)

var podsResource = schema.GroupResource{Resource: "pods"}

// Refusals as the API server words them (see admission.go for sources).
var (
	errPodSecurity = apierrors.NewForbidden(podsResource, "x", errors.New(
		`violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false (container "step" must set securityContext.allowPrivilegeEscalation=false), seccompProfile (pod or container "step" must set securityContext.seccompProfile.type to "RuntimeDefault" or "Localhost")`))
	errSCCRange = apierrors.NewForbidden(podsResource, "x", errors.New(
		`unable to validate against any security context constraint: [provider "anyuid": Forbidden: not usable by user or serviceaccount, provider restricted-v2: .spec.securityContext.runAsUser: Invalid value: 4101: must be in the ranges: [1000650000, 1000659999], provider "nonroot-v2": Forbidden: not usable by user or serviceaccount, provider "hostnetwork-v2": Forbidden: not usable by user or serviceaccount]`))
	errSCCPinned = apierrors.NewForbidden(podsResource, "x", errors.New(
		`unable to validate against any security context constraint: [provider "nonroot-v2": Forbidden: not usable by user or serviceaccount]`))
	errSCCNoAnnotation = apierrors.NewForbidden(podsResource, "x", errors.New(
		`unable to validate against any security context constraint: [unable to find annotation openshift.io/sa.scc.uid-range]`))
	errRBAC = apierrors.NewForbidden(podsResource, "", errors.New(
		`User "system:serviceaccount:reana:reana-site" cannot create resource "pods" in API group "" in the namespace "reana"`))
	errRBACOther = apierrors.NewForbidden(podsResource, "", errors.New(
		`User "system:serviceaccount:reana:reana-site" cannot create resource "pods" in API group "" in the namespace "reana-old"`))
	// The real API server's words (kube-apiserver 1.37.2) for a pod
	// without a memory limit under a quota on limits.memory.
	errQuotaMemoryLimit = apierrors.NewForbidden(podsResource, "x", errors.New(
		`failed quota: compute: must specify limits.memory for: step`))
	// The step fits the quota; the namespace's other pods fill it now.
	errQuota = apierrors.NewForbidden(podsResource, "x", errors.New(
		`exceeded quota: compute, requested: limits.memory=4Gi, used: limits.memory=6Gi, limited: limits.memory=8Gi`))
	errQuotaPods = apierrors.NewForbidden(podsResource, "x", errors.New(
		`exceeded quota: count, requested: pods=1, used: pods=10, limited: pods=10`))
	errQuotaSeveral = apierrors.NewForbidden(podsResource, "x", errors.New(
		`exceeded quota: compute, requested: limits.memory=4Gi,requests.cpu=500m, used: limits.memory=6Gi,requests.cpu=3500m, limited: limits.memory=8Gi,requests.cpu=4`))
	// The step alone asks for more than the quota allows.
	errQuotaTooBig = apierrors.NewForbidden(podsResource, "x", errors.New(
		`exceeded quota: compute, requested: limits.memory=16Gi, used: limits.memory=0, limited: limits.memory=8Gi`))
	errQuotaOneTooBig = apierrors.NewForbidden(podsResource, "x", errors.New(
		`exceeded quota: compute, requested: limits.memory=4Gi,requests.cpu=8, used: limits.memory=6Gi,requests.cpu=0, limited: limits.memory=8Gi,requests.cpu=4`))
	errSCCCache = apierrors.NewForbidden(podsResource, "x", errors.New(
		`SecurityContextConstraints.security.openshift.io cache is not synchronized`))
	errQuotaLimits = apierrors.NewForbidden(podsResource, "x", errors.New(
		`failed quota: compute: must specify limits.cpu for: step; limits.memory for: step`))
	errLimitRange = apierrors.NewForbidden(podsResource, "x", errors.New(
		`maximum memory usage per Container is 1Gi, but limit is 4Gi`))
	errNoStepSA = apierrors.NewForbidden(podsResource, "x", errors.New(
		`error looking up service account reana/reana-site-step: serviceaccount "reana-site-step" not found`))
	errInvalid = apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, "x", field.ErrorList{
		field.Invalid(field.NewPath("spec", "containers").Index(0).Child("image"), "", "must not be empty")})
	errRefused = &url.Error{Op: "Post", URL: "https://api.example:6443/api/v1/namespaces/reana/pods",
		Err: &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}}
)

// TLS failures as the transport returns them: url.Error around the TLS
// handshake's verification error around x509's.
var (
	errUnknownCA = &url.Error{Op: "Get", URL: "https://api.example:6443/api/v1/namespaces/reana/pods",
		Err: &tls.CertificateVerificationError{Err: x509.UnknownAuthorityError{}}}
	errExpired = &url.Error{Op: "Get", URL: "https://api.example:6443/api/v1/namespaces/reana/pods",
		Err: &tls.CertificateVerificationError{Err: x509.CertificateInvalidError{Reason: x509.Expired, Detail: "current time is after 2026-01-01"}}}
	errHostname = &url.Error{Op: "Get", URL: "https://api.example:6443/api/v1/namespaces/reana/pods",
		Err: &tls.CertificateVerificationError{Err: x509.HostnameError{Certificate: &x509.Certificate{}, Host: "api.example"}}}
)

// TestOutageClassification: which errors the engine waits out
// (batch.ErrUnavailable) and which are refusals or misconfiguration.
func TestOutageClassification(t *testing.T) {
	tests := []struct {
		name        string
		err         error
		unavailable bool
	}{
		{"connection refused", errRefused, true},
		{"deadline", context.DeadlineExceeded, true},
		{"too many requests", apierrors.NewTooManyRequests("slow down", 1), true},
		{"service unavailable", apierrors.NewServiceUnavailable("down"), true},
		{"internal error", apierrors.NewInternalError(errors.New("etcd")), true},
		{"OpenShift SCC cache not synced", errSCCCache, true},
		{"OpenShift SCC cache not synced, lower case", apierrors.NewForbidden(podsResource, "x", errors.New(
			"securitycontextconstraints.security.openshift.io cache is not synchronized")), true},
		{"unknown authority", errUnknownCA, false},
		{"expired certificate", errExpired, false},
		{"hostname mismatch", errHostname, false},
		{"bare x509 error", x509.UnknownAuthorityError{}, false},
		{"x509 text only", errors.New(`Get "https://api:6443": tls: failed to verify certificate: x509: certificate signed by unknown authority`), false},
		{"forbidden", errRBAC, false},
		{"pod security", errPodSecurity, false},
		{"unauthorized", apierrors.NewUnauthorized("Unauthorized"), false},
		{"not found", apierrors.NewNotFound(podsResource, "x"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.unavailable, unavailable(tt.err), "%v", tt.err)
			b := &Backend{cfg: testConfig().withDefaults()}
			assert.Equal(t, tt.unavailable, errors.Is(b.apiError("list pods", tt.err), batch.ErrUnavailable))
		})
	}
}

func TestQuotaBusy(t *testing.T) {
	tests := []struct {
		name string
		err  error
		busy bool
	}{
		{"memory fits alone", errQuota, true},
		{"pod count", errQuotaPods, true},
		{"several resources", errQuotaSeveral, true},
		{"request equal to the limit", apierrors.NewForbidden(podsResource, "x", errors.New(
			`exceeded quota: q, requested: limits.memory=8Gi, used: limits.memory=1, limited: limits.memory=8Gi`)), true},
		{"request above the limit", errQuotaTooBig, false},
		{"one request above its limit", errQuotaOneTooBig, false},
		{"must specify", errQuotaLimits, false},
		{"unreadable", apierrors.NewForbidden(podsResource, "x", errors.New(`exceeded quota: q, requested: memory, used: x, limited: y`)), false},
		{"a limit it does not name", apierrors.NewForbidden(podsResource, "x", errors.New(
			`exceeded quota: q, requested: limits.memory=1Gi, used: limits.cpu=1, limited: limits.cpu=2`)), false},
		{"not forbidden", errors.New(`exceeded quota: q, requested: pods=1, used: pods=1, limited: pods=1`), false},
		{"nil", nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { assert.Equal(t, tt.busy, quotaBusy(tt.err)) })
	}
}

// refuse makes the fake API server answer every create of a pod with err
// (dry-run ones too, as admission does).
func refuse(c *fake.Clientset, err error) {
	c.PrependReactor("create", "pods", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, err })
}

func TestSubmitRefusals(t *testing.T) {
	tests := []struct {
		name        string
		err         error
		openshift   bool
		memoryLimit string // the step's kubernetes_memory_limit
		want        []string
		unavailable bool
	}{
		{name: "pod security", err: errPodSecurity, want: []string{
			"site misconfiguration: the step pod reana-gendata-0b7c9a4e-5d7f-4a43-9d8e-2f0b8c1d2e3f was refused by Pod Security admission",
			"report this to the site admin",
			`violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false`}},
		{name: "SCC uid out of range", err: errSCCRange, openshift: true, want: []string{
			"OpenShift refused the step pod",
			"service account reana/reana-site-step may not use the SCC nonroot-v2",
			"only allow uids [1000650000, 1000659999], while the pod runs as uid 4101",
			"a cluster admin must run once: oc create rolebinding reana-site-step-scc -n reana --clusterrole=system:openshift:scc:nonroot-v2 --serviceaccount=reana:reana-site-step",
			"(or, the same grant made by oc: oc adm policy add-scc-to-user nonroot-v2 -z reana-site-step -n reana)"}},
		{name: "SCC pinned but not granted", err: errSCCPinned, openshift: true, want: []string{
			"service account reana/reana-site-step may not use the SCC nonroot-v2",
			"oc adm policy add-scc-to-user nonroot-v2 -z reana-site-step -n reana"}},
		{name: "SCC refusal without OpenShift configured", err: errSCCRange, want: []string{
			"reana-site is not configured for OpenShift, so the pod does not pin the SCC"}},
		{name: "namespace without SCC annotations", err: errSCCNoAnnotation, openshift: true, want: []string{
			"namespace reana lacks the SCC annotations an OpenShift project has"}},
		{name: "RBAC", err: errRBAC, want: []string{
			`the daemon's identity "system:serviceaccount:reana:reana-site" may not create pods in namespace reana`,
			`the Role "reana-site" (deploy/kubernetes/role.yaml) or its RoleBinding (deploy/kubernetes/rolebinding.yaml) is missing or incomplete`}},
		{name: "quota full right now", err: errQuota, unavailable: true, want: []string{
			"the namespace's ResourceQuota is full right now: exceeded quota: compute, requested: limits.memory=4Gi, used: limits.memory=6Gi, limited: limits.memory=8Gi",
			"submitted again once running pods have freed enough"}},
		{name: "pod count quota full right now", err: errQuotaPods, unavailable: true, want: []string{
			"the namespace's ResourceQuota is full right now: exceeded quota: count, requested: pods=1"}},
		{name: "quota full right now for several resources", err: errQuotaSeveral, unavailable: true, want: []string{
			"is full right now"}},
		{name: "quota below the step's request", err: errQuotaTooBig, memoryLimit: "16Gi", want: []string{
			"the namespace's ResourceQuota refuses the step: exceeded quota: compute, requested: limits.memory=16Gi",
			"ask for less"}},
		{name: "quota below the LimitRange's default limit", err: errQuotaTooBig, want: []string{
			"the namespace's ResourceQuota refuses the step: exceeded quota: compute, requested: limits.memory=16Gi",
			"the step sets no memory limit, so the namespace's LimitRange gave it its default of 16Gi (a LimitRange with only max makes max the default), which is above the quota's limits.memory of 8Gi",
			"set kubernetes_memory_limit in the step, or the site admin sets REANA_SITE_KUBERNETES_DEFAULT_MEMORY"}},
		{name: "quota needs a memory limit", err: errQuotaMemoryLimit, want: []string{
			"the namespace's ResourceQuota refuses the step: failed quota: compute: must specify limits.memory for: step; " +
				"set kubernetes_memory_limit in the step's resources, or the site admin sets REANA_SITE_KUBERNETES_DEFAULT_MEMORY"}},
		{name: "RBAC in another namespace", err: errRBACOther, want: []string{
			`may not create pods in namespace reana-old`}},
		{name: "quota below one of the step's requests", err: errQuotaOneTooBig, want: []string{
			"the namespace's ResourceQuota refuses the step", "requests.cpu=8"}},
		{name: "quota needs limits", err: errQuotaLimits, want: []string{
			"the namespace's ResourceQuota refuses the step: failed quota: compute: must specify limits.cpu"}},
		{name: "LimitRange", err: errLimitRange, want: []string{
			"the namespace's LimitRange refuses the step's resources: maximum memory usage per Container is 1Gi, but limit is 4Gi"}},
		{name: "step service account missing", err: errNoStepSA, want: []string{
			`the step service account "reana-site-step" is missing in namespace reana (deploy/kubernetes/serviceaccount.yaml creates it)`}},
		{name: "invalid", err: errInvalid, want: []string{"the API server found the step's pod reana-gendata-0b7c9a4e-5d7f-4a43-9d8e-2f0b8c1d2e3f invalid"}},
		{name: "connection refused", err: errRefused, unavailable: true, want: []string{"connection refused"}},
		{name: "server busy", err: apierrors.NewTooManyRequests("slow down", 1), unavailable: true},
		{name: "server timeout", err: apierrors.NewServerTimeout(podsResource, "create", 1), unavailable: true},
		{name: "OpenShift's SCC cache not synced yet", err: errSCCCache, unavailable: true, openshift: true,
			want: []string{"cache is not synchronized"}},
		{name: "unknown certificate authority", err: errUnknownCA, want: []string{
			"the API server's TLS certificate is not trusted (site misconfiguration, not an outage", "certificate signed by unknown authority"}},
		{name: "expired certificate", err: errExpired, want: []string{"the API server's TLS certificate is not trusted", "expired"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newFakeClient()
			refuse(c, tt.err)
			b, err := New(func() Config { cfg := testConfig(); cfg.OpenShift = tt.openshift; return cfg }(), ClientsetAPI(c), quiet())
			require.NoError(t, err)
			spec := testSpec()
			spec.Hints.MemoryLimit = tt.memoryLimit
			_, err = b.Submit(context.Background(), spec)
			require.Error(t, err)
			assert.Equal(t, tt.unavailable, errors.Is(err, batch.ErrUnavailable), "%v", err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestSubmitChecksTheClaim(t *testing.T) {
	tests := []struct {
		name   string
		claims []runtime.Object
		want   string
	}{
		{name: "missing", claims: []runtime.Object{boundClaim("other", corev1.ClaimBound)},
			want: `the workspace volume claim "reana-workspaces" does not exist in namespace reana; the site admin must create it on the NFS export holding /srv/reana`},
		{name: "pending", claims: []runtime.Object{boundClaim("reana-workspaces", corev1.ClaimPending)},
			want: `the workspace volume claim "reana-workspaces" in namespace reana is not bound (phase Pending)`},
		{name: "lost", claims: []runtime.Object{boundClaim("reana-workspaces", corev1.ClaimLost)},
			want: "is not bound (phase Lost)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := New(testConfig(), ClientsetAPI(newFakeClient(tt.claims...)), quiet())
			require.NoError(t, err)
			_, err = b.Submit(context.Background(), testSpec())
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestSubmitCreatesThePodAsTheUser(t *testing.T) {
	h := newHarness(t, nil, nil)
	j := h.submit(testSpec())
	assert.Equal(t, "kubernetes", j.Handle.Backend)
	assert.Equal(t, "reana-gendata-0b7c9a4e-5d7f-4a43-9d8e-2f0b8c1d2e3f", j.Handle.ID)

	pods, err := h.client.CoreV1().Pods("reana").List(context.Background(), metav1.ListOptions{LabelSelector: "reana-site/run=root6-fit.1,reana-site/user=alice"})
	require.NoError(t, err)
	require.Len(t, pods.Items, 1, "kubectl get pods -l reana-site/run=...,reana-site/user=... finds it")
	sc := pods.Items[0].Spec.SecurityContext
	assert.Equal(t, int64(4101), *sc.RunAsUser)
	assert.Equal(t, int64(4100), *sc.RunAsGroup)
	assert.Equal(t, []int64{5001, 5002}, sc.SupplementalGroups)
}

func TestSubmitRefusesBadSpecsBeforeAnyAPICall(t *testing.T) {
	c := newFakeClient()
	b, err := New(testConfig(), ClientsetAPI(c), quiet())
	require.NoError(t, err)
	spec := testSpec()
	spec.User.UID = 0
	_, err = b.Submit(context.Background(), spec)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "uid 0")
	assert.Empty(t, c.Actions())
}

// TestSubmitIsIdempotent: a second Submit of the same job (a daemon that
// died before recording the handle) returns the existing pod.
func TestSubmitIsIdempotent(t *testing.T) {
	h := newHarness(t, nil, nil)
	first := h.submit(testSpec())
	second := h.submit(testSpec())
	assert.Equal(t, first.Handle.ID, second.Handle.ID)
	pods, err := h.client.CoreV1().Pods("reana").List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	assert.Len(t, pods.Items, 1)
	assert.Equal(t, 1, podCreates(h.client), "the second Submit found the pod and did not create again: "+
		"ResourceQuota charges even a create that fails with AlreadyExists")
}

// podCreates counts the pod creates that were not dry-runs.
func podCreates(c *fake.Clientset) int {
	n := 0
	for _, a := range c.Actions() {
		if a.GetVerb() == "create" && a.GetResource().Resource == "pods" && !dryRun(a) {
			n++
		}
	}
	return n
}

// TestSubmitChecksAnExistingPod: a pod found already there (made by an
// earlier Submit, when the API server dropped the Strict groups policy)
// is checked as a new one: it is deleted and the step refused, not
// adopted to run with the image's groups. Found in the cache or, before
// the cache has synced, by a GET (never by a create).
func TestSubmitChecksAnExistingPod(t *testing.T) {
	tests := []struct {
		name   string
		strict bool
		allow  bool
		synced bool
		want   string
	}{
		{name: "kept its policy, in the cache", strict: true, synced: true},
		{name: "kept its policy, before the cache synced", strict: true},
		{name: "lost its policy, in the cache", synced: true, want: "dropped the step pod's securityContext.supplementalGroupsPolicy: Strict"},
		{name: "lost its policy, before the cache synced", want: "dropped the step pod's securityContext.supplementalGroupsPolicy: Strict"},
		{name: "lost its policy, the site allows image groups", allow: true, synced: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			cfg := testConfig()
			cfg.AllowImageGroups = tt.allow
			old, err := BuildPod(testSpec(), cfg)
			require.NoError(t, err)
			if !tt.strict {
				old.Spec.SecurityContext.SupplementalGroupsPolicy = nil
			}
			c := newFakeClient(boundClaim("reana-workspaces", corev1.ClaimBound), old)
			var b *Backend
			if tt.synced {
				b = newHarness(t, c, func(c *Config) { *c = cfg }).b
			} else {
				b, err = New(cfg, ClientsetAPI(c), quiet())
				require.NoError(t, err)
			}
			hd, err := b.Submit(ctx, testSpec())
			_, getErr := c.CoreV1().Pods("reana").Get(ctx, old.Name, metav1.GetOptions{})
			assert.Zero(t, podCreates(c), "a pod already there is found, not created again")
			if tt.want == "" {
				require.NoError(t, err)
				assert.Equal(t, old.Name, hd.ID)
				assert.NoError(t, getErr)
				return
			}
			require.ErrorContains(t, err, tt.want)
			assert.True(t, apierrors.IsNotFound(getErr), "the pod was deleted: %v", getErr)
		})
	}
}

func TestCancelDeletesThePod(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil, nil)
	j := h.submit(testSpec())
	h.kubelet(j.Handle.ID, func(s *corev1.PodStatus) { s.Phase = corev1.PodRunning })
	h.eventually(j, batch.Running)

	require.NoError(t, h.b.Cancel(ctx, j))
	_, err := h.client.CoreV1().Pods("reana").Get(ctx, j.Handle.ID, metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err))
	assert.Equal(t, batch.Stopped, h.eventually(j, batch.Stopped).State)
	require.NoError(t, h.b.Cancel(ctx, j), "cancelling a job whose pod is gone is fine")

	_, err = h.b.Logs(ctx, j)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no longer exists, so the step's output is gone")
}

// TestRestartReattaches: a second backend (a restarted daemon) on the
// same cluster finds the pod by its handle and creates nothing new.
func TestRestartReattaches(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil, nil)
	j := h.submit(testSpec())
	h.kubelet(j.Handle.ID, func(s *corev1.PodStatus) { s.Phase = corev1.PodRunning })
	h.eventually(j, batch.Running)

	restarted := newHarness(t, h.client, nil)
	restarted.clock.Add(time.Hour)
	assert.Equal(t, batch.Running, restarted.status(j).State)
	again := restarted.submit(testSpec())
	assert.Equal(t, j.Handle.ID, again.Handle.ID)
	assert.Equal(t, 1, podCreates(h.client), "the restarted backend found the pod in its cache and created nothing: "+
		"ResourceQuota charges even a create that fails with AlreadyExists")
	pods, err := h.client.CoreV1().Pods("reana").List(ctx, metav1.ListOptions{LabelSelector: ManagedSelector})
	require.NoError(t, err)
	assert.Len(t, pods.Items, 1)

	h.kubelet(j.Handle.ID, terminated(0, "Completed", ""))
	restarted.eventually(j, batch.Succeeded)
}

// TestStatusMakesNoAPICallsPerPoll: a poll of many jobs reads the cache.
func TestStatusMakesNoAPICallsPerPoll(t *testing.T) {
	h := newHarness(t, nil, nil)
	var jobs []batch.Job
	for i := 0; i < 20; i++ {
		s := testSpec()
		s.JobID = strings.Replace(s.JobID, "0b7c", "0b"+string(rune('a'+i))+"c", 1)
		jobs = append(jobs, h.submit(s))
	}
	for _, j := range jobs {
		h.eventually(j, batch.Pending)
	}
	h.client.ClearActions()
	out, err := h.b.Status(context.Background(), jobs)
	require.NoError(t, err)
	assert.Len(t, out, 20)
	assert.Empty(t, h.client.Actions())
}

func TestLogs(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		react func(k8stesting.Action) (bool, runtime.Object, error)
		want  string
		err   string
	}{
		{name: "output", want: "hello\n", react: func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, &runtime.Unknown{Raw: []byte("hello\n")}, nil
		}},
		{name: "long output keeps its end", react: func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, &runtime.Unknown{Raw: []byte(strings.Repeat("x", MaxLogBytes) + "the end\n")}, nil
		}, want: "the end\n"},
		{name: "never started", want: "", react: func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewBadRequest(`container "step" in pod "p" is waiting to start: ContainerCreating`)
		}},
		{name: "API server down", err: "batch system unavailable", react: func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, errRefused
		}},
		{name: "no right to read logs", err: `may not get pods/log in namespace reana`, react: func(k8stesting.Action) (bool, runtime.Object, error) {
			return true, nil, apierrors.NewForbidden(schema.GroupResource{Resource: "pods/log"}, "p", errors.New(
				`User "system:serviceaccount:reana:reana-site" cannot get resource "pods/log" in API group "" in the namespace "reana"`))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newFakeClient()
			c.PrependReactor("get", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
				if a.GetSubresource() != "log" {
					return false, nil, nil
				}
				return tt.react(a)
			})
			h := newHarness(t, c, nil)
			j := h.submit(testSpec())
			out, err := h.b.Logs(ctx, j)
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				return
			}
			require.NoError(t, err)
			assert.True(t, strings.HasSuffix(out, tt.want), "%.80q", out)
			assert.LessOrEqual(t, len(out), MaxLogBytes+100)
		})
	}
}

func TestPreflight(t *testing.T) {
	dropGroupsPolicy := func(p *corev1.Pod) { p.Spec.SecurityContext.SupplementalGroupsPolicy = nil }
	tests := []struct {
		name    string
		claims  []runtime.Object
		refuse  error
		openshf bool
		// reply changes the dry-run's answer, as an API server that does
		// not know a field drops it.
		reply  func(*corev1.Pod)
		images bool     // AllowImageGroups
		want   []string // empty: ready
	}{
		{name: "ready"},
		{name: "quota full right now is no refusal", refuse: errQuota},
		{name: "quota below the step's request", refuse: errQuotaTooBig, want: []string{"the namespace's ResourceQuota refuses the step"}},
		{name: "groups policy dropped", reply: dropGroupsPolicy, want: []string{
			"preflight (a dry-run step pod running as uid 1000): kubernetes: site misconfiguration: the API server dropped the step pod's securityContext.supplementalGroupsPolicy: Strict",
			"Kubernetes before 1.33 without the SupplementalGroupsPolicy feature gate",
			"root's group 0 included",
			"AllowImageGroups"}},
		{name: "groups policy turned to Merge", reply: func(p *corev1.Pod) {
			p.Spec.SecurityContext.SupplementalGroupsPolicy = ptr(corev1.SupplementalGroupsPolicyMerge)
		}, want: []string{"dropped the step pod's securityContext.supplementalGroupsPolicy"}},
		{name: "groups policy dropped, images may add groups", reply: dropGroupsPolicy, images: true},
		{name: "pod security", refuse: errPodSecurity, want: []string{
			"preflight (a dry-run step pod running as uid 1000)", `violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false`}},
		{name: "SCC not granted", refuse: errSCCRange, openshf: true, want: []string{
			"oc adm policy add-scc-to-user nonroot-v2 -z reana-site-step -n reana"}},
		{name: "RBAC", refuse: errRBAC, want: []string{`may not create pods in namespace reana`}},
		{name: "claim missing", claims: []runtime.Object{boundClaim("x", corev1.ClaimBound)}, want: []string{
			`the workspace volume claim "reana-workspaces" does not exist`}},
		{name: "claim unbound", claims: []runtime.Object{boundClaim("reana-workspaces", corev1.ClaimPending)}, want: []string{
			`is not bound (phase Pending)`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newFakeClient(tt.claims...)
			var dryRuns int
			c.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
				require.True(t, dryRun(a), "the preflight stores nothing")
				require.Equal(t, []string{metav1.DryRunAll}, a.(k8stesting.CreateActionImpl).CreateOptions.DryRun)
				dryRuns++
				pod := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod)
				assert.Equal(t, int64(1000), *pod.Spec.SecurityContext.RunAsUser)
				if tt.refuse != nil {
					return true, nil, tt.refuse
				}
				if tt.reply != nil {
					reply := pod.DeepCopy()
					tt.reply(reply)
					return true, reply, nil
				}
				return false, nil, nil
			})
			h := newHarness(t, c, func(cfg *Config) { cfg.OpenShift, cfg.AllowImageGroups = tt.openshf, tt.images })
			err := h.b.Preflight()
			if len(tt.want) == 0 {
				assert.NoError(t, err)
				assert.Equal(t, 1, dryRuns)
				return
			}
			require.Error(t, err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
			assert.Equal(t, err, h.b.RunPreflight(context.Background()), "a rerun finds the same")
		})
	}
}

// TestPreflightKeepsTheGroupsFindingWhileTheQuotaIsFull: a round whose
// dry-run the quota refused cannot tell whether the API server keeps the
// groups policy; the last round's finding stands.
func TestPreflightKeepsTheGroupsFindingWhileTheQuotaIsFull(t *testing.T) {
	c := newFakeClient()
	var full bool
	c.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
		if full {
			return true, nil, errQuota
		}
		pod := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod).DeepCopy()
		pod.Spec.SecurityContext.SupplementalGroupsPolicy = nil
		return true, pod, nil
	})
	h := newHarness(t, c, nil)
	require.ErrorContains(t, h.b.Preflight(), "supplementalGroupsPolicy")
	full = true
	assert.ErrorContains(t, h.b.RunPreflight(context.Background()), "supplementalGroupsPolicy")
}

// TestSubmitRefusesAPodWithoutItsGroupsPolicy: should the API server drop
// the Strict policy after the last preflight, the pod just created is
// deleted and the step refused.
func TestSubmitRefusesAPodWithoutItsGroupsPolicy(t *testing.T) {
	for _, allow := range []bool{false, true} {
		t.Run(fmt.Sprintf("AllowImageGroups=%v", allow), func(t *testing.T) {
			c := newFakeClient()
			h := newHarness(t, c, func(cfg *Config) { cfg.AllowImageGroups = allow })
			require.NoError(t, h.b.Preflight())
			c.PrependReactor("create", "pods", func(a k8stesting.Action) (bool, runtime.Object, error) {
				pod := a.(k8stesting.CreateAction).GetObject().(*corev1.Pod).DeepCopy()
				pod.Spec.SecurityContext.SupplementalGroupsPolicy = nil
				if dryRun(a) {
					return true, pod, nil
				}
				_ = c.Tracker().Create(corev1.SchemeGroupVersion.WithResource("pods"), pod, pod.Namespace)
				return true, pod, nil
			})
			_, err := h.b.Submit(context.Background(), testSpec())
			_, getErr := c.CoreV1().Pods("reana").Get(context.Background(), PodName(testSpec().JobID, testSpec().StepName), metav1.GetOptions{})
			if allow {
				assert.NoError(t, err)
				assert.NoError(t, getErr)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), "dropped the step pod's securityContext.supplementalGroupsPolicy: Strict")
			assert.False(t, errors.Is(err, batch.ErrUnavailable))
			assert.True(t, apierrors.IsNotFound(getErr), "the pod was deleted: %v", getErr)
		})
	}
}

func TestPreflightBeforeStart(t *testing.T) {
	b, err := New(testConfig(), ClientsetAPI(newFakeClient()), quiet())
	require.NoError(t, err)
	assert.ErrorContains(t, b.Preflight(), "not been started")
}

func TestStartWithoutAPIServer(t *testing.T) {
	c := newFakeClient()
	c.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) { return true, nil, errRefused })
	b, err := New(testConfig(), ClientsetAPI(c), quiet())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err = b.Start(ctx)
	assert.ErrorIs(t, err, batch.ErrUnavailable)
	assert.ErrorIs(t, b.Preflight(), batch.ErrUnavailable)
	_, err = b.Status(ctx, []batch.Job{{Spec: testSpec()}})
	assert.ErrorIs(t, err, batch.ErrUnavailable)
	assert.Error(t, b.Start(ctx), "only one start")
}

func TestStartWithoutListRights(t *testing.T) {
	c := newFakeClient()
	c.PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewForbidden(podsResource, "", errors.New(
			`User "system:serviceaccount:reana:reana-site" cannot list resource "pods" in API group "" in the namespace "reana"`))
	})
	b, err := New(testConfig(), ClientsetAPI(c), quiet())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	err = b.Start(ctx)
	require.Error(t, err)
	assert.Contains(t, err.Error(), `may not list pods in namespace reana: the Role "reana-site"`)
}

// TestJanitor: finished pods are deleted once past their retention,
// counted from the backend's start for pods that ended before it.
func TestJanitor(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil, func(c *Config) { c.PodRetention = time.Hour })
	done := h.submit(testSpec())
	s := testSpec()
	s.JobID = "1b7c9a4e-5d7f-4a43-9d8e-2f0b8c1d2e3f"
	running := h.submit(s)
	ended := h.clock.Now().Add(-48 * time.Hour) // before the backend started
	h.kubelet(done.Handle.ID, func(st *corev1.PodStatus) {
		terminated(0, "Completed", "")(st)
		st.ContainerStatuses[0].State.Terminated.FinishedAt = metav1.Time{Time: ended}
	})
	h.kubelet(running.Handle.ID, func(st *corev1.PodStatus) { st.Phase = corev1.PodRunning })
	h.eventually(done, batch.Succeeded)
	h.eventually(running, batch.Running)

	h.b.collect(ctx)
	_, err := h.client.CoreV1().Pods("reana").Get(ctx, done.Handle.ID, metav1.GetOptions{})
	require.NoError(t, err, "kept: the daemon has not had its retention since it started")

	h.clock.Add(61 * time.Minute)
	h.b.collect(ctx)
	_, err = h.client.CoreV1().Pods("reana").Get(ctx, done.Handle.ID, metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "deleted past its retention")
	_, err = h.client.CoreV1().Pods("reana").Get(ctx, running.Handle.ID, metav1.GetOptions{})
	assert.NoError(t, err, "a running pod is never collected")
	h.eventually(done, batch.Succeeded) // its outcome is remembered
}

func TestNewClient(t *testing.T) {
	t.Setenv("KUBERNETES_SERVICE_HOST", "")
	_, err := NewClient("")
	assert.ErrorContains(t, err, "no kubeconfig file given and not running inside a cluster")
	_, err = NewClient("/nonexistent/kubeconfig")
	assert.ErrorContains(t, err, "load kubeconfig /nonexistent/kubeconfig")

	path := t.TempDir() + "/kubeconfig"
	require.NoError(t, os.WriteFile(path, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://api.example:6443"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: x, context: {cluster: c, user: u, namespace: reana}}]
current-context: x
`), 0o600))
	c, err := NewClient(path)
	require.NoError(t, err)
	assert.NotNil(t, c)

	t.Setenv("KUBERNETES_SERVICE_HOST", "10.0.0.1")
	t.Setenv("KUBERNETES_SERVICE_PORT", "443")
	_, err = NewClient("")
	assert.ErrorContains(t, err, "in-cluster configuration (service account token)")
}

// TestCancelUnrecorded: a pod created by a submission whose handle was
// never recorded is found by its name, which follows from the job id.
func TestCancelUnrecorded(t *testing.T) {
	ctx := context.Background()
	h := newHarness(t, nil, nil)
	j := h.submit(testSpec())
	require.NoError(t, h.b.CancelUnrecorded(ctx, testSpec()))
	_, err := h.client.CoreV1().Pods("reana").Get(ctx, j.Handle.ID, metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err))
}
