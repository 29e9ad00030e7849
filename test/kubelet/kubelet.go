// Package kubelet is the part of a kubelet the tests need, shared by the
// Kubernetes API stand-in (test/kubeapi) and the node agent that serves a
// real API server (test/kubenode): it runs a scheduled pod's first
// container on this host, not in a container, as the pod's runAsUser,
// runAsGroup and supplementalGroups, in its workingDir, with its env
// (after the kubelet's $(VAR) expansion, and with the values of its
// secretKeyRef env vars), and reports the container's life as the kubelet
// does, through a Sink: waiting (ContainerCreating, or for a missing
// Secret), running, terminated with its exit code and reason. The image is
// never pulled nor used.
//
// A secret volume's files are written into a directory of the pod's own,
// which the process sees at its mountPath through a read-only bind in a
// mount namespace of its own (unshare --mount, then setpriv to the pod's
// uid, gid and groups); the mount point is made on the host, an empty
// root-owned directory. The Secrets come from the Host's Secrets: the
// stand-in's store or the real API server.
//
// It checks the one thing a container would hide: each claim's volume,
// mounted with its subPath, must be the very directory of this host the
// pod mounts it at, so the step sees on the host the files it would see in
// the pod. Only tests may use it.
package kubelet

import (
	"context"
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
)

// hostPATH is the PATH a step gets, as a container image's environment
// would give it one.
const hostPATH = "/usr/local/bin:/usr/bin:/bin"

// Sink is where the container's life is reported: the pod's store.
type Sink interface {
	// Update changes the stored pod (its status) and reports whether the
	// pod was still there.
	Update(mutate func(*corev1.Pod)) bool
	// Event records what the kubelet reports about the pod.
	Event(typ, reason, component, message string)
}

// Host is what the kubelet knows of this host.
type Host struct {
	// ClaimName's volume is the directory ClaimRoot here; no other claim
	// can be mounted.
	ClaimName, ClaimRoot string
	// StopGrace caps a delete's grace period, to keep tests short.
	StopGrace time.Duration
	// Secrets is where the pods' Secrets are read; without it, a pod
	// that references one never starts.
	Secrets Secrets
}

type killReason int

const (
	killDelete killReason = iota
	killOOM
)

type killRequest struct {
	reason killReason
	grace  time.Duration
}

// Container is one pod's container on this host: its output and its
// process, once started. Its methods are safe for concurrent use.
type Container struct {
	Logs *LogBuffer

	kill    chan killRequest
	mu      sync.Mutex
	running bool
	stopped bool // by a delete before it started: it never will
	pgid    int
}

// NewContainer is a container not started yet.
func NewContainer() *Container {
	return &Container{Logs: &LogBuffer{}, kill: make(chan killRequest, 2)}
}

// Running reports whether the container's process runs.
func (c *Container) Running() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.running
}

// Stop asks a running container to stop for a delete of the pod:
// SIGTERM, then SIGKILL after grace (capped by the host's StopGrace); a
// zero grace kills it at once. It reports false when no process ran (and
// none will start), for the caller to remove the pod at once.
func (c *Container) Stop(grace time.Duration) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		c.stopped = true
		return false
	}
	if grace <= 0 {
		killGroup(c.pgid)
		return true
	}
	select {
	case c.kill <- killRequest{reason: killDelete, grace: grace}:
	default:
	}
	return true
}

// OOMKill kills the running process as the kernel's OOM killer would the
// container: it ends OOMKilled with exit code 137.
func (c *Container) OOMKill() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.running {
		return errors.New("no running container")
	}
	select {
	case c.kill <- killRequest{reason: killOOM}:
	default:
	}
	return nil
}

// start starts cmd unless the container was stopped or ctx ended first.
func (c *Container) start(ctx context.Context, cmd *exec.Cmd) (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped || ctx.Err() != nil {
		return false, nil
	}
	if err := cmd.Start(); err != nil {
		return true, err
	}
	c.running, c.pgid = true, cmd.Process.Pid
	return true, nil
}

func (c *Container) ended() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.running = false
}

// Run runs the container of a scheduled pod (see Scheduled) until it
// ends, ctx ends (the pod is gone, or the test is over: the process is
// killed and nothing more reported) or a Stop ends it. It reports whether
// a Stop ended it, for the caller to remove the pod.
func (h Host) Run(ctx context.Context, pod *corev1.Pod, c *Container, sink Sink) (deleted bool) {
	spec := pod.Spec.Containers[0]
	secrets, ok := h.awaitSecrets(ctx, pod, spec, sink)
	if !ok {
		return false
	}
	cmd, volumes, err := h.command(pod, spec, secrets)
	// The secret volumes' files go when the process has ended.
	defer func() {
		for _, d := range volumes {
			_ = os.RemoveAll(d)
		}
	}()
	if err != nil {
		// The kubelet keeps such a pod Pending, its container waiting.
		msg := err.Error()
		sink.Update(func(p *corev1.Pod) {
			p.Status.ContainerStatuses[0].State.Waiting = &corev1.ContainerStateWaiting{Reason: "CreateContainerConfigError", Message: msg}
		})
		sink.Event(corev1.EventTypeWarning, "Failed", "kubelet", "Error: "+msg)
		return false
	}
	cmd.Stdout, cmd.Stderr = c.Logs, c.Logs
	// A background process the step leaves holding its output must not
	// keep the container alive: it is killed once the command has ended.
	cmd.WaitDelay = 500 * time.Millisecond
	sink.Event(corev1.EventTypeNormal, "Pulled", "kubelet", fmt.Sprintf("Container image %q already present on machine", spec.Image))
	sink.Event(corev1.EventTypeNormal, "Created", "kubelet", "Created container: "+spec.Name)
	started, err := c.start(ctx, cmd)
	if !started {
		return false
	}
	if err != nil {
		// The runtime's words for a command it cannot execute.
		msg := fmt.Sprintf("failed to create containerd task: failed to create shim task: OCI runtime create failed: runc create failed: unable to start container process: error during container init: %v: unknown", err)
		sink.Update(func(p *corev1.Pod) { Terminate(p, 128, "StartError", msg, "", time.Now()) })
		sink.Event(corev1.EventTypeWarning, "Failed", "kubelet", "Error: "+msg)
		return false
	}
	pid := cmd.Process.Pid
	now := metav1.Now()
	sink.Update(func(p *corev1.Pod) {
		p.Status.Phase = corev1.PodRunning
		cs := &p.Status.ContainerStatuses[0]
		cs.State = corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}}
		cs.Ready, cs.Started = true, ptr(true)
		cs.ContainerID = fmt.Sprintf("standin://%d", pid)
		SetCondition(&p.Status, corev1.PodReadyToStartContainers, corev1.ConditionTrue, "", "")
		SetCondition(&p.Status, corev1.ContainersReady, corev1.ConditionTrue, "", "")
		SetCondition(&p.Status, corev1.PodReady, corev1.ConditionTrue, "", "")
	})
	sink.Event(corev1.EventTypeNormal, "Started", "kubelet", "Started container "+spec.Name)
	return h.wait(ctx, c, cmd, pod, sink)
}

// command prepares the container's process, with the pod's Secrets, or
// says why the kubelet could not create the container. volumes are the
// secret volumes' directories it wrote, even on an error, for the caller
// to remove.
func (h Host) command(pod *corev1.Pod, c corev1.Container, secrets map[string]*corev1.Secret) (_ *exec.Cmd, volumes []string, _ error) {
	// Env values are expanded in order, each from the entries before it;
	// the command and args from the whole environment, as the kubelet
	// does (see expand).
	env := map[string]string{}
	var envList []string
	for _, v := range c.Env {
		value := expand(v.Value, expansionOf(env))
		if ref := secretRef(v); ref != nil {
			sv, err := secretEnv(pod, ref, secrets)
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
	mounts, err := h.checkMounts(pod, c)
	if err != nil {
		return nil, nil, err
	}
	dir := c.WorkingDir
	if dir == "" {
		dir = "/"
	} else if !slices.ContainsFunc(mounts, func(m string) bool { return within(dir, m) }) {
		return nil, nil, fmt.Errorf("stand-in kubelet: workingDir %s is not on one of the pod's volumes, and the stand-in has no image filesystem", dir)
	}
	var binds [][2]string // host directory, mount path
	for _, m := range c.VolumeMounts {
		for _, v := range pod.Spec.Volumes {
			if v.Name != m.Name || v.Secret == nil {
				continue
			}
			d, err := secretVolume(v, secrets[v.Secret.SecretName], cred)
			if err != nil {
				return nil, volumes, err
			}
			volumes = append(volumes, d)
			binds = append(binds, [2]string{d, m.MountPath})
		}
	}
	if len(binds) > 0 {
		if argv, err = mountWrapper(binds, cred, argv); err != nil {
			return nil, volumes, err
		}
		cred = nil // the wrapper mounts as root, then becomes the pod's user
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Dir = dir
	cmd.Env = append([]string{"PATH=" + hostPATH, "HOSTNAME=" + pod.Name}, envList...)
	// Its own process group, so that a delete ends the whole step, as
	// stopping a container does.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Credential: cred}
	return cmd, volumes, nil
}

// credential is the process's uid, gid and groups from the pod's security
// context (the container's overriding the pod's). The kubelet runs as
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
		// Unprivileged, the kubelet can only run pods as itself.
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
func (h Host) checkMounts(pod *corev1.Pod, c corev1.Container) ([]string, error) {
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
			return nil, fmt.Errorf("stand-in kubelet: volume %q is neither a PersistentVolumeClaim nor a secret, the only kinds the stand-in mounts", m.Name)
		}
		claim := vol.PersistentVolumeClaim.ClaimName
		if claim != h.ClaimName || h.ClaimRoot == "" {
			return nil, fmt.Errorf("stand-in kubelet: the claim %q of volume %q has no directory on this host (the stand-in knows only %q at %q)",
				claim, m.Name, h.ClaimName, h.ClaimRoot)
		}
		host := filepath.Join(h.ClaimRoot, m.SubPath)
		if !within(host, h.ClaimRoot) {
			return nil, fmt.Errorf("stand-in kubelet: subPath %q of volume %q leaves the volume", m.SubPath, m.Name)
		}
		if filepath.Clean(m.MountPath) != host {
			return nil, fmt.Errorf("stand-in kubelet: volume %q (claim %q, %s on this host) with subPath %q is %s on this host, not its mountPath %s: "+
				"the step would see other files in a pod than the stand-in gives it", m.Name, claim, h.ClaimRoot, m.SubPath, host, m.MountPath)
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
// activeDeadlineSeconds, an OOM kill, a Stop, or the end of ctx.
func (h Host) wait(ctx context.Context, c *Container, cmd *exec.Cmd, pod *corev1.Pod, sink Sink) bool {
	defer c.ended()
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
	pgid := cmd.Process.Pid
	select {
	case err = <-exited:
	case <-deadline:
		killGroup(pgid)
		err = <-exited
		podReason, podMessage = "DeadlineExceeded", "Pod was active on the node longer than the specified deadline"
	case k := <-c.kill:
		switch k.reason {
		case killOOM:
			killGroup(pgid)
			err, reason = <-exited, "OOMKilled"
		case killDelete:
			deleting = true
			sink.Event(corev1.EventTypeNormal, "Killing", "kubelet", "Stopping container "+pod.Spec.Containers[0].Name)
			err = h.stopGracefully(ctx, pgid, min(k.grace, h.StopGrace), exited)
		}
	case <-ctx.Done():
		killGroup(pgid)
		<-exited
		return false
	}
	// A container ends with all its processes: whatever the command left
	// behind goes too.
	killGroup(pgid)
	code := exitCode(err)
	if reason == "" {
		reason = "Completed"
		if code != 0 {
			reason = "Error"
		}
	}
	message := ""
	if code != 0 && pod.Spec.Containers[0].TerminationMessagePolicy == corev1.TerminationMessageFallbackToLogsOnError {
		message = c.Logs.Tail(80, 2048)
	}
	c.ended()
	sink.Update(func(p *corev1.Pod) {
		Terminate(p, code, reason, message, podMessage, time.Now())
		if podReason != "" {
			p.Status.Reason = podReason
		}
	})
	return deleting
}

// stopGracefully sends SIGTERM to the group, then SIGKILL after grace.
func (h Host) stopGracefully(ctx context.Context, pgid int, grace time.Duration, exited <-chan error) error {
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case err := <-exited:
		return err
	case <-t.C:
	case <-ctx.Done():
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

func ptr[T any](v T) *T { return &v }
