package helper

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/asuser"
)

// fakeSubmit plays condor_submit -terse -: it appends the description it
// reads to a file, and answers as the script says ($n is the number of
// queue statements).
func fakeSubmit(root, answer string) []string {
	return []string{"/bin/sh", "-c", `d=$(cat); printf '%s\n--\n' "$d" >>"$1"; n=$(printf '%s\n' "$d" | grep -c '^queue'); ` + answer,
		"sh", filepath.Join(root, "submitted")}
}

func clusterArgs(root string, argv []string, names ...string) asuser.BatchSubmitClusterArgs {
	a := asuser.BatchSubmitClusterArgs{DescFile: "job.sub", Argv: argv, MaybeSubmitted: "SECMAN:2007"}
	for _, n := range names {
		a.Jobs = append(a.Jobs, asuser.BatchSubmitArgs{JobDir: filepath.Join(root, n), Script: "#!/bin/sh\n", Command: "true",
			Files: map[string]string{"job.sub": "+ReanaJob = \"" + n + "\"\nqueue 1\n"}})
	}
	return a
}

func submitCluster(t *testing.T, a asuser.BatchSubmitClusterArgs) []asuser.BatchSubmitOutcome {
	t.Helper()
	raw, err := json.Marshal(a)
	require.NoError(t, err)
	res, err := jobSubmitCluster(context.Background(), raw, nil)
	require.NoError(t, err)
	out := res.([]asuser.BatchSubmitOutcome)
	require.Len(t, out, len(a.Jobs))
	return out
}

// submissions are the descriptions the fake condor_submit was given.
func submissions(t *testing.T, root string) []string {
	b, err := os.ReadFile(filepath.Join(root, "submitted"))
	if os.IsNotExist(err) {
		return nil
	}
	require.NoError(t, err)
	parts := strings.Split(string(b), "\n--\n")
	return parts[:len(parts)-1]
}

func claimed(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, claimFile))
	return err == nil
}

// TestSubmitClusterRecordsEachJobsID: one condor_submit for the group, in
// order, each job's id recorded in its own directory; the same group
// again submits nothing.
func TestSubmitClusterRecordsEachJobsID(t *testing.T) {
	root := t.TempDir()
	a := clusterArgs(root, fakeSubmit(root, `echo "41.0 - 41.$((n-1))"`), "a", "b", "c")
	out := submitCluster(t, a)
	for i, want := range []string{"41.0", "41.1", "41.2"} {
		assert.Nil(t, out[i].Error)
		assert.Equal(t, want, out[i].Result.ID)
		b, err := os.ReadFile(filepath.Join(a.Jobs[i].JobDir, batchIDFile))
		require.NoError(t, err)
		assert.Equal(t, want+"\n", string(b))
		s, err := os.ReadFile(filepath.Join(a.Jobs[i].JobDir, "job.sub"))
		require.NoError(t, err, "each job keeps its own description")
		assert.Contains(t, string(s), `"`+filepath.Base(a.Jobs[i].JobDir)+`"`)
	}
	subs := submissions(t, root)
	require.Len(t, subs, 1)
	assert.Equal(t, "+ReanaJob = \"a\"\nqueue 1\n+ReanaJob = \"b\"\nqueue 1\n+ReanaJob = \"c\"\nqueue 1", subs[0])

	again := submitCluster(t, a)
	for i := range again {
		assert.True(t, again[i].Result.Already)
		assert.Equal(t, out[i].Result.ID, again[i].Result.ID)
	}
	assert.Len(t, submissions(t, root), 1, "nothing submitted twice")
}

// TestSubmitClusterLeavesOutRecordedAndInterruptedJobs: a job with an id
// is answered with it, a claim without one (a helper killed after
// condor_submit answered, before recording) is reported interrupted for
// the caller to look up; neither is in the new cluster.
func TestSubmitClusterLeavesOutRecordedAndInterruptedJobs(t *testing.T) {
	root := t.TempDir()
	a := clusterArgs(root, fakeSubmit(root, `echo "50.0 - 50.$((n-1))"`), "recorded", "new1", "interrupted", "new2")
	a.Jobs = append(a.Jobs, asuser.BatchSubmitArgs{JobDir: "relative", Files: map[string]string{"job.sub": "queue 1\n"}})
	for _, d := range []string{"recorded", "interrupted"} {
		require.NoError(t, os.MkdirAll(filepath.Join(root, d), 0o700))
		require.NoError(t, os.WriteFile(filepath.Join(root, d, claimFile), nil, 0o600))
	}
	require.NoError(t, os.WriteFile(filepath.Join(root, "recorded", batchIDFile), []byte("49.3\n"), 0o600))

	out := submitCluster(t, a)
	assert.Equal(t, asuser.BatchSubmitResult{ID: "49.3", Already: true}, out[0].Result)
	assert.Equal(t, "50.0", out[1].Result.ID)
	assert.Equal(t, asuser.BatchSubmitResult{Interrupted: true}, out[2].Result)
	assert.Equal(t, "50.1", out[3].Result.ID)
	require.NotNil(t, out[4].Error)
	assert.Equal(t, asuser.KindBadPath, out[4].Error.Kind)
	subs := submissions(t, root)
	require.Len(t, subs, 1)
	assert.Equal(t, "+ReanaJob = \"new1\"\nqueue 1\n+ReanaJob = \"new2\"\nqueue 1", subs[0])

	// Nothing left to submit: condor_submit is not run at all.
	out = submitCluster(t, a)
	assert.True(t, out[2].Result.Interrupted)
	assert.Len(t, submissions(t, root), 1)
}

// TestSubmitClusterFailures: the schedd takes a cluster whole or not at
// all, so a refusal releases every claim and reports the answer for each
// job; a failure after which the jobs may exist, or an answer that does
// not name them all, keeps the claims for the caller to look them up.
func TestSubmitClusterFailures(t *testing.T) {
	tests := []struct {
		name, answer string
		// kept: the claims stay and the next attempt is interrupted.
		kept        bool
		exit        int
		interrupted bool
	}{
		{"refused", `echo "ERROR: Failed to commit job submission into the queue." >&2; exit 1`, false, 1, false},
		{"schedd unreachable", `echo "ERROR: Can't find address of local schedd" >&2; exit 1`, false, 1, false},
		{"maybe submitted", `echo "SECMAN:2007:Failed to end classad message" >&2; exit 1`, true, 1, false},
		{"answer names fewer jobs", `echo "60.0 - 60.0"`, true, 0, true},
		{"no answer", `true`, true, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			a := clusterArgs(root, fakeSubmit(root, tt.answer), "a", "b")
			out := submitCluster(t, a)
			for i, o := range out {
				assert.Nil(t, o.Error)
				assert.Equal(t, tt.exit, o.Result.ExitCode)
				assert.Equal(t, tt.interrupted, o.Result.Interrupted)
				assert.Empty(t, o.Result.ID)
				assert.Equal(t, tt.kept, claimed(a.Jobs[i].JobDir), "claim kept")
			}
			again := submitCluster(t, a)
			for _, o := range again {
				assert.Equal(t, tt.kept, o.Result.Interrupted, "the next attempt looks the jobs up")
			}
			want := 2
			if tt.kept {
				want = 1
			}
			assert.Len(t, submissions(t, root), want)
		})
	}
}

func TestClusterIDs(t *testing.T) {
	ids, ok := clusterIDs("hook says hi\n7.3 - 7.5\n", 3)
	assert.True(t, ok)
	assert.Equal(t, []string{"7.3", "7.4", "7.5"}, ids)
	// A new executable starts a new cluster (the real condor_submit 24.0).
	ids, ok = clusterIDs("1.0 - 1.0\n2.0 - 2.1\n", 3)
	assert.True(t, ok)
	assert.Equal(t, []string{"1.0", "2.0", "2.1"}, ids)
	for _, bad := range []string{"7.0 - 7.1", "7.0 - 8.2", "", "3 job(s) submitted to cluster 7.", "7.0 - 7.3", "1.0 - 1.0\n2.0 - 2.0\n3.0 - 3.0\n4.0 - 4.0"} {
		_, ok := clusterIDs(bad, 3)
		assert.False(t, ok, bad)
	}
}
