package login

import (
	"context"
	"encoding/base64"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/daemon/identity"
	"github.com/reana-site/reana-site/daemon/store"
	"github.com/reana-site/reana-site/test/harness"
)

// kerberosSite is a site that accepts the test KDC's tickets for
// HTTP/localhost, reached as https://localhost:<port> so that clients ask
// for that principal.
func kerberosSite(t *testing.T, k *harness.KDC, configure func(*Service)) (*site, string) {
	t.Helper()
	s := newSite(t, func(s *Service) {
		krb, err := NewKerberos(k.ServiceKeytab, k.ServicePrincipal, 5*time.Minute)
		require.NoError(t, err)
		s.Kerberos = krb
		s.Mapper.Realms = []string{k.Realm}
		if configure != nil {
			configure(s)
		}
	})
	return s, strings.Replace(s.srv.URL, "127.0.0.1", "localhost", 1)
}

// curlResult is what the real curl got.
type curlResult struct {
	status  int
	headers string
	body    []byte
}

// curl runs the real curl (GSS-API from MIT krb5) with the credential
// cache ccache ("" for none).
func curl(t *testing.T, k *harness.KDC, ccache string, args ...string) curlResult {
	t.Helper()
	dir := t.TempDir()
	if ccache == "" {
		ccache = filepath.Join(dir, "empty-ccache")
	}
	argv := append([]string{"-sS", "-k", "-o", filepath.Join(dir, "body"), "-D", filepath.Join(dir, "headers"), "-w", "%{http_code}"}, args...)
	cmd := exec.Command("curl", argv...)
	cmd.Env = append(os.Environ(), k.Env(ccache)...)
	out, err := cmd.Output()
	require.NoError(t, err, "curl %v", args)
	status, err := strconv.Atoi(strings.TrimSpace(string(out)))
	require.NoError(t, err)
	body, err := os.ReadFile(filepath.Join(dir, "body"))
	require.NoError(t, err)
	headers, err := os.ReadFile(filepath.Join(dir, "headers"))
	require.NoError(t, err)
	return curlResult{status: status, headers: string(headers), body: body}
}

// krbClient is gokrb5's client, logged in from principal's keytab.
func krbClient(t *testing.T, k *harness.KDC, principal string) *client.Client {
	t.Helper()
	cfg, err := config.Load(k.Config)
	require.NoError(t, err)
	kt, err := keytab.Load(k.Keytab(principal))
	require.NoError(t, err)
	cl := client.NewWithKeytab(principal, k.Realm, kt, cfg, client.DisablePAFXFAST(true))
	require.NoError(t, cl.Login())
	t.Cleanup(cl.Destroy)
	return cl
}

// negotiateHeader is a fresh Negotiate header from cl for spn.
func negotiateHeader(t *testing.T, cl *client.Client, spn string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "https://localhost/", nil)
	require.NoError(t, err)
	require.NoError(t, spnego.SetSPNEGOHeader(cl, req, spn))
	return req.Header.Get("Authorization")
}

func post(t *testing.T, s *site, url, authorization string) (*http.Response, Answer) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, nil)
	require.NoError(t, err)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	return do(t, s.client(nil), req)
}

func TestTokenWithCurlNegotiate(t *testing.T) {
	k := harness.StartKDC(t)
	s, url := kerberosSite(t, k, nil)
	cc := k.Kinit(t, "alice", "")

	first := curl(t, k, cc, "--negotiate", "-u", ":", "-X", "POST", url+"/site/token")
	require.Equal(t, http.StatusOK, first.status, "%s", first.body)
	a := decodeAnswer(t, first.body)
	assert.Equal(t, "alice", a.User)
	assert.Equal(t, "export REANA_SERVER_URL="+url+"\nexport REANA_ACCESS_TOKEN="+a.Token+"\n", a.Export)
	u, _, err := s.db.UserByTokenHash(context.Background(), identity.HashToken(a.Token))
	require.NoError(t, err)
	assert.Equal(t, s.alice.ID, u.ID)

	// Again: a new token, and the first one no longer works.
	second := curl(t, k, cc, "--negotiate", "-u", ":", "-X", "POST", url+"/site/token")
	require.Equal(t, http.StatusOK, second.status, "%s", second.body)
	b := decodeAnswer(t, second.body)
	assert.NotEqual(t, a.Token, b.Token)
	_, _, err = s.db.UserByTokenHash(context.Background(), identity.HashToken(a.Token))
	assert.ErrorIs(t, err, store.ErrRevoked)
	_, _, err = s.db.UserByTokenHash(context.Background(), identity.HashToken(b.Token))
	assert.NoError(t, err)
}

func TestTokenWithGokrb5Client(t *testing.T) {
	k := harness.StartKDC(t)
	s, url := kerberosSite(t, k, nil)
	cl := krbClient(t, k, "alice")
	resp, err := spnego.NewClient(cl, s.client(nil), k.ServicePrincipal).Post(url+"/site/token", "application/json", nil)
	require.NoError(t, err)
	defer resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, 1, s.tokens(t))
}

func TestNegotiateMustFail(t *testing.T) {
	k := harness.StartKDC(t)
	for _, tc := range []struct {
		name      string
		configure func(*Service)
		principal string // whose ticket curl sends; "" sends none
		status    int
		msg       string
	}{
		{"no ticket", nil, "", http.StatusUnauthorized, "No Kerberos ticket was sent"},
		{"untrusted realm", func(s *Service) { s.Mapper.Realms = []string{"OTHER.TEST"} }, "alice", http.StatusForbidden, "is not one this site trusts"},
		{"two-component principal", nil, "alice/admin", http.StatusForbidden, "has an instance"},
		{"maps to uid 0", func(s *Service) { s.Mapper.Rules = mustRules(t, "alice => root") }, "alice", http.StatusForbidden, "is root (uid 0)"},
		{"maps below the minimum uid", func(s *Service) { s.Mapper.Rules = mustRules(t, "alice => lowuid") }, "alice", http.StatusForbidden, "below the site minimum 1000"},
		{"outside the allowed groups", func(s *Service) {
			s.Mapper.Accounts.Policy.AllowedGroups = []string{"reana-bob-extra"}
		}, "alice", http.StatusForbidden, "in none of the allowed groups"},
		{"unregistered, self-service off", nil, "bob", http.StatusForbidden, "bob is refused by site policy: not registered with this service; ask the site's admins to add you"},
		{"mapping command hangs", func(s *Service) {
			s.Mapper.Command, s.Mapper.Timeout = []string{"sleep", "30"}, 300*time.Millisecond
		}, "alice", http.StatusForbidden, "did not answer within 300ms"},
		{"mapping command prints two names", func(s *Service) { s.Mapper.Command = []string{"printf", `alice\nbob\n`} }, "alice", http.StatusForbidden, "gave 2 names"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, url := kerberosSite(t, k, tc.configure)
			cc := ""
			if tc.principal != "" {
				cc = k.Kinit(t, tc.principal, "")
			}
			r := curl(t, k, cc, "--negotiate", "-u", ":", "-X", "POST", url+"/site/token")
			assert.Equal(t, tc.status, r.status, "curl")
			assert.Contains(t, decodeAnswer(t, r.body).Message, tc.msg, "curl")
			if tc.status == http.StatusUnauthorized {
				assert.Contains(t, strings.ToLower(r.headers), "www-authenticate: negotiate\r\n")
			}
			// The same with gokrb5's client.
			h := ""
			if tc.principal != "" {
				h = negotiateHeader(t, krbClient(t, k, tc.principal), k.ServicePrincipal)
			}
			resp, a := post(t, s, url+"/site/token", h)
			assert.Equal(t, tc.status, resp.StatusCode, "gokrb5")
			assert.Contains(t, a.Message, tc.msg, "gokrb5")
			assert.Zero(t, s.tokens(t), "no token may be issued")
		})
	}
}

func TestSelfServiceRegistersAtSignIn(t *testing.T) {
	k := harness.StartKDC(t)
	s, url := kerberosSite(t, k, func(s *Service) { s.SelfService = true })
	r := curl(t, k, k.Kinit(t, "bob", ""), "--negotiate", "-u", ":", "-X", "POST", url+"/site/token")
	require.Equal(t, http.StatusOK, r.status, "%s", r.body)
	u, err := s.db.UserByName(context.Background(), "bob")
	require.NoError(t, err)
	assert.EqualValues(t, 4102, u.UID)
	assert.Equal(t, 1, s.tokens(t))
}

// curl asks for HTTP/<the URL's host>: naming the daemon other.test makes
// it send a ticket for HTTP/other.test, another service, to the daemon.
func TestNegotiateOtherServiceWithCurl(t *testing.T) {
	k := harness.StartKDC(t)
	s, url := kerberosSite(t, k, nil)
	_, port, _ := strings.Cut(strings.TrimPrefix(url, "https://"), ":")
	r := curl(t, k, k.Kinit(t, "alice", ""), "--negotiate", "-u", ":", "-X", "POST",
		"--resolve", "other.test:"+port+":127.0.0.1", "https://other.test:"+port+"/site/token")
	assert.Equal(t, http.StatusUnauthorized, r.status)
	assert.Contains(t, decodeAnswer(t, r.body).Message, "Kerberos sign-in failed")
	assert.Zero(t, s.tokens(t))
}

// A ticket for another service, and an authenticator sent twice, are
// made with gokrb5's client: curl makes a fresh one for the service it
// talks to.
func TestNegotiateTicketMustFail(t *testing.T) {
	k := harness.StartKDC(t)
	s, url := kerberosSite(t, k, nil)
	cl := krbClient(t, k, "alice")

	resp, a := post(t, s, url+"/site/token", negotiateHeader(t, cl, k.OtherPrincipal))
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Contains(t, a.Message, "Kerberos sign-in failed")
	assert.Equal(t, "Negotiate", resp.Header.Get("WWW-Authenticate"))
	assert.Zero(t, s.tokens(t))

	h := negotiateHeader(t, cl, k.ServicePrincipal)
	resp, _ = post(t, s, url+"/site/token", h)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	resp, a = post(t, s, url+"/site/token", h)
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Contains(t, a.Message, "replay")
	assert.Equal(t, 1, s.tokens(t), "only the first use of the authenticator gives a token")

	// Another site's page cannot make a browser rotate the token, even
	// with a valid ticket.
	req, err := http.NewRequest(http.MethodPost, url+"/site/token", nil)
	require.NoError(t, err)
	req.Header.Set("Authorization", negotiateHeader(t, cl, k.ServicePrincipal))
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	resp, a = do(t, s.client(nil), req)
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Contains(t, a.Message, "only given to this site's own pages")
	assert.Equal(t, 1, s.tokens(t))

	resp, a = post(t, s, url+"/site/token", "Negotiate bm90IGEgdG9rZW4=")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Contains(t, a.Message, "neither SPNEGO nor Kerberos")
}

func TestKerberosBrowserSignIn(t *testing.T) {
	k := harness.StartKDC(t)
	cc := k.Kinit(t, "alice", "")

	t.Run("web off", func(t *testing.T) {
		_, url := kerberosSite(t, k, nil)
		r := curl(t, k, cc, "--negotiate", "-u", ":", url+"/site/login/kerberos")
		assert.Equal(t, http.StatusServiceUnavailable, r.status)
		assert.Contains(t, decodeAnswer(t, r.body).Message, "web interface is off")
	})
	t.Run("session", func(t *testing.T) {
		sessions := &fakeSessions{}
		s, url := kerberosSite(t, k, func(s *Service) { s.Sessions = sessions })
		sessions.db = s.db
		r := curl(t, k, cc, "--negotiate", "-u", ":", url+"/site/login/kerberos")
		assert.Equal(t, http.StatusSeeOther, r.status)
		assert.Contains(t, r.headers, "Location: /\r\n")
		assert.Equal(t, []string{"alice kerberos"}, sessions.Started())
		assert.Zero(t, s.tokens(t))
	})
	t.Run("no ticket", func(t *testing.T) {
		sessions := &fakeSessions{}
		s, url := kerberosSite(t, k, func(s *Service) { s.Sessions = sessions })
		sessions.db = s.db
		r := curl(t, k, "", "--negotiate", "-u", ":", url+"/site/login/kerberos")
		assert.Equal(t, http.StatusUnauthorized, r.status)
		assert.Contains(t, strings.ToLower(r.headers), "www-authenticate: negotiate\r\n")
		assert.Empty(t, sessions.Started())
	})
}

func TestTokenFromWebSession(t *testing.T) {
	sessions := &fakeSessions{}
	s := newSite(t, func(s *Service) { s.Sessions = sessions })
	sessions.db = s.db
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	call := func(site string) (*http.Response, Answer) {
		req, err := http.NewRequest(http.MethodPost, s.srv.URL+"/site/token", nil)
		require.NoError(t, err)
		if site != "" {
			req.Header.Set("Sec-Fetch-Site", site)
		}
		return do(t, s.client(jar), req)
	}
	resp, a := call("same-origin")
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Contains(t, a.Message, "Not signed in")

	u, err := s.db.UserByName(context.Background(), "alice")
	require.NoError(t, err)
	jar.SetCookies(mustURL(t, s.srv.URL), []*http.Cookie{{Name: "fake-session", Value: u.Name}})
	resp, a = call("cross-site")
	assert.Equal(t, http.StatusForbidden, resp.StatusCode)
	assert.Contains(t, a.Message, "only given to this site's own pages")
	assert.Zero(t, s.tokens(t))

	resp, a = call("same-origin")
	require.Equal(t, http.StatusOK, resp.StatusCode, a.Message)
	assert.Equal(t, "alice", a.User)
	assert.NotEmpty(t, a.Token)
	assert.Equal(t, 1, s.tokens(t))
}

// skewedHeader is a Negotiate header whose authenticator claims the
// client's clock is off by skew.
func skewedHeader(t *testing.T, cl *client.Client, spn string, skew time.Duration) string {
	t.Helper()
	tkt, key, err := cl.GetServiceTicket(spn)
	require.NoError(t, err)
	tok, err := spnego.NewKRB5TokenAPREQ(cl, tkt, key, []int{gssapi.ContextFlagInteg, gssapi.ContextFlagConf}, []int{})
	require.NoError(t, err)
	auth, err := types.NewAuthenticator(cl.Credentials.Domain(), cl.Credentials.CName())
	require.NoError(t, err)
	auth.CTime = auth.CTime.Add(skew)
	tok.APReq, err = messages.NewAPReq(tkt, key, auth)
	require.NoError(t, err)
	b, err := tok.Marshal()
	require.NoError(t, err)
	return "Negotiate " + base64.StdEncoding.EncodeToString(b)
}

func TestNegotiateClockSkew(t *testing.T) {
	k := harness.StartKDC(t)
	s, url := kerberosSite(t, k, func(s *Service) { s.Kerberos.MaxClockSkew = 2 * time.Minute })
	cl := krbClient(t, k, "alice")

	resp, a := post(t, s, url+"/site/token", skewedHeader(t, cl, k.ServicePrincipal, -5*time.Minute))
	assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
	assert.Contains(t, a.Message, "clock skew")
	assert.Zero(t, s.tokens(t))

	resp, a = post(t, s, url+"/site/token", skewedHeader(t, cl, k.ServicePrincipal, -time.Minute))
	assert.Equal(t, http.StatusOK, resp.StatusCode, a.Message)
	assert.Equal(t, 1, s.tokens(t))
}
