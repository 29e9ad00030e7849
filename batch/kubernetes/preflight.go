package kubernetes

import (
	"context"
	"errors"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

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
		User:         batch.Account{Name: "preflight", UID: uid, GID: uid, Groups: []uint32{uid}},
	}, b.cfg)
	if err != nil {
		return nil, fmt.Errorf("build the preflight pod: %w", err)
	}
	pod.Name = PreflightPodName
	return pod, nil
}

// Preflight implements batch.Preflighter: the latest finding of
// RunPreflight, nil when Kubernetes steps would be admitted.
func (b *Backend) Preflight() error {
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
// create that stores nothing. It records and returns the finding, worded
// as Submit would word the refusal. Start runs it, then every
// PreflightInterval; the daemon may also call it when its configuration
// changes.
func (b *Backend) RunPreflight(ctx context.Context) error {
	err := b.preflightOnce(ctx)
	prev := b.Preflight()
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
	claimErr := b.checkClaim(ctx)
	pod, err := b.canonicalPod()
	if err != nil {
		return errors.Join(claimErr, fmt.Errorf("kubernetes: %w", err))
	}
	_, err = b.api.CreatePod(ctx, b.cfg.Namespace, pod, metav1.CreateOptions{
		DryRun: []string{metav1.DryRunAll}, FieldManager: ManagedBy,
	})
	if err != nil {
		err = fmt.Errorf("preflight (a dry-run step pod running as uid %d): %w", b.cfg.PreflightUID, b.createError(pod.Name, int64(b.cfg.PreflightUID), err))
	}
	return errors.Join(claimErr, err)
}
