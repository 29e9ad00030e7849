package kubeapi_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/batch/kubernetes"
)

// secretsReader answers secrets.read as the user's helper would.
type secretsReader []asuser.Secret

func (r secretsReader) Call(_ context.Context, _ asuser.Account, _ asuser.Op, _, result any) error {
	*(result.(*[]asuser.Secret)) = r
	return nil
}

// TestSecretsReachThePod: the backend's Secret, owned by the pod, gives
// the step its env and file secrets (the file at the mountPath, by a bind
// in a mount namespace of the step's own), and goes with the pod.
func TestSecretsReachThePod(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the stand-in mounts secret volumes as root")
	}
	st := newSite(t)
	b := st.backend(t).WithSecrets(secretsReader{
		{Name: "TOKEN", Type: asuser.SecretEnv, Value: []byte("tok-1")},
		{Name: "key.pem", Type: asuser.SecretFile, Value: []byte("PEM")},
	})
	spec := st.spec(t, "secrets", `echo "token=$TOKEN dir=$REANA_SECRETS_DIR $(cat $REANA_SECRETS_DIR/key.pem) $(stat -c %a:%u $REANA_SECRETS_DIR/key.pem)"`)
	spec.Secrets = batch.Secrets{Dir: "/home/stepuser/.reana-site/secrets"}
	j := submit(t, b, spec)
	waitState(t, b, j, batch.Succeeded)
	out, err := b.Logs(context.Background(), j)
	require.NoError(t, err)
	assert.Equal(t, fmt.Sprintf("token=tok-1 dir=/etc/reana/secrets PEM 400:%d\n", st.uid), out)

	sec, ok := st.s.Secret(kubernetes.SecretName(j.Handle.ID))
	require.True(t, ok)
	pod, _ := st.s.Pod(j.Handle.ID)
	require.Len(t, sec.OwnerReferences, 1)
	assert.Equal(t, pod.UID, sec.OwnerReferences[0].UID)
	left, _ := filepath.Glob(filepath.Join(os.TempDir(), "kubelet-secret-volume-*"))
	assert.Empty(t, left, "the volume's files went with the process")

	require.NoError(t, b.Cancel(context.Background(), j))
	require.Eventually(t, func() bool { _, ok := st.s.Secret(kubernetes.SecretName(j.Handle.ID)); return !ok }, 10*time.Second, 10*time.Millisecond,
		"the garbage collector deletes the Secret with its pod")
}
