package api_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/daemon/config"
	"github.com/reana-site/reana-site/daemon/store"
)

// specJSON is a serial workflow as reana-client sends it (reana.yaml as
// JSON): one parameter, one step, one retention rule.
const specJSON = `{"version": "0.9.0",
 "inputs": {"files": ["code/run.sh"], "parameters": {"n": "1"}},
 "outputs": {"files": ["out.txt"]},
 "workflow": {"type": "serial", "specification": {"steps": [
   {"name": "run", "environment": "docker.io/library/busybox:1.36", "commands": ["sh code/run.sh ${n}"]}]}},
 "workspace": {"retention_days": {"tmp/*": 5}}}`

var (
	workflowKeys  = []string{"message", "workflow_id", "workflow_name"}
	startKeys     = []string{"message", "workflow_id", "workflow_name", "status", "run_number", "user"}
	statusKeys    = []string{"id", "name", "created", "status", "user", "progress", "logs"}
	changeKeys    = []string{"message", "workflow_id", "workflow_name", "status", "user"}
	listItemKeys  = []string{"id", "name", "created", "status", "user", "progress", "size", "launcher_url", "session_type", "session_uri", "session_status"}
	messageOnly   = []string{"message"}
	notSignedIn   = "User not signed in"
	noSuchFlow    = "does not exist"
	invalidFile   = "must name a file inside the workspace"
	uploadHeaders = "application/octet-stream"
)

// create makes a workflow through the API and names it in e.vars as
// {prefix} (its name) and {prefix}_id.
func (e *env) create(prefix, name string) {
	e.t.Helper()
	res := e.check(request{Method: "POST", Path: "/api/workflows?workflow_name=" + name, Body: specJSON},
		expectation{Status: http.StatusCreated, Keys: workflowKeys, Msg: "Workflow workspace created"})
	e.vars[prefix] = res.JSON["workflow_name"].(string)
	e.vars[prefix+"_id"] = res.JSON["workflow_id"].(string)
}

// othersWorkflow stores a workflow of bob's, straight in the store.
func (e *env) othersWorkflow() {
	e.t.Helper()
	ctx := context.Background()
	bob, err := e.db.UserByName(ctx, otherUser)
	require.NoError(e.t, err)
	id := uuid.NewString()
	require.NoError(e.t, e.db.CreateWorkflow(ctx, &store.Workflow{
		ID: id, OwnerID: bob.ID, Name: "secret", Status: store.StatusCreated,
		Spec: []byte(specJSON), InputParameters: []byte("{}"), OperationalOptions: []byte("{}"),
		WorkspacePath: "/nonexistent/" + id, JobsPath: "/nonexistent/jobs/" + id,
	}))
	e.vars["other_id"] = id
}

type call struct {
	name string
	request
	expectation
}

func run(t *testing.T, e *env, calls []call) {
	t.Helper()
	outer := e.t
	defer func() { e.t = outer }()
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			e.t = t
			e.check(c.request, c.expectation)
		})
	}
}

// TestReadOnlyCalls runs calls that change nothing, and the refusals, on a
// created workflow with one file uploaded.
func TestReadOnlyCalls(t *testing.T) {
	e := newEnv(t, config.Config{})
	e.create("wf", "analysis")
	e.othersWorkflow()
	e.check(request{Method: "POST", Path: "/api/workflows/{wf}/workspace?file_name=code/run.sh", Body: "echo $1 > out.txt\n", ContentType: uploadHeaders},
		expectation{Status: http.StatusOK, Keys: messageOnly, Msg: "code/run.sh has been successfully uploaded."})
	e.vars["revoked"], e.vars["gone"] = e.tokens[revokedUser], e.tokens[goneUser]

	run(t, e, []call{
		{"ping", request{Method: "GET", Path: "/api/ping", Token: "-"}, expectation{Status: 200, Keys: []string{"message", "status"}}},
		{"cluster status", request{Method: "GET", Path: "/api/status", Token: "-"}, expectation{Status: 200, Keys: []string{"job", "node", "session", "workflow"}}},
		{"you", request{Method: "GET", Path: "/api/you"}, expectation{Status: 200, Keys: []string{"email", "full_name", "username", "quota", "reana_server_version", "reana_token"}}},
		{"info", request{Method: "GET", Path: "/api/info"}, expectation{Status: 200}},
		{"list", request{Method: "GET", Path: "/api/workflows?type=batch&include_workspace_size=true"}, expectation{Status: 200, Keys: []string{"items", "total"}}},
		{"list page 2 of size 1 is empty", request{Method: "GET", Path: "/api/workflows?type=batch&page=2&size=1"}, expectation{Status: 200, Keys: []string{"items", "total"}}},
		{"list interactive", request{Method: "GET", Path: "/api/workflows?type=interactive"}, expectation{Status: 200, Keys: []string{"items", "total"}}},
		{"list without type", request{Method: "GET", Path: "/api/workflows"}, expectation{Status: 400, Keys: messageOnly, Msg: "Missing required query parameter: type."}},
		{"list page 0", request{Method: "GET", Path: "/api/workflows?type=batch&page=0"}, expectation{Status: 400, Keys: messageOnly, Msg: "Field 'page': Must be at least 1."}},
		{"list size x", request{Method: "GET", Path: "/api/workflows?type=batch&size=x"}, expectation{Status: 400, Keys: messageOnly, Msg: "Field 'size': Must be at least 1."}},
		{"list unknown status", request{Method: "GET", Path: "/api/workflows?type=batch&status=sleeping"}, expectation{Status: 400, Keys: messageOnly, Msg: `Unknown workflow status "sleeping".`}},
		{"list bad sort", request{Method: "GET", Path: "/api/workflows?type=batch&sort=up"}, expectation{Status: 400, Keys: messageOnly, Msg: "Sort must be asc or desc."}},
		{"status by name", request{Method: "GET", Path: "/api/workflows/{wf}/status"}, expectation{Status: 200, Keys: statusKeys}},
		{"status by id", request{Method: "GET", Path: "/api/workflows/{wf_id}/status"}, expectation{Status: 200, Keys: statusKeys}},
		{"parameters", request{Method: "GET", Path: "/api/workflows/{wf}/parameters"}, expectation{Status: 200, Keys: []string{"id", "name", "type", "parameters"}}},
		{"specification", request{Method: "GET", Path: "/api/workflows/{wf}/specification"}, expectation{Status: 200, Keys: []string{"specification", "parameters"}}},
		{"retention rules", request{Method: "GET", Path: "/api/workflows/{wf}/retention_rules"}, expectation{Status: 200, Keys: []string{"workflow_id", "workflow_name", "retention_rules"}}},
		{"logs before start", request{Method: "GET", Path: "/api/workflows/{wf}/logs"}, expectation{Status: 200, Keys: []string{"workflow_id", "workflow_name", "user", "logs"}}},
		{"ls", request{Method: "GET", Path: "/api/workflows/{wf}/workspace"}, expectation{Status: 200, Keys: []string{"items", "total"}}},
		{"ls bad search", request{Method: "GET", Path: "/api/workflows/{wf}/workspace?search=plot"}, expectation{Status: 400, Keys: messageOnly, Msg: "search filter must be a JSON object"}},
		{"du", request{Method: "GET", Path: "/api/workflows/{wf}/disk_usage", Body: `{"summarize": true}`}, expectation{Status: 200, Keys: []string{"workflow_id", "workflow_name", "user", "disk_usage_info"}}},
		{"download missing file", request{Method: "GET", Path: "/api/workflows/{wf}/workspace/nothing.txt"}, expectation{Status: 404, Keys: messageOnly, Msg: "no such file or directory"}},

		{"no token", request{Method: "GET", Path: "/api/workflows?type=batch", Token: "-"}, expectation{Status: 403, Keys: messageOnly, Msg: notSignedIn}},
		{"no token for you is 401", request{Method: "GET", Path: "/api/you", Token: "-"}, expectation{Status: 401, Keys: messageOnly, Msg: notSignedIn}},
		{"no token for retention rules is 401", request{Method: "GET", Path: "/api/workflows/{wf}/retention_rules", Token: "-"}, expectation{Status: 401, Keys: messageOnly, Msg: notSignedIn}},
		{"wrong token", request{Method: "GET", Path: "/api/you", Token: "not-a-token"}, expectation{Status: 403, Keys: messageOnly, Msg: "Token not valid."}},
		{"revoked token", request{Method: "GET", Path: "/api/you", Token: "{revoked}"}, expectation{Status: 403, Keys: messageOnly, Msg: "User access token revoked."}},
		{"user gone from NSS", request{Method: "GET", Path: "/api/you", Token: "{gone}"}, expectation{Status: 403, Keys: messageOnly, Msg: "User dave no longer exists on this site."}},
		{"unknown workflow", request{Method: "GET", Path: "/api/workflows/nothing/status"}, expectation{Status: 404, Keys: messageOnly, Msg: noSuchFlow}},
		{"another user's workflow by name", request{Method: "GET", Path: "/api/workflows/secret/status"}, expectation{Status: 404, Keys: messageOnly, Msg: noSuchFlow}},
		{"another user's workflow by id", request{Method: "GET", Path: "/api/workflows/{other_id}/status"}, expectation{Status: 404, Keys: messageOnly, Msg: noSuchFlow}},
		{"another user's workspace by id", request{Method: "GET", Path: "/api/workflows/{other_id}/workspace"}, expectation{Status: 404, Keys: messageOnly, Msg: noSuchFlow}},
		{"another user's workflow start", request{Method: "POST", Path: "/api/workflows/{other_id}/start", Body: `{}`}, expectation{Status: 404, Keys: messageOnly, Msg: noSuchFlow}},
		{"upload outside the workspace", request{Method: "POST", Path: "/api/workflows/{wf}/workspace?file_name=../escape.txt", Body: "x", ContentType: uploadHeaders}, expectation{Status: 400, Keys: messageOnly, Msg: invalidFile}},
		{"upload with a backslash", request{Method: "POST", Path: "/api/workflows/{wf}/workspace?file_name=a%5Cb", Body: "x", ContentType: uploadHeaders}, expectation{Status: 400, Keys: messageOnly, Msg: invalidFile}},
		{"upload as JSON", request{Method: "POST", Path: "/api/workflows/{wf}/workspace?file_name=a.txt", Body: "x", ContentType: "application/json"}, expectation{Status: 400, Keys: messageOnly, Msg: "application/octet-stream"}},
		{"download outside the workspace", request{Method: "GET", Path: "/api/workflows/{wf}/workspace/code/../../escape.txt"}, expectation{Status: 400, Keys: messageOnly, Msg: invalidFile}},
		{"download escaped dot-dot", request{Method: "GET", Path: "/api/workflows/{wf}/workspace/code%2F..%2F..%2Fescape.txt"}, expectation{Status: 400, Keys: messageOnly, Msg: invalidFile}},
		{"delete outside the workspace is 403", request{Method: "DELETE", Path: "/api/workflows/{wf}/workspace/code/../../escape.txt"}, expectation{Status: 403, Keys: messageOnly, Msg: invalidFile}},
		{"move outside the workspace", request{Method: "PUT", Path: "/api/workflows/move_files/{wf}?source=code/run.sh&target=../run.sh"}, expectation{Status: 400, Keys: messageOnly, Msg: "Source and target must name paths inside the workspace"}},
	})
}

func TestCreateWorkflowRefusals(t *testing.T) {
	e := newEnv(t, config.Config{})
	run(t, e, []call{
		{"name with a dot", request{Method: "POST", Path: "/api/workflows?workflow_name=a.b", Body: specJSON}, expectation{Status: 403, Keys: messageOnly}},
		{"empty body", request{Method: "POST", Path: "/api/workflows?workflow_name=a", Body: " "}, expectation{Status: 400, Keys: messageOnly, Msg: "Either remote repository or REANA specification needs to be provided."}},
		{"not a specification", request{Method: "POST", Path: "/api/workflows?workflow_name=a", Body: `{"workflow": 3}`}, expectation{Status: 400, Keys: messageOnly, Msg: "Invalid REANA specification"}},
		{"cwl step on a backend the site lacks", request{Method: "POST", Path: "/api/workflows?workflow_name=a", Body: `{"workflow": {"type": "cwl", "file": "x.cwl", "specification": {"$graph": [{"class": "Workflow", "id": "#main", "steps": [{"id": "#main/fit", "hints": [{"class": "reana", "compute_backend": "slurm"}]}]}]}}}`}, expectation{Status: 400, Keys: messageOnly, Msg: "slurm"}},
		{"snakemake rule on an unknown backend", request{Method: "POST", Path: "/api/workflows?workflow_name=a", Body: `{"workflow": {"type": "snakemake", "file": "Snakefile", "specification": {"steps": [{"name": "fit", "compute_backend": "mainframe"}]}}}`}, expectation{Status: 400, Keys: messageOnly, Msg: "mainframe"}},
		{"unknown backend", request{Method: "POST", Path: "/api/workflows?workflow_name=a", Body: `{"workflow": {"type": "serial", "specification": {"steps": [{"environment": "i", "compute_backend": "mainframe", "commands": ["true"]}]}}}`}, expectation{Status: 400, Keys: messageOnly}},
		{"remote specification", request{Method: "POST", Path: "/api/workflows?workflow_name=a&spec=https://example.org/reana.yaml", Body: specJSON}, expectation{Status: 501, Keys: messageOnly, Msg: "remote specification URL"}},
		{"nothing was created", request{Method: "GET", Path: "/api/workflows?type=batch"}, expectation{Status: 200, Keys: []string{"items", "total"}}},
	})
	res := e.do(request{Method: "GET", Path: "/api/workflows?type=batch"})
	assert.EqualValues(t, 0, res.JSON["total"])
}

// TestEngineTypesWithoutEngines: a cwl workflow is created (as REANA
// does), but refused at start with what the site must install.
func TestEngineTypesWithoutEngines(t *testing.T) {
	e := newEnv(t, config.Config{})
	run(t, e, []call{
		{"create", request{Method: "POST", Path: "/api/workflows?workflow_name=c", Body: `{"workflow": {"type": "cwl", "file": "x.cwl"}}`}, expectation{Status: 201}},
		{"start", request{Method: "PUT", Path: "/api/workflows/c.1/status?status=start", Body: `{}`}, expectation{Status: 501, Keys: messageOnly, Msg: "REANA_SITE_ENGINE_PYTHON"}},
		{"yadage option for cwl", request{Method: "PUT", Path: "/api/workflows/c.1/status?status=start", Body: `{"operational_options": {"toplevel": "x"}}`}, expectation{Status: 501}},
	})
}

// TestFiles uploads, lists, downloads, measures, moves and deletes files
// through the real helper.
func TestFiles(t *testing.T) {
	e := newEnv(t, config.Config{})
	e.create("wf", "files")
	run(t, e, []call{
		{"upload", request{Method: "POST", Path: "/api/workflows/{wf}/workspace?file_name=/data/in.txt", Body: "hello\n", ContentType: uploadHeaders}, expectation{Status: 200, Keys: messageOnly, Msg: "/data/in.txt has been successfully uploaded."}},
		{"move", request{Method: "PUT", Path: "/api/workflows/move_files/{wf}?source=data/in.txt&target=data/moved.txt"}, expectation{Status: 200, Keys: workflowKeys, Msg: "data/in.txt was successfully moved to data/moved.txt."}},
		{"upload another", request{Method: "POST", Path: "/api/workflows/{wf}/workspace?file_name=other.txt", Body: "x", ContentType: uploadHeaders}, expectation{Status: 200, Keys: messageOnly}},
		{"move onto an existing file", request{Method: "PUT", Path: "/api/workflows/move_files/{wf}?source=data/moved.txt&target=other.txt"}, expectation{Status: 409, Keys: messageOnly, Msg: "already exists"}},
		{"move a missing file", request{Method: "PUT", Path: "/api/workflows/move_files/{wf}?source=nothing&target=other"}, expectation{Status: 404, Keys: messageOnly}},
	})
	ls := e.check(request{Method: "GET", Path: "/api/workflows/{wf}/workspace"}, expectation{Status: 200, Keys: []string{"items", "total"}})
	require.Len(t, ls.JSON["items"], 2, "%s", ls.Body)
	item := ls.JSON["items"].([]any)[0].(map[string]any)
	assert.Equal(t, "data/moved.txt", item["name"])
	assert.Equal(t, map[string]any{"raw": 6.0, "human_readable": "6 Bytes"}, item["size"])

	dl := e.check(request{Method: "GET", Path: "/api/workflows/{wf}/workspace/data/moved.txt"}, expectation{Status: 200})
	assert.Equal(t, "hello\n", string(dl.Body))
	assert.Equal(t, "application/octet-stream", dl.Header.Get("Content-Type"))

	du := e.check(request{Method: "GET", Path: "/api/workflows/{wf}/disk_usage", Body: `{"summarize": false}`}, expectation{Status: 200})
	assert.NotEmpty(t, du.JSON["disk_usage_info"])

	rm := e.check(request{Method: "DELETE", Path: "/api/workflows/{wf}/workspace/data/moved.txt"}, expectation{Status: 200, Keys: []string{"deleted", "failed"}})
	assert.Equal(t, map[string]any{"data/moved.txt": map[string]any{"size": 6.0}}, rm.JSON["deleted"])
	e.check(request{Method: "GET", Path: "/api/workflows/{wf}/workspace/data/moved.txt"}, expectation{Status: 404, Keys: messageOnly})
}

// TestLifecycle starts a workflow, lets the engine run its job on the fake
// backend, reads its logs, and deletes it; another one is stopped.
func TestLifecycle(t *testing.T) {
	e := newEnv(t, config.Config{})
	e.create("wf", "life")
	run(t, e, []call{
		{"start unknown workflow", request{Method: "POST", Path: "/api/workflows/nothing/start", Body: `{}`}, expectation{Status: 404, Keys: messageOnly, Msg: noSuchFlow}},
		{"start with an undeclared parameter", request{Method: "POST", Path: "/api/workflows/{wf}/start", Body: `{"input_parameters": {"zzz": "1"}}`}, expectation{Status: 400, Keys: messageOnly}},
		{"start with a malformed body", request{Method: "POST", Path: "/api/workflows/{wf}/start", Body: `[`}, expectation{Status: 400, Keys: messageOnly, Msg: "Malformed request body"}},
		{"stop before start", request{Method: "PUT", Path: "/api/workflows/{wf}/status?status=stop", Body: `{}`}, expectation{Status: 409, Keys: messageOnly, Msg: "is not running"}},
		{"unknown status change", request{Method: "PUT", Path: "/api/workflows/{wf}/status?status=paused", Body: `{}`}, expectation{Status: 400, Keys: messageOnly, Msg: "Status must be one of start, stop, deleted."}},
		{"start", request{Method: "POST", Path: "/api/workflows/{wf}/start", Body: `{"input_parameters": {"n": "7"}}`}, expectation{Status: 200, Keys: startKeys, Msg: "Workflow submitted."}},
		{"start again", request{Method: "POST", Path: "/api/workflows/{wf}/start", Body: `{}`}, expectation{Status: 403, Keys: messageOnly, Msg: "cannot be started again"}},
		{"restart while not finished", request{Method: "POST", Path: "/api/workflows/{wf}/start", Body: `{"restart": true}`}, expectation{Status: 403, Keys: messageOnly, Msg: "Only finished or failed workflows can be restarted."}},
	})
	e.tick()
	jobs := e.be.Jobs()
	require.Len(t, jobs, 1)
	assert.Equal(t, "sh code/run.sh 7", jobs[0].Command)
	e.be.Set(jobs[0].JobID, batch.Status{State: batch.Running}, "so far\n")

	st := e.check(request{Method: "GET", Path: "/api/workflows/{wf}/status"}, expectation{Status: 200, Keys: statusKeys})
	assert.Equal(t, string(store.StatusRunning), st.JSON["status"])
	e.check(request{Method: "PUT", Path: "/api/workflows/{wf}/status?status=deleted", Body: `{}`}, expectation{Status: 409, Keys: messageOnly, Msg: "Stop it first."})
	e.check(request{Method: "PUT", Path: "/api/workflows/move_files/{wf}?source=a&target=b"}, expectation{Status: 409, Keys: messageOnly, Msg: "files cannot be moved until it ends"})
	live := e.check(request{Method: "GET", Path: "/api/workflows/{wf}/logs"}, expectation{Status: 200, Keys: []string{"workflow_id", "workflow_name", "user", "logs"}})
	assert.Equal(t, "so far\n", jobLogs(t, live)["logs"])

	zero := 0
	e.be.Set(jobs[0].JobID, batch.Status{State: batch.Succeeded, ExitCode: &zero}, "all of it\n")
	e.tick()
	st = e.check(request{Method: "GET", Path: "/api/workflows/{wf}/status"}, expectation{Status: 200, Keys: statusKeys})
	assert.Equal(t, string(store.StatusFinished), st.JSON["status"])
	done := e.check(request{Method: "GET", Path: "/api/workflows/{wf}/logs"}, expectation{Status: 200})
	entry := jobLogs(t, done)
	assert.Equal(t, "all of it\n", entry["logs"])
	assert.Equal(t, string(store.JobFinished), entry["status"])
	e.check(request{Method: "GET", Path: "/api/workflows/{wf}/logs?page=0"}, expectation{Status: 400, Keys: messageOnly})

	run(t, e, []call{
		{"keep the workspace", request{Method: "PUT", Path: "/api/workflows/{wf}/status?status=deleted", Body: `{"workspace": false}`}, expectation{Status: 400, Keys: messageOnly, Msg: "Workspace must always be deleted"}},
		{"delete", request{Method: "PUT", Path: "/api/workflows/{wf}/status?status=deleted", Body: `{}`}, expectation{Status: 200, Keys: changeKeys, Msg: "Workflow successfully deleted."}},
		{"files of a deleted workflow", request{Method: "GET", Path: "/api/workflows/{wf}/workspace"}, expectation{Status: 404, Keys: messageOnly, Msg: "was deleted together with its workspace"}},
	})

	e.create("stopped", "stopme")
	e.check(request{Method: "PUT", Path: "/api/workflows/{stopped}/status?status=start", Body: `{}`}, expectation{Status: 200, Keys: startKeys})
	e.tick()
	e.check(request{Method: "PUT", Path: "/api/workflows/{stopped}/status?status=stop", Body: `{}`}, expectation{Status: 200, Keys: changeKeys, Msg: "Workflow successfully stopped"})

	list := e.check(request{Method: "GET", Path: "/api/workflows?type=batch&status=stopped,deleted"}, expectation{Status: 200})
	for _, it := range list.JSON["items"].([]any) {
		assert.Equal(t, sorted(listItemKeys), keysOf(it.(map[string]any)))
	}
}

// jobLogs decodes the logs document and returns its only job's entry.
func jobLogs(t *testing.T, res response) map[string]any {
	t.Helper()
	var doc struct {
		JobLogs map[string]map[string]any `json:"job_logs"`
	}
	require.NoError(t, json.Unmarshal([]byte(res.JSON["logs"].(string)), &doc))
	require.Len(t, doc.JobLogs, 1)
	for _, v := range doc.JobLogs {
		return v
	}
	return nil
}

// TestQuota refuses uploads past the disk quota, and new workflows once it
// is used up.
func TestQuota(t *testing.T) {
	e := newEnv(t, config.Config{DiskQuotaBytes: 10})
	e.create("wf", "quota")
	run(t, e, []call{
		{"upload past the quota", request{Method: "POST", Path: "/api/workflows/{wf}/workspace?file_name=big.bin", Body: "01234567890123456789", ContentType: uploadHeaders}, expectation{Status: 403, Keys: messageOnly, Msg: "would exceed your disk quota of 10 Bytes"}},
		{"upload up to the quota", request{Method: "POST", Path: "/api/workflows/{wf}/workspace?file_name=ten.bin", Body: "0123456789", ContentType: uploadHeaders}, expectation{Status: 200, Keys: messageOnly}},
		{"create once it is used up", request{Method: "POST", Path: "/api/workflows?workflow_name=more", Body: specJSON}, expectation{Status: 403, Keys: messageOnly, Msg: "of 10 Bytes used)"}},
		{"start once it is used up", request{Method: "POST", Path: "/api/workflows/{wf}/start", Body: `{}`}, expectation{Status: 403, Keys: messageOnly, Msg: "has exceeded the disk quota"}},
	})
}

// TestDeleteKeepsASharedWorkspace: a restart runs in the workspace of the
// run it restarts, so deleting that finished run must not take the files
// from under the restart while it is active.
func TestDeleteKeepsASharedWorkspace(t *testing.T) {
	e := newEnv(t, config.Config{})
	e.create("wf", "shared")
	e.check(request{Method: "POST", Path: "/api/workflows/{wf}/start", Body: `{}`}, expectation{Status: 200, Keys: startKeys})
	e.tick()
	zero := 0
	first := e.be.Jobs()[0]
	e.be.Set(first.JobID, batch.Status{State: batch.Succeeded, ExitCode: &zero}, "")
	e.tick()
	res := e.check(request{Method: "POST", Path: "/api/workflows/{wf}/start", Body: `{"restart": true}`}, expectation{Status: 200, Keys: startKeys})
	e.vars["restart"] = res.JSON["workflow_name"].(string)
	e.tick()
	jobs := e.be.Jobs()
	require.Len(t, jobs, 2)
	e.be.Set(jobs[1].JobID, batch.Status{State: batch.Running}, "")
	e.tick()

	run(t, e, []call{
		{"delete the run a running restart shares", request{Method: "PUT", Path: "/api/workflows/{wf}/status?status=deleted", Body: `{}`},
			expectation{Status: 409, Keys: messageOnly, Msg: "its workspace is shared with shared.1.1, which is running"}},
		{"delete all runs: the running one stays", request{Method: "PUT", Path: "/api/workflows/{wf}/status?status=deleted", Body: `{"all_runs": true}`},
			expectation{Status: 200, Keys: changeKeys}},
		{"the restart still has its files", request{Method: "GET", Path: "/api/workflows/{restart}/workspace"}, expectation{Status: 200}},
	})
	e.be.Set(jobs[1].JobID, batch.Status{State: batch.Succeeded, ExitCode: &zero}, "")
	e.tick()
	run(t, e, []call{
		{"delete the restart once it ended", request{Method: "PUT", Path: "/api/workflows/{restart}/status?status=deleted", Body: `{}`}, expectation{Status: 200, Keys: changeKeys}},
		{"now the files are gone", request{Method: "GET", Path: "/api/workflows/{restart}/workspace"}, expectation{Status: 404}},
	})
}

// TestOutOfRangeInputIs400: numbers and names beyond what the server can
// handle are the client's mistake, not a server error.
func TestOutOfRangeInputIs400(t *testing.T) {
	e := newEnv(t, config.Config{})
	e.create("wf", "ranges")
	e.check(request{Method: "POST", Path: "/api/workflows/{wf}/workspace?file_name=a.txt", Body: "x", ContentType: uploadHeaders}, expectation{Status: 200})
	wf, err := e.db.GetWorkflow(context.Background(), e.vars["wf_id"])
	require.NoError(t, err)
	ln, err := net.Listen("unix", filepath.Join(wf.WorkspacePath, "sock"))
	require.NoError(t, err)
	defer ln.Close()
	long := strings.Repeat("n", 300)
	huge := "4611686018427387905"
	run(t, e, []call{
		{"huge page of the workspace", request{Method: "GET", Path: "/api/workflows/{wf}/workspace?page=" + huge + "&size=2"}, expectation{Status: 400, Keys: messageOnly, Msg: "Field 'page'"}},
		{"huge size of the workspace", request{Method: "GET", Path: "/api/workflows/{wf}/workspace?page=3&size=" + huge}, expectation{Status: 400, Keys: messageOnly, Msg: "Field 'size'"}},
		{"huge page of the logs", request{Method: "GET", Path: "/api/workflows/{wf}/logs?page=" + huge + "&size=2"}, expectation{Status: 400, Keys: messageOnly, Msg: "Field 'page'"}},
		{"huge page of the list", request{Method: "GET", Path: "/api/workflows?type=batch&page=" + huge + "&size=2"}, expectation{Status: 400, Keys: messageOnly, Msg: "Field 'page'"}},
		{"page beyond int", request{Method: "GET", Path: "/api/workflows/{wf}/workspace?page=99999999999999999999999"}, expectation{Status: 400, Keys: messageOnly, Msg: "Field 'page'"}},
		{"over-long file name", request{Method: "POST", Path: "/api/workflows/{wf}/workspace?file_name=" + long, Body: "x", ContentType: uploadHeaders}, expectation{Status: 400, Keys: messageOnly, Msg: "too long"}},
		{"over-long download", request{Method: "GET", Path: "/api/workflows/{wf}/workspace/" + long}, expectation{Status: 400, Keys: messageOnly, Msg: "too long"}},
		{"over-long workflow name", request{Method: "POST", Path: "/api/workflows?workflow_name=" + long, Body: specJSON}, expectation{Status: 400, Keys: messageOnly}},
		{"download a socket", request{Method: "GET", Path: "/api/workflows/{wf}/workspace/sock"}, expectation{Status: 400, Keys: messageOnly, Msg: "not a regular file"}},
	})
}
