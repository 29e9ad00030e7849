package login

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"

	"github.com/reana-site/reana-site/api/authlimit"
	"github.com/reana-site/reana-site/test/harness"
)

// limitBurst is how many failed sign-ins the tests' limiter lets one
// address make before it refuses; it refills once an hour, that is not
// during a test.
const limitBurst = 3

func testLimiter() *authlimit.Limiter {
	return authlimit.New(authlimit.Limits{PerAddr: rate.Every(time.Hour), PerAddrBurst: limitBurst,
		Overall: rate.Every(time.Hour), OverallBurst: 100, MaxAddrs: 100})
}

// assertLimited checks a 429 from the limiter.
func assertLimited(t *testing.T, resp *http.Response, a Answer, what string) {
	t.Helper()
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode, what)
	assert.Equal(t, "3600", resp.Header.Get("Retry-After"), what)
	assert.Contains(t, a.Message, "Too many failed authentication attempts", what)
}

// TestFailedNegotiateIsRateLimited: tickets that are not accepted are
// answered 401 up to the burst, then 429 unchecked, right or wrong; right
// sign-ins, ticketless first steps and refused principals cost nothing.
func TestFailedNegotiateIsRateLimited(t *testing.T) {
	k := harness.StartKDC(t)
	failures := testLimiter()
	s, url := kerberosSite(t, k, func(s *Service) { s.Failures = failures })
	alice, bob := krbClient(t, k, "alice"), krbClient(t, k, "bob")
	const wrong = "Negotiate bm90IGEgdG9rZW4="

	for range 2 * limitBurst {
		resp, a := post(t, s, url+"/site/token", negotiateHeader(t, alice, k.ServicePrincipal))
		require.Equal(t, http.StatusOK, resp.StatusCode, a.Message)
		resp, _ = post(t, s, url+"/site/token", "")
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		resp, _ = post(t, s, url+"/site/token", negotiateHeader(t, bob, k.ServicePrincipal))
		require.Equal(t, http.StatusForbidden, resp.StatusCode, "bob is not registered: refused, but he proved who he is")
	}
	for range limitBurst {
		resp, a := post(t, s, url+"/site/token", wrong)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
		assert.Contains(t, a.Message, "Kerberos sign-in failed")
	}
	tokens := s.tokens(t)
	for _, h := range []string{wrong, negotiateHeader(t, alice, k.ServicePrincipal)} {
		resp, a := post(t, s, url+"/site/token", h)
		assertLimited(t, resp, a, "/site/token")
	}
	assert.Equal(t, tokens, s.tokens(t), "no token while the address is refused")
	// The browser sign-in is the same check.
	s.Sessions = &fakeSessions{db: s.db}
	req, err := http.NewRequest(http.MethodGet, url+"/site/login/kerberos", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", negotiateHeader(t, alice, k.ServicePrincipal))
	resp, a := do(t, s.client(nil), req)
	assertLimited(t, resp, a, "/site/login/kerberos")
	// Asking without a ticket is still answered with the challenge.
	resp, _ = post(t, s, url+"/site/token", "")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Equal(t, "Negotiate", resp.Header.Get("WWW-Authenticate"))
}

// TestFailedOIDCCallbacksAreRateLimited: callbacks with a wrong state or
// code are charged, then every callback from the address is refused
// unchecked; right sign-ins and the provider's own refusals cost nothing,
// and the charge is in the limiter the daemon shares with the API.
func TestFailedOIDCCallbacksAreRateLimited(t *testing.T) {
	failures := testLimiter()
	s, _, sessions := oidcSite(t, "", func(s *Service) { s.Failures = failures })
	forgedState := func(q url.Values) { q.Set("state", "forged") }
	forgedCode := func(q url.Values) { q.Set("code", "forged") }
	cancelled := func(q url.Values) { q.Set("error", "access_denied") }

	for range 2 * limitBurst {
		resp, a := signIn(t, s, "alice", "alicepw", nil)
		require.Equal(t, http.StatusSeeOther, resp.StatusCode, a.Message)
		resp, _ = signIn(t, s, "alice", "alicepw", cancelled)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	}
	for i, tamper := range []func(url.Values){forgedState, forgedCode, forgedState} {
		resp, _ := signIn(t, s, "alice", "alicepw", tamper)
		require.Equal(t, http.StatusUnauthorized, resp.StatusCode, "failure %d", i)
	}
	for _, tamper := range []func(url.Values){forgedState, nil} {
		resp, a := signIn(t, s, "alice", "alicepw", tamper)
		assertLimited(t, resp, a, "callback")
	}
	assert.Len(t, sessions.Started(), 2*limitBurst, "no session while the address is refused")
	_, _, ok := failures.Begin("127.0.0.1:1", time.Now())
	assert.False(t, ok, "the API's token checks from the address are refused too")
	_, _, ok = failures.Begin("192.0.2.1:1", time.Now())
	assert.True(t, ok, "another address is not")
}
