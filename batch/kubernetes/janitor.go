package kubernetes

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
)

// collect deletes this backend's pods that ended more than PodRetention
// ago. The time counts from when the pod ended or this backend started,
// whichever is later, so pods that ended while the daemon was down stay
// until the engine, now running, has read their status and output.
func (b *Backend) collect(ctx context.Context) {
	if b.cfg.PodRetention < 0 || !b.ready() {
		return
	}
	b.mu.Lock()
	started := b.started
	b.mu.Unlock()
	pods, err := b.pods.Pods(b.cfg.Namespace).List(labels.SelectorFromSet(labels.Set{LabelManagedBy: ManagedBy}))
	if err != nil {
		return
	}
	now := b.now()
	for _, pod := range pods {
		if !ours(pod, "") || pod.DeletionTimestamp != nil {
			continue
		}
		ended, ok := endedAt(pod)
		if !ok {
			continue
		}
		if ended.Before(started) {
			ended = started
		}
		if now.Sub(ended) < b.cfg.PodRetention {
			continue
		}
		err := b.api.DeletePod(ctx, pod.Namespace, pod.Name)
		if err != nil && !apierrors.IsNotFound(err) {
			b.log.Warn("delete finished pod", "pod", pod.Name, "err", err)
			continue
		}
		b.log.Info("deleted finished pod past its retention", "pod", pod.Name, "retention", b.cfg.PodRetention)
	}
}

// endedAt is when a pod that has ended did so: its container's finish
// time, else the latest condition change.
func endedAt(pod *corev1.Pod) (time.Time, bool) {
	if pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
		return time.Time{}, false
	}
	var t time.Time
	if cs := containerStatus(pod); cs != nil && cs.State.Terminated != nil {
		t = cs.State.Terminated.FinishedAt.Time
	}
	for _, c := range pod.Status.Conditions {
		if c.LastTransitionTime.After(t) {
			t = c.LastTransitionTime.Time
		}
	}
	return t, true
}
