package login

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/test/oidcprovider"
)

// oidcSite is a site whose OIDC provider is an in-process test one with
// the accounts alice (sub s-alice) and mallory (sub s-mallory, whose
// username claim can be set).
func oidcSite(t *testing.T, claim string, configure func(*Service)) (*site, *oidcprovider.Provider, *fakeSessions) {
	t.Helper()
	p := oidcprovider.Start(t, "reana-site", "client-secret")
	p.AddUser("alice", oidcprovider.User{Password: "alicepw", Claims: map[string]any{
		"sub": "s-alice", "preferred_username": "alice", "email": "alice@example.org", "email_verified": true}})
	sessions := &fakeSessions{}
	var s *site
	s = newSite(t, func(svc *Service) {
		svc.Sessions = sessions
		if configure != nil {
			configure(svc)
		}
	})
	o, err := NewOIDC(OIDCConfig{Issuer: p.URL, ClientID: p.ClientID, ClientSecret: p.ClientSecret,
		RedirectURL: s.srv.URL + "/site/oidc/callback", UsernameClaim: claim, HTTPClient: p.Client()})
	require.NoError(t, err)
	s.OIDC = o
	sessions.db = s.db
	return s, p, sessions
}

// signIn goes through the flow as a browser does: the site sends it to the
// provider, whose login form it fills in, and the provider sends it back.
// tamper may change the callback URL. It returns the callback's answer.
func signIn(t *testing.T, s *site, login, password string, tamper func(url.Values)) (*http.Response, Answer) {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := s.client(jar)
	resp, err := c.Get(s.srv.URL + "/site/login/oidc")
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	authorize, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	q := authorize.Query()
	assert.Equal(t, "S256", q.Get("code_challenge_method"))
	assert.NotEmpty(t, q.Get("nonce"))
	assert.NotEmpty(t, q.Get("state"))

	// The login form is real HTML; post it as a browser would.
	resp, err = c.Get(authorize.String())
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	form := url.Values{}
	for k, v := range q {
		form[k] = v
	}
	form.Set("username", login)
	form.Set("password", password)
	authorize.RawQuery = ""
	resp, err = c.PostForm(authorize.String(), form)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusFound, resp.StatusCode)
	callback, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	if tamper != nil {
		cq := callback.Query()
		tamper(cq)
		callback.RawQuery = cq.Encode()
	}
	require.Contains(t, callback.String(), "/site/oidc/callback", "the provider must send the browser back to the site")
	r, err := c.Get(callback.String())
	require.NoError(t, err)
	defer r.Body.Close()
	b, err := io.ReadAll(r.Body)
	require.NoError(t, err)
	if r.StatusCode == http.StatusSeeOther {
		return r, Answer{}
	}
	return r, decodeAnswer(t, b)
}

func TestOIDCSignIn(t *testing.T) {
	s, _, sessions := oidcSite(t, "", nil)
	resp, _ := signIn(t, s, "alice", "alicepw", nil)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Equal(t, "/", resp.Header.Get("Location"))
	assert.Equal(t, []string{"alice oidc"}, sessions.Started())
	// A second sign-in of the same account works too (the binding holds).
	resp, _ = signIn(t, s, "alice", "alicepw", nil)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Len(t, sessions.Started(), 2)
	assert.Zero(t, s.tokens(t), "a sign-in alone gives no token")
}

func TestOIDCEmailAsKey(t *testing.T) {
	rules := func(svc *Service) { svc.Mapper.Rules = mustRules(t, `(.*)@example\.org => {1}`) }
	s, _, sessions := oidcSite(t, "email", rules)
	resp, _ := signIn(t, s, "alice", "alicepw", nil)
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	assert.Equal(t, []string{"alice oidc"}, sessions.Started())
}

func TestOIDCMustFail(t *testing.T) {
	other := "someone-elses-nonce"
	for _, tc := range []struct {
		name   string
		claim  string
		setup  func(*testing.T, *site, *oidcprovider.Provider)
		tamper func(url.Values)
		login  string
		status int
		msg    string
	}{
		{name: "wrong state", tamper: func(q url.Values) { q.Set("state", "forged") }, status: http.StatusUnauthorized, msg: "the state does not match"},
		{name: "no state", tamper: func(q url.Values) { q.Del("state") }, status: http.StatusUnauthorized, msg: "the state does not match"},
		{name: "wrong code", tamper: func(q url.Values) { q.Set("code", "forged") }, status: http.StatusUnauthorized, msg: "did not accept the code"},
		{name: "provider error", tamper: func(q url.Values) { q.Set("error", "access_denied") }, status: http.StatusUnauthorized, msg: "refused: access_denied"},
		{name: "wrong nonce", setup: func(_ *testing.T, _ *site, p *oidcprovider.Provider) { p.SetNonce(&other) }, status: http.StatusUnauthorized, msg: "nonce is not this sign-in's"},
		{name: "no nonce", setup: func(_ *testing.T, _ *site, p *oidcprovider.Provider) { empty := ""; p.SetNonce(&empty) }, status: http.StatusUnauthorized, msg: "nonce"},
		{name: "wrong audience", setup: func(_ *testing.T, _ *site, p *oidcprovider.Provider) { p.SetAudience("another-client") }, status: http.StatusUnauthorized, msg: "audience"},
		{name: "expired ID token", setup: func(_ *testing.T, _ *site, p *oidcprovider.Provider) { p.SetLifetime(-time.Hour) }, status: http.StatusUnauthorized, msg: "expired"},
		{name: "unverified email as the key", claim: "email", setup: func(t *testing.T, s *site, p *oidcprovider.Provider) {
			s.Mapper.Rules = mustRules(t, `(.*)@example\.org => {1}`)
			p.AddUser("alice", oidcprovider.User{Password: "alicepw", Claims: map[string]any{"sub": "s-alice", "email": "alice@example.org", "email_verified": false}})
		}, status: http.StatusForbidden, msg: "has not verified the email address alice@example.org"},
		{name: "no username claim", setup: func(_ *testing.T, _ *site, p *oidcprovider.Provider) {
			p.AddUser("alice", oidcprovider.User{Password: "alicepw", Claims: map[string]any{"sub": "s-alice"}})
		}, status: http.StatusForbidden, msg: "no preferred_username claim"},
		{name: "unregistered, self-service off", setup: func(_ *testing.T, _ *site, p *oidcprovider.Provider) {
			p.AddUser("bob", oidcprovider.User{Password: "bobpw", Claims: map[string]any{"sub": "s-bob", "preferred_username": "bob"}})
		}, login: "bob", status: http.StatusForbidden, msg: "not registered with this service"},
		{name: "maps to root", setup: func(_ *testing.T, _ *site, p *oidcprovider.Provider) {
			p.AddUser("alice", oidcprovider.User{Password: "alicepw", Claims: map[string]any{"sub": "s-alice", "preferred_username": "root"}})
		}, status: http.StatusForbidden, msg: "is root (uid 0)"},
		{name: "username takeover", setup: func(t *testing.T, s *site, p *oidcprovider.Provider) {
			require.NoError(t, s.db.BindLogin(context.Background(), p.URL, "s-alice", s.alice.ID))
			p.AddUser("mallory", oidcprovider.User{Password: "mallorypw", Claims: map[string]any{"sub": "s-mallory", "preferred_username": "alice"}})
		}, login: "mallory", status: http.StatusForbidden, msg: "already signed in from another account"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, p, sessions := oidcSite(t, tc.claim, nil)
			if tc.setup != nil {
				tc.setup(t, s, p)
			}
			login := tc.login
			if login == "" {
				login = "alice"
			}
			resp, a := signIn(t, s, login, login+"pw", tc.tamper)
			assert.Equal(t, tc.status, resp.StatusCode)
			assert.Contains(t, a.Message, tc.msg)
			assert.Empty(t, sessions.Started(), "no session may start")
			assert.Zero(t, s.tokens(t))
		})
	}
}

func TestOIDCReplayedCallback(t *testing.T) {
	s, _, sessions := oidcSite(t, "", nil)
	var callback url.Values
	resp, _ := signIn(t, s, "alice", "alicepw", func(q url.Values) {
		callback = url.Values{}
		for k, v := range q {
			callback[k] = v
		}
	})
	require.Equal(t, http.StatusSeeOther, resp.StatusCode)
	// The same state again, with its cookie: the pending sign-in is gone.
	req, err := http.NewRequest(http.MethodGet, s.srv.URL+"/site/oidc/callback?"+callback.Encode(), nil)
	require.NoError(t, err)
	req.AddCookie(&http.Cookie{Name: stateCookie, Value: callback.Get("state")})
	resp, a := do(t, s.client(nil), req)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Contains(t, a.Message, "expired or was already used")
	assert.Len(t, sessions.Started(), 1)
}

func TestOIDCWebOffAndOptions(t *testing.T) {
	s := newSite(t, nil)
	for _, path := range []string{"/site/login/oidc", "/site/oidc/callback?state=x&code=y", "/site/login/kerberos"} {
		resp, err := s.client(nil).Get(s.srv.URL + path)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, path)
	}
	assert.Empty(t, s.Options())
	o, err := NewOIDC(OIDCConfig{Issuer: "https://idp.example", ClientID: "c", RedirectURL: "https://x/site/oidc/callback", Label: "Sign in with Example SSO"})
	require.NoError(t, err)
	s.OIDC = o
	s.Kerberos = &Kerberos{SPN: "HTTP/x"}
	assert.Equal(t, []Option{{"Sign in with Kerberos", "/site/login/kerberos"}, {"Sign in with Example SSO", "/site/login/oidc"}}, s.Options())
}

func TestOIDCPendingIsBounded(t *testing.T) {
	o, err := NewOIDC(OIDCConfig{Issuer: "https://idp", ClientID: "c", RedirectURL: "https://x/site/oidc/callback"})
	require.NoError(t, err)
	now := time.Now()
	for i := range maxPending {
		o.pending[strconv.Itoa(i)] = pendingLogin{expires: now.Add(-time.Second)}
	}
	state, _, err := o.begin(now)
	require.NoError(t, err, "expired sign-ins make room")
	assert.Len(t, o.pending, 1)
	_, ok := o.take(state, now.Add(pendingTTL+time.Second))
	assert.False(t, ok, "a sign-in older than its lifetime is refused")

	for i := range maxPending {
		o.pending[strconv.Itoa(i)] = pendingLogin{expires: now.Add(time.Minute)}
	}
	_, _, err = o.begin(now)
	var ref *refusal
	require.ErrorAs(t, err, &ref)
	assert.Equal(t, http.StatusServiceUnavailable, ref.status)
}
