package web_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/api"
	"github.com/reana-site/reana-site/api/web"
	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/daemon/config"
	"github.com/reana-site/reana-site/daemon/engine"
	"github.com/reana-site/reana-site/daemon/store"
	"github.com/reana-site/reana-site/test/apitest"
	"github.com/reana-site/reana-site/test/fakebackend"
)

// env is the web pages and the API over a fresh store, a fake batch
// backend, a real engine and the real helper, served over TLS (the
// session cookie is Secure), with alice (the helper's account) and bob.
type env struct {
	t      *testing.T
	srv    *httptest.Server
	api    *api.Server
	web    *web.Server
	db     *store.DB
	be     *fakebackend.Backend
	eng    *engine.Engine
	acct   asuser.Account
	user   store.User
	token  string
	bob    store.User
	bobTok string
	logs   *strings.Builder
	base   *apitest.Env
}

// specJSON is a serial workflow of one step, as reana-client sends it.
const specJSON = `{"version": "0.9.0",
 "inputs": {"files": ["code/run.sh"], "parameters": {"n": "1"}},
 "outputs": {"files": ["out.txt"]},
 "workflow": {"type": "serial", "specification": {"steps": [
   {"name": "fit", "environment": "docker.io/library/busybox:1.36", "commands": ["sh code/run.sh ${n}"]}]}}}`

func newEnv(t *testing.T, cfg web.Config, opts ...func(*api.Server)) *env {
	t.Helper()
	logs := &strings.Builder{}
	log := slog.New(slog.NewTextHandler(syncWriter{logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	base := apitest.New(t, config.Config{}, log, "bob")
	e := &env{t: t, db: base.DB, be: base.Backend, eng: base.Engine, api: base.API, acct: base.Acct, base: base, logs: logs}
	e.user, e.token = base.AddUser(t, e.acct.Name, e.acct.UID)
	e.bob, e.bobTok = base.AddUser(t, "bob", e.acct.UID+1)
	for _, o := range opts {
		o(e.api)
	}
	e.srv = httptest.NewUnstartedServer(nil)
	e.srv.StartTLS()
	t.Cleanup(e.srv.Close)
	if cfg.PublicURL == "" {
		cfg.PublicURL = e.srv.URL
	}
	var err error
	e.web, err = web.New(e.api, cfg, log)
	require.NoError(t, err)
	e.web.TailEvery = 20 * time.Millisecond
	apiHandler, webHandler := e.api.Handler(), e.web.Handler()
	e.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/api/") {
			apiHandler.ServeHTTP(w, r)
			return
		}
		webHandler.ServeHTTP(w, r)
	})
	t.Cleanup(func() { rendered.add(e.web) })
	return e
}

// browser is a client with its own cookies that does not follow
// redirects, so a test sees each answer.
type browser struct {
	e *env
	c *http.Client
}

func (e *env) browser() *browser {
	jar, err := cookiejar.New(nil)
	require.NoError(e.t, err)
	c := e.srv.Client()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &browser{e: e, c: c}
}

// signedIn is a browser signed in with the given token.
func (e *env) signedIn(token string) *browser {
	b := e.browser()
	res := b.post("/signin", url.Values{"token": {token}})
	require.Equal(e.t, http.StatusSeeOther, res.Status, res.Body)
	return b
}

type page struct {
	Status int
	Header http.Header
	Body   string
}

func (b *browser) do(req *http.Request) page {
	b.e.t.Helper()
	res, err := b.c.Do(req)
	require.NoError(b.e.t, err)
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	require.NoError(b.e.t, err)
	return page{Status: res.StatusCode, Header: res.Header, Body: string(body)}
}

func (b *browser) get(path string) page {
	b.e.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.e.srv.URL+path, nil)
	require.NoError(b.e.t, err)
	return b.do(req)
}

// post sends a form as a browser on this site does (same origin).
func (b *browser) post(path string, form url.Values, headers ...string) page {
	b.e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, b.e.srv.URL+path, strings.NewReader(form.Encode()))
	require.NoError(b.e.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return b.do(req)
}

// apiCall calls the REST API with a token, as reana-client does.
func (e *env) apiCall(method, path, token, ctype string, body io.Reader) map[string]any {
	e.t.Helper()
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	req, err := http.NewRequest(method, e.srv.URL+path+sep+"access_token="+token, body)
	require.NoError(e.t, err)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	res, err := e.srv.Client().Do(req)
	require.NoError(e.t, err)
	defer res.Body.Close()
	var out map[string]any
	b, _ := io.ReadAll(res.Body)
	require.Less(e.t, res.StatusCode, 300, "%s %s: %s", method, path, b)
	_ = json.Unmarshal(b, &out)
	return out
}

// run is a workflow of alice's made through the API, with files.
type run struct{ ID, Name string }

func (e *env) create(name string, files map[string]string) run {
	e.t.Helper()
	res := e.apiCall("POST", "/api/workflows?workflow_name="+name, e.token, "application/json", strings.NewReader(specJSON))
	r := run{ID: res["workflow_id"].(string), Name: res["workflow_name"].(string)}
	if files == nil {
		files = map[string]string{}
	}
	if _, ok := files["code/run.sh"]; !ok {
		files["code/run.sh"] = "echo fitting $1\n"
	}
	for p, content := range files {
		e.apiCall("POST", "/api/workflows/"+r.ID+"/workspace?file_name="+url.QueryEscape(p), e.token, "application/octet-stream", strings.NewReader(content))
	}
	return r
}

// start starts a run and lets the engine submit its job.
func (e *env) start(r run) batch.Spec {
	e.t.Helper()
	before := len(e.be.Jobs())
	e.apiCall("POST", "/api/workflows/"+r.ID+"/start", e.token, "application/json", strings.NewReader(`{}`))
	e.tick()
	jobs := e.be.Jobs()
	require.Len(e.t, jobs, before+1)
	return jobs[before]
}

func (e *env) tick() { e.base.Tick() }

// finish ends a submitted job with the given exit code and output.
func (e *env) finish(j batch.Spec, code int, output string) {
	e.t.Helper()
	state := batch.Succeeded
	if code != 0 {
		state = batch.Failed
	}
	e.be.Set(j.JobID, batch.Status{State: state, ExitCode: &code}, output)
	e.tick()
}

// othersRun stores a run of bob's, straight in the store.
func (e *env) othersRun() string {
	e.t.Helper()
	w := store.Workflow{OwnerID: e.bob.ID, Name: "secret", Status: store.StatusFinished, Spec: []byte(specJSON),
		InputParameters: []byte("{}"), OperationalOptions: []byte("{}"), WorkspacePath: "/nonexistent/secret", JobsPath: "/nonexistent/jobs"}
	require.NoError(e.t, e.db.CreateWorkflow(context.Background(), &w))
	return w.ID
}

type syncWriter struct{ b *strings.Builder }

func (w syncWriter) Write(p []byte) (int, error) {
	logMu.Lock()
	defer logMu.Unlock()
	return w.b.Write(p)
}
