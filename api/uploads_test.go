package api_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/daemon/config"
)

// countedReader hands out n bytes of 'x' and counts what was taken.
type countedReader struct {
	left int64
	read atomic.Int64
}

func (c *countedReader) Read(p []byte) (int, error) {
	if c.left <= 0 {
		return 0, io.EOF
	}
	n := int(min(int64(len(p)), c.left))
	for i := range p[:n] {
		p[i] = 'x'
	}
	c.left -= int64(n)
	c.read.Add(int64(n))
	return n, nil
}

// upload streams body to the workspace of e.vars["wf"] as file name;
// length < 0 sends it chunked, with no Content-Length.
func (e *env) upload(name string, body io.Reader, length int64, timeout time.Duration) response {
	e.t.Helper()
	target := withToken(e.srv.URL+e.expand("/api/workflows/{wf}/workspace?file_name="+name), e.token)
	req, err := http.NewRequest("POST", target, body)
	require.NoError(e.t, err)
	req.ContentLength = length
	req.Header.Set("Content-Type", uploadHeaders)
	res, err := (&http.Client{Timeout: timeout}).Do(req)
	require.NoError(e.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(e.t, err)
	out := response{Status: res.StatusCode, Header: res.Header, Body: b}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") {
		require.NoError(e.t, json.Unmarshal(b, &out.JSON), "body %s", b)
	}
	checkContract(e.t, "POST", "/api/workflows/x/workspace", out)
	return out
}

// TestUploadWithQuotaUsedUp stops a chunked upload at once when nothing of
// the quota is left, instead of streaming it all to disk first.
func TestUploadWithQuotaUsedUp(t *testing.T) {
	e := newEnv(t, config.Config{DiskQuotaBytes: 10})
	e.create("wf", "full")
	e.check(request{Method: "POST", Path: "/api/workflows/{wf}/workspace?file_name=ten.bin", Body: "0123456789", ContentType: uploadHeaders},
		expectation{Status: http.StatusOK})
	body := &countedReader{left: 64 << 20}
	res := e.upload("more.bin", body, -1, time.Minute)
	assert.Equal(t, http.StatusForbidden, res.Status, "%s", res.Body)
	assert.Contains(t, res.JSON["message"], "would exceed your disk quota")
	assert.Less(t, body.read.Load(), int64(4<<20), "the server read the upload on past the quota")
}

// TestStalledUpload aborts an upload that stops sending: the client gets a
// clear 400, and the helper's temporary file is gone. The request is
// written by hand, as a stalled client would: net/http's client would not
// give up on its own body.
func TestStalledUpload(t *testing.T) {
	e := newEnv(t, config.Config{UploadIdleTimeout: 300 * time.Millisecond})
	e.create("wf", "stalled")
	u, err := url.Parse(withToken(e.srv.URL+e.expand("/api/workflows/{wf}/workspace?file_name=slow.bin"), e.token))
	require.NoError(t, err)
	conn, err := net.Dial("tcp", u.Host)
	require.NoError(t, err)
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: 1000\r\n\r\n12345", u.RequestURI(), u.Host, uploadHeaders)
	require.NoError(t, err)
	require.NoError(t, conn.SetReadDeadline(time.Now().Add(20*time.Second)))
	res, err := http.ReadResponse(bufio.NewReader(conn), nil)
	require.NoError(t, err, "no answer to a stalled upload")
	defer res.Body.Close()
	var body map[string]any
	require.NoError(t, json.NewDecoder(res.Body).Decode(&body))
	assert.Equal(t, http.StatusBadRequest, res.StatusCode, "%v", body)
	assert.Contains(t, body["message"], "nothing arrived for 300ms")
	assert.Empty(t, e.workspaceFiles(), "the aborted upload left files behind")
}

// workspaceFiles lists every file in the workspace of e.vars["wf"] straight
// from the disk, hidden ones included.
func (e *env) workspaceFiles() []string {
	e.t.Helper()
	wf, err := e.db.GetWorkflow(context.Background(), e.vars["wf_id"])
	require.NoError(e.t, err)
	var out []string
	err = filepath.WalkDir(wf.WorkspacePath, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			rel, _ := filepath.Rel(wf.WorkspacePath, p)
			out = append(out, rel)
		}
		return nil
	})
	require.NoError(e.t, err)
	return out
}
