package kubernetes

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reana-site/reana-site/asuser"
)

// secretsHelper answers secrets.read as the user's helper would.
type secretsHelper struct{ secrets []asuser.Secret }

func (h secretsHelper) Call(_ context.Context, _ asuser.Account, op asuser.Op, _, result any) error {
	if op != asuser.OpSecretsRead {
		return asuser.Errorf(asuser.KindInternal, "unexpected %s", op)
	}
	*(result.(*[]asuser.Secret)) = h.secrets
	return nil
}

func TestSecretsBecomeAPodsOwnSecret(t *testing.T) {
	h := newHarness(t, nil, nil)
	h.b.WithSecrets(secretsHelper{[]asuser.Secret{
		{Name: "TOKEN", Type: asuser.SecretEnv, Value: []byte("tok-value-1")},
		{Name: ".keytab", Type: asuser.SecretFile, Value: []byte("keytab-bytes")},
	}})
	spec := testSpec()
	spec.Secrets.Dir = "/home/alice/.reana-site/secrets"
	h.submit(spec)
	name := PodName(spec.JobID, spec.StepName)
	pod, err := h.client.CoreV1().Pods(testConfig().Namespace).Get(context.Background(), name, metav1.GetOptions{})
	require.NoError(t, err)
	raw, _ := json.Marshal(pod)
	assert.NotContains(t, string(raw), "tok-value-1", "no value is in the pod")
	assert.NotContains(t, string(raw), "keytab-bytes")
	assert.Empty(t, restricted(t, pod), "still Pod Security restricted")

	c := pod.Spec.Containers[0]
	var tokenRef *corev1.SecretKeySelector
	for _, e := range c.Env {
		if e.Name == "TOKEN" && e.ValueFrom != nil {
			tokenRef = e.ValueFrom.SecretKeyRef
		}
		if e.Name == "REANA_SECRETS_DIR" {
			assert.Equal(t, "/etc/reana/secrets", e.Value)
		}
	}
	require.NotNil(t, tokenRef)
	assert.Equal(t, SecretName(name), tokenRef.Name)
	assert.Contains(t, c.VolumeMounts, corev1.VolumeMount{Name: SecretsVolume, MountPath: "/etc/reana/secrets", ReadOnly: true})

	sec, err := h.client.CoreV1().Secrets(testConfig().Namespace).Get(context.Background(), SecretName(name), metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, []byte("tok-value-1"), sec.Data["TOKEN"])
	assert.Equal(t, []byte("keytab-bytes"), sec.Data[".keytab"])
	require.Len(t, sec.OwnerReferences, 1)
	assert.Equal(t, metav1.OwnerReference{APIVersion: "v1", Kind: "Pod", Name: name, UID: pod.UID}, sec.OwnerReferences[0])

	// Submitting again (after a restart) adopts the pod and keeps its Secret.
	h.submit(spec)
}

func TestSecretsRefusedOnKubernetes(t *testing.T) {
	h := newHarness(t, nil, nil)
	h.b.WithSecrets(secretsHelper{[]asuser.Secret{{Name: "my key", Type: asuser.SecretFile, Value: []byte("v")}}})
	spec := testSpec()
	spec.Secrets.Dir = "/home/alice/.reana-site/secrets"
	_, err := h.b.Submit(context.Background(), spec)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "cannot be given to a Kubernetes step")

	spec.Secrets.Kerberos = true
	err = h.b.CheckSpec(spec)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "kerberos: true is not available for Kubernetes steps")
}

func TestNoSecretsNoSecret(t *testing.T) {
	h := newHarness(t, nil, nil)
	h.b.WithSecrets(secretsHelper{})
	spec := testSpec()
	spec.Secrets.Dir = "/home/alice/.reana-site/secrets"
	h.submit(spec)
	pod, err := h.client.CoreV1().Pods(testConfig().Namespace).Get(context.Background(), PodName(spec.JobID, spec.StepName), metav1.GetOptions{})
	require.NoError(t, err)
	assert.Len(t, pod.Spec.Volumes, 1, "only the workspace")
	list, err := h.client.CoreV1().Secrets(testConfig().Namespace).List(context.Background(), metav1.ListOptions{})
	require.NoError(t, err)
	assert.Empty(t, list.Items)
}
