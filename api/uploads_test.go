package api_test

import (
	"encoding/json"
	"io"
	"net/http"
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
