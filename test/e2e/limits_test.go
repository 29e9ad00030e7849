//go:build e2e

package e2e

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// helpersOf counts the running helpers (`reana-site worker`) of a uid.
func helpersOf(t *testing.T, d *Daemon, uid int) int {
	t.Helper()
	procs, err := filepath.Glob("/proc/[0-9]*")
	require.NoError(t, err)
	n := 0
	for _, p := range procs {
		st, err := os.ReadFile(filepath.Join(p, "status"))
		if err != nil || !strings.Contains(string(st), "\nUid:\t"+strconv.Itoa(uid)+"\t") {
			continue
		}
		// Only this daemon's helpers: earlier tests' daemons (or anything
		// else acting as the user) must not count.
		if !strings.Contains(string(st), "\nPPid:\t"+strconv.Itoa(d.Pid())+"\n") {
			continue
		}
		cmd, _ := os.ReadFile(filepath.Join(p, "cmdline"))
		if bytes.Contains(cmd, []byte("\x00worker")) {
			n++
		}
	}
	return n
}

// TestStalledUploadsAreCapped: uploads that never finish hold at most
// REANA_SITE_MAX_HELPERS_PER_USER (16) helpers; the rest, and the user's
// other requests, are answered 429 and reana-client shows why; once the
// uploads end, the user is served again.
func TestStalledUploadsAreCapped(t *testing.T) {
	d, alice, _ := shared(t)
	wf := createWorkflow(t, alice, "stalled", "sleepy")
	const stalled, limit = 40, 16
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		statuses = map[int]int{}
		writers  []*io.PipeWriter
	)
	for i := range stalled {
		pr, pw := io.Pipe()
		writers = append(writers, pw)
		wg.Add(1)
		go func() {
			defer wg.Done()
			st, _, _ := alice.Daemon().Do("POST", "/api/workflows/"+url.PathEscape(wf.ID)+"/workspace?file_name=stalled"+strconv.Itoa(i), alice.Token,
				pr, "Content-Type", "application/octet-stream")
			mu.Lock()
			statuses[st]++
			mu.Unlock()
		}()
		go func() { _, _ = pw.Write([]byte("partial")) }()
	}
	endAll := func() {
		for _, pw := range writers {
			pw.CloseWithError(io.ErrUnexpectedEOF)
		}
		writers = nil
		wg.Wait()
	}
	t.Cleanup(endAll)

	require.Eventually(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return statuses[http.StatusTooManyRequests] == stalled-limit
	}, 30*time.Second, 100*time.Millisecond, "the uploads beyond the cap are refused")
	assert.Equal(t, limit, helpersOf(t, d, alice.UID), "helpers of the stalled uploads")

	dir := alice.WorkDir(t, "")
	out, code := alice.Client(t, dir, "ls", "-w", wf.Name)
	assert.NotZero(t, code, out)
	assert.Contains(t, out, "Too many operations in flight for alice", out)

	endAll()
	require.Eventually(t, func() bool { return helpersOf(t, d, alice.UID) == 0 }, 10*time.Second, 50*time.Millisecond)
	alice.MustClient(t, dir, "ls", "-w", wf.Name)
}

// TestWrongTokensAreRateLimited: a guessing loop is answered 429 within
// its first few dozen guesses; the site's own user is served again soon.
func TestWrongTokensAreRateLimited(t *testing.T) {
	d, alice, _ := shared(t)
	counts := map[int]int{}
	var limited []byte
	for range 200 {
		st, body, err := d.Do("GET", "/api/you", "not-a-token-"+strconv.Itoa(len(counts)), nil)
		require.NoError(t, err)
		counts[st]++
		if st == http.StatusTooManyRequests {
			limited = body
		}
	}
	assert.LessOrEqual(t, counts[http.StatusForbidden], 60, "wrong tokens answered: %v", counts)
	assert.Positive(t, counts[http.StatusTooManyRequests], "%v", counts)
	assert.Contains(t, string(limited), "Too many failed authentication attempts")

	// The buckets refill within seconds (5 a second per address), so a
	// user on the same address is locked out briefly, not for good.
	alice.MustClient(t, alice.WorkDir(t, ""), "ping")
}
