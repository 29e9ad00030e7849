package harness

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// EngineEnv is the daemon environment for cwl, snakemake and yadage runs:
// the engines' interpreter that test/setup.sh builds (.cache/engines-venv,
// falling back to reana-client's venv, which has the same engines), the
// adapters in the tree, and an engine socket the test users can reach.
func EngineEnv(t testing.TB, e *Env) []string {
	t.Helper()
	python := filepath.Join(e.Repo, ".cache", "engines-venv", "bin", "python")
	if _, err := os.Stat(python); err != nil {
		python = filepath.Join(e.Repo, ".cache", "venv", "bin", "python")
	}
	dir, err := os.MkdirTemp("", "reana-test-engines-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o755))
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return []string{
		"REANA_SITE_ENGINE_PYTHON=" + python,
		"REANA_SITE_ENGINE_ADAPTERS=" + filepath.Join(e.Repo, "engines"),
		"REANA_SITE_ENGINE_SOCKET=" + filepath.Join(dir, "engine.sock"),
	}
}
