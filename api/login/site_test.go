package login

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"sync"
	"testing"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/daemon/identity"
	"github.com/reana-site/reana-site/daemon/store"
)

// fakeSessions stands in for the web interface's sessions: a cookie
// "fake-session" names the signed-in user.
type fakeSessions struct {
	db      *store.DB
	mu      sync.Mutex
	started []string // "user method"
}

func (f *fakeSessions) Start(w http.ResponseWriter, _ *http.Request, u store.User, method string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.started = append(f.started, u.Name+" "+method)
	http.SetCookie(w, &http.Cookie{Name: "fake-session", Value: u.Name, Path: "/"})
	return nil
}

func (f *fakeSessions) User(r *http.Request) (store.User, bool) {
	c, err := r.Cookie("fake-session")
	if err != nil {
		return store.User{}, false
	}
	u, err := f.db.UserByName(r.Context(), c.Value)
	return u, err == nil
}

func (f *fakeSessions) Started() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.started...)
}

// site is a Service behind a TLS test server, with its own store, in
// which alice (and only she) is registered.
type site struct {
	*Service
	srv   *httptest.Server
	db    *store.DB
	alice store.User
}

func newSite(t *testing.T, configure func(*Service)) *site {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "reana-site.db"))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	alice, err := db.CreateUser(ctx, store.User{Name: "alice", UID: 4101})
	require.NoError(t, err)
	s := &site{db: db, alice: alice, Service: &Service{DB: db, Log: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Mapper: identity.Mapper{Accounts: identity.Resolver{Policy: identity.Policy{MinUID: 1000}}}}}
	r := chi.NewRouter()
	s.srv = httptest.NewUnstartedServer(r)
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)
	if configure != nil {
		configure(s.Service)
	}
	r.Mount("/site", s.Handler())
	return s
}

// client does not follow redirects, so each step can be looked at.
func (s *site) client(jar http.CookieJar) *http.Client {
	return &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// tokens counts every token of every user in the store.
func (s *site) tokens(t *testing.T) int {
	t.Helper()
	users, err := s.db.ListUsers(context.Background())
	require.NoError(t, err)
	n := 0
	for _, u := range users {
		ts, err := s.db.ListTokens(context.Background(), u.ID)
		require.NoError(t, err)
		n += len(ts)
	}
	return n
}

func decodeAnswer(t *testing.T, b []byte) Answer {
	t.Helper()
	var a Answer
	require.NoError(t, json.Unmarshal(b, &a), "body %s", b)
	return a
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	require.NoError(t, err)
	return u
}

func mustRules(t *testing.T, s string) []identity.MapRule {
	t.Helper()
	r, err := identity.ParseMapRules(s)
	require.NoError(t, err)
	return r
}

// do sends req and decodes the answer.
func do(t *testing.T, c *http.Client, req *http.Request) (*http.Response, Answer) {
	t.Helper()
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, decodeAnswer(t, b)
}
