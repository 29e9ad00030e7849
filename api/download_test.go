package api_test

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/rand"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/daemon/config"
)

// workspaceOf is the directory of workflow {prefix} on disk.
func (e *env) workspaceOf(prefix string) string {
	e.t.Helper()
	wf, err := e.db.GetWorkflow(context.Background(), e.vars[prefix+"_id"])
	require.NoError(e.t, err)
	return wf.WorkspacePath
}

func (e *env) uploadFile(name string, body []byte) {
	e.t.Helper()
	req, err := http.NewRequest("POST", withToken(e.srv.URL+e.expand("/api/workflows/{wf}/workspace?file_name="+name), e.token), bytes.NewReader(body))
	require.NoError(e.t, err)
	req.Header.Set("Content-Type", uploadHeaders)
	res, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	res.Body.Close()
	require.Equal(e.t, http.StatusOK, res.StatusCode)
}

// lock makes a workspace entry mode 000. The helper runs as the test user
// (not root), so the kernel really refuses it.
func lock(t *testing.T, path string) {
	t.Helper()
	require.NoError(t, os.Chmod(path, 0))
	t.Cleanup(func() { _ = os.Chmod(path, 0o700) })
}

// TestDirectoryDownloadUnreadable: a directory download with an entry the
// user cannot read is refused before the status line, naming the entry,
// instead of a 200 with a truncated zip.
func TestDirectoryDownloadUnreadable(t *testing.T) {
	tests := []struct {
		name, locked, path, msg string
	}{
		{name: "file", locked: "data/sub/locked.txt", path: "data", msg: "Download data: cannot read data/sub/locked.txt: permission denied; nothing was sent."},
		{name: "subdirectory", locked: "data/sub", path: "data", msg: "Download data: cannot read data/sub: permission denied"},
		{name: "glob", locked: "data/sub/locked.txt", path: "data/*", msg: "cannot read data/sub/locked.txt: permission denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, config.Config{})
			e.create("wf", "dl")
			e.uploadFile("data/a.txt", []byte("a"))
			e.uploadFile("data/sub/locked.txt", []byte("secret"))
			lock(t, filepath.Join(e.workspaceOf("wf"), tt.locked))
			e.check(request{Method: "GET", Path: "/api/workflows/{wf}/workspace/" + tt.path},
				expectation{Status: http.StatusForbidden, Keys: messageOnly, Msg: tt.msg})
		})
	}
}

// TestDirectoryDownloadReadable: the check does not get in the way of a
// whole directory.
func TestDirectoryDownloadReadable(t *testing.T) {
	e := newEnv(t, config.Config{})
	e.create("wf", "dl")
	e.uploadFile("data/a.txt", []byte("a"))
	e.uploadFile("data/sub/b.txt", []byte("b"))
	res := e.check(request{Method: "GET", Path: "/api/workflows/{wf}/workspace/data"}, expectation{Status: http.StatusOK})
	zr, err := zip.NewReader(bytes.NewReader(res.Body), int64(len(res.Body)))
	require.NoError(t, err)
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	assert.ElementsMatch(t, []string{"data/", "data/a.txt", "data/sub/", "data/sub/b.txt"}, names)
}

// TestDirectoryDownloadFailsMidStream: a file that becomes unreadable
// after the status line was sent cuts the transfer, so the client sees a
// failure rather than a cleanly ended, truncated zip.
func TestDirectoryDownloadFailsMidStream(t *testing.T) {
	e := newEnv(t, config.Config{})
	e.create("wf", "dl")
	// Large and incompressible, so the helper is still writing it (blocked
	// on the pipe, as the client reads nothing yet) when the later file is
	// locked; more than loopback TCP and the pipe buffer.
	big := make([]byte, 48<<20)
	_, _ = rand.Read(big)
	e.uploadFile("data/a_big.bin", big)
	e.uploadFile("data/z_late.txt", []byte("late"))

	req, err := http.NewRequest("GET", withToken(e.srv.URL+e.expand("/api/workflows/{wf}/workspace/data"), e.token), nil)
	require.NoError(t, err)
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode, "the check passed: streaming began")
	lock(t, filepath.Join(e.workspaceOf("wf"), "data/z_late.txt"))
	body, err := io.ReadAll(res.Body)
	require.Error(t, err, "a %d-byte body ended as if complete", len(body))
	assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
}
