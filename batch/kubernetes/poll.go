package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reana-site/reana-site/batch"
)

// Status implements batch.Backend from the informer's cache alone. The
// API server is asked only about a pod the cache has not had for
// lookupGrace since it was created (after a restart, before the watch
// caught up, or because it was deleted meanwhile), and to delete a pod
// whose step failed before it could start.
func (b *Backend) Status(ctx context.Context, jobs []batch.Job) (map[string]batch.Status, error) {
	if !b.ready() {
		return nil, fmt.Errorf("kubernetes: not watching the pods of namespace %s yet: %w", b.cfg.Namespace, batch.ErrUnavailable)
	}
	if err := b.watchOutage(); err != nil {
		// The cache may be stale: nothing is judged from it (a grace
		// could run out on a pod that has long started) until the watch
		// works again. The engine waits, failing no running step.
		return nil, err
	}
	out := make(map[string]batch.Status, len(jobs))
	var errs []error
	for _, j := range jobs {
		st, err := b.status(ctx, j)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out[j.Spec.JobID] = st
	}
	return out, errors.Join(errs...)
}

func (b *Backend) status(ctx context.Context, j batch.Job) (batch.Status, error) {
	r := b.ref(j)
	if d, ok := b.recall(b.decided, r.Pod); ok {
		return d.status, nil
	}
	pod, err := b.pods.Pods(r.Namespace).Get(r.Pod)
	if err == nil {
		return b.judge(ctx, j, r, pod), nil
	}
	if st, ok := b.goneStatus(j, r); ok {
		return st, nil
	}
	if b.now().Sub(r.Created) < lookupGrace {
		return batch.Status{State: batch.Pending, Reason: "waiting for the new pod to be seen"}, nil
	}
	pod, err = b.api.GetPod(ctx, r.Namespace, r.Pod)
	switch {
	case apierrors.IsNotFound(err):
		// The cache drops a pod a moment before the delete handler runs:
		// look again before calling its end unknown.
		if st, ok := b.goneStatus(j, r); ok {
			return st, nil
		}
		return batch.Status{State: batch.Failed, Reason: fmt.Sprintf(
			"the step's pod %s no longer exists: it was deleted while reana-site was not watching, so how it ended is unknown", r.Pod)}, nil
	case err != nil:
		return batch.Status{}, b.apiError("look up pod "+r.Pod, err)
	}
	return b.judge(ctx, j, r, pod), nil
}

// goneStatus is the outcome of a job whose pod was deleted while watched:
// what its last state said if it had ended, else a failure.
func (b *Backend) goneStatus(j batch.Job, r handleData) (batch.Status, bool) {
	g, ok := b.recall(b.gone, r.Pod)
	if !ok || !ours(g.pod, j.Spec.JobID) {
		return batch.Status{}, false
	}
	st := b.view(j, r).mapPod(g.pod).Status
	if st.State.Terminal() {
		return st, true
	}
	if c := disruption(g.pod); c != nil {
		// Deleted by the eviction API (a node drain), the taint manager
		// or preemption, which mark the pod before they delete it.
		return disrupted(g.pod, c), true
	}
	return batch.Status{State: batch.Failed, Reason: fmt.Sprintf(
		"the step's pod %s was deleted before it finished, not by reana-site (kubectl delete, or the namespace's cleanup)", r.Pod)}, true
}

func (b *Backend) view(j batch.Job, r handleData) podView {
	return podView{cfg: b.cfg, now: b.now(), submitted: r.Created, userTimeout: j.Spec.Hints.JobTimeoutSeconds}
}

// judge maps the job's pod to its status. A step failed before its pod
// ended (never scheduled, image never pulled) has its pod deleted, so it
// cannot start after all; the verdict is remembered because the pod, once
// gone, no longer tells. A step whose container ended while another
// container keeps the pod running has its pod deleted by Logs, once its
// output has been read.
func (b *Backend) judge(ctx context.Context, j batch.Job, r handleData, pod *corev1.Pod) batch.Status {
	if !ours(pod, j.Spec.JobID) {
		return batch.Status{State: batch.Failed, Reason: fmt.Sprintf(
			"a pod named %s exists in namespace %s but is not this step's (its %s annotation is %q)",
			pod.Name, pod.Namespace, AnnotationJobID, pod.Annotations[AnnotationJobID])}
	}
	v := b.view(j, r).mapPod(pod)
	if !v.deletePod {
		return v.Status
	}
	if v.afterLogs {
		b.remember(b.decided, pod.Name, remembered{status: v.Status, deleteAfterLogs: true})
		return v.Status
	}
	if w := b.latestWarning(ctx, pod); w != "" && v.Reason != "" {
		// Events often repeat the container's waiting message; add only news.
		if _, msg, _ := strings.Cut(w, ": "); !strings.Contains(v.Reason, msg) {
			v.Reason += "; latest event: " + w
		}
	}
	b.remember(b.decided, pod.Name, remembered{status: v.Status})
	if err := b.api.DeletePod(ctx, pod.Namespace, pod.Name); err != nil && !apierrors.IsNotFound(err) {
		// The janitor does not touch pods that have not ended, so say so.
		b.log.Warn("could not delete the pod of a failed step; delete it by hand", "pod", pod.Name, "err", err)
	}
	return v.Status
}

// latestWarning is the newest Warning event about pod (FailedMount,
// FailedScheduling, Failed pulls), read only when a step fails before its
// pod starts. It is best effort: without it the reason still stands.
func (b *Backend) latestWarning(ctx context.Context, pod *corev1.Pod) string {
	evs, err := b.api.ListEvents(ctx, pod.Namespace, metav1.ListOptions{
		FieldSelector: "involvedObject.kind=Pod,involvedObject.name=" + pod.Name,
	})
	if err != nil {
		return ""
	}
	var latest *corev1.Event
	for i := range evs.Items {
		e := &evs.Items[i]
		// The selector is re-checked: not every client honours it.
		if e.Type != corev1.EventTypeWarning || e.InvolvedObject.Name != pod.Name || e.InvolvedObject.Kind != "Pod" {
			continue
		}
		if latest == nil || eventTime(e).After(eventTime(latest)) {
			latest = e
		}
	}
	if latest == nil {
		return ""
	}
	return latest.Reason + ": " + latest.Message
}

func eventTime(e *corev1.Event) time.Time {
	switch {
	case !e.LastTimestamp.IsZero():
		return e.LastTimestamp.Time
	case !e.EventTime.IsZero():
		return e.EventTime.Time
	}
	return e.FirstTimestamp.Time
}
