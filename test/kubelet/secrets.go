package kubelet

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// A pod's Secrets, as the kubelet uses them: env valueFrom.secretKeyRef
// and secret volumes. The kubelet waits for a missing Secret as the real
// one does: the container waits with CreateContainerConfigError
// (`secret "x" not found`) for an env var, and in ContainerCreating with
// FailedMount events for a volume. The values are read once, when the
// container is about to be created, as the kubelet reads them.

// Secrets is where the kubelet reads the Secrets a pod references: the
// stand-in's store, or a real API server.
type Secrets interface {
	// Secret is the namespace's Secret of that name, nil (and no error)
	// when there is none.
	Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error)
}

// secretPoll is how often a missing Secret is looked for again.
const secretPoll = 50 * time.Millisecond

// awaitSecrets waits until every Secret the container needs exists, the
// pod showing meanwhile what the kubelet shows, and returns them by name;
// false when ctx ended first (the pod went, or the kubelet stopped).
func (h Host) awaitSecrets(ctx context.Context, pod *corev1.Pod, c corev1.Container, sink Sink) (map[string]*corev1.Secret, bool) {
	told := ""
	for {
		found, reason, msg := h.fetchSecrets(ctx, pod, c)
		if reason == "" {
			return found, true
		}
		if msg != told {
			told = msg
			sink.Update(func(p *corev1.Pod) {
				p.Status.ContainerStatuses[0].State.Waiting = &corev1.ContainerStateWaiting{Reason: reason, Message: msg}
			})
			if reason == "ContainerCreating" {
				sink.Event(corev1.EventTypeWarning, "FailedMount", "kubelet", msg)
			} else {
				sink.Event(corev1.EventTypeWarning, "Failed", "kubelet", "Error: "+msg)
			}
		}
		t := time.NewTimer(secretPoll)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, false
		}
	}
}

// fetchSecrets reads the Secrets the container references, or names the
// first one missing, with the kubelet's reason and words for it.
func (h Host) fetchSecrets(ctx context.Context, pod *corev1.Pod, c corev1.Container) (found map[string]*corev1.Secret, reason, msg string) {
	found = map[string]*corev1.Secret{}
	get := func(name string) (bool, string) {
		if _, ok := found[name]; ok {
			return true, ""
		}
		if h.Secrets == nil {
			return false, "stand-in kubelet: this node has no source of Secrets"
		}
		sec, err := h.Secrets.Secret(ctx, pod.Namespace, name)
		switch {
		case err != nil:
			return false, fmt.Sprintf("failed to read secret %q: %v", name, err)
		case sec == nil:
			return false, fmt.Sprintf("secret %q not found", name)
		}
		found[name] = sec
		return true, ""
	}
	for _, v := range c.Env {
		if ref := secretRef(v); ref != nil {
			if ok, m := get(ref.Name); !ok {
				return nil, "CreateContainerConfigError", m
			}
		}
	}
	for _, v := range pod.Spec.Volumes {
		if v.Secret != nil {
			if ok, m := get(v.Secret.SecretName); !ok {
				return nil, "ContainerCreating", fmt.Sprintf("MountVolume.SetUp failed for volume %q : %s", v.Name, m)
			}
		}
	}
	return found, "", ""
}

func secretRef(v corev1.EnvVar) *corev1.SecretKeySelector {
	if v.ValueFrom == nil {
		return nil
	}
	return v.ValueFrom.SecretKeyRef
}

// secretEnv is an env var's value from its Secret.
func secretEnv(pod *corev1.Pod, ref *corev1.SecretKeySelector, secrets map[string]*corev1.Secret) (string, error) {
	sec, ok := secrets[ref.Name]
	if !ok {
		return "", fmt.Errorf("secret %q not found", ref.Name)
	}
	v, ok := sec.Data[ref.Key]
	if !ok {
		return "", fmt.Errorf("couldn't find key %s in Secret %s/%s", ref.Key, pod.Namespace, ref.Name)
	}
	return string(v), nil
}

// secretVolume writes a secret volume's files for the pod's process, as
// the kubelet does under /var/lib/kubelet/pods/<uid>/volumes: a directory
// of the pod's own (removed when the process has ended), files with the
// volume's mode, owned by the pod's uid (the kubelet sets no owner without
// fsGroup, but its files are then root's and 0644: here the step runs as
// the pod's uid on the host, where root's 0400 file would be unreadable).
func secretVolume(v corev1.Volume, sec *corev1.Secret, cred *syscall.Credential) (string, error) {
	if sec == nil {
		return "", fmt.Errorf("MountVolume.SetUp failed for volume %q : secret %q not found", v.Name, v.Secret.SecretName)
	}
	dir, err := os.MkdirTemp("", "kubelet-secret-volume-")
	if err != nil {
		return "", fmt.Errorf("stand-in kubelet: make the directory of volume %q: %w", v.Name, err)
	}
	if err := writeSecretVolume(dir, v, sec, cred); err != nil {
		_ = os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

func writeSecretVolume(dir string, v corev1.Volume, sec *corev1.Secret, cred *syscall.Credential) error {
	mode := os.FileMode(0o644)
	if v.Secret.DefaultMode != nil {
		mode = os.FileMode(*v.Secret.DefaultMode)
	}
	items := v.Secret.Items
	if len(items) == 0 {
		for k := range sec.Data {
			items = append(items, corev1.KeyToPath{Key: k, Path: k})
		}
	}
	for _, it := range items {
		val, ok := sec.Data[it.Key]
		if !ok || strings.Contains(it.Path, "..") || strings.HasPrefix(it.Path, "/") {
			return fmt.Errorf("MountVolume.SetUp failed for volume %q : key %q of secret %q is missing or its path is bad", v.Name, it.Key, v.Secret.SecretName)
		}
		p := filepath.Join(dir, it.Path)
		itemMode := mode
		if it.Mode != nil {
			itemMode = os.FileMode(*it.Mode)
		}
		if err := os.WriteFile(p, val, itemMode); err != nil {
			return fmt.Errorf("stand-in kubelet: write key %q of volume %q: %w", it.Key, v.Name, err)
		}
		if err := os.Chmod(p, itemMode); err != nil { // WriteFile's mode is masked by the umask
			return fmt.Errorf("stand-in kubelet: write key %q of volume %q: %w", it.Key, v.Name, err)
		}
		if cred != nil {
			if err := os.Chown(p, int(cred.Uid), int(cred.Gid)); err != nil {
				return fmt.Errorf("stand-in kubelet: give key %q of volume %q to the pod's user: %w", it.Key, v.Name, err)
			}
		}
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fmt.Errorf("stand-in kubelet: give volume %q to the pod's user: %w", v.Name, err)
		}
	}
	return os.Chmod(dir, 0o500)
}

// mountWrapper runs argv as cred in a mount namespace of its own where
// each of binds (host directory → mount path) is mounted read-only: there
// is no container, so this is how the step sees a secret volume at its
// mountPath. The mount points are made on the host (empty directories,
// root's), since a bind needs one. Binding needs root: without it, the
// step runs as the kubelet itself (cred nil) and unshare fails.
func mountWrapper(binds [][2]string, cred *syscall.Credential, argv []string) ([]string, error) {
	script := ""
	for i, b := range binds {
		if err := os.MkdirAll(b[1], 0o755); err != nil {
			return nil, fmt.Errorf("stand-in kubelet: make the mount point %s: %w", b[1], err)
		}
		script += fmt.Sprintf(`mount --bind "$%d" "$%d" && mount -o remount,bind,ro "$%d" && `, 2*i+1, 2*i+2, 2*i+2)
	}
	script += fmt.Sprintf(`shift %d && exec "$@"`, 2*len(binds))
	out := []string{"unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c", script, "sh"}
	for _, b := range binds {
		out = append(out, b[0], b[1])
	}
	if cred != nil {
		groups := make([]string, len(cred.Groups))
		for i, g := range cred.Groups {
			groups[i] = strconv.FormatUint(uint64(g), 10)
		}
		out = append(out, "setpriv", "--reuid="+strconv.FormatUint(uint64(cred.Uid), 10), "--regid="+strconv.FormatUint(uint64(cred.Gid), 10),
			"--groups="+strings.Join(groups, ","), "--inh-caps=-all", "--bounding-set=-all", "--")
	}
	return append(out, argv...), nil
}
