package workflowengine

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/api/localsock"
	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/daemon/engine"
	"github.com/reana-site/reana-site/daemon/store"
)

// idleBackend accepts every job and reports it running.
type idleBackend struct{}

func (idleBackend) Name() string { return "local" }
func (idleBackend) Submit(_ context.Context, s batch.Spec) (batch.Handle, error) {
	return batch.Handle{Backend: "local", ID: s.JobID}, nil
}
func (idleBackend) Status(_ context.Context, jobs []batch.Job) (map[string]batch.Status, error) {
	out := map[string]batch.Status{}
	for _, j := range jobs {
		out[j.Spec.JobID] = batch.Status{State: batch.Running}
	}
	return out, nil
}
func (idleBackend) Cancel(context.Context, batch.Job) error         { return nil }
func (idleBackend) Logs(context.Context, batch.Job) (string, error) { return "", nil }

type socketFixture struct {
	db     *store.DB
	eng    *engine.Engine
	client *http.Client
	// runs are two running snakemake workflows: the first owned by this
	// process's uid, the second by another uid.
	runs   [2]string
	tokens [2]string
}

func newSocketFixture(t *testing.T) *socketFixture {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "test.db"))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	uids := map[string]uint32{}
	eng := &engine.Engine{
		DB: db, Backends: map[string]batch.Backend{"local": idleBackend{}}, DefaultBackend: "local",
		Account: func(_ context.Context, owner string) (asuser.Account, error) {
			return asuser.Account{Name: owner, UID: uids[owner]}, nil
		},
	}
	l := &Launcher{Python: "/usr/bin/python3", Adapters: "/usr/share/reana-site/engines", Socket: "/run/x.sock", Versions: map[string]string{"snakemake": "7.32.4"}}
	eng.EngineProcess = l.EngineProcess
	f := &socketFixture{db: db, eng: eng}
	for i, name := range []string{"me", "other"} {
		u, err := db.CreateUser(ctx, store.User{Name: name, UID: uint32(os.Getuid() + i)})
		require.NoError(t, err)
		uids[u.ID] = uint32(os.Getuid() + i)
		wf := &store.Workflow{ID: uuid.NewString(), OwnerID: u.ID, Name: "wf", Status: store.StatusQueued,
			Spec: []byte(`{"workflow": {"type": "snakemake", "file": "Snakefile"}}`), WorkspacePath: "/ws", JobsPath: "/jobs"}
		require.NoError(t, db.CreateWorkflow(ctx, wf))
		eng.Tick(ctx)
		proc, err := engineProcess(ctx, db, wf.ID)
		require.NoError(t, err)
		f.runs[i], f.tokens[i] = wf.ID, tokenOf(proc)
		require.Len(t, f.tokens[i], 64)
	}
	sock := filepath.Join(t.TempDir(), "engine.sock")
	ln, err := localsock.Listen(sock, 0o600)
	require.NoError(t, err)
	sctx, cancel := context.WithCancel(ctx)
	t.Cleanup(cancel)
	go func() { _ = localsock.Serve(sctx, ln, (&Server{DB: db, Engine: eng}).Handler()) }()
	f.client = &http.Client{Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", sock)
	}}}
	return f
}

func (f *socketFixture) do(t *testing.T, method, path, token, body string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, "http://engine"+path, strings.NewReader(body))
	require.NoError(t, err)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := f.client.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var doc map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&doc)
	return resp.StatusCode, doc
}

const okJob = `{"key": "2:1", "job_name": "gendata", "docker_img": "docker.io/library/debian:12-slim", "cmd": "cd /ws && true", "kubernetes_memory_limit": "256Mi"}`

func TestSocketRefusals(t *testing.T) {
	f := newSocketFixture(t)
	mine, theirs := f.runs[0], f.runs[1]
	status, doc := f.do(t, "POST", "/v1/workflows/"+theirs+"/jobs", f.tokens[1], okJob)
	require.Equal(t, http.StatusForbidden, status, "a run of another uid, even with its secret: %v", doc)
	tests := []struct {
		name, method, path, token, body string
		status                          int
		msg                             string
	}{
		{"wrong secret", "POST", "/v1/workflows/" + mine + "/jobs", f.tokens[1], okJob, 403, "not allowed"},
		{"no secret", "POST", "/v1/workflows/" + mine + "/jobs", "", okJob, 403, "not allowed"},
		{"unknown run", "POST", "/v1/workflows/" + uuid.NewString() + "/jobs", f.tokens[0], okJob, 403, "not allowed"},
		{"malformed", "POST", "/v1/workflows/" + mine + "/jobs", f.tokens[0], `{"key":`, 400, "malformed"},
		{"unknown field", "POST", "/v1/workflows/" + mine + "/jobs", f.tokens[0], `{"key": "k", "workflow_workspace": "/etc"}`, 400, "unknown field"},
		{"oversized", "POST", "/v1/workflows/" + mine + "/jobs", f.tokens[0], `{"key": "k", "cmd": "` + strings.Repeat("x", 2<<20) + `"}`, 400, "too large"},
		{"no command", "POST", "/v1/workflows/" + mine + "/jobs", f.tokens[0], `{"key": "k", "job_name": "a", "cmd": " "}`, 400, "cmd"},
		{"two-line name", "POST", "/v1/workflows/" + mine + "/jobs", f.tokens[0], `{"key": "k", "job_name": "a\nb", "cmd": "true"}`, 400, "job_name"},
		{"site's variable", "POST", "/v1/workflows/" + mine + "/jobs", f.tokens[0], `{"key": "k", "job_name": "a", "cmd": "true", "env_vars": {"REANA_SITE_ENGINE_TOKEN": "x"}}`, 400, "env_vars"},
		{"unknown backend", "POST", "/v1/workflows/" + mine + "/jobs", f.tokens[0], `{"key": "k", "job_name": "a", "cmd": "true", "compute_backend": "mainframe"}`, 400, "mainframe"},
		{"backend not offered", "POST", "/v1/workflows/" + mine + "/jobs", f.tokens[0], `{"key": "k", "job_name": "a", "cmd": "true", "compute_backend": "slurm"}`, 400, "not available"},
		{"bad progress", "POST", "/v1/workflows/" + mine + "/progress", f.tokens[0], `{"total": -1}`, 400, "progress"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, doc := f.do(t, tt.method, tt.path, tt.token, tt.body)
			assert.Equal(t, tt.status, status, "%v", doc)
			assert.Contains(t, fmt.Sprint(doc["message"]), tt.msg)
		})
	}
	jobs, err := f.db.JobsForWorkflow(context.Background(), mine)
	require.NoError(t, err)
	assert.Len(t, jobs, 1, "nothing but the engine process was recorded")
}

func TestSocketSubmitIsIdempotent(t *testing.T) {
	f := newSocketFixture(t)
	mine, theirs := f.runs[0], f.runs[1]
	path := "/v1/workflows/" + mine
	status, first := f.do(t, "POST", path+"/jobs", f.tokens[0], okJob)
	require.Equal(t, http.StatusCreated, status, "%v", first)
	status, again := f.do(t, "POST", path+"/jobs", f.tokens[0], okJob)
	require.Equal(t, http.StatusCreated, status)
	assert.Equal(t, first["job_id"], again["job_id"], "a retried submission is the same job")

	id := fmt.Sprint(first["job_id"])
	j, err := f.db.GetJob(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, "gendata", j.StepName)
	assert.Equal(t, "local", j.Backend)
	assert.Contains(t, string(j.Request), `"MemoryLimit":"256Mi"`)

	status, doc := f.do(t, "GET", path+"/jobs/"+id, f.tokens[0], "")
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, "queued", doc["status"])
	proc, err := engineProcess(context.Background(), f.db, theirs)
	require.NoError(t, err)
	status, _ = f.do(t, "GET", path+"/jobs/"+proc.ID, f.tokens[0], "")
	assert.Equal(t, http.StatusNotFound, status, "another run's job")
	status, _ = f.do(t, "GET", path+"/jobs/"+uuid.NewString(), f.tokens[0], "")
	assert.Equal(t, http.StatusNotFound, status)

	// What runs and what is shown (REANA's prettified_cmd) may differ.
	status, doc = f.do(t, "POST", path+"/jobs", f.tokens[0], `{"key": "y1", "job_name": "fitdata", "cmd": "echo ZWNobyBoaQ==|base64 -d|sh", "prettified_cmd": "echo hi"}`)
	require.Equal(t, http.StatusCreated, status, "%v", doc)
	j, err = f.db.GetJob(context.Background(), fmt.Sprint(doc["job_id"]))
	require.NoError(t, err)
	assert.Equal(t, "echo hi", j.Command)
	assert.Contains(t, string(j.Request), `"command":"echo ZWNobyBoaQ==|base64 -d|sh"`)

	for _, n := range []string{"2", "5"} {
		status, _ = f.do(t, "POST", path+"/progress", f.tokens[0], `{"total": `+n+`}`)
		require.Equal(t, http.StatusOK, status)
	}
	wf, err := f.db.GetWorkflow(context.Background(), mine)
	require.NoError(t, err)
	assert.Equal(t, 2, wf.ProgressTotal, "the total is set once, as REANA does")
}

func TestSocketStatusWaitsForTheNextRound(t *testing.T) {
	f := newSocketFixture(t)
	ctx := context.Background()
	path := "/v1/workflows/" + f.runs[0]
	status, doc := f.do(t, "POST", path+"/jobs", f.tokens[0], okJob)
	require.Equal(t, http.StatusCreated, status, "%v", doc)
	id := fmt.Sprint(doc["job_id"])

	status, doc = f.do(t, "GET", path+"/jobs/"+id+"?wait=soon", f.tokens[0], "")
	assert.Equal(t, http.StatusBadRequest, status)
	assert.Contains(t, fmt.Sprint(doc["message"]), "wait")

	answered := make(chan map[string]any, 1)
	go func() {
		_, doc := f.do(t, "GET", path+"/jobs/"+id+"?wait=round", f.tokens[0], "")
		answered <- doc
	}()
	select {
	case doc := <-answered:
		t.Fatalf("a queued job was answered before a round: %v", doc)
	case <-time.After(300 * time.Millisecond):
	}
	f.eng.Tick(ctx) // submits the job, which the backend reports running
	select {
	case doc := <-answered:
		assert.Equal(t, "running", doc["status"], "the state after the round")
	case <-time.After(5 * time.Second):
		t.Fatal("no answer after the round")
	}

	_, err := f.db.UpdateJob(ctx, id, func(j *store.Job) error { j.Status = store.JobFinished; return nil })
	require.NoError(t, err)
	status, doc = f.do(t, "GET", path+"/jobs/"+id+"?wait=round", f.tokens[0], "")
	require.Equal(t, http.StatusOK, status)
	assert.Equal(t, "finished", doc["status"], "a settled job is answered at once")
}
