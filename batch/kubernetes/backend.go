// Package kubernetes runs steps as bare Pods in one namespace of a
// Kubernetes or OpenShift cluster, each as the submitting user's real uid,
// gid and supplementary groups, so files a step writes on the site's NFS
// volume are the user's own.
//
// # Why bare Pods
//
// Pod Security admission and OpenShift's SCC admission judge Pods, not
// Jobs. A bad Pod is refused at create with a readable message, which
// Submit turns into the step's error; a Job would be accepted and then
// hang behind its controller's FailedCreate events.
//
// # One pure builder, one informer
//
// [BuildPod] makes every step pod, and tests run the real Pod Security
// evaluator on what it makes. Status reads one namespaced, label-filtered
// shared informer started by [Backend.Start]: a poll costs no API call,
// whatever the number of jobs.
//
// # Rights
//
// The daemon needs only a namespaced Role (deploy/kubernetes): pods
// create/get/list/watch/delete, pods/log get, events list,
// persistentvolumeclaims get and secrets create (a step pod's own Secret
// of its owner's secrets, see withSecrets). On OpenShift a cluster admin grants the step
// service account the nonroot-v2 SCC once; see deploy/kubernetes/README.md.
package kubernetes

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
)

// Name is the backend's canonical name, REANA's compute_backend
// "kubernetes".
const Name = "kubernetes"

// MaxLogBytes bounds the output kept for one step, as for every backend.
const MaxLogBytes = batch.MaxLogBytes

// lookupGrace is how long a pod just created may be missing from the
// informer's cache before the backend asks the API server about it.
const lookupGrace = time.Minute

// memoryTTL bounds how long the backend remembers deleted pods and its own
// verdicts; the engine settles a job within a poll or two of hearing it.
const memoryTTL = time.Hour

// Backend is the Kubernetes backend. Create it with [New] and call
// [Backend.Start] before the engine polls it.
type Backend struct {
	cfg Config
	api API
	log *slog.Logger
	// helper reads a step's secrets as its user (WithSecrets); nil gives
	// steps none.
	helper asuser.Caller
	// now is the clock; tests move it to pass graces.
	now func() time.Time

	mu        sync.Mutex
	started   time.Time // when Start began watching; zero before
	informer  cache.SharedIndexInformer
	pods      corev1listers.PodLister
	synced    cache.InformerSynced
	gone      map[string]remembered // pods deleted, by name, with their last state
	created   map[string]remembered // pods this backend created, by name, for lookupPod
	decided   map[string]remembered // statuses the backend decided itself, by pod name
	preflight error
	// groupsPolicy is the finding of the last dry-run the API server
	// answered about supplementalGroupsPolicy, kept for rounds whose
	// dry-run it could not check (a full quota).
	groupsPolicy error
	// watchErr is the informer's latest list or watch failure, since
	// when failures have lasted; nil once a list or watch works again.
	watchErr      error
	watchErrSince time.Time
}

type remembered struct {
	pod    *corev1.Pod
	status batch.Status
	at     time.Time
	// deleteAfterLogs: the step's container has ended but the pod runs
	// on (a sidecar); Logs deletes it once the output is read.
	deleteAfterLogs bool
}

var (
	_ batch.Backend     = (*Backend)(nil)
	_ batch.Preflighter = (*Backend)(nil)
	_ batch.ImageNative = (*Backend)(nil)
	_ batch.SpecChecker = (*Backend)(nil)
)

// New checks cfg and returns a backend that talks to the cluster through
// api (see [NewClient]); log may be nil.
func New(cfg Config, api API, log *slog.Logger) (*Backend, error) {
	if err := CheckConfig(cfg); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	if api == nil {
		return nil, fmt.Errorf("kubernetes: no API client")
	}
	if log == nil {
		log = slog.Default()
	}
	b := &Backend{
		cfg: cfg, api: api, log: log.With("backend", Name, "namespace", cfg.Namespace),
		now: time.Now, gone: map[string]remembered{}, decided: map[string]remembered{}, created: map[string]remembered{},
		preflight: fmt.Errorf("kubernetes: the backend has not been started"),
	}
	return b, nil
}

// Name implements batch.Backend.
func (b *Backend) Name() string { return Name }

// CheckSpec implements batch.SpecChecker: what BuildPod would refuse with
// the site's configuration (the workspace outside the claim, the user's
// uid or gid, resources above the site's maximum or not quantities, an
// image that is a file), said before any job of the workflow exists.
func (b *Backend) CheckSpec(spec batch.Spec) error {
	if _, err := BuildPod(spec, b.cfg); err != nil {
		return fmt.Errorf("kubernetes: %w", err)
	}
	return nil
}

// ImageNative implements batch.ImageNative: the kubelet pulls and runs
// the step's image, so the engine neither resolves it for Apptainer nor
// sets Spec.Runner (which BuildPod would ignore anyway).
func (b *Backend) ImageNative() bool { return true }

// handleData is what Handle.Data holds: enough to find the pod again
// after a restart, and when it was made, for the lookup grace.
type handleData struct {
	Namespace string    `json:"namespace"`
	Pod       string    `json:"pod"`
	Created   time.Time `json:"created"`
}

func (b *Backend) handle(pod *corev1.Pod) batch.Handle {
	created := pod.CreationTimestamp.Time
	if created.IsZero() {
		created = b.now()
	}
	data, _ := json.Marshal(handleData{Namespace: pod.Namespace, Pod: pod.Name, Created: created.UTC()})
	return batch.Handle{Backend: Name, Version: 1, ID: pod.Name, Data: data}
}

// ref finds a job's pod: from its handle, or from its spec for a handle
// that lacks it.
func (b *Backend) ref(j batch.Job) handleData {
	var h handleData
	_ = json.Unmarshal(j.Handle.Data, &h)
	if h.Namespace == "" {
		h.Namespace = b.cfg.Namespace
	}
	if h.Pod == "" {
		h.Pod = j.Handle.ID
	}
	if h.Pod == "" {
		h.Pod = PodName(j.Spec.JobID, j.Spec.StepName)
	}
	return h
}

// ours reports whether pod is the one this backend made for jobID. The
// fake clientset's watch ignores label selectors, and a real namespace
// may hold someone else's pod of the same name, so every pod read from the
// cache is checked.
func ours(pod *corev1.Pod, jobID string) bool {
	return pod.Labels[LabelManagedBy] == ManagedBy && (jobID == "" || pod.Annotations[AnnotationJobID] == jobID)
}

// createParallelism bounds the pod creates one SubmitMany has in flight:
// enough to hide the API server's latency, few enough not to flood it.
const createParallelism = 8

// SubmitMany implements batch.ManySubmitter: the pods of a group are
// created concurrently, each exactly as Submit creates it.
func (b *Backend) SubmitMany(ctx context.Context, specs []batch.Spec) []batch.Submitted {
	return batch.SubmitConcurrently(ctx, specs, createParallelism, b.Submit)
}

// Submit implements batch.Backend: check the workspace claim, then create
// the pod. A second Submit of the same job finds the pod the first made.
//
// A pod already there is looked up before any create: ResourceQuota
// charges a create at admission even when it then fails with
// AlreadyExists, and without a controller manager to recount, the charge
// stays, so a resubmission that created again would eat the namespace's
// quota. The informer's cache answers without an API call; only while it
// is not synced is the API server asked.
func (b *Backend) Submit(ctx context.Context, spec batch.Spec) (batch.Handle, error) {
	pod, err := BuildPod(spec, b.cfg)
	if err != nil {
		return batch.Handle{}, fmt.Errorf("kubernetes: %w", err)
	}
	secrets, err := b.readSecrets(ctx, spec)
	if err != nil {
		return batch.Handle{}, err
	}
	if len(secrets) > 0 { // a user without secrets gets no Secret
		if err := withSecrets(pod, secrets); err != nil {
			return batch.Handle{}, fmt.Errorf("kubernetes: %w", err)
		}
	}
	if err := b.checkClaim(ctx); err != nil {
		return batch.Handle{}, err
	}
	existing, err := b.lookupPod(ctx, pod.Name)
	if err != nil {
		return batch.Handle{}, err
	}
	if existing != nil {
		return b.adopt(ctx, spec, existing, secrets)
	}
	created, err := b.api.CreatePod(ctx, b.cfg.Namespace, pod, metav1.CreateOptions{FieldManager: ManagedBy})
	if err == nil {
		if err := b.admitStored(ctx, created); err != nil {
			return batch.Handle{}, err
		}
		if err := b.podSecret(ctx, created, secrets); err != nil {
			return batch.Handle{}, err
		}
		b.remember(b.created, created.Name, remembered{})
		b.log.Info("pod created", "pod", created.Name, "job", spec.JobID, "uid", spec.User.UID)
		return b.handle(created), nil
	}
	if !apierrors.IsAlreadyExists(err) {
		return batch.Handle{}, b.createError(pod, int64(spec.User.UID), err)
	}
	// Made meanwhile (or missed by the cache): the stored pod is judged
	// as a new one would be.
	existing, err = b.api.GetPod(ctx, b.cfg.Namespace, pod.Name)
	if err != nil {
		return batch.Handle{}, b.apiError("look up existing pod "+pod.Name, err)
	}
	return b.adopt(ctx, spec, existing, secrets)
}

// lookupPod finds a pod of this name already in the namespace: in the
// cache once it has synced, else by a GET, as for a pod this backend
// created that the cache may not have seen yet. Nil when there is none.
func (b *Backend) lookupPod(ctx context.Context, name string) (*corev1.Pod, error) {
	b.mu.Lock()
	lister := b.pods
	b.mu.Unlock()
	if lister != nil && b.ready() && b.watchOutage() == nil {
		if p, err := lister.Pods(b.cfg.Namespace).Get(name); err == nil {
			return p.DeepCopy(), nil
		}
		if c, ok := b.recall(b.created, name); !ok || b.now().Sub(c.at) > lookupGrace {
			return nil, nil
		}
	}
	p, err := b.api.GetPod(ctx, b.cfg.Namespace, name)
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, b.apiError("look up pod "+name, err)
	}
	return p, nil
}

// adopt takes a pod found already there as the step's, after the checks
// a pod just created gets: a pod made earlier, when the API server
// dropped the Strict groups policy, must not run on with the image's
// groups because a later Submit found it.
func (b *Backend) adopt(ctx context.Context, spec batch.Spec, existing *corev1.Pod, secrets []asuser.Secret) (batch.Handle, error) {
	if !ours(existing, spec.JobID) {
		return batch.Handle{}, fmt.Errorf("kubernetes: a pod named %s already exists in namespace %s and is not this step's (its %s annotation is %q)",
			existing.Name, b.cfg.Namespace, AnnotationJobID, existing.Annotations[AnnotationJobID])
	}
	if err := b.admitStored(ctx, existing); err != nil {
		return batch.Handle{}, err
	}
	if err := b.podSecret(ctx, existing, secrets); err != nil {
		return batch.Handle{}, err
	}
	b.log.Info("pod already there, adopted", "pod", existing.Name, "job", spec.JobID)
	return b.handle(existing), nil
}

// podSecret makes the Secret a pod with a secrets volume waits for (the
// daemon may have died between the two creates). A pod whose Secret
// cannot be made would never start: it is deleted.
func (b *Backend) podSecret(ctx context.Context, pod *corev1.Pod, secrets []asuser.Secret) error {
	if !slices.ContainsFunc(pod.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == SecretsVolume }) &&
		!slices.ContainsFunc(pod.Spec.Containers[0].Env, func(e corev1.EnvVar) bool { return e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil }) {
		return nil
	}
	err := b.createSecret(ctx, pod, secrets)
	if err == nil {
		return nil
	}
	if derr := b.api.DeletePod(ctx, b.cfg.Namespace, pod.Name); derr != nil && !apierrors.IsNotFound(derr) {
		b.log.Error("could not delete a step pod whose Secret could not be made", "pod", pod.Name, "err", derr)
	}
	return err
}

// admitStored checks a step pod as the API server stored it. One that lost
// its Strict groups policy would run with the image's groups: it goes
// before its container can start, if it can.
func (b *Backend) admitStored(ctx context.Context, pod *corev1.Pod) error {
	err := b.groupsPolicyKept(pod)
	if err == nil {
		return nil
	}
	if derr := b.api.DeletePod(ctx, b.cfg.Namespace, pod.Name); derr != nil && !apierrors.IsNotFound(derr) {
		b.log.Error("could not delete a step pod stored without its groups policy; delete it by hand", "pod", pod.Name, "err", derr)
	}
	return err
}

// checkClaim makes sure the workspace claim exists and is bound, which
// would otherwise show only as a pod that never gets a node.
func (b *Backend) checkClaim(ctx context.Context) error {
	pvc, err := b.api.GetClaim(ctx, b.cfg.Namespace, b.cfg.ClaimName)
	switch {
	case apierrors.IsNotFound(err):
		return fmt.Errorf("kubernetes: the workspace volume claim %q does not exist in namespace %s; "+
			"the site admin must create it on the NFS export holding %s (see deploy/kubernetes/README.md)",
			b.cfg.ClaimName, b.cfg.Namespace, b.cfg.WorkspaceRoot)
	case err != nil:
		return b.apiError("read the workspace volume claim "+b.cfg.ClaimName, err)
	case pvc.Status.Phase != corev1.ClaimBound:
		return fmt.Errorf("kubernetes: the workspace volume claim %q in namespace %s is not bound (phase %s); "+
			"the site admin must bind it to the NFS export holding %s", b.cfg.ClaimName, b.cfg.Namespace, pvcPhase(pvc), b.cfg.WorkspaceRoot)
	}
	return nil
}

func pvcPhase(pvc *corev1.PersistentVolumeClaim) string {
	if pvc.Status.Phase == "" {
		return "unknown"
	}
	return string(pvc.Status.Phase)
}

// Cancel implements batch.Backend: delete the pod. The kubelet gives the
// command its grace period to stop.
func (b *Backend) Cancel(ctx context.Context, j batch.Job) error {
	r := b.ref(j)
	err := b.api.DeletePod(ctx, r.Namespace, r.Pod)
	if err != nil && !apierrors.IsNotFound(err) {
		return b.apiError("delete pod "+r.Pod, err)
	}
	// Only once the pod is going: a pod that could not be deleted runs on
	// and must not be reported stopped.
	b.remember(b.decided, r.Pod, remembered{status: batch.Status{State: batch.Stopped, Reason: "stopped by the user"}})
	return nil
}

// CancelUnrecorded implements batch.UnrecordedCanceller: a job's pod name
// follows from its id, so the pod is deleted without a handle.
func (b *Backend) CancelUnrecorded(ctx context.Context, s batch.Spec) error {
	return b.Cancel(ctx, batch.Job{Spec: s})
}

// remember records an entry and forgets entries older than memoryTTL.
func (b *Backend) remember(m map[string]remembered, pod string, r remembered) {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	r.at = now
	m[pod] = r
	for k, v := range m {
		if now.Sub(v.at) > memoryTTL {
			delete(m, k)
		}
	}
}

func (b *Backend) recall(m map[string]remembered, pod string) (remembered, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	r, ok := m[pod]
	return r, ok
}
