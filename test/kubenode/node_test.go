package kubenode_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/batch/kubernetes"
	"github.com/reana-site/reana-site/test/kubelet"
	"github.com/reana-site/reana-site/test/kubenode"
	"github.com/reana-site/reana-site/test/kubereal"
)

// TestNodeAgent runs the backend against a real API server with the node
// agent as its only node: the pod is bound, runs as its uid and groups in
// the workspace, ends with its exit code, its output comes back through
// the API server's pods/log (which asks the agent's kubelet endpoint), and
// a cancel's graceful delete stops the process and removes the pod. A
// step with secrets gets them from its pod's Secret, read from the API
// server (env and a read-only volume at /etc/reana/secrets), and the
// Secret goes with the pod.
func TestNodeAgent(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the node agent runs pods as their uid: root only")
	}
	c, err := kubereal.Start(t)
	if err != nil {
		t.Skipf("no real API server (%v); the stand-in's tests cover the kubelet", err)
	}
	// Not t.TempDir: its parent is root's alone, and the pod runs as 4101.
	root, err := os.MkdirTemp("", "kubenode-")
	require.NoError(t, err)
	t.Cleanup(func() { _ = os.RemoveAll(root) })
	require.NoError(t, os.Chmod(root, 0o755))
	ws := filepath.Join(root, "users", "alice", "wf")
	require.NoError(t, os.MkdirAll(ws, 0o755))
	require.NoError(t, os.Chown(ws, 4101, 4100))

	cert, ca, err := c.KubeletTLS()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	node, err := kubenode.Start(ctx, kubenode.Config{
		Client: c.Admin, Namespace: c.Namespace, Selector: kubernetes.LabelManagedBy + "=" + kubernetes.ManagedBy,
		NodeName: "test-node", Host: kubelet.Host{ClaimName: c.Claim, ClaimRoot: root, StopGrace: time.Second},
		Cert: cert, ClientCA: ca, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	require.NoError(t, err)
	defer node.Stop()

	api, err := kubernetes.NewClient(c.Kubeconfig)
	require.NoError(t, err)
	cfg := kubernetes.Config{Namespace: c.Namespace, ClaimName: c.Claim, WorkspaceRoot: root, StepServiceAccount: "reana-site-step", MinUID: 1000}
	b, err := kubernetes.New(cfg, api, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	b = b.WithSecrets(secretsReader{
		{Name: "TOKEN", Type: asuser.SecretEnv, Value: []byte("tok-1")},
		{Name: "key.pem", Type: asuser.SecretFile, Value: []byte("PEM")},
	})
	require.NoError(t, b.Start(ctx))

	spec := func(step, command string) batch.Spec {
		return batch.Spec{
			JobID: "job-" + step, WorkflowID: "5e1f4c2a-8b7d-4e6f-9a0b-1c2d3e4f5a6b", WorkflowName: "node.1", StepName: step,
			Command: command, Image: "docker.io/library/debian:12-slim", Workspace: ws,
			User: asuser.Account{Name: "alice", UID: 4101, GID: 4100, Groups: []uint32{4100, 5002}},
		}
	}
	wait := func(j batch.Job, want ...batch.State) batch.Status {
		var st batch.Status
		require.Eventually(t, func() bool {
			out, err := b.Status(ctx, []batch.Job{j})
			if err != nil {
				return false
			}
			st = out[j.Spec.JobID]
			for _, w := range want {
				if st.State == w {
					return true
				}
			}
			return false
		}, time.Minute, 20*time.Millisecond, "job %s never reached %v", j.Spec.JobID, want)
		return st
	}

	s := spec("ids", "echo hello; id -u; id -G; pwd; touch made; exit 3")
	h, err := b.Submit(ctx, s)
	require.NoError(t, err)
	j := batch.Job{Spec: s, Handle: h}
	st := wait(j, batch.Failed)
	require.NotNil(t, st.ExitCode)
	assert.Equal(t, 3, *st.ExitCode)
	logs, err := b.Logs(ctx, j)
	require.NoError(t, err)
	assert.Equal(t, "hello\n4101\n4100 5002\n"+ws+"\n", logs)
	fi, err := os.Stat(filepath.Join(ws, "made"))
	require.NoError(t, err)
	assert.Equal(t, "4101", owner(fi))
	pod, err := c.Admin.CoreV1().Pods(c.Namespace).Get(ctx, h.ID, metav1.GetOptions{})
	require.NoError(t, err)
	assert.Equal(t, "test-node", pod.Spec.NodeName, "bound through the Binding subresource")

	s = spec("secrets", `echo "token=$TOKEN dir=$REANA_SECRETS_DIR $(cat $REANA_SECRETS_DIR/key.pem) $(stat -c %a:%u $REANA_SECRETS_DIR/key.pem)"`)
	s.Secrets = batch.Secrets{Dir: "/home/alice/.reana-site/secrets"}
	h, err = b.Submit(ctx, s)
	require.NoError(t, err)
	j = batch.Job{Spec: s, Handle: h}
	wait(j, batch.Succeeded)
	logs, err = b.Logs(ctx, j)
	require.NoError(t, err)
	assert.Equal(t, "token=tok-1 dir=/etc/reana/secrets PEM 400:4101\n", logs)
	secrets := c.Admin.CoreV1().Secrets(c.Namespace)
	_, err = secrets.Get(ctx, kubernetes.SecretName(h.ID), metav1.GetOptions{})
	require.NoError(t, err, "the pod's own Secret")
	require.NoError(t, b.Cancel(ctx, j))
	require.Eventually(t, func() bool {
		_, err := secrets.Get(ctx, kubernetes.SecretName(h.ID), metav1.GetOptions{})
		return apierrors.IsNotFound(err)
	}, 30*time.Second, 50*time.Millisecond, "the Secret goes with its pod")

	s = spec("nap", "sleep 300")
	h, err = b.Submit(ctx, s)
	require.NoError(t, err)
	j = batch.Job{Spec: s, Handle: h}
	wait(j, batch.Running)
	require.NoError(t, b.Cancel(ctx, j))
	require.Eventually(t, func() bool {
		_, err := c.Admin.CoreV1().Pods(c.Namespace).Get(ctx, h.ID, metav1.GetOptions{})
		return err != nil
	}, 30*time.Second, 50*time.Millisecond, "the pod is removed once its container stopped")
}
