package kubelet

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// store is a Secrets a test fills while the kubelet waits.
type store struct {
	mu sync.Mutex
	m  map[string]*corev1.Secret
}

func (s *store) Secret(_ context.Context, ns, name string) (*corev1.Secret, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[ns+"/"+name], nil
}

func (s *store) put(sec *corev1.Secret) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[sec.Namespace+"/"+sec.Name] = sec
}

// recorder is a Sink that keeps the waiting states and events.
type recorder struct {
	mu      sync.Mutex
	pod     corev1.Pod
	waiting []corev1.ContainerStateWaiting
	events  []string
}

func (r *recorder) Update(mutate func(*corev1.Pod)) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	mutate(&r.pod)
	if w := r.pod.Status.ContainerStatuses[0].State.Waiting; w != nil {
		r.waiting = append(r.waiting, *w)
	}
	return true
}

func (r *recorder) Event(typ, reason, _, message string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, typ+" "+reason+": "+message)
}

func secretPod(env, volume bool) *corev1.Pod {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "p", Namespace: "ns"},
		Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "step"}}}}
	c := &pod.Spec.Containers[0]
	if env {
		c.Env = append(c.Env, corev1.EnvVar{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: "p-secrets"}, Key: "TOKEN"}}})
	}
	if volume {
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "secrets",
			VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: "p-secrets"}}})
	}
	return pod
}

// TestAwaitSecrets: the container waits for a missing Secret with the
// kubelet's reason, message and event, once each, and starts with the
// Secret's values once it exists; a pod without Secrets does not wait.
func TestAwaitSecrets(t *testing.T) {
	tests := []struct {
		name        string
		env, volume bool
		waiting     []corev1.ContainerStateWaiting
		events      []string
	}{
		{name: "none"},
		{name: "env", env: true,
			waiting: []corev1.ContainerStateWaiting{{Reason: "CreateContainerConfigError", Message: `secret "p-secrets" not found`}},
			events:  []string{`Warning Failed: Error: secret "p-secrets" not found`}},
		{name: "volume", volume: true,
			waiting: []corev1.ContainerStateWaiting{{Reason: "ContainerCreating", Message: `MountVolume.SetUp failed for volume "secrets" : secret "p-secrets" not found`}},
			events:  []string{`Warning FailedMount: MountVolume.SetUp failed for volume "secrets" : secret "p-secrets" not found`}},
		{name: "env first", env: true, volume: true,
			waiting: []corev1.ContainerStateWaiting{{Reason: "CreateContainerConfigError", Message: `secret "p-secrets" not found`}},
			events:  []string{`Warning Failed: Error: secret "p-secrets" not found`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &store{m: map[string]*corev1.Secret{}}
			h := Host{Secrets: st}
			pod := secretPod(tt.env, tt.volume)
			rec := &recorder{pod: corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{}}}}}
			sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "p-secrets", Namespace: "ns"}, Data: map[string][]byte{"TOKEN": []byte("tok")}}
			if tt.waiting != nil {
				go func() {
					time.Sleep(5 * secretPoll)
					st.put(sec)
				}()
			}
			found, ok := h.awaitSecrets(context.Background(), pod, pod.Spec.Containers[0], rec)
			require.True(t, ok)
			assert.Equal(t, tt.waiting, rec.waiting)
			assert.Equal(t, tt.events, rec.events)
			if tt.env || tt.volume {
				assert.Equal(t, "tok", string(found["p-secrets"].Data["TOKEN"]))
			}
			if tt.env {
				v, err := secretEnv(pod, secretRef(pod.Spec.Containers[0].Env[0]), found)
				require.NoError(t, err)
				assert.Equal(t, "tok", v)
			}
		})
	}

	t.Run("the pod goes while it waits", func(t *testing.T) {
		pod := secretPod(true, false)
		rec := &recorder{pod: corev1.Pod{Status: corev1.PodStatus{ContainerStatuses: []corev1.ContainerStatus{{}}}}}
		ctx, cancel := context.WithTimeout(context.Background(), 3*secretPoll)
		defer cancel()
		_, ok := Host{Secrets: &store{m: map[string]*corev1.Secret{}}}.awaitSecrets(ctx, pod, pod.Spec.Containers[0], rec)
		assert.False(t, ok)
	})
}

// TestSecretVolume: the items with the volume's mode (an item's own mode
// wins), every key without items, and a key missing or a path leaving the
// directory refused.
func TestSecretVolume(t *testing.T) {
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "s"}, Data: map[string][]byte{"a": []byte("A"), "b": []byte("B")}}
	mode := func(m int32) *int32 { return &m }
	tests := []struct {
		name    string
		source  corev1.SecretVolumeSource
		want    map[string]os.FileMode // file -> mode
		wantErr string
	}{
		{name: "every key, default mode", source: corev1.SecretVolumeSource{SecretName: "s"},
			want: map[string]os.FileMode{"a": 0o644, "b": 0o644}},
		{name: "items, defaultMode and an item's mode", source: corev1.SecretVolumeSource{SecretName: "s", DefaultMode: mode(0o400),
			Items: []corev1.KeyToPath{{Key: "a", Path: "a"}, {Key: "b", Path: "bee", Mode: mode(0o440)}}},
			want: map[string]os.FileMode{"a": 0o400, "bee": 0o440}},
		{name: "a missing key", source: corev1.SecretVolumeSource{SecretName: "s", Items: []corev1.KeyToPath{{Key: "c", Path: "c"}}},
			wantErr: `key "c" of secret "s" is missing`},
		{name: "a path out", source: corev1.SecretVolumeSource{SecretName: "s", Items: []corev1.KeyToPath{{Key: "a", Path: "../a"}}},
			wantErr: "its path is bad"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := corev1.Volume{Name: "secrets", VolumeSource: corev1.VolumeSource{Secret: &tt.source}}
			dir, err := secretVolume(v, sec, nil)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			defer func() { _ = os.Chmod(dir, 0o700); _ = os.RemoveAll(dir) }()
			got := map[string]os.FileMode{}
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			for _, e := range entries {
				fi, err := os.Stat(filepath.Join(dir, e.Name()))
				require.NoError(t, err)
				got[e.Name()] = fi.Mode().Perm()
			}
			assert.Equal(t, tt.want, got)
			fi, err := os.Stat(dir)
			require.NoError(t, err)
			assert.Equal(t, os.FileMode(0o500), fi.Mode().Perm(), "read-only, as the kubelet's volume")
		})
	}
}
