//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// engineEnv points a daemon at the engines' interpreter that test/setup.sh
// builds (.cache/engines-venv, falling back to reana-client's venv, which
// has the same engines), the adapters in the tree, and an engine socket
// the test users can reach.
func engineEnv(t *testing.T) []string {
	t.Helper()
	python := filepath.Join(env.Repo, ".cache", "engines-venv", "bin", "python")
	if _, err := os.Stat(python); err != nil {
		python = filepath.Join(env.Repo, ".cache", "venv", "bin", "python")
	}
	dir, err := os.MkdirTemp("", "reana-e2e-engines-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o755))
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return []string{
		"REANA_SITE_ENGINE_PYTHON=" + python,
		"REANA_SITE_ENGINE_ADAPTERS=" + filepath.Join(env.Repo, "engines"),
		"REANA_SITE_ENGINE_SOCKET=" + filepath.Join(dir, "engine.sock"),
	}
}

// TestSnakemakeRoot6Fit runs the Snakemake variant of root6-fit with the
// real reana-client: the engine runs as alice, each rule is a job of its
// own, and the plot is the serial run's.
func TestSnakemakeRoot6Fit(t *testing.T) {
	d := StartDaemon(t, engineEnv(t)...)
	alice := d.AddUser(t, "alice")
	dir := alice.WorkDir(t, "root6-fit")

	out := alice.MustClient(t, dir, "run", "-w", "r6-snakemake", "-f", "reana-snakemake.yaml", "-p", "events=2000", "-o", "report=results/report.html")
	assert.Contains(t, out, "r6-snakemake.1")
	wf := alice.WaitStatus(t, "r6-snakemake.1", 3*time.Minute, "finished")
	assert.Equal(t, 2, wf.Progress.Total.Total, "gendata and fitdata")
	assert.Equal(t, 2, wf.Progress.Finished.Total)

	out = alice.MustClient(t, dir, "logs", "-w", "r6-snakemake.1")
	for _, s := range []string{"gendata", "fitdata", "2000", "snakemake.logging", "steps (100%) done", "Local"} {
		assert.Contains(t, out, s)
	}
	assertDownloadedPlot(t, alice, dir, "r6-snakemake.1", "2000")
}
