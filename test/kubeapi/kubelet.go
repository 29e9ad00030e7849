package kubeapi

import (
	"context"
	"fmt"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/reana-site/reana-site/test/kubelet"
)

// The stand-in's scheduler and its one node's kubelet. Running a pod's
// container (as its uid, gid and groups, see the package documentation)
// is test/kubelet's, shared with the node agent that serves a real API
// server; what is the stand-in's own is scheduling: holds, and claims
// missing or unbound. Each step of a pod's life is a status update with a
// new resourceVersion, which the watches see as MODIFIED.

// Messages of the scheduler, as kube-scheduler words them.
const (
	msgInsufficientCPU = "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
	msgClaimMissing    = `0/1 nodes are available: persistentvolumeclaim "%s" not found. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.`
	msgClaimUnbound    = "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
)

// Hold keeps a pod of the namespace (one that exists or one to come)
// Pending and unschedulable, with the scheduler's message for a node
// without enough CPU, until Release. A pod already scheduled is not
// affected.
func (s *Server) Hold(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.held[s.namespace+"/"+name] = true
}

// Release lets a held pod be scheduled.
func (s *Server) Release(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.held, s.namespace+"/"+name)
	s.wakeLocked()
}

// OOMKill kills a running pod's process as the kernel's OOM killer would
// its container: the container ends OOMKilled with exit code 137.
func (s *Server) OOMKill(name string) error {
	s.mu.Lock()
	e, ok := s.pods[s.namespace+"/"+name]
	s.mu.Unlock()
	if !ok {
		return fmt.Errorf("kubeapi: pod %s/%s has no running container", s.namespace, name)
	}
	if err := e.container.OOMKill(); err != nil {
		return fmt.Errorf("kubeapi: pod %s/%s: %w", s.namespace, name, err)
	}
	return nil
}

// update changes e's pod, if it is still stored, and tells the watches.
func (s *Server) update(e *podEntry, mutate func(*corev1.Pod)) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pods[e.pod.Namespace+"/"+e.pod.Name] != e {
		return false
	}
	mutate(e.pod)
	s.changed(watch.Modified, e.pod)
	return true
}

func (s *Server) podEvent(e *podEntry, typ, reason, component, message string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.event(e.pod, typ, reason, component, message)
}

// sink is how the shared kubelet reports to the stand-in's store.
type sink struct {
	s *Server
	e *podEntry
}

func (k sink) Update(mutate func(*corev1.Pod)) bool { return k.s.update(k.e, mutate) }
func (k sink) Event(typ, reason, component, message string) {
	k.s.podEvent(k.e, typ, reason, component, message)
}

// runPod is one pod's life on the stand-in node.
func (s *Server) runPod(e *podEntry) {
	defer s.kubelets.Done()
	// The container ends with the pod or with the stand-in.
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	if !s.sleep(ctx, s.delay) || !s.schedule(e) || !s.sleep(ctx, s.delay) {
		return
	}
	s.mu.Lock()
	pod := e.pod.DeepCopy()
	s.mu.Unlock()
	host := kubelet.Host{ClaimName: s.claimName, ClaimRoot: s.claimRoot, StopGrace: s.stopGrace, Secrets: secretStore{s}}
	if host.Run(ctx, pod, e.container, sink{s, e}) {
		// Stopped for a graceful delete: with the container gone, so is
		// the pod.
		s.mu.Lock()
		if key := pod.Namespace + "/" + pod.Name; s.pods[key] == e {
			s.remove(key, e)
		}
		s.mu.Unlock()
	}
}

// schedule binds the pod to the node once nothing holds it back: a Hold,
// or its claims missing or unbound, which leave it unschedulable with the
// scheduler's condition and FailedScheduling events.
func (s *Server) schedule(e *podEntry) bool {
	for {
		s.mu.Lock()
		key := e.pod.Namespace + "/" + e.pod.Name
		msg := ""
		if s.held[key] {
			msg = msgInsufficientCPU
		}
		for _, v := range e.pod.Spec.Volumes {
			if msg != "" || v.PersistentVolumeClaim == nil {
				continue
			}
			switch pvc, ok := s.claims[e.pod.Namespace+"/"+v.PersistentVolumeClaim.ClaimName]; {
			case !ok:
				msg = fmt.Sprintf(msgClaimMissing, v.PersistentVolumeClaim.ClaimName)
			case pvc.Status.Phase != corev1.ClaimBound:
				msg = msgClaimUnbound
			}
		}
		wake := s.wake
		stored := s.pods[key] == e
		s.mu.Unlock()
		if !stored {
			return false
		}
		if msg == "" {
			break
		}
		s.update(e, func(p *corev1.Pod) {
			if c := kubelet.Condition(p, corev1.PodScheduled); c == nil || c.Message != msg {
				kubelet.SetCondition(&p.Status, corev1.PodScheduled, corev1.ConditionFalse, corev1.PodReasonUnschedulable, msg)
			}
		})
		s.podEvent(e, corev1.EventTypeWarning, "FailedScheduling", "default-scheduler", msg)
		select {
		case <-wake:
		case <-e.ctx.Done():
			return false
		case <-s.done:
			return false
		}
	}
	ok := s.update(e, func(p *corev1.Pod) { kubelet.Scheduled(p, NodeName) })
	if ok {
		s.podEvent(e, corev1.EventTypeNormal, "Scheduled", "default-scheduler",
			fmt.Sprintf("Successfully assigned %s/%s to %s", e.pod.Namespace, e.pod.Name, NodeName))
	}
	return ok
}
