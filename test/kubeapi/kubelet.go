package kubeapi

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// The stand-in kubelet: the scheduler's and one node's kubelet's part of
// a pod's life (https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/):
//
//	Pending, unscheduled -> Pending, PodScheduled, container waiting
//	(ContainerCreating) -> Running (container running) -> Succeeded or
//	Failed (container terminated with its exit code)
//
// Each step is a status update with a new resourceVersion, which the
// watches see as MODIFIED. The container's command runs on this host (see
// the package documentation).

// hostPATH is the PATH a step gets, as a container image's environment
// would give it one.
const hostPATH = "/usr/local/bin:/usr/bin:/bin"

// Messages of the scheduler, as kube-scheduler words them.
const (
	msgInsufficientCPU = "0/1 nodes are available: 1 Insufficient cpu. preemption: 0/1 nodes are available: 1 No preemption victims found for incoming pod."
	msgClaimMissing    = `0/1 nodes are available: persistentvolumeclaim "%s" not found. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling.`
	msgClaimUnbound    = "0/1 nodes are available: pod has unbound immediate PersistentVolumeClaims. preemption: 0/1 nodes are available: 1 Preemption is not helpful for scheduling."
)

type killReason int

const (
	killDelete killReason = iota
	killOOM
)

type killRequest struct {
	reason killReason
	grace  time.Duration
}

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
	defer s.mu.Unlock()
	e, ok := s.pods[s.namespace+"/"+name]
	if !ok || !e.running {
		return fmt.Errorf("kubeapi: pod %s/%s has no running container", s.namespace, name)
	}
	select {
	case e.kill <- killRequest{reason: killOOM}:
	default:
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

func setCondition(st *corev1.PodStatus, typ corev1.PodConditionType, status corev1.ConditionStatus, reason, message string) {
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

// runPod is one pod's life on the stand-in node.
func (s *Server) runPod(e *podEntry) {
	defer s.kubelets.Done()
	if !s.sleep(e.ctx, s.delay) || !s.schedule(e) || !s.sleep(e.ctx, s.delay) {
		return
	}
	s.mu.Lock()
	pod := e.pod.DeepCopy()
	s.mu.Unlock()
	c := pod.Spec.Containers[0]
	if !s.awaitSecrets(e, pod, c) {
		return
	}
	cmd, cleanup, err := s.command(pod, c)
	defer cleanup()
	if err != nil {
		// The kubelet keeps such a pod Pending, its container waiting.
		msg := err.Error()
		s.update(e, func(p *corev1.Pod) {
			p.Status.ContainerStatuses[0].State.Waiting = &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: msg}
		})
		s.podEvent(e, corev1.EventTypeWarning, "Failed", "kubelet", "Error: "+msg)
		return
	}
	cmd.Stdout, cmd.Stderr = e.logs, e.logs
	// A background process the step leaves holding its output must not
	// keep the container alive: it is killed once the command has ended.
	cmd.WaitDelay = 500 * time.Millisecond
	s.podEvent(e, corev1.EventTypeNormal, "Pulled", "kubelet", fmt.Sprintf("Container image %q already present on machine", c.Image))
	s.podEvent(e, corev1.EventTypeNormal, "Created", "kubelet", "Created container: "+c.Name)

	s.mu.Lock()
	if s.pods[pod.Namespace+"/"+pod.Name] != e {
		s.mu.Unlock()
		return // deleted meanwhile
	}
	err = cmd.Start()
	if err == nil {
		e.running, e.pgid = true, cmd.Process.Pid
	}
	s.mu.Unlock()
	if err != nil {
		// The runtime's words for a command it cannot execute.
		msg := fmt.Sprintf("failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: %v: unknown", err)
		s.update(e, func(p *corev1.Pod) { s.terminate(p, 128, "StartError", msg, "", time.Now()) })
		s.podEvent(e, corev1.EventTypeWarning, "Failed", "kubelet", "Error: "+msg)
		return
	}
	started := metav1.Now()
	s.update(e, func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodRunning
		cs := &p.Status.ContainerStatuses[0]
		cs.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: started}}
		cs.Ready, cs.Started = true, ptr(true)
		cs.ContainerID = fmt.Sprintf("standin://%d", e.pgid)
		setCondition(&p.Status, corev1.PodReadyToStartContainers, corev1.ConditionTrue, "", "")
		setCondition(&p.Status, corev1.ContainersReady, corev1.ConditionTrue, "", "")
		setCondition(&p.Status, corev1.PodReady, corev1.ConditionTrue, "", "")
	})
	s.podEvent(e, corev1.EventTypeNormal, "Started", "kubelet", "Started container "+c.Name)
	s.wait(e, cmd, pod)
}

// awaitSecrets waits until the Secrets the container needs exist, with
// the pod waiting as the kubelet shows it meanwhile; false when the pod
// went first.
func (s *Server) awaitSecrets(e *podEntry, pod *corev1.Pod, c corev1.Container) bool {
	told := ""
	for {
		reason, msg := s.missingSecret(pod, c)
		if reason == "" {
			return true
		}
		if msg != told {
			told = msg
			s.update(e, func(p *corev1.Pod) {
				p.Status.ContainerStatuses[0].State.Waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: msg}
			})
			if reason == "ContainerCreating" {
				s.podEvent(e, corev1.EventTypeWarning, "FailedMount", "kubelet", msg)
			} else {
				s.podEvent(e, corev1.EventTypeWarning, "Failed", "kubelet", "Error: "+msg)
			}
		}
		if !s.sleep(e.ctx, 50*time.Millisecond) {
			return false
		}
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
			if c := podCondition(p, corev1.PodScheduled); c == nil || c.Message != msg {
				setCondition(&p.Status, corev1.PodScheduled, corev1.ConditionFalse, corev1.PodReasonUnschedulable, msg)
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
	now := metav1.Now()
	ok := s.update(e, func(p *corev1.Pod) {
		c := p.Spec.Containers[0]
		p.Spec.NodeName = NodeName
		p.Status.HostIP, p.Status.PodIP = "127.0.0.1", "127.0.0.1"
		p.Status.HostIPs = []corev1.HostIP{{IP: "127.0.0.1"}}
		p.Status.PodIPs = []corev1.PodIP{{IP: "127.0.0.1"}}
		p.Status.StartTime = &now
		setCondition(&p.Status, corev1.PodScheduled, corev1.ConditionTrue, "", "")
		setCondition(&p.Status, corev1.PodReadyToStartContainers, corev1.ConditionFalse, "", "")
		setCondition(&p.Status, corev1.PodInitialized, corev1.ConditionTrue, "", "")
		notReady := fmt.Sprintf("containers with unready status: [%s]", c.Name)
		setCondition(&p.Status, corev1.PodReady, corev1.ConditionFalse, "ContainersNotReady", notReady)
		setCondition(&p.Status, corev1.ContainersReady, corev1.ConditionFalse, "ContainersNotReady", notReady)
		p.Status.ContainerStatuses = []corev1.ContainerStatus{{Name: c.Name, Image: c.Image, Started: ptr(false),
			State: corev1.ContainerState{Waiting: &corev1.ContainerStateWaiting{Reason: "ContainerCreating"}}}}
	})
	if ok {
		s.podEvent(e, corev1.EventTypeNormal, "Scheduled", "default-scheduler",
			fmt.Sprintf("Successfully assigned %s/%s to %s", e.pod.Namespace, e.pod.Name, NodeName))
	}
	return ok
}

func podCondition(p *corev1.Pod, t corev1.PodConditionType) *corev1.PodCondition {
	for i := range p.Status.Conditions {
		if p.Status.Conditions[i].Type == t {
			return &p.Status.Conditions[i]
		}
	}
	return nil
}

// command prepares the container's process, or says why the kubelet could
// not create the container. Only the first container runs.
func (s *Server) command(pod *corev1.Pod, c corev1.Container) (cmd *exec.Cmd, cleanup func(), err error) {
	var dirs []string
	cleanup = func() {
		for _, d := range dirs {
			_ = os.RemoveAll(d)
		}
	}
	cmd, dirs, err = s.commandIn(pod, c)
	return cmd, cleanup, err
}

// commandIn is command without the cleanup: dirs are the secret volumes it
// wrote, which go when the process has ended.
func (s *Server) commandIn(pod *corev1.Pod, c corev1.Container) (_ *exec.Cmd, dirs []string, _ error) {
	// Env values are expanded in order, each from the entries before it;
	// the command and args from the whole environment, as the kubelet
	// does (see expand).
	env := map[string]string{}
	var envList []string
	for _, v := range c.Env {
		value := expand(v.Value, expansionOf(env))
		if ref := secretRef(v); ref != nil {
			sv, err := s.secretEnv(pod, ref)
			if err != nil {
				return nil, nil, err
			}
			value = sv // not expanded: only a literal value is
		} else if v.ValueFrom != nil {
			return nil, nil, fmt.Errorf("stand-in kubelet: env %s uses a valueFrom other than secretKeyRef, which the stand-in does not resolve", v.Name)
		}
		env[v.Name] = value
		envList = append(envList, v.Name+"="+value)
	}
	var argv []string
	for _, a := range append(slices.Clone(c.Command), c.Args...) {
		argv = append(argv, expand(a, expansionOf(env)))
	}
	if len(argv) == 0 {
		return nil, nil, errors.New("stand-in kubelet: the container has no command: the stand-in has no image to take its entrypoint from")
	}
	cred, err := credential(pod, c)
	if err != nil {
		return nil, nil, err
	}
	mounts, err := s.checkMounts(pod, c)
	if err != nil {
		return nil, nil, err
	}
	dir := c.WorkingDir
	if dir == "" {
		dir = "/"
	} else if !slices.ContainsFunc(mounts, func(m string) bool { return within(dir, m) }) {
		return nil, nil, fmt.Errorf("stand-in kubelet: workingDir %s is not on one of the pod's volumes, and the stand-in has no image filesystem", dir)
	}
	var binds [][2]string
	for _, m := range c.VolumeMounts {
		for _, v := range pod.Spec.Volumes {
			if v.Name != m.Name || v.Secret == nil {
				continue
			}
			d, err := s.secretVolume(pod, v, cred)
			if err != nil {
				return nil, dirs, err
			}
			dirs = append(dirs, d)
			binds = append(binds, [2]string{d, m.MountPath})
		}
	}
	if len(binds) > 0 {
		if argv, err = mountWrapper(binds, cred, argv); err != nil {
			return nil, dirs, err
		}
		cred = nil // the wrapper mounts as root, then becomes the pod's user
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + hostPATH, "HOSTNAME=" + pod.Name}, envList...)
	// Its own process group, so that a delete ends the whole step, as
	// stopping a container does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	return cmd, dirs, nil
}

// credential is the process's uid, gid and groups from the pod's security
// context (the container's overriding the pod's). The stand-in runs as
// root in the tests, so it can take any of them, but it never runs a step
// as root, nor as an account the image would choose, which it cannot know.
func credential(pod *corev1.Pod, c corev1.Container) (*syscall.Credential, error) {
	var uid, gid *int64
	var groups []int64
	nonRoot := false
	if sc := pod.Spec.SecurityContext; sc != nil {
		uid, gid, groups = sc.RunAsUser, sc.RunAsGroup, sc.SupplementalGroups
		nonRoot = sc.RunAsNonRoot != nil && *sc.RunAsNonRoot
	}
	if sc := c.SecurityContext; sc != nil {
		if sc.RunAsUser != nil {
			uid = sc.RunAsUser
		}
		if sc.RunAsGroup != nil {
			gid = sc.RunAsGroup
		}
		if sc.RunAsNonRoot != nil {
			nonRoot = *sc.RunAsNonRoot
		}
	}
	switch {
	case uid == nil:
		return nil, errors.New("stand-in kubelet: no runAsUser: the image's user is unknown to the stand-in")
	case *uid == 0 && nonRoot:
		// The kubelet's own words.
		return nil, fmt.Errorf("container's runAsUser breaks non-root policy (pod: %q, container: %s)", pod.Name+"_"+pod.Namespace+"("+string(pod.UID)+")", c.Name)
	case *uid == 0:
		return nil, errors.New("stand-in kubelet: runAsUser 0: the stand-in never runs a step as root")
	case gid == nil:
		return nil, errors.New("stand-in kubelet: no runAsGroup: the image's group is unknown to the stand-in")
	}
	if os.Geteuid() != 0 {
		// Unprivileged, the stand-in can only run pods as itself.
		if *uid != int64(os.Geteuid()) || *gid != int64(os.Getegid()) {
			return nil, fmt.Errorf("stand-in kubelet: not running as root, so it cannot run a pod as uid %d gid %d", *uid, *gid)
		}
		return nil, nil
	}
	// The container runtime gives the primary gid and the supplemental
	// groups as the process's groups.
	cred := &syscall.Credential{Uid: uint32(*uid), Gid: uint32(*gid), Groups: []uint32{uint32(*gid)}}
	for _, g := range groups {
		if !slices.Contains(cred.Groups, uint32(g)) {
			cred.Groups = append(cred.Groups, uint32(g))
		}
	}
	return cred, nil
}

// checkMounts checks each volume mount and returns the mount paths. The
// command runs on the host, so a claim's volume mounted with its subPath
// must be, on the host, the directory the pod mounts it at; otherwise the
// step would read and write other files than in a real pod.
func (s *Server) checkMounts(pod *corev1.Pod, c corev1.Container) ([]string, error) {
	var paths []string
	for _, m := range c.VolumeMounts {
		var vol *corev1.Volume
		for i := range pod.Spec.Volumes {
			if pod.Spec.Volumes[i].Name == m.Name {
				vol = &pod.Spec.Volumes[i]
			}
		}
		if vol != nil && vol.Secret != nil {
			continue // written and bound by command
		}
		if vol == nil || vol.PersistentVolumeClaim == nil {
			return nil, fmt.Errorf("stand-in kubelet: volume %q is not a PersistentVolumeClaim, the only kind the stand-in mounts", m.Name)
		}
		claim := vol.PersistentVolumeClaim.ClaimName
		if claim != s.claimName || s.claimRoot == "" {
			return nil, fmt.Errorf("stand-in kubelet: the claim %q of volume %q has no directory on this host (the stand-in knows only %q at %q)",
				claim, m.Name, s.claimName, s.claimRoot)
		}
		host := filepath.Join(s.claimRoot, m.SubPath)
		if !within(host, s.claimRoot) {
			return nil, fmt.Errorf("stand-in kubelet: subPath %q of volume %q leaves the volume", m.SubPath, m.Name)
		}
		if filepath.Clean(m.MountPath) != host {
			return nil, fmt.Errorf("stand-in kubelet: volume %q (claim %q, %s on this host) with subPath %q is %s on this host, not its mountPath %s: "+
				"the step would see other files in a pod than the stand-in gives it", m.Name, claim, s.claimRoot, m.SubPath, host, m.MountPath)
		}
		if fi, err := os.Stat(host); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("failed to prepare subPath for volumeMount %q of container %q: %s is not a directory on the volume", m.Name, c.Name, host)
		}
		paths = append(paths, host)
	}
	return paths, nil
}

// within reports whether path is dir or under it.
func within(path, dir string) bool {
	rel, err := filepath.Rel(filepath.Clean(dir), filepath.Clean(path))
	return err == nil && rel != ".." && !strings.HasPrefix(rel, "../")
}

// wait follows the process to its end: its own exit, the pod's
// activeDeadlineSeconds, an OOM kill, a delete, or the end of the test.
func (s *Server) wait(e *podEntry, cmd *exec.Cmd, pod *corev1.Pod) {
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var deadline <-chan time.Time
	if d := pod.Spec.ActiveDeadlineSeconds; d != nil {
		t := time.NewTimer(time.Duration(*d) * time.Second)
		defer t.Stop()
		deadline = t.C
	}
	var (
		reason, podReason, podMessage string
		deleting                      bool
		err                           error
	)
	select {
	case err = <-exited:
	case <-deadline:
		killGroup(e.pgid)
		err = <-exited
		podReason, podMessage = "DeadlineExceeded", "Pod was active on the node longer than the specified deadline"
	case k := <-e.kill:
		switch k.reason {
		case killOOM:
			killGroup(e.pgid)
			err, reason = <-exited, "OOMKilled"
		case killDelete:
			deleting = true
			s.podEvent(e, corev1.EventTypeNormal, "Killing", "kubelet", "Stopping container "+pod.Spec.Containers[0].Name)
			err = s.stopGracefully(e.pgid, min(k.grace, s.stopGrace), exited)
		}
	case <-s.done:
		killGroup(e.pgid)
		<-exited
		return
	}
	// A container ends with all its processes: whatever the command left
	// behind goes too.
	killGroup(e.pgid)
	code := exitCode(err)
	if reason == "" {
		reason = "Completed"
		if code != 0 {
			reason = "Error"
		}
	}
	message := ""
	if code != 0 && pod.Spec.Containers[0].TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError {
		message = e.logs.Tail(80, 2048)
	}
	s.mu.Lock()
	e.running = false
	s.mu.Unlock()
	s.update(e, func(p *corev1.Pod) {
		s.terminate(p, code, reason, message, podMessage, time.Now())
		if podReason != "" {
			p.Status.Reason = podReason
		}
	})
	if deleting {
		s.mu.Lock()
		if key := pod.Namespace + "/" + pod.Name; s.pods[key] == e {
			s.remove(key, e)
		}
		s.mu.Unlock()
	}
}

// stopGracefully sends SIGTERM to the group, then SIGKILL after grace.
func (s *Server) stopGracefully(pgid int, grace time.Duration, exited <-chan error) error {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case err := <-exited:
		return err
	case <-t.C:
	case <-s.done:
	}
	killGroup(pgid)
	return <-exited
}

func killGroup(pgid int) {
	if pgid > 0 {
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
}

// exitCode is the container's exit code as runtimes report it: the
// process's status, or 128 plus the signal that killed it.
func exitCode(err error) int32 {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return 0
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int32(ws.Signal())
	}
	return int32(ee.ExitCode())
}

// terminate records the container's end and the pod's terminal phase.
func (s *Server) terminate(p *corev1.Pod, code int32, reason, message, podMessage string, finished time.Time) {
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
	setCondition(&p.Status, corev1.PodReadyToStartContainers, corev1.ConditionFalse, "", "")
	setCondition(&p.Status, corev1.ContainersReady, corev1.ConditionFalse, "PodCompleted", "")
	setCondition(&p.Status, corev1.PodReady, corev1.ConditionFalse, "PodCompleted", "")
}

// logBuffer is a container's log: what its process wrote to stdout and
// stderr, the last 16 MiB of it.
type logBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const maxLog = 16 << 20

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > 2*maxLog {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-maxLog:]...)
	}
	return len(p), nil
}

func (b *logBuffer) Set(text string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = []byte(text)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.buf) > maxLog {
		return string(b.buf[len(b.buf)-maxLog:])
	}
	return string(b.buf)
}

// Tail is the end of the log the kubelet uses as the termination message
// of a failed container (FallbackToLogsOnError): the last lines lines, at
// most bytes bytes.
func (b *logBuffer) Tail(lines, bytes int) string {
	text := tailLines(b.String(), lines)
	if len(text) > bytes {
		text = text[len(text)-bytes:]
	}
	return text
}
