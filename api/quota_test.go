package api_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/daemon/config"
)

// gatedReader sends nothing until gate is closed, then its reader.
type gatedReader struct {
	gate <-chan struct{}
	r    io.Reader
}

func (g *gatedReader) Read(p []byte) (int, error) {
	<-g.gate
	return g.r.Read(p)
}

// used is the caller's recorded disk usage once the background
// measurements have settled.
func (e *env) used() int64 {
	e.t.Helper()
	e.api.Wait()
	n, err := e.db.UserDiskUsage(context.Background(), e.user.ID)
	require.NoError(e.t, err)
	return n
}

// TestParallelUploadsShareTheQuota: uploads in flight reserve their length,
// so six of 300 KiB with 1 MiB left cannot all be accepted.
func TestParallelUploadsShareTheQuota(t *testing.T) {
	const quota, size = 1 << 20, 300 << 10
	e := newEnv(t, config.Config{DiskQuotaBytes: quota})
	e.create("wf", "parallel")
	gate := make(chan struct{})
	time.AfterFunc(500*time.Millisecond, func() { close(gate) })
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			res := e.upload(fmt.Sprintf("part%d.bin", i), &gatedReader{gate: gate, r: &countedReader{left: size}}, size, time.Minute)
			mu.Lock()
			statuses[res.Status]++
			mu.Unlock()
		})
	}
	wg.Wait()
	assert.Equal(t, map[int]int{http.StatusOK: 3, http.StatusForbidden: 3}, statuses)
	assert.LessOrEqual(t, e.used(), int64(quota))
}

// TestOverwriteAndDeleteAccounting: overwriting a file is charged the
// difference, deleting it frees it, and the record converges to what is
// on disk, so the quota is usable again.
func TestOverwriteAndDeleteAccounting(t *testing.T) {
	const quota, size = 1 << 20, 200 << 10
	e := newEnv(t, config.Config{DiskQuotaBytes: quota})
	e.create("wf", "overwrite")
	for range 5 {
		res := e.upload("same.bin", &countedReader{left: size}, size, time.Minute)
		require.Equal(t, http.StatusOK, res.Status, "%s", res.Body)
	}
	assert.Less(t, e.used(), int64(2*size), "one file counted more than once")
	e.check(request{Method: "DELETE", Path: "/api/workflows/{wf}/workspace/same.bin"}, expectation{Status: http.StatusOK})
	assert.Less(t, e.used(), int64(size/2), "a deleted file stayed counted")
	res := e.upload("big.bin", &countedReader{left: 900 << 10}, 900<<10, time.Minute)
	assert.Equal(t, http.StatusOK, res.Status, "%s", res.Body)
}
