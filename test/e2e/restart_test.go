//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// crashRun starts the crash workflow (first, slow with `sleep seconds`,
// last; each command appends to runs.log) and kills -9 the daemon while
// the sleep runs.
func crashRun(t *testing.T, name string, seconds int) (*Daemon, *User, string) {
	t.Helper()
	d := StartDaemon(t)
	alice := d.AddUser(t, "alice")
	dir := alice.WorkDir(t, "crash")
	alice.MustClient(t, dir, "run", "-w", name, "-p", fmt.Sprintf("seconds=%d", seconds))
	wf := alice.WaitStatus(t, name+".1", time.Minute, "running")
	sleep := fmt.Sprintf("sleep %d", seconds)
	require.Eventually(t, func() bool {
		return len(stepProcesses(t, alice.UID, sleep)) > 0
	}, time.Minute, 20*time.Millisecond)
	d.Kill()
	return d, alice, d.WorkspaceOf(alice, wf.ID)
}

func assertEachStepOnce(t *testing.T, alice *User, name, ws string) {
	t.Helper()
	alice.WaitStatus(t, name+".1", 2*time.Minute, "finished")
	b, err := os.ReadFile(filepath.Join(ws, "runs.log"))
	require.NoError(t, err)
	assert.Equal(t, "first\nslow-start\nslow-end\nlast\n", string(b), "every command exactly once")
}

// TestKillDuringStepLosesNothing: kill -9 the daemon while a step runs;
// after the restart the workflow finishes, the finished step does not run
// again, and the running step is neither lost nor started twice.
func TestKillDuringStepLosesNothing(t *testing.T) {
	d, alice, ws := crashRun(t, "crash", 6)
	assert.NotEmpty(t, stepProcesses(t, alice.UID, "sleep 6"), "the step must survive the daemon's death")
	d.Start()
	assertEachStepOnce(t, alice, "crash", ws)
}

// TestStepEndsWhileDaemonIsDown: the step ends while the daemon is down;
// the restart picks up its result instead of running it again.
func TestStepEndsWhileDaemonIsDown(t *testing.T) {
	d, alice, ws := crashRun(t, "down", 2)
	require.Eventually(t, func() bool {
		return len(stepProcesses(t, alice.UID, "sleep 2")) == 0
	}, time.Minute, 100*time.Millisecond)
	d.Start()
	assertEachStepOnce(t, alice, "down", ws)
}
