package local_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/batch/local"
	"github.com/reana-site/reana-site/test/helpertest"
)

// The backend's helpers are this test binary (see helpertest), so jobs
// run as a real user through the real helper.
func TestMain(m *testing.M) {
	helpertest.MaybeRunHelper()
	os.Exit(m.Run())
}

type fixture struct {
	be   *local.Backend
	acct asuser.Account
	ws   string
	jobs string
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	r, acct, dir := helpertest.Runner(t)
	f := fixture{be: &local.Backend{Runner: r, StopGrace: time.Second}, acct: acct, ws: filepath.Join(dir, "ws"), jobs: filepath.Join(dir, "jobs")}
	require.NoError(t, asuser.CreateWorkspace(context.Background(), r, acct, asuser.WorkspaceArgs{Workspace: f.ws, JobsDir: f.jobs}))
	return f
}

func (f fixture) spec(id, command string) batch.Spec {
	return batch.Spec{
		JobID: id, WorkflowID: "wf", WorkflowName: "test.1", StepName: "step", Command: command,
		Workspace: f.ws, JobDir: filepath.Join(f.jobs, id), User: f.acct,
		Env: map[string]string{"REANA_WORKSPACE": f.ws},
	}
}

// submit starts a job and stops it, if it still runs, after the test.
func (f fixture) submit(t *testing.T, s batch.Spec) batch.Job {
	t.Helper()
	h, err := f.be.Submit(context.Background(), s)
	require.NoError(t, err)
	assert.Equal(t, local.Name, h.Backend)
	assert.NotEmpty(t, h.ID, "the script's pid")
	j := batch.Job{Spec: s, Handle: h}
	t.Cleanup(func() { _ = f.be.Cancel(context.Background(), j) })
	return j
}

// settled waits until the job is no longer running and returns its status.
func (f fixture) settled(t *testing.T, j batch.Job) batch.Status {
	t.Helper()
	var st batch.Status
	require.Eventually(t, func() bool {
		got, err := f.be.Status(context.Background(), []batch.Job{j})
		require.NoError(t, err)
		st = got[j.Spec.JobID]
		return st.State != batch.Running
	}, 20*time.Second, 50*time.Millisecond, "job %s ends", j.Spec.JobID)
	return st
}

func TestRun(t *testing.T) {
	f := newFixture(t)
	code := func(n int) *int { return &n }
	tests := []struct {
		name    string
		command string
		want    batch.Status
		// logs is how the output starts: the job script's shell may go on
		// to report a killed command in its own words.
		logs string
	}{
		{"succeeds, in the workspace", `echo out; echo err >&2; [ "$PWD" = "$REANA_WORKSPACE" ]`,
			batch.Status{State: batch.Succeeded, ExitCode: code(0)}, "out\nerr\n"},
		{"fails with its exit status", "echo failing; exit 3",
			batch.Status{State: batch.Failed, ExitCode: code(3), Reason: "command exited with status 3"}, "failing\n"},
		{"killed by a signal", "echo before; kill -9 $$",
			batch.Status{State: batch.Failed, ExitCode: code(137), Signal: 9, Reason: "command exited with status 137 (killed by signal 9?)"}, "before\n"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			j := f.submit(t, f.spec("run"+strconv.Itoa(i), tt.command))
			assert.Equal(t, tt.want, f.settled(t, j))
			logs, err := f.be.Logs(context.Background(), j)
			require.NoError(t, err)
			assert.True(t, strings.HasPrefix(logs, tt.logs), "output %q starts with %q", logs, tt.logs)
		})
	}
}

func TestSubmitTwice(t *testing.T) {
	f := newFixture(t)
	s := f.spec("twice", "sleep 60")
	j := f.submit(t, s)
	h, err := f.be.Submit(context.Background(), s)
	require.NoError(t, err)
	assert.Equal(t, j.Handle.ID, h.ID, "a resubmission finds the job already started")
}

func TestCancel(t *testing.T) {
	f := newFixture(t)
	j := f.submit(t, f.spec("cancelled", "touch cancel-started; sleep 60"))
	// A TERM that comes before the script set its traps kills the script
	// itself (the job settles with no exit status); the command running
	// means they are set.
	require.Eventually(t, func() bool {
		_, err := os.Stat(filepath.Join(f.ws, "cancel-started"))
		return err == nil
	}, 20*time.Second, 20*time.Millisecond, "the command starts")
	got, err := f.be.Status(context.Background(), []batch.Job{j})
	require.NoError(t, err)
	assert.Equal(t, batch.Status{State: batch.Running}, got["cancelled"])

	require.NoError(t, f.be.Cancel(context.Background(), j))
	st := f.settled(t, j)
	// The script passes the TERM on to its command and records how the
	// command ended, so even a cancelled job leaves its exit status.
	assert.Equal(t, batch.Failed, st.State)
	assert.Contains(t, st.Reason, "killed by signal 15", "the command ended by the cancel's TERM")
}

func TestStatusOfManyJobs(t *testing.T) {
	f := newFixture(t)
	a := f.submit(t, f.spec("many-a", "true"))
	b := f.submit(t, f.spec("many-b", "exit 1"))
	f.settled(t, a)
	f.settled(t, b)
	got, err := f.be.Status(context.Background(), []batch.Job{a, b})
	require.NoError(t, err)
	assert.Equal(t, batch.Succeeded, got["many-a"].State)
	assert.Equal(t, batch.Failed, got["many-b"].State)
}
