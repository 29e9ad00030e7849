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
// or an image that cannot be pulled, past their grace, or a step
// container that ended while another container keeps the pod running).
// The pod must then be deleted, or it might start later after its step
// has failed, or run its other containers forever.
type verdict struct {
	batch.Status
	deletePod bool
	// afterLogs defers the delete until the step's output has been read:
	// the step's container ran, and its output goes with the pod.
	afterLogs bool
}

// mapPod reads a pod's phase, conditions and container state as a step
// status. It is pure; the caller deletes the pod when told to.
//
// The step container's own end decides, whatever the pod's phase: a
// sidecar or a container a webhook injected may keep the pod running after
// the step ended, or fail it although the step succeeded.
func (v podView) mapPod(pod *corev1.Pod) verdict {
	term := stepTerminated(pod)
	ended := pod.Status.Phase == corev1.PodSucceeded || pod.Status.Phase == corev1.PodFailed
	switch {
	case pod.Status.Phase == corev1.PodSucceeded, term != nil && term.ExitCode == 0:
		zero := 0
		return verdict{Status: batch.Status{State: batch.Succeeded, ExitCode: &zero}, deletePod: !ended, afterLogs: !ended}
	case pod.Status.Phase == corev1.PodFailed:
		return verdict{Status: v.failed(pod)}
	case term != nil:
		// The step failed; another container keeps the pod running.
		return verdict{Status: v.failed(pod), deletePod: true, afterLogs: true}
	case pod.Status.Phase == corev1.PodRunning:
		return verdict{Status: batch.Status{State: batch.Running}}
	case pod.Status.Phase == corev1.PodUnknown:
		return verdict{Status: batch.Status{State: batch.Unknown, Reason: "Kubernetes lost contact with the pod's node"}}
	}
	return v.pending(pod)
}

// failed explains a pod that ended in phase Failed, or whose step
// container ended with a failure.
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
	case reason == "SupplementalGroupsPolicyNotSupported":
		// The kubelet (1.33 and later) refuses a pod whose Strict
		// supplementalGroupsPolicy its container runtime cannot apply.
		// Another node may; the site admin should know either way.
		return batch.Status{State: batch.Failed, Retry: true, Reason: fmt.Sprintf(
			"the node %s cannot run the step's pod %s with supplementalGroupsPolicy Strict (its container runtime lacks support: "+
				"containerd 2.0 and CRI-O 1.31 have it); report this to the site admin: %s", nodeOf(pod), pod.Name, pod.Status.Message)}
	case nodeTrouble[reason] || strings.HasPrefix(reason, "OutOf"):
		// The node, not the step, ended it (the kubelet's OutOfcpu and
		// OutOfmemory refusals included): worth another try.
		return batch.Status{State: batch.Failed, Retry: true, Reason: fmt.Sprintf("Kubernetes evicted the step's pod %s (%s): %s", pod.Name, pod.Status.Reason, pod.Status.Message)}
	}
	if c := disruption(pod); c != nil {
		// The node was drained, preempted or tainted: not the step's fault.
		return disrupted(pod, c)
	}
	t := stepTerminated(pod)
	if t == nil {
		msg := pod.Status.Message
		if init := initTrouble(pod); init != "" {
			if msg != "" {
				msg += "; "
			}
			msg += init
		}
		if msg == "" {
			msg = "no container state was recorded"
		}
		return batch.Status{State: batch.Failed, Reason: fmt.Sprintf("the step's pod failed (%s): %s", pod.Name, msg)}
	}
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

// disruption is the pod's DisruptionTarget condition when it is true: the
// eviction API (a node drain), the taint manager, preemption or the
// kubelet ended the pod for the cluster's sake.
func disruption(pod *corev1.Pod) *corev1.PodCondition {
	if c := condition(pod, corev1.DisruptionTarget); c != nil && c.Status == corev1.ConditionTrue {
		return c
	}
	return nil
}

func disrupted(pod *corev1.Pod, c *corev1.PodCondition) batch.Status {
	return batch.Status{State: batch.Failed, Retry: true, Reason: fmt.Sprintf("Kubernetes evicted the step's pod %s (%s): %s", pod.Name, c.Reason, c.Message)}
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
			// Not scheduled, and no scheduler said it found no node:
			// scheduling gates, a schedulerName no scheduler serves, a
			// scheduler that is down. The same grace applies, from when
			// the pod was made.
			why := notScheduled(pod, c)
			if v.now.Sub(v.since(pod.CreationTimestamp.Time)) > v.cfg.UnschedulableGrace {
				return fail(fmt.Sprintf("Kubernetes did not schedule the step's pod %s within %s: %s", pod.Name, v.cfg.UnschedulableGrace, why))
			}
			return wait("waiting for a node: " + why)
		}
		cs = &corev1.ContainerStatus{State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}
	}
	w := cs.State.Waiting
	switch w.Reason {
	case "InvalidImageName":
		return fail(fmt.Sprintf("the image %s of pod %s is not a valid image name: %s", cs.Image, pod.Name, w.Message))
	case "CreateContainerConfigError":
		if strings.Contains(w.Message, fmt.Sprintf("secret %q not found", SecretName(pod.Name))) && v.now.Sub(started) <= v.cfg.StartGrace {
			// The pod's own Secret is made right after the pod.
			return wait("waiting for the step's Secret " + SecretName(pod.Name))
		}
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
	init := initTrouble(pod)
	if v.now.Sub(started) > v.cfg.StartGrace {
		// The pod's events say why (FailedMount, say); the backend adds
		// the latest one, which takes an API call, only now.
		reason := fmt.Sprintf("the step's pod %s did not start within %s (%s)", pod.Name, v.cfg.StartGrace, w.Reason)
		if init != "" {
			reason += ": " + init
		}
		return verdict{Status: batch.Status{State: batch.Failed, Reason: reason}, deletePod: true}
	}
	if init != "" {
		return wait("starting the container (" + w.Reason + "): " + init)
	}
	return wait("starting the container (" + w.Reason + ")")
}

// notScheduled says why a pod without an Unschedulable condition has no
// node, as far as the pod tells.
func notScheduled(pod *corev1.Pod, c *corev1.PodCondition) string {
	var gates []string
	for _, g := range pod.Spec.SchedulingGates {
		gates = append(gates, g.Name)
	}
	switch {
	case len(gates) > 0:
		return fmt.Sprintf("the pod's scheduling gates %v have not been removed (a webhook or a queueing controller of the cluster holds it back)", gates)
	case c != nil && c.Reason == corev1.PodReasonSchedulingGated:
		return "the pod is held back from scheduling (SchedulingGated) by a webhook or a queueing controller of the cluster"
	case pod.Spec.SchedulerName != "" && pod.Spec.SchedulerName != corev1.DefaultSchedulerName:
		return fmt.Sprintf("no scheduler has taken the pod yet; its schedulerName is %q, which may be no scheduler of this cluster (report this to the site admin)", pod.Spec.SchedulerName)
	case c != nil && c.Message != "":
		return "no scheduler has taken the pod yet: " + c.Message
	}
	return "no scheduler has taken the pod yet"
}

// initTrouble describes the pod's init containers that failed or wait
// for a reason (an injected one whose image cannot be pulled, say): they
// explain a pod whose step container never ran.
func initTrouble(pod *corev1.Pod) string {
	var out []string
	for _, ic := range pod.Status.InitContainerStatuses {
		switch {
		case ic.State.Terminated != nil && ic.State.Terminated.ExitCode != 0:
			t := ic.State.Terminated
			s := fmt.Sprintf("init container %q exited with status %d", ic.Name, t.ExitCode)
			if t.Reason != "" {
				s += " (" + t.Reason + ")"
			}
			if m := strings.TrimSpace(t.Message); m != "" {
				s += ": " + m
			}
			out = append(out, s)
		case ic.State.Waiting != nil && ic.State.Waiting.Reason != "" && ic.State.Waiting.Reason != "PodInitializing":
			s := fmt.Sprintf("init container %q is waiting (%s)", ic.Name, ic.State.Waiting.Reason)
			if m := strings.TrimSpace(ic.State.Waiting.Message); m != "" {
				s += ": " + m
			}
			out = append(out, s)
		}
	}
	return strings.Join(out, "; ")
}

func nodeOf(pod *corev1.Pod) string {
	if pod.Spec.NodeName == "" {
		return "(unknown)"
	}
	return pod.Spec.NodeName
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

// stepTerminated is the step container's end, if it has ended.
func stepTerminated(pod *corev1.Pod) *corev1.ContainerStateTerminated {
	if cs := containerStatus(pod); cs != nil {
		return cs.State.Terminated
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
