package kubernetes

import (
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"

	"github.com/reana-site/reana-site/batch"
)

// nodeTrouble are pod failure reasons that say the node ended the pod.
var nodeTrouble = map[string]bool{
	"Evicted": true, "Preempting": true, "Shutdown": true, "NodeShutdown": true,
	"Terminated": true, "NodeAffinity": true, "UnexpectedAdmissionError": true,
}

// podView is what mapping a pod to a status needs besides the pod.
type podView struct {
	cfg Config
	now time.Time
	// submitted is when the pod was created, from the job's handle; it
	// stands in for timestamps the pod lacks.
	submitted time.Time
	// userTimeout is the step's own kubernetes_job_timeout (0 if none),
	// to say whose limit a deadline was.
	userTimeout int
}

// verdict is a status decided while the pod had not ended (unschedulable
// or an image that cannot be pulled, past their grace). The pod must then
// be deleted, or it might start later after its step has failed.
type verdict struct {
	batch.Status
	deletePod bool
}

// mapPod reads a pod's phase, conditions and container state as a step
// status. It is pure; the caller deletes the pod when told to.
func (v podView) mapPod(pod *corev1.Pod) verdict {
	switch pod.Status.Phase {
	case corev1.PodSucceeded:
		zero := 0
		return verdict{Status: batch.Status{State: batch.Succeeded, ExitCode: &zero}}
	case corev1.PodFailed:
		return verdict{Status: v.failed(pod)}
	case corev1.PodRunning:
		return verdict{Status: batch.Status{State: batch.Running}}
	case corev1.PodUnknown:
		return verdict{Status: batch.Status{State: batch.Unknown, Reason: "Kubernetes lost contact with the pod's node"}}
	}
	return v.pending(pod)
}

// failed explains a pod that ended in phase Failed.
func (v podView) failed(pod *corev1.Pod) batch.Status {
	who := fmt.Sprintf("pod %s, ran as uid %s", pod.Name, runAs(pod))
	switch reason := pod.Status.Reason; {
	case reason == "DeadlineExceeded":
		limit := int64(0)
		if d := pod.Spec.ActiveDeadlineSeconds; d != nil {
			limit = *d
		}
		whose := "the site's default step time limit"
		if v.userTimeout > 0 {
			whose = "kubernetes_job_timeout"
		}
		return batch.Status{State: batch.Failed, Reason: fmt.Sprintf("the step exceeded %s of %d s and was stopped (%s)", whose, limit, pod.Name)}
	case nodeTrouble[reason] || strings.HasPrefix(reason, "OutOf"):
		// The node, not the step, ended it (the kubelet's OutOfcpu and
		// OutOfmemory refusals included): worth another try.
		return batch.Status{State: batch.Failed, Retry: true, Reason: fmt.Sprintf("Kubernetes evicted the step's pod %s (%s): %s", pod.Name, pod.Status.Reason, pod.Status.Message)}
	}
	if c := condition(pod, corev1.DisruptionTarget); c != nil && c.Status == corev1.ConditionTrue {
		// The node was drained, preempted or tainted: not the step's fault.
		return batch.Status{State: batch.Failed, Retry: true, Reason: fmt.Sprintf("Kubernetes evicted the step's pod %s (%s): %s", pod.Name, c.Reason, c.Message)}
	}
	cs := containerStatus(pod)
	if cs == nil || cs.State.Terminated == nil {
		msg := pod.Status.Message
		if msg == "" {
			msg = "no container state was recorded"
		}
		return batch.Status{State: batch.Failed, Reason: fmt.Sprintf("the step's pod failed (%s): %s", pod.Name, msg)}
	}
	t := cs.State.Terminated
	code := int(t.ExitCode)
	st := batch.Status{State: batch.Failed, ExitCode: &code, Signal: int(t.Signal)}
	switch {
	case t.Reason == "OOMKilled":
		limit := "no memory limit was set"
		if q, ok := memoryLimit(pod); ok {
			limit = "limit " + q
		}
		st.Reason = fmt.Sprintf("the step ran out of memory (%s; raise kubernetes_memory_limit) (%s)", limit, who)
	case t.Reason == "ContainerCannotRun" || t.Reason == "StartError":
		st.Reason = fmt.Sprintf("the step's container could not start (%s): %s", pod.Name, strings.TrimSpace(t.Message))
	default:
		st.Reason = fmt.Sprintf("command exited with status %d (%s)", code, who)
	}
	return st
}

// pending explains a pod that has not started its container, and fails
// it once it has waited past the grace for its reason.
func (v podView) pending(pod *corev1.Pod) verdict {
	wait := func(reason string) verdict {
		return verdict{Status: batch.Status{State: batch.Pending, Reason: reason}}
	}
	fail := func(reason string) verdict {
		return verdict{Status: batch.Status{State: batch.Failed, Reason: reason}, deletePod: true}
	}
	if c := condition(pod, corev1.PodScheduled); c != nil && c.Status == corev1.ConditionFalse && c.Reason == corev1.PodReasonUnschedulable {
		since := v.since(c.LastTransitionTime.Time)
		msg := c.Message
		if strings.Contains(msg, "persistentvolumeclaim") || strings.Contains(msg, "PersistentVolumeClaim") {
			msg += fmt.Sprintf(" (the site's workspace claim %q is missing or not bound: report this to the site admin)", v.cfg.ClaimName)
		}
		if v.now.Sub(since) > v.cfg.UnschedulableGrace {
			return fail(fmt.Sprintf("Kubernetes could not find a node for the step's pod %s for %s: %s", pod.Name, v.cfg.UnschedulableGrace, msg))
		}
		return wait("waiting for a node: " + msg)
	}
	started := v.since(startTime(pod))
	cs := containerStatus(pod)
	if cs == nil || cs.State.Waiting == nil {
		if c := condition(pod, corev1.PodScheduled); c == nil || c.Status != corev1.ConditionTrue {
			return wait("the pod is being scheduled")
		}
		cs = &corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}
	}
	w := cs.State.Waiting
	switch w.Reason {
	case "InvalidImageName":
		return fail(fmt.Sprintf("the image %s of pod %s is not a valid image name: %s", cs.Image, pod.Name, w.Message))
	case "CreateContainerConfigError":
		return fail(fmt.Sprintf("Kubernetes cannot create the step's container in pod %s: %s", pod.Name, w.Message))
	case "ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "RegistryUnavailable", "SignatureValidationFailed":
		if v.now.Sub(started) > v.cfg.ImagePullGrace {
			return fail(fmt.Sprintf("the image %s cannot be pulled (%s for more than %s; pod %s): %s", cs.Image, w.Reason, v.cfg.ImagePullGrace, pod.Name, w.Message))
		}
		return wait(fmt.Sprintf("pulling the image %s is failing (%s): %s", cs.Image, w.Reason, w.Message))
	case "CreateContainerError":
		if v.now.Sub(started) > v.cfg.ImagePullGrace {
			return fail(fmt.Sprintf("Kubernetes cannot create the step's container in pod %s: %s", pod.Name, w.Message))
		}
		return wait("creating the container is failing: " + w.Message)
	}
	if v.now.Sub(started) > v.cfg.StartGrace {
		// The pod's events say why (FailedMount, say); the backend adds
		// the latest one, which takes an API call, only now.
		return verdict{Status: batch.Status{State: batch.Failed, Reason: fmt.Sprintf(
			"the step's pod %s did not start within %s (%s)", pod.Name, v.cfg.StartGrace, w.Reason)}, deletePod: true}
	}
	return wait("starting the container (" + w.Reason + ")")
}

// since is t, or when the pod was submitted if t is unknown.
func (v podView) since(t time.Time) time.Time {
	if t.IsZero() {
		return v.submitted
	}
	return t
}

func startTime(pod *corev1.Pod) time.Time {
	if pod.Status.StartTime == nil {
		return time.Time{}
	}
	return pod.Status.StartTime.Time
}

func condition(pod *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range pod.Status.Conditions {
		if pod.Status.Conditions[i].Type == t {
			return &pod.Status.Conditions[i]
		}
	}
	return nil
}

func containerStatus(pod *corev1.Pod) *corev1.ContainerStatus {
	for i := range pod.Status.ContainerStatuses {
		if pod.Status.ContainerStatuses[i].Name == ContainerName {
			return &pod.Status.ContainerStatuses[i]
		}
	}
	return nil
}

func memoryLimit(pod *corev1.Pod) (string, bool) {
	for _, c := range pod.Spec.Containers {
		if c.Name == ContainerName {
			if q, ok := c.Resources.Limits[corev1.ResourceMemory]; ok {
				return q.String(), true
			}
		}
	}
	return "", false
}

// runAs says who the pod ran as, the first thing to check when a step
// fails with "permission denied" on the NFS volume.
func runAs(pod *corev1.Pod) string {
	sc := pod.Spec.SecurityContext
	if sc == nil || sc.RunAsUser == nil {
		return "unknown"
	}
	s := fmt.Sprint(*sc.RunAsUser)
	if sc.RunAsGroup != nil {
		s += fmt.Sprintf(" gid %d", *sc.RunAsGroup)
	}
	if len(sc.SupplementalGroups) > 0 {
		s += fmt.Sprintf(" groups %v", sc.SupplementalGroups)
	}
	return s
}
