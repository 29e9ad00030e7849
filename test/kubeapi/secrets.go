package kubeapi

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Secrets, as far as step pods use them: create (no list, get or watch:
// the daemon's Role has create only), the garbage collector deleting a
// Secret with the pod that owns it (ownerReferences), and the kubelet's
// side: env valueFrom.secretKeyRef and secret volumes. The kubelet waits
// for a missing Secret, as the real one does (the container waits, with
// CreateContainerConfigError for an env var, and the pod's FailedMount
// events for a volume).

var secretsResource = schema.GroupResource{Resource: "secrets"}

func (s *Server) createSecret(w http.ResponseWriter, r *http.Request, ns string) {
	sec, ok := readObject[*corev1.Secret](s, w, r)
	if !ok {
		return
	}
	if sec.Namespace != "" && sec.Namespace != ns {
		writeStatus(w, &apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request").ErrStatus)
		return
	}
	sec.Namespace = ns
	s.mu.Lock()
	defer s.mu.Unlock()
	key := ns + "/" + sec.Name
	if _, ok := s.secrets[key]; ok {
		writeStatus(w, &apierrors.NewAlreadyExists(secretsResource, sec.Name).ErrStatus)
		return
	}
	s.rv++
	sec.UID = newUID()
	sec.ResourceVersion = strconv.FormatInt(s.rv, 10)
	sec.CreationTimestamp = metav1.Now()
	s.secrets[key] = sec.DeepCopy()
	s.creations = append(s.creations, Creation{Namespace: ns, Name: sec.Name, Code: http.StatusCreated})
	sec.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}
	writeJSON(w, http.StatusCreated, sec)
}

// Secret is a stored Secret, for the tests' eyes.
func (s *Server) Secret(name string) (*corev1.Secret, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, ok := s.secrets[s.namespace+"/"+name]
	if !ok {
		return nil, false
	}
	return sec.DeepCopy(), true
}

// collectSecrets is the garbage collector's part: the Secrets a removed
// pod owned go with it. The caller holds s.mu.
func (s *Server) collectSecrets(pod *corev1.Pod) {
	for key, sec := range s.secrets {
		for _, o := range sec.OwnerReferences {
			if o.Kind == "Pod" && o.UID == pod.UID && sec.Namespace == pod.Namespace {
				delete(s.secrets, key)
			}
		}
	}
}

// missingSecret names the first Secret the container needs that does not
// exist yet, with the kubelet's words for it, or "".
func (s *Server) missingSecret(pod *corev1.Pod, c corev1.Container) (reason, msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range c.Env {
		if ref := secretRef(v); ref != nil {
			if _, ok := s.secrets[pod.Namespace+"/"+ref.Name]; !ok {
				return "CreateContainerConfigError", fmt.Sprintf("secret %q not found", ref.Name)
			}
		}
	}
	for _, v := range pod.Spec.Volumes {
		if v.Secret != nil {
			if _, ok := s.secrets[pod.Namespace+"/"+v.Secret.SecretName]; !ok {
				return "ContainerCreating", fmt.Sprintf("MountVolume.SetUp failed for volume %q : secret %q not found", v.Name, v.Secret.SecretName)
			}
		}
	}
	return "", ""
}

func secretRef(v corev1.EnvVar) *corev1.SecretKeySelector {
	if v.ValueFrom == nil {
		return nil
	}
	return v.ValueFrom.SecretKeyRef
}

// secretEnv is an env var's value from its Secret.
func (s *Server) secretEnv(pod *corev1.Pod, ref *corev1.SecretKeySelector) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, ok := s.secrets[pod.Namespace+"/"+ref.Name]
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
// of the pod's own (removed with the pod's process), files with the
// volume's mode, owned by the pod's uid (the kubelet sets no owner without
// fsGroup, but its files are then root's and 0644: the stand-in's step runs
// as the pod's uid on the host, where root's 0400 file would be unreadable).
func (s *Server) secretVolume(pod *corev1.Pod, v corev1.Volume, cred *syscall.Credential) (string, error) {
	s.mu.Lock()
	sec, ok := s.secrets[pod.Namespace+"/"+v.Secret.SecretName]
	var data map[string][]byte
	if ok {
		data = sec.DeepCopy().Data
	}
	s.mu.Unlock()
	if !ok {
		return "", fmt.Errorf("secret %q not found", v.Secret.SecretName)
	}
	dir, err := os.MkdirTemp("", "kubeapi-secret-volume-")
	if err != nil {
		return "", err
	}
	mode := os.FileMode(0o644)
	if v.Secret.DefaultMode != nil {
		mode = os.FileMode(*v.Secret.DefaultMode)
	}
	items := v.Secret.Items
	if len(items) == 0 {
		for k := range data {
			items = append(items, corev1.KeyToPath{Key: k, Path: k})
		}
	}
	for _, it := range items {
		val, ok := data[it.Key]
		if !ok || strings.Contains(it.Path, "..") || strings.HasPrefix(it.Path, "/") {
			os.RemoveAll(dir)
			return "", fmt.Errorf("MountVolume.SetUp failed for volume %q : key %q of secret %q is missing or its path is bad", v.Name, it.Key, v.Secret.SecretName)
		}
		p := filepath.Join(dir, it.Path)
		if err := os.WriteFile(p, val, mode); err != nil {
			os.RemoveAll(dir)
			return "", err
		}
		if cred != nil {
			_ = os.Chown(p, int(cred.Uid), int(cred.Gid))
		}
	}
	if cred != nil {
		_ = os.Chown(dir, int(cred.Uid), int(cred.Gid))
	}
	return dir, os.Chmod(dir, 0o500)
}

// mountWrapper runs argv as cred in a mount namespace of its own where
// each of binds (host directory → mount path) is mounted read-only: the
// stand-in has no container, so this is how the step sees a secret volume
// at its mountPath. The mount points are made on the host (empty
// directories, root's), since a bind needs one.
func mountWrapper(binds [][2]string, cred *syscall.Credential, argv []string) ([]string, error) {
	script := ""
	for i, b := range binds {
		if err := os.MkdirAll(b[1], 0o755); err != nil {
			return nil, fmt.Errorf("stand-in kubelet: make the mount point %s: %w", b[1], err)
		}
		script += fmt.Sprintf(`mount --bind "$%d" "$%d" && mount -o remount,bind,ro "$%d" && `, 2*i+1, 2*i+2, 2*i+2)
	}
	n := 2 * len(binds)
	script += fmt.Sprintf(`shift %d && exec "$@"`, n)
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
