//go:build e2e

package e2e

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/batch/jobscript"
	"github.com/reana-site/reana-site/containers"
	"github.com/reana-site/reana-site/test/harness"
)

// realApptainer is where test/setup.sh's optional kit (the real Apptainer
// 1.4.5 of /work/shared/vendor/apptainer) installs; tests that need the
// real behaviour run against it when it is there.
const realApptainer = "/opt/apptainer-1.4.5/bin/apptainer"

// apptainers are the programs the container tests can run against: the
// stand-in always, the real Apptainer when installed.
func apptainers(t *testing.T) map[string]string {
	t.Helper()
	if env.Apptainer == "" || env.Images == "" {
		t.Skip("no Apptainer stand-in or test images: run test/setup.sh")
	}
	out := map[string]string{"standin": env.Apptainer}
	if _, err := os.Stat(realApptainer); err == nil {
		out["apptainer-1.4.5"] = realApptainer
	}
	return out
}

// TestContainersScriptSignalEndsStep: HTCondor stops a job by sending
// SIGTERM to the job script alone, not to its process group. The script
// must pass it on to apptainer and wait, so that no process of the step
// is left behind (with --pid the step's PID namespace ends with the
// payload), and still record the exit status.
func TestContainersScriptSignalEndsStep(t *testing.T) {
	for name, prog := range apptainers(t) {
		t.Run(name, func(t *testing.T) {
			u, err := user.Lookup("alice")
			require.NoError(t, err)
			uid, _ := strconv.Atoi(u.Uid)
			gid, _ := strconv.Atoi(u.Gid)
			dir, err := os.MkdirTemp(u.HomeDir, ".reana-e2e-signal-")
			require.NoError(t, err)
			t.Cleanup(func() { os.RemoveAll(dir) })
			ws, jd := filepath.Join(dir, "ws"), filepath.Join(dir, "job")
			for _, d := range []string{dir, ws, jd} {
				require.NoError(t, os.MkdirAll(d, 0o700))
				require.NoError(t, os.Chown(d, uid, gid))
			}

			// The marker is a sleep length no other process has.
			n, err := rand.Int(rand.Reader, big.NewInt(1e9))
			require.NoError(t, err)
			marker := fmt.Sprintf("3600.%09d", n.Int64())
			spec := batch.Spec{JobID: "j1", WorkflowName: "w.1", StepName: "s", Workspace: ws, JobDir: jd,
				Env: map[string]string{"REANA_WORKSPACE": ws}}
			runner, err := containers.ExecArgs(containers.Config{Apptainer: prog},
				containers.Resolved{Path: filepath.Join(env.Images, "debian-12-slim")}, spec)
			require.NoError(t, err)
			script, err := jobscript.Render(spec, jobscript.Options{Runner: runner})
			require.NoError(t, err)
			command := "trap 'exit 7' TERM; sleep " + marker + " & sleep " + marker + " & echo started > started; wait"
			for name, body := range map[string]string{asuser.ScriptFile: script, asuser.CommandFile: command} {
				require.NoError(t, os.WriteFile(filepath.Join(jd, name), []byte(body), 0o700))
				require.NoError(t, os.Chown(filepath.Join(jd, name), uid, gid))
			}

			cmd := exec.Command("setpriv", "--reuid=alice", "--regid=alice", "--init-groups", "--reset-env",
				"/bin/sh", filepath.Join(jd, asuser.ScriptFile))
			cmd.Dir = "/"
			out := &strings.Builder{}
			cmd.Stdout, cmd.Stderr = out, out
			// Its own session: the signal below goes to the script's pid
			// only, and the clean-up can reach whatever is left.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
			require.NoError(t, cmd.Start())
			script0 := cmd.Process.Pid
			t.Cleanup(func() {
				for _, p := range harness.MarkedPIDs(marker) {
					_ = syscall.Kill(p, syscall.SIGKILL)
				}
				_ = syscall.Kill(-script0, syscall.SIGKILL)
			})
			require.Eventually(t, func() bool {
				_, err := os.Stat(filepath.Join(ws, "started"))
				return err == nil && len(harness.MarkedPIDs(marker)) == 2
			}, 30*time.Second, 50*time.Millisecond, "the step did not start:\n%s", out)

			require.NoError(t, syscall.Kill(script0, syscall.SIGTERM))
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatalf("the job script did not end after SIGTERM:\n%s", out)
			}
			assert.Eventually(t, func() bool { return len(harness.MarkedPIDs(marker)) == 0 }, 10*time.Second, 100*time.Millisecond,
				"processes of the step outlived the job script: %v", harness.MarkedPIDs(marker))
			exit, err := os.ReadFile(filepath.Join(jd, asuser.ExitFile))
			require.NoError(t, err, "the script must record the exit status:\n%s", out)
			assert.Equal(t, "7", strings.TrimSpace(string(exit)), "the step's TERM trap ran and its status was kept:\n%s", out)
		})
	}
}
