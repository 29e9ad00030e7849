package api_test

import (
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/reana-site/reana-site/api"
	"github.com/reana-site/reana-site/api/authlimit"
	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/daemon/config"
)

// stallUpload starts an upload whose body never ends, as the attack's
// stalled uploads did, and returns what ends it.
func (e *env) stallUpload(name string) (end func()) {
	e.t.Helper()
	pr, pw := io.Pipe()
	req, err := http.NewRequest("POST", withToken(e.srv.URL+e.expand("/api/workflows/{wf}/workspace?file_name="+name), e.token), pr)
	require.NoError(e.t, err)
	req.Header.Set("Content-Type", uploadHeaders)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
		}
	}()
	_, _ = pw.Write([]byte("partial"))
	var once sync.Once
	return func() {
		once.Do(func() {
			pw.CloseWithError(io.ErrUnexpectedEOF)
			<-done
		})
	}
}

// TestHelpersPerUserCap: with a user's helpers all held by stalled
// uploads, the next request is answered 429 with Retry-After instead of
// starting one more helper; once they end, requests are served again.
func TestHelpersPerUserCap(t *testing.T) {
	const limit = 3
	e := newEnv(t, config.Config{}, func(s *api.Server) {
		s.Runner = &asuser.Limiter{Next: s.Runner, Max: limit, Wait: 100 * time.Millisecond}
	})
	e.create("wf", "busy") // the create itself takes a slot and gives it back
	var ends []func()
	for i := range limit {
		ends = append(ends, e.stallUpload("stalled"+strings.Repeat("x", i)))
	}
	endAll := func() {
		for _, end := range ends {
			end()
		}
		ends = nil
	}
	t.Cleanup(endAll) // before the server's Close, which waits for them
	list := request{Method: "GET", Path: "/api/workflows/{wf}/workspace"}
	var res response
	require.Eventually(t, func() bool {
		res = e.do(list)
		return res.Status == http.StatusTooManyRequests
	}, 10*time.Second, 50*time.Millisecond, "the stalled uploads hold every slot")
	assert.Equal(t, "5", res.Header.Get("Retry-After"))
	assert.Contains(t, res.JSON["message"], "Too many operations in flight for "+e.acct.Name)
	assert.Contains(t, res.JSON["message"], "try again")

	// An upload beyond the cap gets its 429 although its body never ends:
	// the server does not wait to drain it.
	pr, pw := io.Pipe()
	defer pw.Close()
	go func() { _, _ = pw.Write([]byte("partial")) }()
	req, err := http.NewRequest("POST", withToken(e.srv.URL+e.expand("/api/workflows/{wf}/workspace?file_name=one-more"), e.token), pr)
	require.NoError(t, err)
	req.Header.Set("Content-Type", uploadHeaders)
	got := make(chan int, 1)
	go func() {
		if res, err := http.DefaultClient.Do(req); err == nil {
			res.Body.Close()
			got <- res.StatusCode
		}
		close(got)
	}()
	select {
	case st := <-got:
		assert.Equal(t, http.StatusTooManyRequests, st)
	case <-time.After(10 * time.Second):
		t.Fatal("the refused upload got no answer")
	}

	endAll()
	e.check(list, expectation{Status: http.StatusOK, Keys: []string{"items", "total"}})
}

// TestFailedTokensAreRateLimited: wrong tokens from one address are
// answered 403 up to the burst, then 429 with Retry-After without being
// checked; the right token's requests before were not charged.
func TestFailedTokensAreRateLimited(t *testing.T) {
	const burst = 5
	e := newEnv(t, config.Config{}, func(s *api.Server) {
		s.AuthFailures = authlimit.New(authlimit.Limits{
			PerAddr: rate.Every(time.Hour), PerAddrBurst: burst, Overall: rate.Every(time.Hour), OverallBurst: 100, MaxAddrs: 100,
		})
	})
	you := request{Method: "GET", Path: "/api/you"}
	for range 3 * burst {
		e.check(you, expectation{Status: http.StatusOK})
	}
	wrong := request{Method: "GET", Path: "/api/you", Token: "wrong-guess"}
	for range burst {
		e.check(wrong, expectation{Status: http.StatusForbidden, Keys: messageOnly, Msg: "Token not valid."})
	}
	for _, rq := range []request{wrong, you} {
		res := e.do(rq)
		require.Equal(t, http.StatusTooManyRequests, res.Status, "%s", res.Body)
		assert.Equal(t, "3600", res.Header.Get("Retry-After"))
		assert.Contains(t, res.JSON["message"], "Too many failed authentication attempts")
	}
}
