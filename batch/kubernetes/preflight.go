package kubernetes

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
)

// PreflightPodName is the name of the canonical pod the preflight
// dry-runs; it is never stored.
const PreflightPodName = "reana-site-preflight"

// canonicalPod is a step pod as BuildPod makes it for a representative
// user and the site's defaults, so the preflight asks admission about
// exactly what real steps will look like.
func (b *Backend) canonicalPod() (*corev1.Pod, error) {
	uid := b.cfg.PreflightUID
	pod, err := BuildPod(batch.Spec{
		JobID:        "preflight",
		WorkflowID:   "preflight",
		WorkflowName: "preflight.1",
		StepName:     "preflight",
		Command:      "true",
		Image:        b.cfg.PreflightImage,
		Workspace:    b.cfg.WorkspaceRoot + "/" + PreflightPodName,
		Env:          map[string]string{"REANA_WORKSPACE": b.cfg.WorkspaceRoot + "/" + PreflightPodName},
		User:         asuser.Account{Name: "preflight", UID: uid, GID: uid, Groups: []uint32{uid}},
	}, b.cfg)
	if err != nil {
		return nil, fmt.Errorf("build the preflight pod: %w", err)
	}
	pod.Name = PreflightPodName
	return pod, nil
}

// Preflight implements batch.Preflighter: the latest finding of
// RunPreflight, nil when Kubernetes steps would be admitted, joined with
// the informer's watch failing past WatchErrorGrace (an outage, wrapping
// batch.ErrUnavailable).
func (b *Backend) Preflight() error {
	err := b.lastPreflight()
	if w := b.watchOutage(); w != nil {
		if err == nil {
			return w
		}
		return errors.Join(err, w)
	}
	return err
}

func (b *Backend) lastPreflight() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.preflight
}

func (b *Backend) setPreflight(err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.preflight = err
}

// RunPreflight checks now that the workspace claim exists and is bound
// and that admission (Pod Security, OpenShift SCC, RBAC, quota,
// LimitRange, webhooks) would take a step pod, by a server-side dry-run
// create that stores nothing, and that the API server keeps the pod's
// Strict supplementalGroupsPolicy. It records and returns the finding,
// worded as Submit would word the refusal. Start runs it, then every
// PreflightInterval; the daemon may also call it when its configuration
// changes. Each API call is bounded by RequestTimeout.
func (b *Backend) RunPreflight(ctx context.Context) error {
	err := b.preflightOnce(ctx)
	prev := b.lastPreflight()
	b.setPreflight(err)
	// Logged when the finding changes, not every round.
	switch {
	case err != nil && (prev == nil || prev.Error() != err.Error()):
		b.log.Warn("kubernetes preflight failed: steps would be refused", "err", err)
	case err == nil && prev != nil:
		b.log.Info("kubernetes preflight passed: steps will be admitted")
	}
	return err
}

// preflightOnce checks the claim and the dry-run both, so an admin sees
// every problem at once.
func (b *Backend) preflightOnce(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, b.cfg.RequestTimeout)
	claimErr := b.checkClaim(cctx)
	cancel()
	pod, err := b.canonicalPod()
	if err != nil {
		return errors.Join(claimErr, fmt.Errorf("kubernetes: %w", err))
	}
	dctx, cancel := context.WithTimeout(ctx, b.cfg.RequestTimeout)
	reply, err := b.api.CreatePod(dctx, b.cfg.Namespace, pod, metav1.CreateOptions{
		DryRun: []string{metav1.DryRunAll}, FieldManager: ManagedBy,
	})
	cancel()
	what := fmt.Sprintf("preflight (a dry-run step pod running as uid %d)", b.cfg.PreflightUID)
	switch {
	case err == nil:
		groups := b.groupsPolicyKept(reply)
		if groups != nil {
			groups = fmt.Errorf("%s: %w", what, groups)
		}
		b.mu.Lock()
		b.groupsPolicy = groups
		b.mu.Unlock()
		return errors.Join(claimErr, groups)
	case quotaBusy(err):
		// Admission got as far as the quota, which only the namespace's
		// current use fills: steps wait for room, they are not refused.
		// Whether the API server keeps the groups policy, this round
		// cannot tell; the last answer stands.
		b.log.Debug("kubernetes preflight: the namespace's quota is full right now", "err", err)
		b.mu.Lock()
		groups := b.groupsPolicy
		b.mu.Unlock()
		return errors.Join(claimErr, groups)
	}
	err = fmt.Errorf("%s: %w", what, b.createError(pod, int64(b.cfg.PreflightUID), err))
	return errors.Join(claimErr, err)
}

// groupsPolicyKept checks that the API server kept a step pod's Strict
// supplementalGroupsPolicy. One that does not know the field (Kubernetes
// before 1.33 without the SupplementalGroupsPolicy feature gate) drops
// it silently, and the runtime's default, Merge, then adds the groups the
// image's /etc/group gives the uid: an image the user chose could give
// the step any group, root's included. Unless the site accepts that
// (AllowImageGroups), steps are refused.
func (b *Backend) groupsPolicyKept(pod *corev1.Pod) error {
	if b.cfg.AllowImageGroups || pod == nil {
		return nil
	}
	if sc := pod.Spec.SecurityContext; sc != nil && sc.SupplementalGroupsPolicy != nil &&
		*sc.SupplementalGroupsPolicy == corev1.SupplementalGroupsPolicyStrict {
		return nil
	}
	return fmt.Errorf("kubernetes: site misconfiguration: the API server dropped the step pod's securityContext.supplementalGroupsPolicy: Strict, " +
		"so it does not know the field (Kubernetes before 1.33 without the SupplementalGroupsPolicy feature gate). " +
		"Under the default policy, Merge, the container runtime adds the groups the image's /etc/group gives the step's uid, " +
		"so an image a user chooses could give its step any group, root's group 0 included, and pass the group checks on the NFS volume. " +
		"The site admin upgrades the cluster to Kubernetes 1.33 or later (or enables the feature gate), " +
		"or, if the site accepts that images can add groups to their steps, sets the Kubernetes backend's AllowImageGroups " +
		"(REANA_SITE_KUBERNETES_ALLOW_IMAGE_GROUPS=true)")
}
