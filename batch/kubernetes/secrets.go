package kubernetes

import (
	"context"
	"fmt"
	"regexp"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
)

// A step pod cannot read the user's secret directory on the login node,
// so for Kubernetes the daemon has the user's helper read the secrets
// (asuser.ReadSecrets) and holds the values for as long as it takes to
// create one Secret per pod, owned by that pod: Kubernetes' garbage
// collector deletes it with the pod. The pod spec names the Secret's keys
// only (env valueFrom and a secret volume at /etc/reana/secrets, where
// REANA mounts them), so no value is in the pod, its annotations or the
// daemon's logs. The daemon needs only create on secrets in its namespace
// for this (deploy/kubernetes/role.yaml), never get, list or watch: it
// never reads a Secret back.

// SecretsVolume is the step pod's volume of file secrets.
const SecretsVolume = "secrets"

// secretKey is what a Secret's data keys may be.
var secretKey = regexp.MustCompile(`^[-._a-zA-Z0-9]+$`)

// SecretName is the name of a step pod's Secret.
func SecretName(podName string) string { return podName + "-secrets" }

// WithSecrets has the backend give steps their owner's secrets, read by
// the owner's helper through c.
func (b *Backend) WithSecrets(c asuser.Caller) *Backend {
	b.helper = c
	return b
}

// readSecrets is the spec's secrets, read as the user; none when the
// backend was given no helper or the spec asks for none.
func (b *Backend) readSecrets(ctx context.Context, spec batch.Spec) ([]asuser.Secret, error) {
	if b.helper == nil || spec.Secrets.Dir == "" {
		return nil, nil
	}
	s, err := asuser.ReadSecrets(ctx, b.helper, spec.User, asuser.SecretsDirArgs{Dir: spec.Secrets.Dir})
	if err != nil {
		return nil, fmt.Errorf("kubernetes: read the secrets of %s: %w", spec.User.Name, err)
	}
	return s, nil
}

// withSecrets adds the references to the pod's Secret: an env var per env
// secret and a read-only volume of the file secrets. It refuses a file
// secret whose name cannot be a Secret key.
func withSecrets(pod *corev1.Pod, secrets []asuser.Secret) error {
	name := SecretName(pod.Name)
	c := &pod.Spec.Containers[0]
	var items []corev1.KeyToPath
	for _, s := range secrets {
		if !secretKey.MatchString(s.Name) {
			return fmt.Errorf("the secret %q cannot be given to a Kubernetes step: a Secret key holds only letters, digits, '-', '_' and '.'; rename it", s.Name)
		}
		if s.Type == asuser.SecretEnv {
			c.Env = append(c.Env, corev1.EnvVar{Name: s.Name, ValueFrom: &corev1.EnvVarSource{
				SecretKeyRef: &corev1.SecretKeySelector{LocalObjectReference: corev1.LocalObjectReference{Name: name}, Key: s.Name},
			}})
			continue
		}
		items = append(items, corev1.KeyToPath{Key: s.Name, Path: s.Name})
	}
	if len(items) == 0 {
		return nil // a volume without items would show every key, env ones too
	}
	c.Env = append(c.Env, corev1.EnvVar{Name: "REANA_SECRETS_DIR", Value: asuser.SecretsMountPath})
	c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: SecretsVolume, MountPath: asuser.SecretsMountPath, ReadOnly: true})
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: SecretsVolume, VolumeSource: corev1.VolumeSource{
		// 0400: the files are the pod's uid's (no fsGroup), readable by it only.
		Secret: &corev1.SecretVolumeSource{SecretName: name, Items: items, DefaultMode: ptr(int32(0o400))},
	}})
	return nil
}

// createSecret makes the pod's Secret, owned by the pod. One already
// there (a resubmission after a restart) is kept: it holds the values as
// they were when the pod was made.
func (b *Backend) createSecret(ctx context.Context, pod *corev1.Pod, secrets []asuser.Secret) error {
	data := make(map[string][]byte, len(secrets))
	for _, s := range secrets {
		data[s.Name] = s.Value
	}
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: SecretName(pod.Name), Namespace: pod.Namespace, Labels: pod.Labels,
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID}},
		},
		Type: corev1.SecretTypeOpaque,
		Data: data,
	}
	_, err := b.api.CreateSecret(ctx, pod.Namespace, sec, metav1.CreateOptions{FieldManager: ManagedBy})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		return b.apiError("create the Secret of pod "+pod.Name, err)
	}
	return nil
}
