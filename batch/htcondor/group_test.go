package htcondor

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
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

// TestSubmitManyIsOneCondorSubmitPerCluster runs SubmitMany through the
// real helper: one condor_submit for the jobs that share their commands,
// one for the other, each job's id recorded; an interrupted group (claims
// without ids, as a helper killed after condor_submit answered leaves
// them) is looked up in the schedd and not submitted again.
func TestSubmitManyIsOneCondorSubmitPerCluster(t *testing.T) {
	r, acct, dir := helpertest.Runner(t)
	bin := filepath.Join(dir, "bin")
	require.NoError(t, os.MkdirAll(filepath.Join(bin, "condor_submit.d"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(bin, "condor_submit"), []byte(submitScript), 0o755))
	if os.Geteuid() == 0 {
		require.NoError(t, exec.Command("chown", "-R", acct.Name, dir).Run())
	}
	ctx := context.Background()
	require.NoError(t, asuser.CreateWorkspace(ctx, r, acct, asuser.WorkspaceArgs{Workspace: filepath.Join(dir, "ws"), JobsDir: filepath.Join(dir, "jobs")}))
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
