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
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/test/harness"
)

// oneCondorStep is a workflow of one HTCondor step running true.
var oneCondorStep = map[string]any{
	"version": "0.9.0",
	"workflow": map[string]any{"type": "serial", "specification": map[string]any{
		"steps": []map[string]any{{"name": "s", "environment": "docker.io/library/debian:12-slim",
			"compute_backend": "htcondorcern", "commands": []string{"true"}}},
	}},
}

// gatedCondorSubmit wraps the pool's commands: condor_submit waits for
// the file "open" in state, and a condor_submit of several jobs, once it
// has queued them, writes its parent's (the helper's) pid to
// state/helper.pid and waits for state/go before answering: the moment a
// helper killed after the schedd took the group, before it recorded the
// ids, is caught there.
func gatedCondorSubmit(t *testing.T, pool *harness.HTCondor) (binDir, state string) {
	t.Helper()
	binDir, err := os.MkdirTemp("", "reana-e2e-condor-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(binDir) })
	require.NoError(t, os.Chmod(binDir, 0o755))
	state = filepath.Join(binDir, "state")
	require.NoError(t, os.Mkdir(state, 0o777))
	require.NoError(t, os.Chmod(state, 0o777))
	for _, name := range []string{"condor_q", "condor_history", "condor_rm"} {
		require.NoError(t, os.WriteFile(filepath.Join(binDir, name), []byte("#!/bin/sh\nexec "+filepath.Join(pool.Bin, name)+" \"$@\"\n"), 0o755))
	}
	script := fmt.Sprintf(`#!/bin/sh
s=%[1]s
real=%[2]s
while [ ! -e $s/open ]; do sleep 0.05; done
for f; do :; done
[ "$f" = - ] || exec $real "$@"
d=$(cat)
out=$(printf '%%s\n' "$d" | $real "$@"); rc=$?
if [ $rc -eq 0 ] && [ $(printf '%%s\n' "$d" | grep -c '^queue') -gt 1 ] && mkdir $s/held 2>/dev/null; then
	echo $PPID >$s/helper.pid.new && mv $s/helper.pid.new $s/helper.pid
	while [ ! -e $s/go ]; do sleep 0.05; done
fi
printf '%%s\n' "$out"
exit $rc
`, state, filepath.Join(pool.Bin, "condor_submit"))
	require.NoError(t, os.WriteFile(filepath.Join(binDir, "condor_submit"), []byte(script), 0o755))
	return binDir, state
}

// TestHTCondorKillAfterAGroupWasQueued: the daemon and the user's helper
// are killed (-9) after one condor_submit queued a group of jobs and
// before the helper recorded their ids. After the restart every job is
// found in the schedd by its claim and attribute, and none is queued
// twice.
func TestHTCondorKillAfterAGroupWasQueued(t *testing.T) {
	const n = 12
	pool := harness.StartHTCondor(t, env)
	binDir, state := gatedCondorSubmit(t, pool)
	d := StartDaemon(t, "REANA_SITE_BACKENDS=local,htcondor", "REANA_SITE_HTCONDOR_BIN_DIR="+binDir,
		"REANA_SITE_HTCONDOR_CONFIG="+pool.Config)
	alice := d.AddUser(t, "alice")
	ids := createWorkflows(t, d, alice, "cgroup", oneCondorStep, n)
	// The first round's condor_submit waits at the gate while the others
	// are started, so they are gathered into the next round's one group.
	for _, id := range ids {
		require.Equal(t, http.StatusOK, d.JSON(t, http.MethodPost, "/api/workflows/"+id+"/start", alice.Token, map[string]any{}, nil))
	}
	require.NoError(t, os.WriteFile(filepath.Join(state, "open"), nil, 0o644))
	var helper int
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(filepath.Join(state, "helper.pid"))
		helper, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		return err == nil && helper > 0
	}, 2*time.Minute, 20*time.Millisecond, "no group reached the schedd")
	d.Kill()
	require.NoError(t, syscall.Kill(helper, syscall.SIGKILL), "kill the helper %d", helper)
	queued := 0
	for _, id := range ids {
		queued += len(condorJobs(t, pool, id))
	}
	require.Greater(t, queued, 1, "a group was queued before the kill")
	biggest := 0
	for _, g := range regexp.MustCompile(`msg="submitting a group" component=engine backend=htcondor jobs=(\d+)`).FindAllStringSubmatch(d.Output(), -1) {
		k, _ := strconv.Atoi(g[1])
		biggest = max(biggest, k)
	}
	require.GreaterOrEqual(t, biggest, n-1, "the jobs went as one group")
	t.Logf("killed with %d of %d jobs queued, the biggest group %d jobs", queued, n, biggest)
	require.NoError(t, os.WriteFile(filepath.Join(state, "go"), nil, 0o644))

	d.Start()
	require.Eventually(t, func() bool {
		for _, id := range ids {
			if len(condorJobs(t, pool, id)) == 0 {
				return false
			}
		}
		return true
	}, 3*time.Minute, 200*time.Millisecond)
	for _, id := range ids {
		require.Eventually(t, func() bool {
			wf, code := alice.Status(t, id)
			return code == http.StatusOK && wf.Status == "finished"
		}, 2*time.Minute, 200*time.Millisecond, "workflow %s", id)
	}
	time.Sleep(2 * time.Second) // a second submission would show by now
	for _, id := range ids {
		assertOneCondorJobPerCommand(t, pool, id, 1)
	}
}
