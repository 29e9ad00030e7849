package jobscript

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
)

func TestQuote(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"", "''"},
		{"abc", "'abc'"},
		{"it's", `'it'\''s'`},
		{"$(rm -rf /)", "'$(rm -rf /)'"},
	} {
		require.Equal(t, tc.want, Quote(tc.in))
	}
}

func TestRenderRuns(t *testing.T) {
	for _, tc := range []struct {
		name     string
		command  string
		wantExit string
		wantOut  string
		wantFile string
	}{
		{"success", `echo "hello $REANA_WORKFLOW_UUID"; pwd > where`, "0", "hello wf-1", "where"},
		{"failure", "echo oops >&2; exit 3", "3", "oops", ""},
		{"quotes and newlines", "printf '%s\\n' \"it's\"\necho 'second line'", "0", "it's\nsecond line", ""},
		{"missing command", "no-such-command-xyz", "127", "not found", ""},
		{"shell state does not leak", "cd /; export X=1; true", "0", "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ws := filepath.Join(dir, "ws")
			jd := filepath.Join(dir, "job")
			require.NoError(t, os.MkdirAll(ws, 0o700))
			require.NoError(t, os.MkdirAll(jd, 0o700))
			spec := batch.Spec{JobID: "j1", WorkflowName: "w.1", StepName: "s", Workspace: ws, JobDir: jd,
				Env: map[string]string{"REANA_WORKSPACE": ws, "REANA_WORKFLOW_UUID": "wf-1"}}
			script, err := Render(spec, Options{WritePID: true, RedirectOutput: true})
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(jd, asuser.ScriptFile), []byte(script), 0o700))
			require.NoError(t, os.WriteFile(filepath.Join(jd, asuser.CommandFile), []byte(tc.command), 0o600))
			out, err := exec.Command("/bin/sh", filepath.Join(jd, asuser.ScriptFile)).CombinedOutput()
			if tc.wantExit == "0" {
				require.NoError(t, err, string(out))
			}
			exit, err := os.ReadFile(filepath.Join(jd, asuser.ExitFile))
			require.NoError(t, err)
			require.Equal(t, tc.wantExit, strings.TrimSpace(string(exit)))
			log, err := os.ReadFile(filepath.Join(jd, asuser.OutputFile))
			require.NoError(t, err)
			require.Contains(t, string(log), tc.wantOut)
			_, err = os.Stat(filepath.Join(jd, asuser.PIDFile))
			require.NoError(t, err)
			if tc.wantFile != "" {
				b, err := os.ReadFile(filepath.Join(ws, tc.wantFile))
				require.NoError(t, err)
				require.Equal(t, ws, strings.TrimSpace(string(b)))
			}
		})
	}
}

func TestRenderRejects(t *testing.T) {
	_, err := Render(batch.Spec{Workspace: "rel", JobDir: "/x"}, Options{})
	require.Error(t, err)
	_, err = Render(batch.Spec{Workspace: "/w", JobDir: "/x", Env: map[string]string{"BAD NAME": "x"}}, Options{})
	require.Error(t, err)
}

func TestRenderPreambleAndRunner(t *testing.T) {
	dir := t.TempDir()
	ws, jd := filepath.Join(dir, "ws"), filepath.Join(dir, "job")
	require.NoError(t, os.MkdirAll(ws, 0o700))
	require.NoError(t, os.MkdirAll(jd, 0o700))
	spec := batch.Spec{JobID: "j1", Workspace: ws, JobDir: jd}
	// The runner gets "-c" and the command as its last two arguments.
	script, err := Render(spec, Options{RedirectOutput: true, Preamble: "reana-site: image 'x' $(not run)\n",
		Runner: []string{"/bin/sh", "-c", `echo "runner got $1 $2"`, "runner"}})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(jd, asuser.ScriptFile), []byte(script), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(jd, asuser.CommandFile), []byte("true"), 0o600))
	require.NoError(t, exec.Command("/bin/sh", filepath.Join(jd, asuser.ScriptFile)).Run())
	log, err := os.ReadFile(filepath.Join(jd, asuser.OutputFile))
	require.NoError(t, err)
	require.Equal(t, "reana-site: image 'x' $(not run)\nrunner got -c true\n", string(log))
}

// TestSignalToScriptReachesCommand: a scheduler that signals the job
// script's pid alone (HTCondor's first SIGTERM) must stop the command too,
// and the script must still record the command's exit status.
func TestSignalToScriptReachesCommand(t *testing.T) {
	for _, tc := range []struct {
		name     string
		sig      syscall.Signal
		wantExit string
	}{
		{"TERM", syscall.SIGTERM, "7"},
		{"INT is passed on as TERM", syscall.SIGINT, "7"},
		{"HUP", syscall.SIGHUP, "8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			ws, jd := filepath.Join(dir, "ws"), filepath.Join(dir, "job")
			require.NoError(t, os.MkdirAll(ws, 0o700))
			require.NoError(t, os.MkdirAll(jd, 0o700))
			spec := batch.Spec{JobID: "j1", Workspace: ws, JobDir: jd}
			script, err := Render(spec, Options{RedirectOutput: true, WritePID: true})
			require.NoError(t, err)
			require.NoError(t, os.WriteFile(filepath.Join(jd, asuser.ScriptFile), []byte(script), 0o700))
			command := `trap 'exit 7' TERM; trap 'exit 8' HUP; sleep 60 & echo $! > sleeper; wait`
			require.NoError(t, os.WriteFile(filepath.Join(jd, asuser.CommandFile), []byte(command), 0o600))
			cmd := exec.Command("/bin/sh", filepath.Join(jd, asuser.ScriptFile))
			// Its own process group, so that the test's signal goes to the
			// script's pid and nowhere else.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			require.NoError(t, cmd.Start())
			t.Cleanup(func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
			var sleeper int
			require.Eventually(t, func() bool {
				b, err := os.ReadFile(filepath.Join(ws, "sleeper"))
				sleeper, _ = strconv.Atoi(strings.TrimSpace(string(b)))
				return err == nil && sleeper > 0
			}, 10*time.Second, 20*time.Millisecond, "the command did not start")
			require.NoError(t, cmd.Process.Signal(tc.sig))
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatal("the script did not end after the signal")
			}
			exit, err := os.ReadFile(filepath.Join(jd, asuser.ExitFile))
			require.NoError(t, err, "the script must record the exit status")
			require.Equal(t, tc.wantExit, strings.TrimSpace(string(exit)))
			// The shell that ran the command is gone (its sleep, orphaned by
			// the step's own trap, is the step's business, and is killed here).
			_ = syscall.Kill(sleeper, syscall.SIGKILL)
		})
	}
}
