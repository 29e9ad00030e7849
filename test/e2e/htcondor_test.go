//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/test/harness"
)

// condorDaemon starts a private pool of the HTCondor stand-in and a daemon
// that offers it (and the local backend).
func condorDaemon(t *testing.T, extraEnv ...string) (*Daemon, *harness.HTCondor, *User, *User) {
	t.Helper()
	pool := harness.StartHTCondor(t, env)
	e := append([]string{"REANA_SITE_BACKENDS=local,htcondor"}, pool.DaemonEnv()...)
	d := StartDaemon(t, append(e, extraEnv...)...)
	return d, pool, d.AddUser(t, "alice"), d.AddUser(t, "bob")
}

// condorJob is one job as condor_q or condor_history shows it.
type condorJob struct {
	ID, Owner, Step, ReanaJob string
	Status                    int // JobStatus: 1 idle, 2 running, 3 removed, 4 completed, 5 held
}

// condorJobs lists a workflow's jobs in the queue and in the history, as
// root would see them with condor_q -allusers.
func condorJobs(t *testing.T, pool *harness.HTCondor, workflowID string) []condorJob {
	t.Helper()
	var jobs []condorJob
	for _, args := range [][]string{{"condor_q", "-allusers"}, {"condor_history"}} {
		argv := append(args[1:], "-constraint", `ReanaWorkflow == "`+workflowID+`"`,
			"-af", "ClusterId", "ProcId", "Owner", "JobStatus", "ReanaStep", "ReanaJob")
		out := pool.MustRun(t, args[0], argv...)
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			f := strings.Fields(line)
			if len(f) != 6 {
				continue
			}
			st, _ := strconv.Atoi(f[3])
			jobs = append(jobs, condorJob{ID: f[0] + "." + f[1], Owner: f[2], Status: st, Step: f[4], ReanaJob: f[5]})
		}
	}
	return jobs
}

func waitCondorJob(t *testing.T, pool *harness.HTCondor, workflowID string, status int) condorJob {
	t.Helper()
	var found condorJob
	require.Eventually(t, func() bool {
		for _, j := range condorJobs(t, pool, workflowID) {
			if j.Status == status {
				found = j
				return true
			}
		}
		return false
	}, 2*time.Minute, 100*time.Millisecond, "no HTCondor job in status %d for workflow %s", status, workflowID)
	return found
}

// sleepingJob waits until the step's sleep command runs (each command is
// its own job, and the quick echo before it may be running first) and
// returns its HTCondor job, then the only one running.
func sleepingJob(t *testing.T, pool *harness.HTCondor, u *User, workflowID, sleep string) condorJob {
	t.Helper()
	require.Eventually(t, func() bool { return len(stepProcesses(t, u.UID, sleep)) > 0 }, time.Minute, 50*time.Millisecond)
	return waitCondorJob(t, pool, workflowID, 2)
}

// waitRemoved waits for the job to be removed (JobStatus 3).
func waitRemoved(t *testing.T, pool *harness.HTCondor, workflowID, jobID, why string) {
	t.Helper()
	require.Eventually(t, func() bool {
		for _, j := range condorJobs(t, pool, workflowID) {
			if j.ID == jobID {
				return j.Status == 3
			}
		}
		return false
	}, 30*time.Second, 200*time.Millisecond, why)
}

// assertOneCondorJobPerCommand: no command was submitted twice.
func assertOneCondorJobPerCommand(t *testing.T, pool *harness.HTCondor, workflowID string, commands int) {
	t.Helper()
	jobs := condorJobs(t, pool, workflowID)
	seen := map[string]bool{}
	for _, j := range jobs {
		assert.False(t, seen[j.ReanaJob], "submitted twice: %s", j.ReanaJob)
		seen[j.ReanaJob] = true
	}
	assert.Len(t, jobs, commands, "one HTCondor job per command: %v", jobs)
}

func TestHTCondorRoot6FitAsTheUser(t *testing.T) {
	d, pool, alice, _ := condorDaemon(t)
	dir := alice.WorkDir(t, "root6-fit")
	out := alice.MustClient(t, dir, "run", "-w", "condor-fit", "-f", "reana-htcondor.yaml", "-p", "events=2000")
	assert.Contains(t, out, "condor-fit.1")
	wf := alice.WaitStatus(t, "condor-fit.1", 3*time.Minute, "finished")

	jobs := condorJobs(t, pool, wf.ID)
	require.Len(t, jobs, 2, "one HTCondor job per command")
	for _, j := range jobs {
		assert.Equal(t, "alice", j.Owner, "the job is alice's in HTCondor's eyes")
		assert.Equal(t, 4, j.Status, "completed")
	}
	assert.ElementsMatch(t, []string{"gendata", "fitdata"}, []string{jobs[0].Step, jobs[1].Step})

	// What the user sees of the job in the history, by its custom attributes.
	hist := pool.MustRun(t, "condor_history", "-constraint", `ReanaWorkflow == "`+wf.ID+`" && ReanaStep == "gendata"`,
		"-af", "Owner", "ReanaRun", "JobFlavour", "MaxRuntime")
	assert.Equal(t, "alice condor-fit.1 espresso 1200", strings.TrimSpace(hist))

	logs := alice.MustClient(t, dir, "logs", "-w", "condor-fit.1")
	assert.Contains(t, logs, "fit result")

	assertDownloadedPlot(t, alice, dir, "condor-fit.1", "2000")
	assertOwnedBy(t, d.WorkspaceOf(alice, wf.ID), alice)
}

func TestHTCondorFailingStepShowsReturnValue(t *testing.T) {
	_, _, alice, _ := condorDaemon(t)
	dir := alice.WorkDir(t, "failing")
	alice.MustClient(t, dir, "run", "-w", "condorfail", "-f", "reana-htcondor.yaml")
	alice.WaitStatus(t, "condorfail.1", 3*time.Minute, "failed")
	logs := alice.Logs(t, "condorfail.1")
	assert.Contains(t, logs, "no-such-command-xyz")
	assert.Contains(t, logs, "status 127")
	assert.NotContains(t, logs, "never-reached")
}

// jobScriptPID finds the running job script of alice's step, the process
// HTCondor started as the job's executable.
func jobScriptPID(t *testing.T, uid int, match string) int {
	t.Helper()
	var pid int
	require.Eventually(t, func() bool {
		for _, p := range stepProcesses(t, uid, match) {
			pid = p
			return true
		}
		return false
	}, time.Minute, 50*time.Millisecond, "no running process of uid %d matching %q", uid, match)
	return pid
}

func TestHTCondorJobKilledBySignal(t *testing.T) {
	_, pool, alice, _ := condorDaemon(t)
	dir := alice.WorkDir(t, "sleepy")
	alice.MustClient(t, dir, "run", "-w", "condorkill", "-f", "reana-htcondor.yaml", "-p", "seconds=300")
	wf := alice.WaitStatus(t, "condorkill.1", time.Minute, "running")
	job := sleepingJob(t, pool, alice, wf.ID, "sleep 300")
	// The executable itself dies (as under an OOM killer): no exit status
	// is recorded, and HTCondor logs an abnormal termination.
	// This workflow's job script: other tests on the machine may run
	// job scripts as alice too.
	pid := jobScriptPID(t, alice.UID, "/"+wf.ID+"/")
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	alice.WaitStatus(t, "condorkill.1", time.Minute, "failed")
	logs := alice.Logs(t, "condorkill.1")
	assert.Contains(t, logs, "HTCondor job "+job.ID+" was killed by signal 9")
}

func TestHTCondorHeldThenReleasedFinishes(t *testing.T) {
	d, pool, alice, _ := condorDaemon(t)
	dir := alice.WorkDir(t, "sleepy")
	alice.MustClient(t, dir, "run", "-w", "condorhold", "-f", "reana-htcondor.yaml", "-p", "seconds=8")
	wf := alice.WaitStatus(t, "condorhold.1", time.Minute, "running")
	job := sleepingJob(t, pool, alice, wf.ID, "sleep 8")
	pool.MustRun(t, "condor_hold", "-reason", "scratch disk full on wn01", job.ID)

	// The user sees the hold and HTCondor's reason, and never the
	// "waits to run again" of an eviction: a real pool logs 004 before the
	// hold. Root's hold is signed "(by user condor)" there.
	require.Eventually(t, func() bool {
		out, _ := alice.Client(t, dir, "status", "-w", "condorhold.1", "-v")
		assert.NotContains(t, out, "waits to run again")
		return strings.Contains(out, "scratch disk full on wn01")
	}, 30*time.Second, 300*time.Millisecond, "status -v must show the hold reason")
	out, _ := alice.Client(t, dir, "status", "-w", "condorhold.1", "-v")
	assert.NotContains(t, out, "by user condor")
	w, _ := alice.Status(t, "condorhold.1")
	assert.Equal(t, "running", w.Status, "a held job is waiting, not failed")
	// The run's page shows the hold on the step's row (written by the
	// same poll as the status message, just after it).
	web := webSignIn(t, d, alice)
	var page string
	assert.Eventually(t, func() bool {
		_, page = webGet(t, web, d.URL()+"/runs/"+wf.ID)
		return strings.Contains(page, `<td class="job-sched">held: scratch disk full on wn01`)
	}, 10*time.Second, 300*time.Millisecond, "the step's row shows the hold")

	pool.MustRun(t, "condor_release", job.ID)
	alice.WaitStatus(t, "condorhold.1", 2*time.Minute, "finished")
	out = alice.MustClient(t, dir, "status", "-w", "condorhold.1", "-v")
	assert.NotContains(t, out, "scratch disk full")
	_, page = webGet(t, web, d.URL()+"/runs/"+wf.ID)
	assert.NotContains(t, page, `<td class="job-sched">held:`, "the step ended; its row says how")
	b, err := os.ReadFile(filepath.Join(d.WorkspaceOf(alice, wf.ID), "awake.txt"))
	require.NoError(t, err)
	assert.Equal(t, "awake\n", string(b))
}

func TestHTCondorHeldPastTheLimitFails(t *testing.T) {
	_, pool, alice, _ := condorDaemon(t, "REANA_SITE_HTCONDOR_HOLD_TIMEOUT=3s")
	dir := alice.WorkDir(t, "sleepy")
	alice.MustClient(t, dir, "run", "-w", "condorstuck", "-f", "reana-htcondor.yaml", "-p", "seconds=300")
	wf := alice.WaitStatus(t, "condorstuck.1", time.Minute, "running")
	job := sleepingJob(t, pool, alice, wf.ID, "sleep 300")
	pool.MustRun(t, "condor_hold", "-reason", "input file transfer failed", job.ID)
	alice.WaitStatus(t, "condorstuck.1", time.Minute, "failed")
	logs := alice.Logs(t, "condorstuck.1")
	assert.Contains(t, logs, "held for more than 3s")
	assert.Contains(t, logs, "input file transfer failed")
	waitRemoved(t, pool, wf.ID, job.ID, "the held job must be removed")
}

func TestHTCondorStopRemovesAndBobCannot(t *testing.T) {
	_, pool, alice, bob := condorDaemon(t)
	dir := alice.WorkDir(t, "sleepy")
	alice.MustClient(t, dir, "run", "-w", "condorstop", "-f", "reana-htcondor.yaml", "-p", "seconds=300")
	wf := alice.WaitStatus(t, "condorstop.1", time.Minute, "running")
	job := sleepingJob(t, pool, alice, wf.ID, "sleep 300")

	// condor_q alice lists it under her name.
	out := pool.MustRun(t, "condor_q", "alice", "-af", "ClusterId", "ProcId", "Owner", "ReanaStep")
	assert.Contains(t, out, strings.Replace(job.ID, ".", " ", 1)+" alice nap")

	// Bob can neither remove it in HTCondor nor stop it through the API.
	out, code := bob.Run(t, "/", []string{"CONDOR_CONFIG=" + pool.Config}, filepath.Join(pool.Bin, "condor_rm"), job.ID)
	assert.NotZero(t, code, "bob's condor_rm of alice's job: %s", out)
	assert.Contains(t, out, "Permission denied")
	out, code = bob.Client(t, bob.WorkDir(t, ""), "stop", "-w", wf.ID, "--force")
	assert.NotZero(t, code, out)

	alice.MustClient(t, dir, "stop", "-w", "condorstop.1", "--force")
	alice.WaitStatus(t, "condorstop.1", time.Minute, "stopped")
	waitRemoved(t, pool, wf.ID, job.ID, "stop must remove the HTCondor job")
	require.Eventually(t, func() bool { return len(stepProcesses(t, alice.UID, "sleep 300")) == 0 }, 30*time.Second, 100*time.Millisecond)
}

// TestHTCondorKillResumesFromStoredOffsets: kill -9 the daemon while a
// step runs; the new daemon reads each job's event log from the offset
// stored before the crash, submits nothing twice, and the workflow ends.
func TestHTCondorKillResumesFromStoredOffsets(t *testing.T) {
	d, pool, alice, _ := condorDaemon(t)
	dir := alice.WorkDir(t, "crash")
	alice.MustClient(t, dir, "run", "-w", "condorcrash", "-f", "reana-htcondor.yaml", "-p", "seconds=6")
	wf := alice.WaitStatus(t, "condorcrash.1", time.Minute, "running")
	require.Eventually(t, func() bool { return len(stepProcesses(t, alice.UID, "sleep 6")) > 0 }, time.Minute, 50*time.Millisecond)
	d.Kill()
	time.Sleep(time.Second)
	d.Start()
	alice.WaitStatus(t, "condorcrash.1", 3*time.Minute, "finished")
	b, err := os.ReadFile(filepath.Join(d.WorkspaceOf(alice, wf.ID), "runs.log"))
	require.NoError(t, err)
	assert.Equal(t, "first\nslow-start\nslow-end\nlast\n", string(b))
	assertOneCondorJobPerCommand(t, pool, wf.ID, 5)
}

// TestHTCondorScheddOutage: the schedd is unreachable when the next step
// is due; nothing fails, the user is told, and the step is submitted once
// the schedd is back. A running job is followed through its log meanwhile.
//
// On the real pool the job ends while the schedd is off, so its terminate
// event is held back until the schedd returns; the daemon asks the schedd
// after the (shortened) log grace, is told it is unreachable, says so, and
// takes the held-back events when it is back.
func TestHTCondorScheddOutage(t *testing.T) {
	d, pool, alice, _ := condorDaemon(t, "REANA_SITE_HTCONDOR_LOG_GRACE=3s")
	dir := alice.WorkDir(t, "crash")
	// "sleep 5", not "sleep 3": the users' helpers wait in "sleep 3600.x".
	alice.MustClient(t, dir, "run", "-w", "condorout", "-f", "reana-htcondor.yaml", "-p", "seconds=5")
	wf := alice.WaitStatus(t, "condorout.1", time.Minute, "running")
	sleepingJob(t, pool, alice, wf.ID, "sleep 5")
	start := time.Now()
	pool.SetDown(t, true)
	require.Eventually(t, func() bool {
		out, _ := alice.Client(t, dir, "status", "-w", "condorout.1", "-v")
		return strings.Contains(out, "unreachable")
	}, time.Minute, 500*time.Millisecond, "status must say that HTCondor is unreachable")
	t.Logf("told after %s", time.Since(start).Round(time.Second))
	w, _ := alice.Status(t, "condorout.1")
	assert.Equal(t, "running", w.Status)
	pool.SetDown(t, false)
	alice.WaitStatus(t, "condorout.1", 3*time.Minute, "finished")
	// The held-back terminate event settled the step, not a guess.
	out := alice.MustClient(t, dir, "status", "-w", "condorout.1", "-v")
	assert.NotContains(t, out, "unreachable")
	b, err := os.ReadFile(filepath.Join(d.WorkspaceOf(alice, wf.ID), "runs.log"))
	require.NoError(t, err)
	assert.Equal(t, "first\nslow-start\nslow-end\nlast\n", string(b))
}

// TestMixedLocalHTCondorSlurm: one workflow whose steps run on this host,
// on HTCondor and on Slurm, each as alice.
func TestMixedLocalHTCondorSlurm(t *testing.T) {
	harness.EnsureSlurm(t, env.Repo)
	pool := harness.StartHTCondor(t, env)
	d := StartDaemon(t, append([]string{"REANA_SITE_BACKENDS=local,slurm,htcondor"}, pool.DaemonEnv()...)...)
	alice := d.AddUser(t, "alice")
	dir := alice.WorkDir(t, "root6-fit")
	alice.MustClient(t, dir, "run", "-w", "three", "-f", "reana-three.yaml", "-p", "events=500")
	wf := alice.WaitStatus(t, "three.1", 3*time.Minute, "finished")
	jobs := condorJobs(t, pool, wf.ID)
	require.Len(t, jobs, 1, "only fitdata runs on HTCondor")
	assert.Equal(t, "fitdata", jobs[0].Step)
	assert.Equal(t, "alice", jobs[0].Owner)
	require.Len(t, slurmJobs(t, wf.ID), 1, "only summary runs on Slurm")
	b, err := os.ReadFile(filepath.Join(d.WorkspaceOf(alice, wf.ID), "results", "summary.txt"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "plot.png")
	assertOwnedBy(t, d.WorkspaceOf(alice, wf.ID), alice)
}

// shadowPID finds the condor_shadow of one job on the real pool (its
// command line carries the job id).
func shadowPID(t *testing.T, jobID string) int {
	t.Helper()
	var pid int
	require.Eventually(t, func() bool {
		ents, err := os.ReadDir("/proc")
		require.NoError(t, err)
		for _, e := range ents {
			p, err := strconv.Atoi(e.Name())
			if err != nil {
				continue
			}
			comm, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "comm"))
			cmd, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			if strings.TrimSpace(string(comm)) == "condor_shadow" && strings.Contains(string(cmd), jobID) {
				pid = p
				return true
			}
		}
		return false
	}, 30*time.Second, 100*time.Millisecond, "no condor_shadow for job %s", jobID)
	return pid
}

// TestHTCondorKilledShadowRunsTheJobAgain: on a real pool a killed
// condor_shadow makes the schedd run the job again from the start (two
// 001 events). That is HTCondor's own rerun, not a failure, and the step's
// log says so. The stand-in has no shadow to lose this way.
func TestHTCondorKilledShadowRunsTheJobAgain(t *testing.T) {
	d, pool, alice, _ := condorDaemon(t)
	if !pool.Real {
		t.Skip("needs the real HTCondor pool (a condor_shadow to kill)")
	}
	dir := alice.WorkDir(t, "sleepy")
	alice.MustClient(t, dir, "run", "-w", "condorshadow", "-f", "reana-htcondor.yaml", "-p", "seconds=6")
	wf := alice.WaitStatus(t, "condorshadow.1", time.Minute, "running")
	job := sleepingJob(t, pool, alice, wf.ID, "sleep 6")
	require.NoError(t, syscall.Kill(shadowPID(t, job.ID), syscall.SIGKILL))
	alice.WaitStatus(t, "condorshadow.1", 3*time.Minute, "finished")
	logs := alice.Logs(t, "condorshadow.1")
	assert.Contains(t, logs, "HTCondor ran job "+job.ID+" 2 times: it started the command again from the beginning on its own")
	b, err := os.ReadFile(filepath.Join(d.WorkspaceOf(alice, wf.ID), "awake.txt"))
	require.NoError(t, err)
	assert.Equal(t, "awake\n", string(b))
}
