//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/test/harness"
)

// slurmDaemon starts the real single-node Slurm (test/slurm/slurm.sh) and
// a daemon that offers it.
func slurmDaemon(t *testing.T) (*Daemon, *User, *User) {
	t.Helper()
	harness.EnsureSlurm(t, env.Repo)
	d := StartDaemon(t, "REANA_SITE_BACKENDS=local,slurm")
	return d, d.AddUser(t, "alice"), d.AddUser(t, "bob")
}

// slurmJob is one job as the controller reports it.
type slurmJob struct {
	ID      string
	Name    string
	User    string
	State   string
	Comment string
}

// slurmJobs asks the controller about every job (as root, for the test's
// eyes), keeping those whose comment names the workflow.
func slurmJobs(t *testing.T, workflowID string) []slurmJob {
	t.Helper()
	out, err := execCombined("squeue", "--json")
	require.NoError(t, err, out)
	var doc struct {
		Jobs []struct {
			JobID    int             `json:"job_id"`
			Name     string          `json:"name"`
			UserName string          `json:"user_name"`
			State    json.RawMessage `json:"job_state"`
			Comment  string          `json:"comment"`
		} `json:"jobs"`
	}
	require.NoError(t, json.Unmarshal([]byte(out), &doc))
	var jobs []slurmJob
	for _, j := range doc.Jobs {
		if !strings.Contains(j.Comment, "workflow="+workflowID) {
			continue
		}
		var st string
		if json.Unmarshal(j.State, &st) != nil {
			var l []string
			_ = json.Unmarshal(j.State, &l)
			st = strings.Join(l, ",")
		}
		jobs = append(jobs, slurmJob{ID: fmt.Sprint(j.JobID), Name: j.Name, User: j.UserName, State: st, Comment: j.Comment})
	}
	return jobs
}

// assertOncePerCommand: the workflow's commands each became exactly one
// Slurm job (the comment names the engine's job, which is per command).
func assertOncePerCommand(t *testing.T, workflowID string, commands int) {
	t.Helper()
	jobs := slurmJobs(t, workflowID)
	seen := map[string]bool{}
	for _, j := range jobs {
		assert.False(t, seen[j.Comment], "submitted twice: %s", j.Comment)
		seen[j.Comment] = true
	}
	assert.Len(t, jobs, commands, "one Slurm job per command: %v", jobs)
}

func waitSlurmJob(t *testing.T, workflowID, state string) slurmJob {
	t.Helper()
	var found slurmJob
	require.Eventually(t, func() bool {
		for _, j := range slurmJobs(t, workflowID) {
			if j.State == state {
				found = j
				return true
			}
		}
		return false
	}, 2*time.Minute, 200*time.Millisecond, "no %s Slurm job for workflow %s", state, workflowID)
	return found
}

func TestSlurmRoot6FitAsTheUser(t *testing.T) {
	d, alice, _ := slurmDaemon(t)
	dir := alice.WorkDir(t, "root6-fit")
	out := alice.MustClient(t, dir, "run", "-w", "slurm-fit", "-f", "reana-slurm.yaml", "-p", "events=2000")
	assert.Contains(t, out, "slurm-fit.1")
	wf := alice.WaitStatus(t, "slurm-fit.1", 3*time.Minute, "finished")

	jobs := slurmJobs(t, wf.ID)
	require.Len(t, jobs, 2, "one Slurm job per command")
	for _, j := range jobs {
		assert.Equal(t, "alice", j.User, "the job is alice's in Slurm's eyes")
		assert.True(t, strings.HasPrefix(j.Name, "reana.slurm-fit.1."), j.Name)
		assert.Equal(t, "COMPLETED", j.State)
	}
	logs := alice.MustClient(t, dir, "logs", "-w", "slurm-fit.1")
	assert.Contains(t, logs, "fit result")
	assert.Contains(t, logs, "Slurm")

	assertDownloadedPlot(t, alice, dir, "slurm-fit.1", "2000")
	assertOwnedBy(t, d.WorkspaceOf(alice, wf.ID), alice)
}

func TestSlurmMixedWithLocalSteps(t *testing.T) {
	d, alice, _ := slurmDaemon(t)
	dir := alice.WorkDir(t, "root6-fit")
	alice.MustClient(t, dir, "run", "-w", "mixed", "-f", "reana-mixed.yaml", "-p", "events=500")
	wf := alice.WaitStatus(t, "mixed.1", 3*time.Minute, "finished")
	jobs := slurmJobs(t, wf.ID)
	require.Len(t, jobs, 1, "only fitdata runs on Slurm")
	assert.Contains(t, jobs[0].Name, "fitdata")
	assertOwnedBy(t, d.WorkspaceOf(alice, wf.ID), alice)
}

func TestSlurmVisibleStoppableAndBobCannotTouchIt(t *testing.T) {
	_, alice, bob := slurmDaemon(t)
	dir := alice.WorkDir(t, "sleepy")
	alice.MustClient(t, dir, "run", "-w", "slurmnap", "-f", "reana-slurm.yaml", "-p", "seconds=300")
	wf := alice.WaitStatus(t, "slurmnap.1", time.Minute, "running")
	// The step's first command is a quick echo; wait for the sleep, whose
	// job is then the one running (commands run one after the other).
	require.Eventually(t, func() bool { return len(stepProcesses(t, alice.UID, "sleep 300")) > 0 }, 2*time.Minute, 100*time.Millisecond)
	job := waitSlurmJob(t, wf.ID, "RUNNING")
	assert.Equal(t, "alice", job.User)
	assert.Contains(t, job.Comment, wf.ID)

	// squeue -u alice lists it, under her name.
	out, err := execCombined("squeue", "-h", "-u", "alice", "-o", "%i %u %j")
	require.NoError(t, err, out)
	assert.Contains(t, out, job.ID+" alice reana.slurmnap.1.nap")

	// Bob can neither cancel it in Slurm nor stop it through the API.
	out, code := bob.Run(t, "/", nil, "scancel", job.ID)
	assert.NotZero(t, code, "bob's scancel of alice's job: %s", out)
	out, code = bob.Client(t, bob.WorkDir(t, ""), "stop", "-w", wf.ID, "--force")
	assert.NotZero(t, code, out)
	assert.Equal(t, "RUNNING", stateOf(t, wf.ID, job.ID))

	alice.MustClient(t, dir, "stop", "-w", "slurmnap.1", "--force")
	alice.WaitStatus(t, "slurmnap.1", time.Minute, "stopped")
	require.Eventually(t, func() bool {
		s := stateOf(t, wf.ID, job.ID)
		return s == "CANCELLED" || s == ""
	}, time.Minute, 200*time.Millisecond, "stop must cancel the Slurm job")
}

func stateOf(t *testing.T, workflowID, jobID string) string {
	for _, j := range slurmJobs(t, workflowID) {
		if j.ID == jobID {
			return j.State
		}
	}
	return ""
}

func TestSlurmFailingStepShowsExitCode(t *testing.T) {
	_, alice, _ := slurmDaemon(t)
	dir := alice.WorkDir(t, "failing")
	alice.MustClient(t, dir, "run", "-w", "slurmfail", "-f", "reana-slurm.yaml")
	alice.WaitStatus(t, "slurmfail.1", 3*time.Minute, "failed")
	logs := alice.Logs(t, "slurmfail.1")
	assert.Contains(t, logs, "no-such-command-xyz")
	assert.Contains(t, logs, "status 127")
	assert.NotContains(t, logs, "never-reached")
}

func TestSlurmTimeLimitIsReported(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for Slurm's one-minute time limit")
	}
	_, alice, _ := slurmDaemon(t)
	dir := alice.WorkDir(t, "sleepy")
	alice.MustClient(t, dir, "run", "-w", "slurmlate", "-f", "reana-slurm-short.yaml", "-p", "seconds=600")
	alice.WaitStatus(t, "slurmlate.1", 4*time.Minute, "failed")
	logs := alice.Logs(t, "slurmlate.1")
	assert.Contains(t, logs, "TIMEOUT")
	assert.Contains(t, logs, "slurm_time")
}

// TestSlurmKillWhileRunningAndPending: kill -9 the daemon while one job
// runs and while one waits in the queue; after the restart both are found
// again, none is submitted twice, and the workflows finish.
func TestSlurmKillWhileRunningAndPending(t *testing.T) {
	d, alice, bob := slurmDaemon(t)

	// Running: the crash workflow's sleep.
	crashDir := alice.WorkDir(t, "crash")
	alice.MustClient(t, crashDir, "run", "-w", "slurmcrash", "-f", "reana-slurm.yaml", "-p", "seconds=10")
	crash := alice.WaitStatus(t, "slurmcrash.1", time.Minute, "running")
	require.Eventually(t, func() bool { return len(stepProcesses(t, alice.UID, "sleep 10")) > 0 }, time.Minute, 50*time.Millisecond)

	// Pending: bob holds the whole node, so alice's next job must wait.
	out, code := bob.Run(t, "/", nil, "sbatch", "--parsable", "--exclusive", "--output=/dev/null", "--wrap", "sleep 25")
	require.Zero(t, code, out)
	blocker := strings.TrimSpace(out)
	t.Cleanup(func() { _, _ = execCombined("scancel", blocker) })
	napDir := alice.WorkDir(t, "sleepy")
	alice.MustClient(t, napDir, "run", "-w", "slurmwait", "-f", "reana-slurm.yaml", "-p", "seconds=1")
	wait := alice.WaitStatus(t, "slurmwait.1", time.Minute, "running")
	waitSlurmJob(t, wait.ID, "PENDING")

	d.Kill()
	time.Sleep(time.Second)
	d.Start()

	alice.WaitStatus(t, "slurmcrash.1", 3*time.Minute, "finished")
	alice.WaitStatus(t, "slurmwait.1", 3*time.Minute, "finished")
	b, err := os.ReadFile(filepath.Join(d.WorkspaceOf(alice, crash.ID), "runs.log"))
	require.NoError(t, err)
	assert.Equal(t, "first\nslow-start\nslow-end\nlast\n", string(b))
	assertOncePerCommand(t, crash.ID, 5)
	assertOncePerCommand(t, wait.ID, 3)
}

// TestSlurmControllerOutage: slurmctld is down for 30 s while one
// workflow's Slurm job runs and another's next step waits to be submitted;
// nothing fails, the user is told, and both finish once it is back.
func TestSlurmControllerOutage(t *testing.T) {
	d, alice, _ := slurmDaemon(t)
	t.Cleanup(func() { harness.StartController(t, env.Repo) })

	runDir := alice.WorkDir(t, "crash")
	alice.MustClient(t, runDir, "run", "-w", "outage", "-f", "reana-slurm.yaml", "-p", "seconds=20")
	running := alice.WaitStatus(t, "outage.1", time.Minute, "running")
	require.Eventually(t, func() bool { return len(stepProcesses(t, alice.UID, "sleep 20")) > 0 }, time.Minute, 50*time.Millisecond)

	// The mixed workflow's first step is local; its second needs Slurm,
	// which will be down when the first ends.
	fitDir := alice.WorkDir(t, "root6-fit")
	harness.StopController(t, env.Repo)
	alice.MustClient(t, fitDir, "run", "-w", "outage-fit", "-f", "reana-mixed.yaml", "-p", "events=200")

	var msg string
	require.Eventually(t, func() bool {
		var st struct {
			Progress struct {
				CurrentCommand *string `json:"current_command"`
			} `json:"progress"`
		}
		d.JSON(t, "GET", "/api/workflows/outage.1/status", alice.Token, nil, &st)
		if st.Progress.CurrentCommand != nil {
			msg = *st.Progress.CurrentCommand
		}
		return strings.Contains(msg, "unreachable")
	}, 30*time.Second, 500*time.Millisecond, "status must say that Slurm is unreachable")
	out := alice.MustClient(t, runDir, "status", "-w", "outage.1", "-v")
	assert.Contains(t, out, "unreachable")

	time.Sleep(20 * time.Second) // 30 s of outage in all
	for _, name := range []string{"outage.1", "outage-fit.1"} {
		w, _ := alice.Status(t, name)
		assert.NotEqual(t, "failed", w.Status, "%s must not fail during an outage", name)
	}
	harness.StartController(t, env.Repo)

	alice.WaitStatus(t, "outage.1", 3*time.Minute, "finished")
	alice.WaitStatus(t, "outage-fit.1", 3*time.Minute, "finished")
	b, err := os.ReadFile(filepath.Join(d.WorkspaceOf(alice, running.ID), "runs.log"))
	require.NoError(t, err)
	assert.Equal(t, "first\nslow-start\nslow-end\nlast\n", string(b))
}
