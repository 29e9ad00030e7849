package kubernetes

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Defaults for the Config fields whose zero value means "the default".
const (
	DefaultSCC                = "nonroot-v2"
	DefaultUnschedulableGrace = 10 * time.Minute
	DefaultImagePullGrace     = 5 * time.Minute
	DefaultStartGrace         = 30 * time.Minute
	DefaultPodRetention       = 24 * time.Hour
	DefaultPreflightInterval  = 5 * time.Minute
	DefaultSyncTimeout        = 30 * time.Second
	DefaultPreflightImage     = "docker.io/library/busybox:1.36"
	DefaultWatchErrorGrace    = time.Minute
	DefaultRequestTimeout     = 30 * time.Second
)

// Config is the site's Kubernetes setup. Every step pod lives in one
// namespace, reads and writes the workspace through one claim, and runs as
// the submitting user's uid, gid and groups.
type Config struct {
	// Namespace holds every step pod. Required.
	Namespace string
	// ClaimName is the PersistentVolumeClaim whose volume is the NFS
	// export the daemon writes workspaces to. Required: Pod Security
	// "restricted" and OpenShift's SCCs forbid inline nfs and hostPath
	// volumes, so a claim is the only way in.
	ClaimName string
	// WorkspaceRoot is the host path, on the daemon's machine, of the root
	// of the claim's volume. A step mounts the claim with subPath = its
	// workspace relative to this root, at the workspace's own absolute
	// path, so absolute paths in commands mean the same in the pod.
	// Required; a workspace outside it is refused.
	WorkspaceRoot string
	// StepServiceAccount is the service account step pods run under: one
	// with no rights (and, on OpenShift, the one allowed to use the SCC).
	// Empty leaves the namespace's "default" account.
	StepServiceAccount string
	// OpenShift pins the SCC of every step pod with the
	// openshift.io/required-scc annotation, so a more permissive SCC that
	// happens to be granted (anyuid, at priority 10) is never chosen.
	OpenShift bool
	// SCC is the SecurityContextConstraints name pinned on OpenShift;
	// empty means DefaultSCC (nonroot-v2, which accepts any non-zero uid).
	SCC string
	// MinUID refuses users whose uid is below it; uid 0 and gid 0 are
	// refused whatever it says. The daemon checks this too; the backend
	// does again because a pod is where a wrong uid would do harm.
	MinUID uint32
	// MaxCPU and MaxMemory are the largest CPU and memory a step may ask
	// for (Kubernetes quantities such as "16" or "64Gi"); empty means no
	// site maximum (the namespace's LimitRange and quota still apply).
	MaxCPU    string
	MaxMemory string
	// DefaultCPU is the CPU request of a step that names none; empty sets
	// none. No CPU limit is set unless the step asks for one: a limit
	// throttles, while a request only reserves.
	DefaultCPU string
	// DefaultMemory is the memory request and limit of a step that names
	// none; empty sets none, leaving it to the namespace's LimitRange.
	// With MaxMemory set, a step left without a memory limit (no
	// kubernetes_memory_limit and no DefaultMemory) gets MaxMemory as its
	// limit, so that no step uses more than the site allows; its request
	// is then its own kubernetes_memory_request, or 0 (an explicit 0,
	// because Kubernetes would otherwise copy the limit into the request
	// and reserve the whole maximum on a node).
	DefaultMemory string
	// DefaultJobTimeout bounds the run time (activeDeadlineSeconds) of a
	// step without kubernetes_job_timeout; zero means no bound. A negative
	// kubernetes_job_timeout is refused.
	DefaultJobTimeout time.Duration
	// ImagePullSecrets name Secrets in Namespace that step pods use to
	// pull images from private registries. The kubelet reads them, so the
	// daemon needs no rights on Secrets. Entries are trimmed of spaces;
	// empty ones are ignored.
	ImagePullSecrets []string
	// AllowImageGroups accepts an API server that drops the pod's
	// securityContext.supplementalGroupsPolicy (Kubernetes before 1.33
	// without the SupplementalGroupsPolicy feature gate). Every step pod
	// asks for the Strict policy, under which a container's processes get
	// exactly the user's gid and groups; under the default Merge policy
	// the container runtime adds the groups the image's /etc/group lists
	// for the uid, so a user-chosen image could give its step any gid,
	// root's group 0 included, and pass the group permission checks on
	// the NFS volume. By default the preflight refuses Kubernetes steps on
	// such a cluster; setting this says the site accepts that images can
	// add groups to their steps.
	AllowImageGroups bool
	// UnschedulableGrace is how long a pod may stay unschedulable before
	// its step fails with the scheduler's message; zero means
	// DefaultUnschedulableGrace.
	UnschedulableGrace time.Duration
	// ImagePullGrace is how long image pull errors (ErrImagePull,
	// ImagePullBackOff) and container creation errors may last before the
	// step fails; zero means DefaultImagePullGrace. InvalidImageName and
	// CreateContainerConfigError fail at once.
	ImagePullGrace time.Duration
	// StartGrace is how long a scheduled pod may take to start its
	// container (pulling a large image, mounting the volume) before the
	// step fails with the pod's latest warning; zero means
	// DefaultStartGrace.
	StartGrace time.Duration
	// PodRetention is how long a finished pod is kept, for kubectl logs
	// and describe, before it is deleted; it counts from when the pod
	// ended or this daemon started, whichever is later, so pods that
	// ended while the daemon was down are kept until it has collected
	// them. Zero means DefaultPodRetention; negative keeps pods forever.
	PodRetention time.Duration
	// PreflightInterval is how often the preflight runs after Start;
	// zero means DefaultPreflightInterval.
	PreflightInterval time.Duration
	// PreflightUID is the uid (and gid) of the canonical pod the
	// preflight dry-runs; zero means MinUID, or 1000 if that is zero too.
	PreflightUID uint32
	// PreflightImage is the image of the canonical pod (never pulled: the
	// pod is only dry-run); empty means DefaultPreflightImage.
	PreflightImage string
	// SyncTimeout bounds Start's wait for the first list of pods; zero
	// means DefaultSyncTimeout.
	SyncTimeout time.Duration
	// WatchErrorGrace is how long the informer's list and watch of the
	// pods may keep failing (API server down, an expired token, the Role
	// removed) before Status reports the backend unavailable, naming the
	// error, and the preflight includes it; zero means
	// DefaultWatchErrorGrace. Running steps are not failed for it.
	WatchErrorGrace time.Duration
	// RequestTimeout bounds each API call of the preflight and of the
	// janitor, so that one hung request cannot stop them; zero means
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
}

// withDefaults returns c with every zero field that has a default set.
func (c Config) withDefaults() Config {
	set := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	if c.SCC == "" {
		c.SCC = DefaultSCC
	}
	set(&c.UnschedulableGrace, DefaultUnschedulableGrace)
	set(&c.ImagePullGrace, DefaultImagePullGrace)
	set(&c.StartGrace, DefaultStartGrace)
	set(&c.PodRetention, DefaultPodRetention)
	set(&c.PreflightInterval, DefaultPreflightInterval)
	set(&c.SyncTimeout, DefaultSyncTimeout)
	set(&c.WatchErrorGrace, DefaultWatchErrorGrace)
	set(&c.RequestTimeout, DefaultRequestTimeout)
	if c.PreflightUID == 0 {
		c.PreflightUID = max(c.MinUID, 1000)
	}
	if c.PreflightImage == "" {
		c.PreflightImage = DefaultPreflightImage
	}
	return c
}

// validate reports every problem with the configuration at once, so an
// admin fixes them in one go.
func (c Config) validate() error {
	var errs []error
	if msgs := validation.IsDNS1123Label(c.Namespace); c.Namespace == "" || len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("namespace %q is not a namespace name", c.Namespace))
	}
	if msgs := validation.IsDNS1123Subdomain(c.ClaimName); c.ClaimName == "" || len(msgs) > 0 {
		errs = append(errs, fmt.Errorf("claim name %q is not a PersistentVolumeClaim name", c.ClaimName))
	}
	if !filepath.IsAbs(c.WorkspaceRoot) {
		errs = append(errs, fmt.Errorf("workspace root %q is not an absolute path", c.WorkspaceRoot))
	}
	if sa := c.StepServiceAccount; sa != "" && len(validation.IsDNS1123Subdomain(sa)) > 0 {
		errs = append(errs, fmt.Errorf("step service account %q is not a service account name", sa))
	}
	for _, s := range pullSecretNames(c.ImagePullSecrets) {
		if len(validation.IsDNS1123Subdomain(s)) > 0 {
			errs = append(errs, fmt.Errorf("image pull secret %q is not a Secret name", s))
		}
	}
	for _, f := range []struct{ name, q string }{
		{"maximum CPU", c.MaxCPU}, {"maximum memory", c.MaxMemory}, {"default CPU", c.DefaultCPU}, {"default memory", c.DefaultMemory},
	} {
		if f.q == "" {
			continue
		}
		if v, err := resource.ParseQuantity(f.q); err != nil || v.Sign() <= 0 {
			errs = append(errs, fmt.Errorf("%s %q is not a positive Kubernetes quantity", f.name, f.q))
		}
	}
	if c.DefaultJobTimeout < 0 {
		errs = append(errs, fmt.Errorf("default job timeout %s is negative", c.DefaultJobTimeout))
	}
	// PodRetention may be negative (keep pods forever); these may not.
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"unschedulable grace", c.UnschedulableGrace}, {"image pull grace", c.ImagePullGrace},
		{"start grace", c.StartGrace}, {"preflight interval", c.PreflightInterval},
		{"sync timeout", c.SyncTimeout}, {"watch error grace", c.WatchErrorGrace},
		{"request timeout", c.RequestTimeout},
	} {
		if d.v < 0 {
			errs = append(errs, fmt.Errorf("%s %s is negative (zero means the default)", d.name, d.v))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("kubernetes: configuration: %w", err)
	}
	return nil
}

// CheckConfig reports what is wrong with cfg without talking to a cluster,
// so the daemon refuses a bad setting at start: the fields themselves, and
// the canonical step pod built from the site's defaults (a default above
// the site's maximum).
func CheckConfig(cfg Config) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	b := &Backend{cfg: cfg.withDefaults()}
	if _, err := b.canonicalPod(); err != nil {
		return fmt.Errorf("kubernetes: configuration: %w", err)
	}
	return nil
}
