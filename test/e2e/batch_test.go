//go:build e2e

package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/test/harness"
)

// gatedSlurm is a REANA_SITE_SLURM_BIN_DIR whose sbatch waits for the gate
// file, then for pause, before running the real one; the other commands
// are the real ones.
func gatedSlurm(t *testing.T, pause string) (binDir, gate string) {
	t.Helper()
	// Not under t.TempDir(), whose parent only root may enter: alice runs
	// these.
	binDir, err := os.MkdirTemp("", "reana-e2e-slurm-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(binDir) })
	require.NoError(t, os.Chmod(binDir, 0o755))
	gate = filepath.Join(binDir, "open")
	for _, name := range []string{"squeue", "scancel", "sacct", "scontrol"} {
		require.NoError(t, os.WriteFile(filepath.Join(binDir, name), []byte("#!/bin/sh\nexec /usr/bin/"+name+" \"$@\"\n"), 0o755))
	}
	script := fmt.Sprintf("#!/bin/sh\nwhile [ ! -e %s ]; do sleep 0.05; done\nsleep %s\nexec /usr/bin/sbatch \"$@\"\n", gate, pause)
	require.NoError(t, os.WriteFile(filepath.Join(binDir, "sbatch"), []byte(script), 0o755))
	return binDir, gate
}

// createWorkflows creates n workflows of spec for u, named prefix0 to
// prefix<n-1>, and returns their ids.
func createWorkflows(t *testing.T, d *Daemon, u *User, prefix string, spec map[string]any, n int) []string {
	t.Helper()
	ids := make([]string, n)
	for i := range ids {
		var r struct {
			ID string `json:"workflow_id"`
		}
		code := d.JSON(t, http.MethodPost, fmt.Sprintf("/api/workflows?workflow_name=%s%d", prefix, i), u.Token, spec, &r)
		require.Equal(t, http.StatusCreated, code)
		ids[i] = r.ID
	}
	return ids
}

// oneSlurmStep is a workflow of one Slurm step running true, as
// reana-client sends reana.yaml.
var oneSlurmStep = map[string]any{
	"version": "0.9.0",
	"workflow": map[string]any{"type": "serial", "specification": map[string]any{
		"steps": []map[string]any{{"name": "s", "environment": "docker.io/library/debian:12-slim",
			"compute_backend": "slurmcern", "commands": []string{"true"}}},
	}},
}

// knownToSlurm counts the given workflows' jobs the controller knows.
func knownToSlurm(t *testing.T, ids []string) (jobs int, perWorkflow map[string]int) {
	t.Helper()
	out, err := execCombined("squeue", "--noheader", "--states=all", "--format=%k")
	require.NoError(t, err, out)
	wanted := map[string]bool{}
	for _, id := range ids {
		wanted[id] = true
	}
	perWorkflow = map[string]int{}
	for _, line := range strings.Split(out, "\n") {
		if _, wf, ok := strings.Cut(strings.TrimSpace(line), " workflow="); ok && wanted[wf] {
			perWorkflow[wf]++
			jobs++
		}
	}
	return jobs, perWorkflow
}

// TestKillInTheMiddleOfASubmissionGroup: kill -9 the daemon while one
// helper submits a group of some fifty Slurm jobs; after the restart every
// workflow's job is in Slurm exactly once: those submitted before the
// crash are found again, the rest submitted now.
func TestKillInTheMiddleOfASubmissionGroup(t *testing.T) {
	const n = 55
	harness.EnsureSlurm(t, env.Repo)
	binDir, gate := gatedSlurm(t, "0.1")
	d := StartDaemon(t, "REANA_SITE_BACKENDS=local,slurm", "REANA_SITE_SLURM_BIN_DIR="+binDir)
	alice := d.AddUser(t, "alice")

	ids := createWorkflows(t, d, alice, "group", oneSlurmStep, n)
	t.Cleanup(func() {
		// Let the node go back to the other tests: these jobs only had to
		// reach the queue.
		out, _ := execCombined("squeue", "--noheader", "--user=alice", "--format=%i %k")
		var mine []string
		for _, line := range strings.Split(out, "\n") {
			id, comment, _ := strings.Cut(strings.TrimSpace(line), " ")
			for _, wf := range ids {
				if strings.HasSuffix(comment, "workflow="+wf) {
					mine = append(mine, id)
				}
			}
		}
		if len(mine) > 0 {
			_, _ = execCombined(append([]string{"scancel"}, mine...)...)
		}
	})
	// The first round's sbatch waits at the gate while the others are
	// started, so they are gathered into the next round's one group.
	for _, id := range ids {
		require.Equal(t, http.StatusOK, d.JSON(t, http.MethodPost, "/api/workflows/"+id+"/start", alice.Token, map[string]any{}, nil))
	}
	require.NoError(t, os.WriteFile(gate, nil, 0o644))
	var before int
	require.Eventually(t, func() bool {
		before, _ = knownToSlurm(t, ids)
		return before >= 20
	}, 2*time.Minute, 20*time.Millisecond)
	d.Kill()
	require.Less(t, before, n-5, "the kill came after the group was through")
	groups := regexp.MustCompile(`msg="submitting a group" component=engine backend=slurm jobs=(\d+)`).FindAllStringSubmatch(d.Output(), -1)
	require.NotEmpty(t, groups)
	biggest := 0
	for _, g := range groups {
		k, _ := strconv.Atoi(g[1])
		biggest = max(biggest, k)
	}
	require.GreaterOrEqual(t, biggest, 50, "the jobs went as one group: %v", groups)
	t.Logf("killed with %d of %d jobs in Slurm", before, n)

	d.Start()
	require.Eventually(t, func() bool {
		jobs, _ := knownToSlurm(t, ids)
		return jobs >= n
	}, 3*time.Minute, 200*time.Millisecond)
	for _, id := range ids {
		wf, code := alice.Status(t, id)
		require.Equal(t, http.StatusOK, code)
		assert.Contains(t, []string{"running", "finished"}, wf.Status, "workflow %s", id)
	}
	time.Sleep(2 * time.Second) // a second submission would show by now
	jobs, per := knownToSlurm(t, ids)
	assert.Equal(t, n, jobs)
	for _, id := range ids {
		assert.Equal(t, 1, per[id], "workflow %s: jobs in Slurm", id)
	}
}
