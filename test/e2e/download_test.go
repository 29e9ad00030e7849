//go:build e2e

package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestDirectoryDownloadWithUnreadableFileFails: reana-client's download
// of a directory holding a file the user cannot read (mode 000) fails and
// names the file, instead of printing SUCCESS over a truncated zip.
func TestDirectoryDownloadWithUnreadableFileFails(t *testing.T) {
	d, alice, _ := shared(t)
	wf := createWorkflow(t, alice, "unreadable", "sleepy")
	for _, name := range []string{"data/ok.txt", "data/sub/locked.txt"} {
		st, body := upload(alice, wf.ID, name, []byte("content of "+name))
		require.Equal(t, http.StatusOK, st, "%s", body)
	}
	locked := filepath.Join(d.WorkspaceOf(alice, wf.ID), "data", "sub", "locked.txt")
	require.NoError(t, os.Chmod(locked, 0))

	dl := alice.WorkDir(t, "")
	out, code := alice.Client(t, dl, "download", "-w", wf.Name, "data", "-o", dl)
	assert.NotZero(t, code, "reana-client download must fail:\n%s", out)
	assert.NotContains(t, out, "SUCCESS", out)
	assert.Contains(t, out, "cannot read data/sub/locked.txt: permission denied", out)

	require.NoError(t, os.Chmod(locked, 0o600))
	out = alice.MustClient(t, dl, "download", "-w", wf.Name, "data", "-o", dl)
	assert.Contains(t, out, "SUCCESS", out)
}
