package harness

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/asuser"
)

// JobDirs are a step's workspace and job directory in a fresh directory
// of a test user's home, all the user's own, for tests that run the job
// script themselves, as the user, without a daemon.
type JobDirs struct {
	User              string
	UID, GID          int
	Workspace, JobDir string
}

// NewJobDirs makes them for the test user name (a prefix names the
// directory, for whoever finds one left over); they are removed when the
// test ends.
func NewJobDirs(t testing.TB, name, prefix string) JobDirs {
	t.Helper()
	u, err := user.Lookup(name)
	require.NoError(t, err, "test user %s (run test/setup.sh)", name)
	j := JobDirs{User: name}
	j.UID, _ = strconv.Atoi(u.Uid)
	j.GID, _ = strconv.Atoi(u.Gid)
	dir, err := os.MkdirTemp(u.HomeDir, prefix)
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	j.Workspace, j.JobDir = filepath.Join(dir, "ws"), filepath.Join(dir, "job")
	for _, d := range []string{dir, j.Workspace, j.JobDir} {
		require.NoError(t, os.MkdirAll(d, 0o700))
		require.NoError(t, os.Chown(d, j.UID, j.GID))
	}
	return j
}

// WriteJob puts the job script and the step's command into the job
// directory, as the user's files.
func (j JobDirs) WriteJob(t testing.TB, script, command string) {
	t.Helper()
	for name, body := range map[string]string{asuser.ScriptFile: script, asuser.CommandFile: command} {
		p := filepath.Join(j.JobDir, name)
		require.NoError(t, os.WriteFile(p, []byte(body), 0o700))
		require.NoError(t, os.Chown(p, j.UID, j.GID))
	}
}

// Command runs the job script as the user, with a clean environment,
// from /, as the backends do.
func (j JobDirs) Command() *exec.Cmd {
	cmd := exec.Command("setpriv", "--reuid="+j.User, "--regid="+j.User, "--init-groups", "--reset-env",
		"/bin/sh", filepath.Join(j.JobDir, asuser.ScriptFile))
	cmd.Dir = "/"
	return cmd
}
