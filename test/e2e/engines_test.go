//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/test/harness"
)

func engineEnv(t *testing.T) []string { return harness.EngineEnv(t, env) }

// TestEnginesRoot6Fit runs each engine's variant of root6-fit with the
// real reana-client on the local backend: the engine runs as alice, each
// rule, step or stage is a job of its own with its entry in the logs, the
// progress counts them, and the plot is the serial run's. Then the
// operational options: Snakemake's report, CWL's TARGET.
func TestEnginesRoot6Fit(t *testing.T) {
	d := StartDaemon(t, engineEnv(t)...)
	alice := d.AddUser(t, "alice")
	dir := alice.WorkDir(t, "root6-fit")
	for _, tt := range []struct {
		name, file, plot string
		logs             []string
	}{
		{"r6-snakemake", "reana-snakemake.yaml", "results/plot.png", []string{"snakemake.logging", "steps (100%) done"}},
		{"r6-cwl", "reana-cwl.yaml", "outputs/plot.png", []string{"[workflow ] start", "Final process status is success"}},
		{"r6-yadage", "reana-yadage.yaml", "fitdata/plot.png", []string{"yadage", "workflow completed successfully"}},
	} {
		out := alice.MustClient(t, dir, "run", "-w", tt.name, "-f", tt.file, "-p", "events=2000")
		assert.Contains(t, out, tt.name+".1")
		wf := alice.WaitStatus(t, tt.name+".1", 3*time.Minute, "finished")
		assert.Equal(t, 2, wf.Progress.Total.Total, tt.name)
		assert.Equal(t, 2, wf.Progress.Finished.Total, tt.name)
		logs := alice.MustClient(t, dir, "logs", "-w", tt.name+".1")
		for _, s := range append(tt.logs, "gendata", "fitdata", "2000", "Local") {
			assert.Contains(t, logs, s, tt.name)
		}
		assertDownloadedAs(t, alice, dir, tt.name+".1", tt.plot, "2000")
	}

	alice.MustClient(t, dir, "run", "-w", "r6-report", "-f", "reana-snakemake.yaml", "-p", "events=500", "-o", "report=results/report.html")
	alice.WaitStatus(t, "r6-report.1", 3*time.Minute, "finished")
	assert.Contains(t, alice.MustClient(t, dir, "logs", "-w", "r6-report.1"), "results/report.html")

	alice.MustClient(t, dir, "run", "-w", "r6-cwl-target", "-f", "reana-cwl.yaml", "-p", "events=500", "-o", "TARGET=data")
	wf := alice.WaitStatus(t, "r6-cwl-target.1", 3*time.Minute, "finished")
	assert.Equal(t, 1, wf.Progress.Finished.Total, "TARGET=data runs only gendata")
}

// TestEnginesOnSlurm runs root6-fit's Snakemake variant with both rules
// on the real Slurm, then each engine's variant with gendata here and
// fitdata on Slurm (a rule's resources, a CWL step's reana hint, a Yadage
// stage's resources); each Slurm job is alice's and named after the run
// and the rule, step or stage.
func TestEnginesOnSlurm(t *testing.T) {
	harness.EnsureSlurm(t, env.Repo)
	d := StartDaemon(t, append(engineEnv(t), "REANA_SITE_BACKENDS=local,slurm")...)
	alice := d.AddUser(t, "alice")
	dir := alice.WorkDir(t, "root6-fit")
	for _, tt := range []struct {
		name, file, plot string
		onSlurm          []string
	}{
		{"smk-slurm", "reana-snakemake-slurm.yaml", "results/plot.png", []string{"fitdata", "gendata"}},
		{"smk-mixed", "reana-snakemake-mixed.yaml", "results/plot.png", []string{"fitdata"}},
		{"cwl-mixed", "reana-cwl-mixed.yaml", "outputs/plot.png", []string{"fitdata"}},
		{"yadage-mixed", "reana-yadage-mixed.yaml", "fitdata/plot.png", []string{"fitdata"}},
	} {
		alice.MustClient(t, dir, "run", "-w", tt.name, "-f", tt.file, "-p", "events=500")
		wf := alice.WaitStatus(t, tt.name+".1", 3*time.Minute, "finished")
		var names []string
		for _, j := range slurmJobs(t, wf.ID) {
			assert.Equal(t, "alice", j.User)
			assert.True(t, strings.HasPrefix(j.Name, "reana."+tt.name+".1."), j.Name)
			assert.Equal(t, "COMPLETED", j.State)
			names = append(names, strings.TrimPrefix(j.Name, "reana."+tt.name+".1."))
		}
		sort.Strings(names)
		assert.Equal(t, tt.onSlurm, names, tt.name)
		assert.Contains(t, alice.MustClient(t, dir, "logs", "-w", tt.name+".1"), "Slurm")
		assertDownloadedAs(t, alice, dir, tt.name+".1", tt.plot, "500")
	}
}

// engineProcesses are alice's processes of one run (the engine process
// and its jobs on this host: their environment names the run) whose
// command line contains match.
func engineProcesses(t *testing.T, u *User, workflowID, match string) []int {
	t.Helper()
	var pids []int
	for _, pid := range stepProcesses(t, u.UID, match) {
		environ, _ := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "environ"))
		if strings.Contains(string(environ), "REANA_WORKFLOW_UUID="+workflowID) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// startSleepy runs snakemake-faults with a 300 s job and waits until
// that job runs.
func startSleepy(t *testing.T, u *User, dir, name string) Workflow {
	t.Helper()
	u.MustClient(t, dir, "run", "-w", name, "-p", "seconds=300")
	wf := u.WaitStatus(t, name+".1", time.Minute, "running")
	require.Eventually(t, func() bool { return len(engineProcesses(t, u, wf.ID, "sleep 300")) > 0 }, time.Minute, 100*time.Millisecond)
	return wf
}

func TestSnakemakeStop(t *testing.T) {
	d := StartDaemon(t, engineEnv(t)...)
	alice := d.AddUser(t, "alice")
	dir := alice.WorkDir(t, "snakemake-faults")
	wf := startSleepy(t, alice, dir, "smk-stop")
	require.NotEmpty(t, engineProcesses(t, alice, wf.ID, "reana_site_engines"))
	// The engine's output is there while it runs (REANA shows it at the end).
	logs := alice.MustClient(t, dir, "logs", "-w", "smk-stop.1")
	assert.Contains(t, logs, "Submitted job")
	assert.Contains(t, logs, "snakemake.logging")

	alice.MustClient(t, dir, "stop", "-w", "smk-stop.1", "--force")
	alice.WaitStatus(t, "smk-stop.1", time.Minute, "stopped")
	require.Eventually(t, func() bool {
		return len(engineProcesses(t, alice, wf.ID, "sleep 300"))+len(engineProcesses(t, alice, wf.ID, "reana_site_engines")) == 0
	}, 30*time.Second, 100*time.Millisecond, "stop ends the job and the engine")
	logs = alice.MustClient(t, dir, "logs", "-w", "smk-stop.1")
	assert.Contains(t, logs, "stopped by the user")
	assert.Contains(t, logs, "slow")
}

// TestSnakemakeSurvivesDaemonKill kills the daemon while the engine and
// a job run; after the restart the run completes and each job ran once.
func TestSnakemakeSurvivesDaemonKill(t *testing.T) {
	d := StartDaemon(t, engineEnv(t)...)
	alice := d.AddUser(t, "alice")
	dir := alice.WorkDir(t, "snakemake-faults")
	alice.MustClient(t, dir, "run", "-w", "smk-kill", "-p", "seconds=4")
	wf := alice.WaitStatus(t, "smk-kill.1", time.Minute, "running")
	require.Eventually(t, func() bool { return len(engineProcesses(t, alice, wf.ID, "sleep 4")) > 0 }, time.Minute, 50*time.Millisecond)
	d.Kill()
	time.Sleep(5 * time.Second) // the job ends while nobody watches
	d.Start()
	alice.WaitStatus(t, "smk-kill.1", 2*time.Minute, "finished")
	assertRuns(t, alice, dir, "smk-kill.1", "every job ran exactly once")
}

// assertRuns checks that snakemake-faults' jobs each ran once, by the
// lines they appended to runs.txt.
func assertRuns(t *testing.T, u *User, dir, run, msg string) {
	t.Helper()
	dl := u.WorkDir(t, "")
	u.MustClient(t, dir, "download", "-w", run, "runs.txt", "-o", dl)
	got, err := os.ReadFile(filepath.Join(dl, "runs.txt"))
	require.NoError(t, err)
	assert.Equal(t, "slow\nafter\n", string(got), msg)
}

func TestSnakemakeFaults(t *testing.T) {
	d := StartDaemon(t, engineEnv(t)...)
	alice := d.AddUser(t, "alice")
	dir := alice.WorkDir(t, "snakemake-faults")

	// reana-client validates a Snakefile before it creates the run (and
	// cannot send one with a run: rule at all), so these are uploaded in
	// place of the valid one before the start.
	for _, tt := range []struct{ name, snakefile, msg string }{
		{"smk-py", "Snakefile-run", "Python code execution is not supported yet."},
		{"smk-syntax", "", "SyntaxError"},
	} {
		alice.MustClient(t, dir, "create", "-w", tt.name)
		alice.MustClient(t, dir, "upload", "-w", tt.name)
		other := alice.WorkDir(t, "")
		script := "printf 'rule all:\\n    input: (\\n' > Snakefile"
		if tt.snakefile != "" {
			script = "cp " + filepath.Join(dir, tt.snakefile) + " Snakefile"
		}
		out, code := alice.Run(t, other, nil, "/bin/sh", "-c", script)
		require.Zero(t, code, out)
		alice.MustClient(t, other, "upload", "-w", tt.name, "Snakefile")
		alice.MustClient(t, dir, "start", "-w", tt.name)
		alice.WaitStatus(t, tt.name+".1", 2*time.Minute, "failed")
		logs := alice.MustClient(t, dir, "logs", "-w", tt.name+".1")
		assert.Contains(t, logs, tt.msg)
		assert.Contains(t, logs, "The workflow engine ended")
	}

	// An engine killed with SIGKILL fails the run and takes its job along.
	wf := startSleepy(t, alice, dir, "smk-sigkill")
	for _, pid := range engineProcesses(t, alice, wf.ID, "reana_site_engines") {
		require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	}
	alice.WaitStatus(t, "smk-sigkill.1", time.Minute, "failed")
	logs := alice.MustClient(t, dir, "logs", "-w", "smk-sigkill.1")
	assert.Contains(t, logs, "signal 9")
	assert.Contains(t, logs, "the workflow engine ended before this job")
	require.Eventually(t, func() bool { return len(engineProcesses(t, alice, wf.ID, "sleep 300")) == 0 }, 30*time.Second, 100*time.Millisecond)
}

// assertDownloadedAs downloads a run's plot from where its engine wrote
// it and compares it with what the demo's programs produce.
func assertDownloadedAs(t *testing.T, u *User, dir, run, path, events string) {
	t.Helper()
	dl := u.WorkDir(t, "")
	u.MustClient(t, dir, "download", "-w", run, path, "-o", dl)
	got, err := os.ReadFile(filepath.Join(dl, path))
	require.NoError(t, err)
	assert.Equal(t, expectedOutputs(t, u, events), got, "the downloaded plot differs from what the programs produce")
}

// TestCWLAndYadageFaults: a CWL tool that exits 1 fails the run with
// cwltool's permanentFail, and a Yadage specification whose $ref names a
// missing file fails it with the loader's error.
func TestCWLAndYadageFaults(t *testing.T) {
	d := StartDaemon(t, engineEnv(t)...)
	alice := d.AddUser(t, "alice")

	dir := alice.WorkDir(t, "cwl-fail")
	alice.MustClient(t, dir, "run", "-w", "cwl-fail")
	alice.WaitStatus(t, "cwl-fail.1", 3*time.Minute, "failed")
	logs := alice.MustClient(t, dir, "logs", "-w", "cwl-fail.1")
	assert.Contains(t, logs, "about to fail")
	assert.Contains(t, logs, "permanentFail")
	assert.Contains(t, logs, "The workflow engine ended")

	// reana-client validates the specification before it creates the run,
	// so the broken one is uploaded in place of the valid one.
	dir = alice.WorkDir(t, "root6-fit")
	alice.MustClient(t, dir, "create", "-w", "yadage-ref", "-f", "reana-yadage.yaml")
	alice.MustClient(t, dir, "upload", "-w", "yadage-ref")
	other := alice.WorkDir(t, "")
	out, code := alice.Run(t, other, nil, "/bin/sh", "-c",
		`mkdir -p workflow/yadage && printf 'stages:\n  - name: gendata\n    dependencies: {dependency_type: jsonpath_ready, expressions: [init]}\n    scheduler: {$ref: "missing.yml#/gendata"}\n' > workflow/yadage/workflow.yaml`)
	require.Zero(t, code, out)
	alice.MustClient(t, other, "upload", "-w", "yadage-ref", "workflow/yadage/workflow.yaml")
	alice.MustClient(t, dir, "start", "-w", "yadage-ref")
	alice.WaitStatus(t, "yadage-ref.1", 2*time.Minute, "failed")
	logs = alice.MustClient(t, dir, "logs", "-w", "yadage-ref.1")
	assert.Contains(t, logs, "the workflow specification could not be loaded")
	assert.Contains(t, logs, "missing.yml")
}

// TestSnakemakeOnHTCondor runs root6-fit's Snakemake variant with both
// rules as alice's HTCondor jobs, each carrying the run and the rule.
func TestSnakemakeOnHTCondor(t *testing.T) {
	_, pool, alice, _ := condorDaemon(t, engineEnv(t)...)
	dir := alice.WorkDir(t, "root6-fit")
	alice.MustClient(t, dir, "run", "-w", "smk-condor", "-f", "reana-snakemake-htcondor.yaml", "-p", "events=500")
	wf := alice.WaitStatus(t, "smk-condor.1", 3*time.Minute, "finished")
	jobs := condorJobs(t, pool, wf.ID)
	require.Len(t, jobs, 2, "one HTCondor job per rule")
	for _, j := range jobs {
		assert.Equal(t, "alice", j.Owner)
		assert.Equal(t, 4, j.Status, "completed")
	}
	assert.ElementsMatch(t, []string{"gendata", "fitdata"}, []string{jobs[0].Step, jobs[1].Step})
	assertDownloadedPlot(t, alice, dir, "smk-condor.1", "500")
}

// TestSnakemakeRestart: a restarted run reuses the workspace, Snakemake
// skips the jobs whose outputs are up to date, and no lock is in the way.
func TestSnakemakeRestart(t *testing.T) {
	d := StartDaemon(t, engineEnv(t)...)
	alice := d.AddUser(t, "alice")
	dir := alice.WorkDir(t, "snakemake-faults")
	alice.MustClient(t, dir, "run", "-w", "smk-again")
	alice.WaitStatus(t, "smk-again.1", 2*time.Minute, "finished")
	alice.MustClient(t, dir, "restart", "-w", "smk-again.1")
	alice.WaitStatus(t, "smk-again.1.1", 2*time.Minute, "finished")
	logs := alice.MustClient(t, dir, "logs", "-w", "smk-again.1.1")
	assert.Contains(t, logs, "Nothing to be done")
	assertRuns(t, alice, dir, "smk-again.1.1", "nothing ran again")
}

// TestSnakemakeOnKubernetes runs root6-fit's Snakemake variant with both
// rules as pods (the Kubernetes stand-in) that run as alice, while the
// engine itself runs on this host.
func TestSnakemakeOnKubernetes(t *testing.T) {
	k := harness.StartKubernetes(t, env)
	d := StartDaemon(t, append(k.DaemonEnv(), engineEnv(t)...)...)
	alice := d.AddUser(t, "alice")
	dir := alice.WorkDir(t, "root6-fit")
	alice.MustClient(t, dir, "run", "-w", "smk-kube", "-f", "reana-snakemake-kubernetes.yaml", "-p", "events=500")
	wf := alice.WaitStatus(t, "smk-kube.1", 3*time.Minute, "finished")
	pods := workflowPods(t, k, wf.ID)
	require.Len(t, pods, 2, "one pod per rule")
	for _, p := range pods {
		require.NotNil(t, p.Spec.SecurityContext)
		assert.EqualValues(t, alice.UID, *p.Spec.SecurityContext.RunAsUser)
	}
	logs := alice.MustClient(t, dir, "logs", "-w", "smk-kube.1")
	assert.Contains(t, logs, "Kubernetes")
	assertDownloadedPlot(t, alice, dir, "smk-kube.1", "500")
}

// TestEnginesInImages runs each engine's jobs in their images with the
// Apptainer stand-in, exactly as serial steps run; the engine process
// itself runs on the host.
func TestEnginesInImages(t *testing.T) {
	_, alice := containerDaemon(t, false, engineEnv(t)...)
	dir := alice.WorkDir(t, "root6-fit")
	for _, tt := range []struct{ name, file, plot string }{
		{"boxed-snakemake", "reana-snakemake.yaml", "results/plot.png"},
		{"boxed-cwl", "reana-cwl.yaml", "outputs/plot.png"},
		{"boxed-yadage", "reana-yadage.yaml", "fitdata/plot.png"},
	} {
		alice.MustClient(t, dir, "run", "-w", tt.name, "-f", tt.file, "-p", "events=1000")
		alice.WaitStatus(t, tt.name+".1", 3*time.Minute, "finished")
		logs := alice.Logs(t, tt.name+".1")
		assert.Equal(t, 2, strings.Count(logs, "running in image"), "%s: each job in its image:\n%s", tt.name, logs)
		assert.Contains(t, logs, "debian:12-slim")
		assertDownloadedAs(t, alice, dir, tt.name+".1", tt.plot, "1000")
	}
}
