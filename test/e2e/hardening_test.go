//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestSharedScratchHijackRefused is the attack on a workspace root in a
// shared writable directory (REANA_SITE_WORKSPACE_ROOT=/scratch/{user},
// /scratch mode 1777): before alice's first run, bob makes /scratch/alice
// himself, open to all. Were it accepted, bob could later swap
// workflows/<id> for a directory of his own holding the step's script, and
// alice's step would run bob's code as alice. reana-site refuses the root
// bob made, and once bob's directory is gone alice's own is used.
func TestSharedScratchHijackRefused(t *testing.T) {
	scratch, err := os.MkdirTemp("/tmp", "reana-e2e-scratch-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(scratch) })
	require.NoError(t, os.Chmod(scratch, os.ModeSticky|0o777))
	d := StartDaemon(t, "REANA_SITE_WORKSPACE_ROOT="+scratch+"/{user}")
	alice, bob := d.AddUser(t, "alice"), d.AddUser(t, "bob")

	planted := filepath.Join(scratch, "alice")
	out, code := bob.Run(t, "/", nil, "mkdir", "-m", "0777", planted)
	require.Zero(t, code, out)
	dir := alice.WorkDir(t, "sleepy")
	out, code = alice.Client(t, dir, "create", "-w", "hijack")
	require.NotZero(t, code, out)
	assert.Contains(t, out, "owned by uid")
	assert.Contains(t, out, planted)
	// Nothing of alice's was written into bob's directory.
	entries, err := os.ReadDir(planted)
	require.NoError(t, err)
	assert.Empty(t, entries)

	out, code = bob.Run(t, "/", nil, "rmdir", planted)
	require.Zero(t, code, out)
	alice.MustClient(t, dir, "run", "-w", "hijack", "-p", "seconds=1")
	alice.WaitStatus(t, "hijack.1", 2*time.Minute, "finished")
	fi, err := os.Stat(planted)
	require.NoError(t, err)
	st := fi.Sys().(*syscall.Stat_t)
	assert.Equal(t, uint32(alice.UID), st.Uid, "alice's root is hers")
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())
	// bob can neither look into nor rename anything below it.
	out, code = bob.Run(t, "/", nil, "mv", planted, planted+"-taken")
	assert.NotZero(t, code, out)
}
