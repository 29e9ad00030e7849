package htcondor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/test/helpertest"
)

func TestMain(m *testing.M) {
	helpertest.MaybeRunHelper()
	os.Exit(m.Run())
}

// groupSpecs are n jobs of one step of acct's workflow under dir, and one
// more with a memory limit (a command the others do not set).
func groupSpecs(acct asuser.Account, dir string, n int) []batch.Spec {
	var specs []batch.Spec
	for i := 0; i <= n; i++ {
		id := "job-" + string(rune('a'+i))
		s := batch.Spec{JobID: id, WorkflowID: "wf-1", WorkflowName: "fit.1", StepName: "fitdata", Command: "true",
			Workspace: filepath.Join(dir, "ws"), JobDir: filepath.Join(dir, "jobs", id), User: acct}
		if i == n {
			s.Hints.MemoryLimit = "100Mi"
		}
		specs = append(specs, s)
	}
	return specs
}

func TestClustersSplitJobsSettingDifferentCommands(t *testing.T) {
	b := &Backend{}
	var preps []batch.Prepared
	for _, s := range groupSpecs(asuser.Account{Name: "alice", Home: "/home/alice"}, "/home/alice/reana", 3) {
		p, err := b.prepare(s)
		require.NoError(t, err)
		preps = append(preps, p)
	}
	assert.Equal(t, [][]int{{0, 1, 2}, {3}}, clusters(preps))
}

// submitScript is a condor_submit that records each description it reads
// (from its file argument, or from stdin for "-") and answers like -terse,
// numbering clusters from 100.
const submitScript = `#!/bin/sh
for f; do :; done
if [ "$f" = - ]; then d=$(cat); else d=$(cat "$f"); fi
n=$(printf '%s\n' "$d" | grep -c '^queue')
c=$((100 + $(ls "$0.d" | wc -l)))
printf '%s\n' "$d" >"$0.d/$c"
echo "$c.0 - $c.$((n-1))"
`

// scriptedSubmit is the real helper for a test user whose condor_submit
// (in bin) is script, with a workspace and jobs directory under dir.
func scriptedSubmit(t *testing.T, script string) (r asuser.Caller, acct asuser.Account, dir, bin string) {
	t.Helper()
	r, acct, dir = helpertest.Runner(t)
	bin = filepath.Join(dir, "bin")
	require.NoError(t, os.MkdirAll(filepath.Join(bin, "condor_submit.d"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(bin, "condor_submit"), []byte(script), 0o755))
	if os.Geteuid() == 0 {
		require.NoError(t, exec.Command("chown", "-R", acct.Name, dir).Run())
	}
	require.NoError(t, asuser.CreateWorkspace(context.Background(), r, acct, asuser.WorkspaceArgs{Workspace: filepath.Join(dir, "ws"), JobsDir: filepath.Join(dir, "jobs")}))
	return r, acct, dir, bin
}

// TestSubmitManyIsOneCondorSubmitPerCluster runs SubmitMany through the
// real helper: one condor_submit for the jobs that share their commands,
// one for the other, each job's id recorded; an interrupted group (claims
// without ids, as a helper killed after condor_submit answered leaves
// them) is looked up in the schedd and not submitted again.
func TestSubmitManyIsOneCondorSubmitPerCluster(t *testing.T) {
	r, acct, dir, bin := scriptedSubmit(t, submitScript)
	ctx := context.Background()
	var queries [][]string
	queue := ""
	b := &Backend{Runner: r, Config: Config{BinDir: bin}, Parser: Parser{Location: time.UTC},
		Query: func(_ context.Context, argv []string) ([]byte, []byte, error) {
			queries = append(queries, argv)
			if strings.HasSuffix(argv[0], "condor_q") {
				return []byte(queue), nil, nil
			}
			return nil, nil, nil
		}}
	specs := groupSpecs(acct, dir, 3)
	out := b.SubmitMany(ctx, specs)
	var ids []string
	for _, o := range out {
		require.NoError(t, o.Err)
		ids = append(ids, o.Handle.ID)
	}
	assert.Equal(t, []string{"100.0", "100.1", "100.2", "101.0"}, ids)
	desc, err := os.ReadFile(filepath.Join(bin, "condor_submit.d", "100"))
	require.NoError(t, err)
	assert.Equal(t, 3, strings.Count(string(desc), "\nqueue 1\n"))
	for _, s := range specs[:3] {
		assert.Contains(t, string(desc), `+ReanaJob = "`+s.JobID+`"`)
		assert.Contains(t, string(desc), "log = "+filepath.Join(s.JobDir, EventLogFile))
	}
	assert.Empty(t, queries)

	// The same group again: every id is recorded, nothing is submitted.
	again := b.SubmitMany(ctx, specs)
	for i, o := range again {
		require.NoError(t, o.Err)
		assert.Equal(t, ids[i], o.Handle.ID)
	}

	// Lose the recorded ids of the first cluster, as a helper killed after
	// condor_submit answered and before it recorded them leaves it: the
	// schedd knows job-a; job-b and job-c were never queued.
	for _, s := range specs[:3] {
		require.NoError(t, os.Remove(filepath.Join(s.JobDir, "batch_id")))
	}
	queue = ad("job-a", 1, "")
	again = b.SubmitMany(ctx, specs)
	for _, o := range again {
		require.NoError(t, o.Err)
	}
	assert.Equal(t, "12.0", again[0].Handle.ID, "found in the schedd, not submitted again")
	assert.Equal(t, "101.0", again[3].Handle.ID)
	n, err := os.ReadDir(filepath.Join(bin, "condor_submit.d"))
	require.NoError(t, err)
	assert.Len(t, n, 4, "job-b and job-c, not found, were submitted once more each, on their own")
	assert.NotEmpty(t, queries)
}

// refusingSubmitScript is submitScript, but refuses any description
// holding job-b's block, as the schedd refuses a whole cluster for one
// bad job; it notes what each run read from ("-" for a group).
const refusingSubmitScript = `#!/bin/sh
for f; do :; done
if [ "$f" = - ]; then d=$(cat); else d=$(cat "$f"); fi
echo "$f" >>"$0.calls"
case "$d" in *'"job-b"'*) printf '\nERROR: Parse error in expression: \n\trequest_memory = 100 +\n' >&2; exit 1;; esac
n=$(printf '%s\n' "$d" | grep -c '^queue')
c=$((100 + $(wc -l <"$0.calls")))
echo "$c.0 - $c.$((n-1))"
`

// TestRefusedGroupThroughTheHelper runs a refused group through the real
// helper: the group's condor_submit is refused for job-b's sake, then
// each job goes on its own; job-a and job-c are queued and recorded,
// job-b fails alone and is left unclaimed for a later attempt.
func TestRefusedGroupThroughTheHelper(t *testing.T) {
	r, acct, dir, bin := scriptedSubmit(t, refusingSubmitScript)
	ctx := context.Background()
	b := &Backend{Runner: r, Config: Config{BinDir: bin}, Parser: Parser{Location: time.UTC},
		Query: func(context.Context, []string) ([]byte, []byte, error) {
			t.Error("nothing is looked up")
			return nil, nil, nil
		}}
	specs := groupSpecs(acct, dir, 3)[:3]
	calls := func() []string {
		b, err := os.ReadFile(filepath.Join(bin, "condor_submit.calls"))
		require.NoError(t, err)
		return strings.Fields(string(b))
	}
	out := b.SubmitMany(ctx, specs)
	require.NoError(t, out[0].Err)
	assert.Equal(t, "102.0", out[0].Handle.ID)
	require.Error(t, out[1].Err)
	assert.Equal(t, "htcondor: condor_submit: ERROR: Parse error in expression: request_memory = 100 +", out[1].Err.Error())
	require.NoError(t, out[2].Err)
	assert.Equal(t, "104.0", out[2].Handle.ID)
	var alone []string
	for _, s := range specs {
		alone = append(alone, filepath.Join(s.JobDir, SubmitFile))
	}
	assert.Equal(t, append([]string{"-"}, alone...), calls(), "the group, then each job on its own")
	for i, want := range []string{"102.0 - 102.0\n", "", "104.0 - 104.0\n"} {
		got, err := os.ReadFile(filepath.Join(specs[i].JobDir, "batch_id"))
		if want == "" {
			assert.True(t, os.IsNotExist(err), "no id for the refused job")
			_, err = os.Stat(filepath.Join(specs[i].JobDir, "started"))
			assert.True(t, os.IsNotExist(err), "the refused job is not claimed")
			continue
		}
		require.NoError(t, err)
		assert.Equal(t, want, string(got))
	}

	// Again: job-a and job-c have their ids (as job.submit records
	// condor_submit -terse's answer); job-b alone is refused once
	// more, in a group of one, and not tried a second time on its own.
	again := b.SubmitMany(ctx, specs)
	assert.Equal(t, "102.0", again[0].Handle.ID)
	assert.Error(t, again[1].Err)
	assert.Equal(t, "104.0", again[2].Handle.ID)
	assert.Len(t, calls(), 5)
}

// realPool is the real personal pool of test/htcondor/pool.sh, when it is
// up on this machine (it needs root); the test is skipped otherwise.
func realPool(t *testing.T) Config {
	t.Helper()
	if os.Geteuid() != 0 || os.Getenv("REANA_SITE_HTCONDOR_POOL") == "standin" {
		t.Skip("the real HTCondor pool needs root")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	script, err := filepath.Abs("../../test/htcondor/pool.sh")
	require.NoError(t, err)
	if out, err := exec.CommandContext(ctx, "bash", script, "start").CombinedOutput(); err != nil {
		t.Skipf("the real HTCondor pool does not start here: %v: %s", err, out)
	}
	out, err := exec.CommandContext(ctx, "bash", script, "env").Output()
	require.NoError(t, err)
	var cfg Config
	for _, line := range strings.Split(string(out), "\n") {
		k, v, _ := strings.Cut(line, "=")
		switch k {
		case "BIN":
			cfg.BinDir = v
		case "CONFIG":
			cfg.ConfigFile = v
		}
	}
	require.NotEmpty(t, cfg.BinDir)
	return cfg
}

// realPoolGroup is a backend on the real pool, through the real helper,
// and groupSpecs of a test user whose job ids no earlier run used.
func realPoolGroup(t *testing.T) (Config, *Backend, asuser.Account, []batch.Spec) {
	t.Helper()
	cfg := realPool(t)
	r, acct, dir := helpertest.Runner(t)
	require.NoError(t, os.Chmod(dir, 0o755), "the schedd and shadow reach the job directories")
	require.NoError(t, asuser.CreateWorkspace(context.Background(), r, acct, asuser.WorkspaceArgs{Workspace: filepath.Join(dir, "ws"), JobsDir: filepath.Join(dir, "jobs")}))
	specs := groupSpecs(acct, dir, 3)
	for i := range specs {
		specs[i].JobID = filepath.Base(dir) + "-" + specs[i].JobID
	}
	return cfg, &Backend{Runner: r, Config: cfg, Parser: Parser{Location: time.Local}}, acct, specs
}

// TestSubmitManyOnTheRealPool submits a group with the real condor_submit
// to the real schedd: one cluster whose procs are the jobs in order, each
// with its own event log and attributes; submitting the group again after
// its ids were lost finds the jobs instead of queueing them twice.
func TestSubmitManyOnTheRealPool(t *testing.T) {
	cfg, b, acct, specs := realPoolGroup(t)
	ctx := context.Background()
	condor := func(name string, args ...string) string {
		cmd := exec.Command(filepath.Join(cfg.BinDir, name), args...)
		cmd.Env = append(os.Environ(), "CONDOR_CONFIG="+cfg.ConfigFile)
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s: %s", name, out)
		return string(out)
	}
	out := b.SubmitMany(ctx, specs)
	var ids []string
	for _, o := range out {
		require.NoError(t, o.Err)
		ids = append(ids, o.Handle.ID)
	}
	t.Cleanup(func() { condor("condor_rm", append([]string{"-reason", "test over"}, ids...)...) })
	// Each job's own script is its executable, and condor_submit starts a
	// new cluster when the executable changes: one proc per cluster.
	for i, s := range specs {
		q := condor("condor_q", "-allusers", ids[i], "-af", "ReanaJob", "UserLog", "Owner", "ReanaStep")
		assert.Equal(t, strings.Join([]string{s.JobID, filepath.Join(s.JobDir, EventLogFile), acct.Name, "fitdata"}, " "), firstLine(q), ids[i])
	}

	// Lose the recorded ids, as a helper killed after condor_submit
	// answered leaves the group: it is found, not queued again.
	for _, s := range specs[:3] {
		require.NoError(t, os.Remove(filepath.Join(s.JobDir, "batch_id")))
	}
	again := b.SubmitMany(ctx, specs)
	for i, o := range again {
		require.NoError(t, o.Err)
		assert.Equal(t, ids[i], o.Handle.ID)
	}
	n := condor("condor_q", "-allusers", "-constraint", `ReanaWorkflow == "wf-1" && Owner == "`+acct.Name+`"`, "-af", "ReanaJob")
	for _, s := range specs {
		assert.Equal(t, 1, strings.Count(n, s.JobID+"\n"), "%s queued once: %s", s.JobID, n)
	}
}

// TestRefusedGroupOnTheRealPool: the real condor_submit refuses a whole
// group for one block with an unparseable expression; each job is then
// submitted on its own, and only that one fails, with the real reason.
func TestRefusedGroupOnTheRealPool(t *testing.T) {
	cfg, b, _, specs := realPoolGroup(t)
	specs = specs[:3]
	ctx := context.Background()
	// No step's hints make an unparseable description (they are checked
	// first), so job-b's is broken after it is made; it keeps the same
	// commands, so it is in the others' cluster.
	prepare := func(s batch.Spec) (batch.Prepared, error) {
		p, err := b.prepare(s)
		if s.JobID == specs[1].JobID {
			p.Args.Files[SubmitFile] = strings.Replace(p.Args.Files[SubmitFile], "request_cpus = 1\n", "request_cpus = 1 +\n", 1)
		}
		return p, err
	}
	out := batch.SubmitGroups(ctx, b.Runner, Name, specs, prepare, b.submitClusters)
	require.Len(t, out, 3)
	var ids []string
	for _, i := range []int{0, 2} {
		require.NoError(t, out[i].Err)
		ids = append(ids, out[i].Handle.ID)
	}
	t.Cleanup(func() {
		cmd := exec.Command(filepath.Join(cfg.BinDir, "condor_rm"), append([]string{"-reason", "test over"}, ids...)...)
		cmd.Env = append(os.Environ(), "CONDOR_CONFIG="+cfg.ConfigFile)
		_ = cmd.Run()
	})
	bad, err := os.ReadFile(filepath.Join(specs[1].JobDir, SubmitFile))
	require.NoError(t, err)
	require.Contains(t, string(bad), "request_cpus = 1 +\n", "job-b's block is the bad one")
	require.Error(t, out[1].Err)
	t.Log(out[1].Err)
	assert.Contains(t, out[1].Err.Error(), "Parse error in expression")
	assert.NotContains(t, out[1].Err.Error(), "multiple queue statements")
	assert.False(t, errorsIsUnavailable(out[1].Err))
	assert.NotEqual(t, ids[0], ids[1])
	for k, i := range []int{0, 2} {
		got, err := os.ReadFile(filepath.Join(specs[i].JobDir, "batch_id"))
		require.NoError(t, err)
		cluster, proc, err := ParseTerse(string(got))
		require.NoError(t, err)
		assert.Equal(t, ids[k], fmt.Sprintf("%d.%d", cluster, proc))
	}
}

// firstLine is the first line of a command's output that is not one of
// HTCondor's warnings.
func firstLine(out string) string {
	for _, l := range strings.Split(out, "\n") {
		if l != "" && !strings.HasPrefix(l, "Warning") && !strings.HasPrefix(l, " ") && !strings.HasPrefix(l, "http") {
			return l
		}
	}
	return ""
}

// TestRefusedGroupFailsTheBadJobAlone: the schedd takes a group whole or
// not at all, so after a refusal its jobs are submitted again one
// condor_submit each, and only the job the schedd refuses on its own
// fails, with its own reason. A schedd that is unreachable is an outage
// for every job of the group (it waits), and a failure after which the
// jobs may be queued keeps them for the lookup: neither is tried job by
// job.
func TestRefusedGroupFailsTheBadJobAlone(t *testing.T) {
	const warning = "\nWarning: Use of multiple queue statements in a single submit file is deprecated.\n" +
		"         This functionality will be removed in the 25.x feature series. To see\n" +
		"         how multiple queue statements can be converted into one visit:\n" +
		"https://htcondor.readthedocs.io/en/latest/auto-redirect.html?category=example&tag=convert-multi-queue-statements\n"
	const badJob = "\nERROR: Parse error in expression: \n\trequest_memory = 100 +\n"
	tests := []struct {
		name, stderr string
		// msgs are the jobs' errors ("" for a job queued as 12.0).
		msgs        []string
		unavailable bool
		// alone are the jobs submitted on their own after the group.
		alone int
	}{
		{"refused", warning + "\nERROR: Failed to commit job submission into the queue.\nERROR: Parse error in expression\n",
			[]string{"", "htcondor: condor_submit: ERROR: Parse error in expression: request_memory = 100 +", ""}, false, 3},
		{"schedd unreachable", warning + "\nERROR: Failed to connect to local queue manager\nCEDAR:6001:Failed to connect to <127.0.0.1:9618>\n",
			slices.Repeat([]string{"htcondor: condor_submit: ERROR: Failed to connect to local queue manager CEDAR:6001:Failed to connect to <127.0.0.1:9618>: batch system unavailable"}, 3), true, 0},
		{"maybe submitted", "\nERROR: CEDAR:6002:failed to receive the reply\n",
			slices.Repeat([]string{"htcondor: condor_submit: ERROR: CEDAR:6002:failed to receive the reply"}, 3), false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, c := newFake(), &clock{t: time.Now()}
			f.refuse = func(a asuser.BatchSubmitArgs) string {
				if strings.HasSuffix(a.JobDir, "/job-b") {
					return badJob
				}
				return ""
			}
			b := newBackend(f, c)
			res := asuser.BatchSubmitOutcome{Result: asuser.BatchSubmitResult{ExitCode: 1, Stderr: tt.stderr}}
			f.cluster = []asuser.BatchSubmitOutcome{res, res, res}
			out := b.SubmitMany(context.Background(), []batch.Spec{spec("job-a"), spec("job-b"), spec("job-c")})
			require.Len(t, f.clusters, 1, "one condor_submit for the group")
			assert.Equal(t, []string{"/opt/condor/bin/condor_submit", "-terse", "-"}, f.clusters[0].Argv)
			assert.Equal(t, SubmitFile, f.clusters[0].DescFile)
			require.Len(t, out, 3)
			for i, o := range out {
				if tt.msgs[i] == "" {
					require.NoError(t, o.Err)
					assert.Equal(t, "12.0", o.Handle.ID)
					continue
				}
				require.Error(t, o.Err)
				assert.Equal(t, tt.msgs[i], o.Err.Error())
				assert.Equal(t, tt.unavailable, errorsIsUnavailable(o.Err))
			}
			require.Len(t, f.submits, tt.alone)
			for _, a := range f.submits {
				assert.Equal(t, filepath.Join(a.JobDir, SubmitFile), a.Argv[len(a.Argv)-1], "each job with its own description")
				assert.False(t, a.Force)
			}
		})
	}
}

// TestRefusedGroupOfOneIsNotSubmittedAgain: a job refused alone in its
// cluster has its own refusal already.
func TestRefusedGroupOfOneIsNotSubmittedAgain(t *testing.T) {
	f, c := newFake(), &clock{t: time.Now()}
	b := newBackend(f, c)
	f.cluster = []asuser.BatchSubmitOutcome{
		{Result: asuser.BatchSubmitResult{ID: "11.0", Already: true}},
		{Result: asuser.BatchSubmitResult{ExitCode: 1, Stderr: "ERROR: Parse error in expression"}},
	}
	out := b.SubmitMany(context.Background(), []batch.Spec{spec("job-a"), spec("job-b")})
	require.NoError(t, out[0].Err)
	assert.EqualError(t, out[1].Err, "htcondor: condor_submit: ERROR: Parse error in expression")
	assert.Empty(t, f.submits)
}

// TestHelperFailingForALaterCluster: the jobs of the clusters queued
// before keep their handles (they are in the schedd); only the jobs not
// yet submitted fail.
func TestHelperFailingForALaterCluster(t *testing.T) {
	f, c := newFake(), &clock{t: time.Now()}
	f.clusterFails = 2
	b := newBackend(f, c)
	other := spec("job-c")
	other.Hints.MemoryLimit = "100Mi" // a command the others do not set: a cluster of its own
	out := b.SubmitMany(context.Background(), []batch.Spec{spec("job-a"), spec("job-b"), other})
	require.Len(t, f.clusters, 2)
	require.Len(t, out, 3)
	require.NoError(t, out[0].Err)
	require.NoError(t, out[1].Err)
	assert.Equal(t, []string{"21.0", "21.1"}, []string{out[0].Handle.ID, out[1].Handle.ID})
	require.Error(t, out[2].Err)
	assert.Contains(t, out[2].Err.Error(), "signal: killed")
}
