package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/api"
	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/daemon/config"
	"github.com/reana-site/reana-site/daemon/engine"
	"github.com/reana-site/reana-site/daemon/store"
	"github.com/reana-site/reana-site/test/apitest"
	"github.com/reana-site/reana-site/test/fakebackend"
)

// env is one API server over a fresh store, a fake batch backend, a real
// engine and the real helper, with a caller who has a token.
type env struct {
	t      *testing.T
	srv    *httptest.Server
	api    *api.Server
	db     *store.DB
	be     *fakebackend.Backend
	eng    *engine.Engine
	acct   asuser.Account
	user   store.User
	token  string
	base   *apitest.Env
	tokens map[string]string // of the other users, by name
	vars   map[string]string // substituted for {name} in request paths
}

// Users besides the caller: bob owns a workflow, carol's token is revoked,
// dave is in the store but no longer known to NSS.
const (
	otherUser   = "bob"
	revokedUser = "carol"
	goneUser    = "dave"
)

// newEnv builds the env; opts may change the server before it serves
// (wrap its Runner, tighten its limits).
func newEnv(t *testing.T, cfg config.Config, opts ...func(*api.Server)) *env {
	t.Helper()
	ctx := context.Background()
	base := apitest.New(t, cfg, slog.New(slog.DiscardHandler), otherUser, revokedUser)
	e := &env{t: t, db: base.DB, be: base.Backend, eng: base.Engine, api: base.API, acct: base.Acct, base: base,
		tokens: map[string]string{}, vars: map[string]string{}}
	e.user, e.token = e.addUser(e.acct.Name, e.acct.UID)
	for i, name := range []string{otherUser, revokedUser, goneUser} {
		_, e.tokens[name] = e.addUser(name, e.acct.UID+uint32(i)+1)
	}
	revoked, err := e.db.UserByName(ctx, revokedUser)
	require.NoError(t, err)
	_, err = e.db.RevokeTokens(ctx, revoked.ID)
	require.NoError(t, err)
	for _, o := range opts {
		o(e.api)
	}
	e.srv = httptest.NewServer(e.api.Handler())
	t.Cleanup(e.srv.Close)
	return e
}

func (e *env) addUser(name string, uid uint32) (store.User, string) {
	e.t.Helper()
	return e.base.AddUser(e.t, name, uid)
}

// request is one call to the API. Path may hold {var}s of env.vars; the
// caller's token is added unless Token says otherwise ("-" for none).
type request struct {
	Method, Path string
	Token        string
	Body         string
	ContentType  string
}

type response struct {
	Status int
	Header http.Header
	Body   []byte
	// JSON is the body decoded, nil when it is not a JSON object.
	JSON map[string]any
}

func (e *env) expand(s string) string {
	for k, v := range e.vars {
		s = strings.ReplaceAll(s, "{"+k+"}", v)
	}
	return s
}

func (e *env) do(rq request) response {
	e.t.Helper()
	target := e.srv.URL + e.expand(rq.Path)
	switch rq.Token {
	case "":
		target = withToken(target, e.token)
	case "-":
	default:
		target = withToken(target, e.expand(rq.Token))
	}
	var body io.Reader
	if rq.Body != "" {
		body = strings.NewReader(e.expand(rq.Body))
	}
	req, err := http.NewRequest(rq.Method, target, body)
	require.NoError(e.t, err)
	switch {
	case rq.ContentType != "":
		req.Header.Set("Content-Type", rq.ContentType)
	case rq.Body != "":
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(e.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(e.t, err)
	out := response{Status: res.StatusCode, Header: res.Header, Body: b}
	// Some answers are JSON lists (the secrets API's): JSON stays nil.
	if strings.HasPrefix(res.Header.Get("Content-Type"), "application/json") && !strings.HasPrefix(string(b), "[") {
		require.NoError(e.t, json.Unmarshal(b, &out.JSON), "body %s", b)
	}
	return out
}

func withToken(target, token string) string {
	sep := "?"
	if strings.Contains(target, "?") {
		sep = "&"
	}
	return target + sep + "access_token=" + token
}

// expectation is what a call must answer: the status, the top-level keys
// of the JSON body (exactly these), and a substring of its message.
type expectation struct {
	Status int
	Keys   []string
	Msg    string
}

func (e *env) check(rq request, want expectation) response {
	e.t.Helper()
	res := e.do(rq)
	require.Equal(e.t, want.Status, res.Status, "%s %s: %s", rq.Method, rq.Path, res.Body)
	if want.Keys != nil {
		assert.Equal(e.t, sorted(want.Keys), keysOf(res.JSON), "%s %s: %s", rq.Method, rq.Path, res.Body)
	}
	if want.Msg != "" {
		assert.Contains(e.t, res.JSON["message"], want.Msg, "%s %s", rq.Method, rq.Path)
	}
	checkContract(e.t, rq.Method, e.expand(rq.Path), res)
	return res
}

func keysOf(m map[string]any) []string {
	out := []string{}
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sorted(v []string) []string {
	out := append([]string{}, v...)
	sort.Strings(out)
	return out
}

// tick lets the engine take a few rounds.
func (e *env) tick() { e.base.Tick() }
