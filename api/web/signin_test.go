package web_test

import (
	"context"
	"crypto/sha256"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/api"
	"github.com/reana-site/reana-site/api/web"
	"github.com/reana-site/reana-site/daemon/identity"
	"github.com/reana-site/reana-site/daemon/store"
)

func TestSigninWithToken(t *testing.T) {
	e := newEnv(t, web.Config{SignInOptions: []web.SignInOption{{Label: "Kerberos", URL: "/site/kerberos"}}})
	b := e.browser()

	res := b.get("/runs?q=x")
	require.Equal(t, http.StatusSeeOther, res.Status, "a page needs a session")
	assert.Equal(t, "/signin?next="+url.QueryEscape("/runs?q=x"), res.Header.Get("Location"))
	res = b.get("/runs/rows")
	assert.Equal(t, http.StatusUnauthorized, res.Status, "a fragment is refused, not redirected")

	res = b.get("/signin")
	require.Equal(t, http.StatusOK, res.Status)
	assert.Contains(t, res.Body, `id="signin-token"`)
	assert.Contains(t, res.Body, `class="signin-option button" href="/site/kerberos">Kerberos</a>`)
	assert.NotContains(t, res.Body, "signup")
	assert.Equal(t, http.StatusNotFound, b.get("/signup").Status, "there is no sign-up route")

	res = b.post("/signin", url.Values{"token": {"wrong-token"}})
	assert.Equal(t, http.StatusForbidden, res.Status)
	assert.Contains(t, res.Body, "That token is not valid")
	assert.NotContains(t, res.Body, "wrong-token", "a token is never shown back")
	res = b.post("/signin", url.Values{"token": {""}})
	assert.Equal(t, http.StatusBadRequest, res.Status)

	res = b.post("/signin", url.Values{"token": {e.token}, "next": {"/profile"}})
	require.Equal(t, http.StatusSeeOther, res.Status, res.Body)
	assert.Equal(t, "/profile", res.Header.Get("Location"))
	cookie := res.Header.Get("Set-Cookie")
	for _, attr := range []string{"__Host-reana-site-session=", "Path=/", "HttpOnly", "Secure", "SameSite=Lax", "Max-Age=43200"} {
		assert.Contains(t, cookie, attr)
	}
	assert.NotContains(t, cookie, e.token, "the cookie is a session, not the token")

	res = b.get("/runs")
	require.Equal(t, http.StatusOK, res.Status)
	assert.Contains(t, res.Body, `<span id="who" title="uid `)
	assert.NotContains(t, res.Body, e.token)
	res = b.get("/signin")
	assert.Equal(t, http.StatusSeeOther, res.Status, "signed in already")

	res = b.post("/logout", nil)
	require.Equal(t, http.StatusSeeOther, res.Status)
	assert.Contains(t, res.Header.Get("Set-Cookie"), "Max-Age=0")
	assert.Equal(t, http.StatusSeeOther, b.get("/runs").Status, "signed out")

	assert.NotContains(t, e.logs.String(), e.token, "no token in the log")
	assert.Contains(t, e.logs.String(), "method=POST path=/signin status=303", "pages are logged as API calls are")
}

func TestSigninRefusals(t *testing.T) {
	e := newEnv(t, web.Config{}, func(s *api.Server) {
		s.AuthFailures = api.NewAuthLimiter(api.AuthLimits{PerAddr: 0.001, PerAddrBurst: 2, Overall: 100, OverallBurst: 100, MaxAddrs: 10})
	})
	b := e.browser()
	// A revoked token and a removed user are refused as by the API.
	ctx := context.Background()
	_, err := e.db.RevokeTokens(ctx, e.bob.ID)
	require.NoError(t, err)
	res := b.post("/signin", url.Values{"token": {e.bobTok}})
	assert.Equal(t, http.StatusForbidden, res.Status)
	assert.Contains(t, res.Body, "User access token revoked.")
	res = b.post("/signin", url.Values{"token": {"guess"}})
	assert.Equal(t, http.StatusForbidden, res.Status)
	res = b.post("/signin", url.Values{"token": {"guess"}})
	assert.Equal(t, http.StatusTooManyRequests, res.Status, "wrong tokens are rate-limited")
	assert.NotEmpty(t, res.Header.Get("Retry-After"))
	assert.Contains(t, res.Body, "Too many failed authentication attempts")
	res = b.post("/signin", url.Values{"token": {e.token}})
	assert.Equal(t, http.StatusTooManyRequests, res.Status, "even a right token waits: the answer would tell")
}

func TestSessionExpiryAndRemoval(t *testing.T) {
	e := newEnv(t, web.Config{SessionLifetime: 2 * time.Second})
	b := e.signedIn(e.token)
	assert.Equal(t, http.StatusOK, b.get("/runs").Status)
	time.Sleep(2100 * time.Millisecond)
	assert.Equal(t, http.StatusSeeOther, b.get("/runs").Status, "the store ends the session, whatever the cookie says")

	b = e.signedIn(e.bobTok)
	require.NoError(t, e.db.RemoveUser(context.Background(), "bob"))
	assert.Equal(t, http.StatusSeeOther, b.get("/runs").Status, "a removed user is signed out")
}

func TestAccountRefusedAfterSignin(t *testing.T) {
	e := newEnv(t, web.Config{})
	b := e.signedIn(e.token)
	e.api.Accounts.Policy.MinUID = e.acct.UID + 10
	res := b.get("/runs")
	assert.Equal(t, http.StatusForbidden, res.Status, "the site's policy applies on every page")
	assert.Contains(t, res.Body, "Access refused")
}

func TestLoginLink(t *testing.T) {
	e := newEnv(t, web.Config{PublicURL: "https://reana.example.org:8443"})
	link, expires, err := e.web.NewLoginLink(context.Background(), e.user)
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now().Add(10*time.Minute), expires, time.Minute)
	require.True(t, strings.HasPrefix(link, "https://reana.example.org:8443/signin/link?k="), link)
	key := strings.TrimPrefix(link, "https://reana.example.org:8443/signin/link?k=")

	b := e.browser()
	res := b.get("/signin/link?k=" + key)
	require.Equal(t, http.StatusSeeOther, res.Status, res.Body)
	assert.Equal(t, "/runs", res.Header.Get("Location"), "the key leaves the address bar at once")
	assert.Equal(t, "no-referrer", res.Header.Get("Referrer-Policy"))
	assert.Equal(t, http.StatusOK, b.get("/runs").Status)

	other := e.browser()
	res = other.get("/signin/link?k=" + key)
	assert.Equal(t, http.StatusForbidden, res.Status, "a link is used once")
	assert.Contains(t, res.Body, "reana-site login-link")
	assert.Equal(t, http.StatusBadRequest, other.get("/signin/link").Status)
	assert.NotContains(t, e.logs.String(), key, "no key in the log")
}

func TestSessionsStartForOtherMethods(t *testing.T) {
	e := newEnv(t, web.Config{})
	// What package api/login does after Kerberos or OIDC: Start, then User.
	mux := http.NewServeMux()
	mux.HandleFunc("/site/kerberos", func(w http.ResponseWriter, r *http.Request) {
		require.NoError(t, e.web.Sessions.Start(w, r, e.user, "kerberos"))
		assert.Error(t, e.web.Sessions.Start(w, r, e.user, "password"), "only the known methods")
	})
	rec := httptestRecorder(mux, "/site/kerberos")
	cookie := rec.Result().Cookies()[0]
	req, _ := http.NewRequest("GET", "/", nil)
	req.AddCookie(cookie)
	u, ok := e.web.Sessions.User(req)
	require.True(t, ok)
	assert.Equal(t, e.user.ID, u.ID)
	req.Header.Del("Cookie")
	req.AddCookie(&http.Cookie{Name: cookie.Name, Value: "forged"})
	_, ok = e.web.Sessions.User(req)
	assert.False(t, ok)
	_ = identity.HashToken
}

// TestSigninNextStaysOnSite: after signing in, only a path of this site.
func TestSigninNextStaysOnSite(t *testing.T) {
	e := newEnv(t, web.Config{})
	for next, want := range map[string]string{
		"/runs/x?q=1":          "/runs/x?q=1",
		"":                     "/runs",
		"https://evil.example": "/runs",
		"//evil.example":       "/runs",
		"/\\evil.example":      "/runs",
		"/\t/evil.example":     "/runs",
		"/signin":              "/runs",
	} {
		res := e.browser().post("/signin", url.Values{"token": {e.token}, "next": {next}})
		require.Equal(t, http.StatusSeeOther, res.Status)
		assert.Equal(t, want, res.Header.Get("Location"), "next %q", next)
	}
}

// sessionStarter is what package api/login needs of the web sessions.
type sessionStarter interface {
	Start(w http.ResponseWriter, r *http.Request, u store.User, method string) error
	User(r *http.Request) (store.User, bool)
}

var _ sessionStarter = (*web.Sessions)(nil)

func TestCleanupRemovesExpired(t *testing.T) {
	e := newEnv(t, web.Config{LoginLinkLifetime: time.Millisecond})
	ctx := context.Background()
	link, _, err := e.web.NewLoginLink(ctx, e.user)
	require.NoError(t, err)
	sum := sha256.Sum256([]byte(link[strings.Index(link, "?k=")+3:]))
	time.Sleep(10 * time.Millisecond)
	// While the expired row is there, its key cannot be stored again.
	require.ErrorIs(t, e.db.CreateLoginLink(ctx, sum[:], e.user.ID, time.Now()), store.ErrExists)

	cctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { defer close(done); e.web.Cleanup(cctx) }() // sweeps at once
	require.Eventually(t, func() bool {
		return e.db.CreateLoginLink(ctx, sum[:], e.user.ID, time.Now()) == nil
	}, 5*time.Second, 20*time.Millisecond, "the sweep removes the expired link")
	cancel()
	<-done
}

func TestLoginLinkGuessesAreLimited(t *testing.T) {
	e := newEnv(t, web.Config{}, func(s *api.Server) {
		s.AuthFailures = api.NewAuthLimiter(api.AuthLimits{PerAddr: 0.001, PerAddrBurst: 2, Overall: 100, OverallBurst: 100, MaxAddrs: 10})
	})
	link, _, err := e.web.NewLoginLink(context.Background(), e.user)
	require.NoError(t, err)
	b := e.browser()
	assert.Equal(t, http.StatusForbidden, b.get("/signin/link?k=guess1").Status)
	assert.Equal(t, http.StatusForbidden, b.get("/signin/link?k=guess2").Status)
	res := b.get("/signin/link?k=guess3")
	assert.Equal(t, http.StatusTooManyRequests, res.Status, "wrong keys are limited as wrong tokens are")
	assert.NotEmpty(t, res.Header.Get("Retry-After"))
	res = b.get(link[strings.Index(link, "/signin/"):])
	assert.Equal(t, http.StatusTooManyRequests, res.Status, "even the right key waits, and stays unspent")
}
