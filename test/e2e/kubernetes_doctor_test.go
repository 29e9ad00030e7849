//go:build e2e

package e2e

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/test/harness"
)

// TestKubernetesDoctor: `reana-site doctor` asks the cluster, as the daemon
// would at start, whether a step pod would be admitted, and says why not.
func TestKubernetesDoctor(t *testing.T) {
	kube := harness.StartKubernetes(t, env)
	doctor := func() (string, error) {
		argv := append([]string{"env", "REANA_SITE_STATE_DIR=" + t.TempDir(), "REANA_SITE_LISTEN=127.0.0.1:0"}, kube.DaemonEnv()...)
		return execCombined(append(argv, env.Bin, "doctor")...)
	}
	out, err := doctor()
	require.NoError(t, err, "a healthy setup must pass:\n%s", out)
	assert.Contains(t, out, "ok: kubernetes: namespace "+kube.Namespace+" would admit a step pod")

	kube.RefuseLikeSCC(t, true)
	out, err = doctor()
	require.Error(t, err, out)
	var line string
	for _, l := range strings.Split(out, "\n") {
		if strings.HasPrefix(l, "problem: kubernetes:") {
			line = l
		}
	}
	assert.Contains(t, line, "oc adm policy add-scc-to-user")
	assert.NotContains(t, out, "kubernetes: kubernetes:", "the backend's prefix once")
	assert.Empty(t, kube.Pods(t), "a dry-run stores nothing")
	for _, c := range kube.Creations(t) {
		assert.True(t, c.DryRun, "only dry-runs: %+v", c)
	}
}
