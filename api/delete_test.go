package api_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/daemon/config"
	"github.com/reana-site/reana-site/daemon/store"
)

// TestDeleteThatCannotRemoveTheFiles: a workspace the helper fails to
// remove leaves the workflow undeleted, so deleting it again can finish;
// it never says "deleted" with the files still on disk.
func TestDeleteThatCannotRemoveTheFiles(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, to plant a directory the helper's user cannot empty")
	}
	e := newEnv(t, config.Config{})
	e.create("wf", "stuck")
	wf, err := e.db.GetWorkflow(context.Background(), e.vars["wf_id"])
	require.NoError(t, err)
	// root's directory, with a file the user may not unlink.
	stuck := filepath.Join(wf.WorkspacePath, "stuck")
	require.NoError(t, os.Mkdir(stuck, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(stuck, "f"), []byte("x"), 0o644))

	e.check(request{Method: "PUT", Path: "/api/workflows/{wf}/status?status=deleted", Body: `{}`}, expectation{Status: http.StatusInternalServerError})
	wf, err = e.db.GetWorkflow(context.Background(), e.vars["wf_id"])
	require.NoError(t, err)
	assert.NotEqual(t, store.StatusDeleted, wf.Status, "marked deleted with its files on disk")

	require.NoError(t, os.RemoveAll(stuck))
	e.check(request{Method: "PUT", Path: "/api/workflows/{wf}/status?status=deleted", Body: `{}`}, expectation{Status: http.StatusOK})
	assert.NoDirExists(t, wf.WorkspacePath)
}
