package kubernetes

import (
	"context"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/labels"
)

// sidecarGrace is how long a pod may run on after its step container
// ended (a sidecar, or a container a webhook injected) before the janitor
// deletes it. Logs deletes such a pod as soon as the step's output has
// been read; this catches the ones whose output is never asked for (a
// step stopped meanwhile).
const sidecarGrace = 5 * time.Minute

// collect deletes this backend's pods that ended more than PodRetention
// ago, and pods still running sidecarGrace after their step container
// ended. The time counts from when the pod (or its step container) ended
// or this backend started, whichever is later, so pods that ended while
// the daemon was down stay until the engine, now running, has read their
// status and output. Each delete is bounded by RequestTimeout.
func (b *Backend) collect(ctx context.Context) {
	if !b.ready() {
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
		keep := b.cfg.PodRetention
		why := "finished pod past its retention"
		if !ok {
			t := stepTerminated(pod)
			if t == nil {
				continue
			}
			ended, keep, why = t.FinishedAt.Time, sidecarGrace, "pod whose step ended but whose other containers run on"
		}
		if keep < 0 {
			continue
		}
		if ended.Before(started) {
			ended = started
		}
		if now.Sub(ended) < keep {
			continue
		}
		dctx, cancel := context.WithTimeout(ctx, b.cfg.RequestTimeout)
		err := b.api.DeletePod(dctx, pod.Namespace, pod.Name)
		cancel()
		if err != nil && !apierrors.IsNotFound(err) {
			b.log.Warn("delete "+why, "pod", pod.Name, "err", err)
			continue
		}
		b.log.Info("deleted "+why, "pod", pod.Name, "after", keep)
	}
}

// endedAt is when a pod that has ended did so: its container's finish
// time, else the latest condition change.
func endedAt(pod *corev1.Pod) (time.Time, bool) {
	if pod.Status.Phase != corev1.PodSucceeded && pod.Status.Phase != corev1.PodFailed {
		return time.Time{}, false
	}
	var t time.Time
	if term := stepTerminated(pod); term != nil {
		t = term.FinishedAt.Time
	}
	for _, c := range pod.Status.Conditions {
		if c.LastTransitionTime.After(t) {
			t = c.LastTransitionTime.Time
		}
	}
	return t, true
}
