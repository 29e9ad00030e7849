package jobscript

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

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
