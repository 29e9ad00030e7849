package kubelet

import (
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// The pod's life on a node, as the scheduler and the kubelet write it
// (https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/):
//
//	Pending, unscheduled -> Pending, PodScheduled, container waiting
//	(ContainerCreating) -> Running (container running) -> Succeeded or
//	Failed (container terminated with its exit code)

// Scheduled is the status of a pod just bound to node (at 127.0.0.1):
// scheduled, its container waiting in ContainerCreating.
func Scheduled(p *corev1.Pod, node string) {
	now := metav1.Now()
	c := p.Spec.Containers[0]
	p.Spec.NodeName = node
	p.Status.HostIP, p.Status.PodIP = "127.0.0.1", "127.0.0.1"
	p.Status.HostIPs = []corev1.HostIP{{IP: "127.0.0.1"}}
	p.Status.PodIPs = []corev1.PodIP{{IP: "127.0.0.1"}}
	p.Status.StartTime = &now
	SetCondition(&p.Status, corev1.PodScheduled, corev1.ConditionTrue, "", "")
	SetCondition(&p.Status, corev1.PodReadyToStartContainers, corev1.ConditionFalse, "", "")
	SetCondition(&p.Status, corev1.PodInitialized, corev1.ConditionTrue, "", "")
	notReady := fmt.Sprintf("containers with unready status: [%s]", c.Name)
	SetCondition(&p.Status, corev1.PodReady, corev1.ConditionFalse, "ContainersNotReady", notReady)
	SetCondition(&p.Status, corev1.ContainersReady, corev1.ConditionFalse, "ContainersNotReady", notReady)
	p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: c.Name, Image: c.Image, Started: ptr(false),
		State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}}
}

// Terminate records the container's end and the pod's terminal phase.
func Terminate(p *corev1.Pod, code int32, reason, message, podMessage string, finished time.Time) {
	cs := &p.Status.ContainerStatuses[0]
	startedAt := metav1.NewTime(finished)
	if cs.State.Running != nil {
		startedAt = cs.State.Running.StartedAt
	}
	cs.State = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
		ExitCode: code, Reason: reason, Message: message, StartedAt: startedAt,
		FinishedAt: metav1.NewTime(finished), ContainerID: cs.ContainerID}}
	cs.Ready, cs.Started = false, ptr(false)
	p.Status.Phase = corev1.PodSucceeded
	if code != 0 {
		p.Status.Phase = corev1.PodFailed
	}
	p.Status.Message = podMessage
	SetCondition(&p.Status, corev1.PodReadyToStartContainers, corev1.ConditionFalse, "", "")
	SetCondition(&p.Status, corev1.ContainersReady, corev1.ConditionFalse, "PodCompleted", "")
	SetCondition(&p.Status, corev1.PodReady, corev1.ConditionFalse, "PodCompleted", "")
}

// SetCondition sets a condition of the pod's status, its transition time
// only when its status changes.
func SetCondition(st *corev1.PodStatus, typ corev1.PodConditionType, status corev1.ConditionStatus, reason, message string) {
	now := metav1.Now()
	for i := range st.Conditions {
		c := &st.Conditions[i]
		if c.Type == typ {
			if c.Status != status {
				c.LastTransitionTime = now
			}
			c.Status, c.Reason, c.Message, c.LastProbeTime = status, reason, message, metav1.Time{}
			return
		}
	}
	st.Conditions = append(st.Conditions, corev1.PodCondition{Type: typ, Status: status, Reason: reason, Message: message, LastTransitionTime: now})
}

// Condition is the pod's condition of that type, nil if it has none.
func Condition(p *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}
