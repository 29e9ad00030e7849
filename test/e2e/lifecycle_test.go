//go:build e2e

package e2e

import (
	"encoding/json"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// shared is one daemon for the tests that do not restart it.
func shared(t *testing.T) (*Daemon, *User, *User) {
	t.Helper()
	d := StartDaemon(t)
	return d, d.AddUser(t, "alice"), d.AddUser(t, "bob")
}

// expectedOutputs runs the demo's programs directly as the user, outside
// the daemon, so the test knows what the workflow must produce.
func expectedOutputs(t *testing.T, u *User, events string) []byte {
	t.Helper()
	dir := u.WorkDir(t, "root6-fit")
	out, code := u.Run(t, dir, nil, "/bin/bash", "-c", "mkdir -p results && bash code/gendata.sh \"$1\" results/data.txt && bash code/fitdata.sh results/data.txt results/plot.png", "x", events)
	require.Zero(t, code, out)
	b, err := os.ReadFile(filepath.Join(dir, "results", "plot.png"))
	require.NoError(t, err)
	return b
}

// assertDownloadedPlot downloads the run's plot as the user with
// reana-client and compares it with what the demo's programs produce for
// that many events.
func assertDownloadedPlot(t *testing.T, u *User, dir, run, events string) {
	t.Helper()
	dl := u.WorkDir(t, "")
	u.MustClient(t, dir, "download", "-w", run, "results/plot.png", "-o", dl)
	got, err := os.ReadFile(filepath.Join(dl, "results", "plot.png"))
	require.NoError(t, err)
	assert.Equal(t, expectedOutputs(t, u, events), got, "the downloaded plot differs from what the programs produce")
}

func TestRoot6FitAsTheUser(t *testing.T) {
	d, alice, _ := shared(t)
	dir := alice.WorkDir(t, "root6-fit")

	out := alice.MustClient(t, dir, "ping")
	assert.Contains(t, out, "alice")

	out = alice.MustClient(t, dir, "run", "-w", "root6-fit", "-p", "events=2000")
	assert.Contains(t, out, "root6-fit.1")
	wf := alice.WaitStatus(t, "root6-fit.1", 3*time.Minute, "finished")

	out = alice.MustClient(t, dir, "status", "-w", "root6-fit.1")
	assert.Contains(t, out, "finished")

	out = alice.MustClient(t, dir, "logs", "-w", "root6-fit.1")
	assert.Contains(t, out, "gendata")
	assert.Contains(t, out, "fitdata")
	assert.Contains(t, out, "2000")

	out = alice.MustClient(t, dir, "ls", "-w", "root6-fit.1")
	for _, f := range []string{"results/plot.png", "results/data.txt", "code/gendata.sh", "code/fitdata.sh", "reana.yaml"} {
		assert.Contains(t, out, f)
	}

	dl := alice.WorkDir(t, "")
	alice.MustClient(t, dir, "download", "-w", "root6-fit.1", "results/plot.png", "-o", dl)
	got, err := os.ReadFile(filepath.Join(dl, "results", "plot.png"))
	if os.IsNotExist(err) {
		got, err = os.ReadFile(filepath.Join(dl, "plot.png"))
	}
	require.NoError(t, err)
	assert.Equal(t, expectedOutputs(t, alice, "2000"), got, "downloaded plot differs from what the programs produce")

	out = alice.MustClient(t, dir, "du", "-w", "root6-fit.1")
	assert.Contains(t, out, "results/plot.png")
	out = alice.MustClient(t, dir, "du", "-w", "root6-fit.1", "-s")
	assert.NotEmpty(t, out)
	out = alice.MustClient(t, dir, "list")
	assert.Contains(t, out, "root6-fit")
	assert.Contains(t, out, "finished")

	// Every file of the workspace and the workspace itself are alice's,
	// made by her own processes; the workspace is private.
	assert.Greater(t, assertOwnedBy(t, d.WorkspaceOf(alice, wf.ID), alice), 5)
}

// assertOwnedBy checks that the workspace is private (0700) and that
// every file in it belongs to the user; it returns how many it saw.
func assertOwnedBy(t *testing.T, ws string, u *User) int {
	t.Helper()
	st, err := os.Stat(ws)
	require.NoError(t, err)
	assert.Equal(t, fs.FileMode(0o700), st.Mode().Perm(), "workspace mode")
	n := 0
	require.NoError(t, filepath.WalkDir(ws, func(p string, e fs.DirEntry, err error) error {
		require.NoError(t, err)
		info, err := e.Info()
		require.NoError(t, err)
		sys := info.Sys().(*syscall.Stat_t)
		assert.Equal(t, uint32(u.UID), sys.Uid, "owner of %s", p)
		assert.Equal(t, uint32(u.GID), sys.Gid, "group of %s", p)
		n++
		return nil
	}))
	return n
}

func TestParametersFromSpecAndOverrides(t *testing.T) {
	_, alice, _ := shared(t)
	dir := alice.WorkDir(t, "root6-fit")
	alice.MustClient(t, dir, "create", "-w", "params")
	alice.MustClient(t, dir, "upload", "-w", "params.1")
	alice.MustClient(t, dir, "start", "-w", "params.1", "-p", "events=300")
	alice.WaitStatus(t, "params.1", 3*time.Minute, "finished")
	assert.Contains(t, alice.Logs(t, "params.1"), "300")

	var p struct {
		Parameters map[string]any `json:"parameters"`
		Type       string         `json:"type"`
	}
	require.Equal(t, http.StatusOK, alice.Daemon().JSON(t, "GET", "/api/workflows/params.1/parameters", alice.Token, nil, &p))
	assert.Equal(t, "serial", p.Type)
	assert.Contains(t, p.Parameters, "events")

	var spec struct {
		Specification map[string]any `json:"specification"`
		Parameters    map[string]any `json:"parameters"`
	}
	require.Equal(t, http.StatusOK, alice.Daemon().JSON(t, "GET", "/api/workflows/params.1/specification", alice.Token, nil, &spec))
	assert.Contains(t, spec.Specification, "workflow")

	// restart reruns as params.1.1 with the same workspace.
	out := alice.MustClient(t, dir, "restart", "-w", "params.1", "-p", "events=400")
	assert.Contains(t, out, "params.1.1")
	alice.WaitStatus(t, "params.1.1", 3*time.Minute, "finished")
	assert.Contains(t, alice.Logs(t, "params.1.1"), "400")

	// A refused restart leaves no run behind.
	st := alice.Daemon().JSON(t, "POST", "/api/workflows/params.1/start", alice.Token,
		map[string]any{"restart": true, "input_parameters": map[string]any{"undeclared": "1"}}, nil)
	assert.Equal(t, http.StatusBadRequest, st)
	_, st = alice.Status(t, "params.1.2")
	assert.Equal(t, http.StatusNotFound, st, "a refused restart must not create params.1.2")

	// TARGET stops after gendata: no plot.
	alice.MustClient(t, dir, "create", "-w", "target")
	alice.MustClient(t, dir, "upload", "-w", "target.1")
	alice.MustClient(t, dir, "start", "-w", "target.1", "-o", "TARGET=gendata")
	alice.WaitStatus(t, "target.1", 3*time.Minute, "finished")
	out = alice.MustClient(t, dir, "ls", "-w", "target.1")
	assert.Contains(t, out, "results/data.txt")
	assert.NotContains(t, out, "plot.png")

	out = alice.MustClient(t, dir, "diff", "params.1", "target.1")
	assert.NotEmpty(t, out)
}

func TestFileCommands(t *testing.T) {
	_, alice, _ := shared(t)
	dir := alice.WorkDir(t, "root6-fit")
	alice.MustClient(t, dir, "create", "-w", "files")
	alice.MustClient(t, dir, "upload", "-w", "files.1")
	out := alice.MustClient(t, dir, "ls", "-w", "files.1")
	assert.Contains(t, out, "code/gendata.sh")

	alice.MustClient(t, dir, "mv", "-w", "files.1", "code/gendata.sh", "code/gen.sh")
	out = alice.MustClient(t, dir, "ls", "-w", "files.1")
	assert.Contains(t, out, "code/gen.sh")
	assert.NotContains(t, out, "code/gendata.sh")

	out = alice.MustClient(t, dir, "rm", "-w", "files.1", "code/gen.sh")
	assert.Contains(t, out, "gen.sh")
	out = alice.MustClient(t, dir, "ls", "-w", "files.1")
	assert.NotContains(t, out, "code/gen.sh")

	out, code := alice.Client(t, dir, "rm", "-w", "files.1", "nothing-here")
	assert.NotZero(t, code, out)

	alice.MustClient(t, dir, "prune", "-w", "files.1")

	out = alice.MustClient(t, dir, "quota-show", "--resource", "disk", "--report", "usage")
	assert.NotEmpty(t, out)
	alice.MustClient(t, dir, "retention-rules-list", "-w", "files.1")
	alice.MustClient(t, dir, "info")

	// Not supported yet: a clear error, never a silent success.
	out, code = alice.Client(t, dir, "open", "-w", "files.1")
	assert.NotZero(t, code, out)
	assert.Contains(t, strings.ToLower(out), "not")

	alice.MustClient(t, dir, "delete", "-w", "files.1")
	var list struct {
		Items []Workflow `json:"items"`
	}
	require.Equal(t, http.StatusOK, alice.Daemon().JSON(t, "GET", "/api/workflows?type=batch&workflow_id_or_name=files.1&status=deleted", alice.Token, nil, &list))
	require.Len(t, list.Items, 1)
	assert.Equal(t, "deleted", list.Items[0].Status)
}

func TestStopRunningWorkflow(t *testing.T) {
	_, alice, _ := shared(t)
	dir := alice.WorkDir(t, "sleepy")
	alice.MustClient(t, dir, "run", "-w", "sleepy", "-p", "seconds=300")
	alice.WaitStatus(t, "sleepy.1", time.Minute, "running")

	// Deleting a running workflow is refused with a status the contract
	// lists, and the workflow keeps running.
	st := alice.Daemon().JSON(t, "PUT", "/api/workflows/sleepy.1/status?status=deleted", alice.Token, map[string]any{"workspace": true}, nil)
	assert.Equal(t, http.StatusConflict, st)
	w, _ := alice.Status(t, "sleepy.1")
	assert.Equal(t, "running", w.Status)

	alice.MustClient(t, dir, "stop", "-w", "sleepy.1", "--force")
	w = alice.WaitStatus(t, "sleepy.1", time.Minute, "stopped")
	var pids []string
	out, _ := alice.Run(t, "/", nil, "pgrep", "-u", alice.Name, "-f", "sleep 300")
	pids = strings.Fields(out)
	assert.Empty(t, pids, "the step's processes must end on stop")
	alice.MustClient(t, dir, "delete", "-w", "sleepy.1")
	_ = w
}

// TestFailingStepFailsWorkflow: a command that does not exist fails its
// step and the workflow, with the shell's message in the logs.
func TestFailingStepFailsWorkflow(t *testing.T) {
	_, alice, _ := shared(t)
	dir := alice.WorkDir(t, "failing")
	alice.MustClient(t, dir, "run", "-w", "failing")
	alice.WaitStatus(t, "failing.1", 2*time.Minute, "failed")
	logs := alice.Logs(t, "failing.1")
	assert.Contains(t, logs, "no-such-command-xyz")
	assert.Contains(t, logs, "not found")
	assert.NotContains(t, logs, "never-reached", "commands after the failing one must not run")
	var parsed map[string]any
	require.NoError(t, json.Unmarshal([]byte(logs), &parsed), "logs must be a JSON-encoded string")
	out, _ := alice.Client(t, dir, "status", "-w", "failing.1")
	assert.Contains(t, out, "failed")
}
