package jobscript

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
)

// secretsJob lays out a workspace, a job directory and a secret directory
// with the given files (type/name → value), renders the script and runs
// it with PATH extended by bin (fake kinit/kdestroy), and returns the job
// directory, the exit status and the log.
func secretsJob(t *testing.T, secrets map[string]string, s batch.Secrets, command, bin string) (jd, exit, log string) {
	t.Helper()
	dir := t.TempDir()
	ws, sec := filepath.Join(dir, "ws"), filepath.Join(dir, "secrets")
	jd = filepath.Join(dir, "job")
	for _, d := range []string{ws, jd, filepath.Join(sec, asuser.SecretsEnvDir), filepath.Join(sec, asuser.SecretsFileDir)} {
		require.NoError(t, os.MkdirAll(d, 0o700))
	}
	for rel, v := range secrets {
		require.NoError(t, os.WriteFile(filepath.Join(sec, rel), []byte(v), 0o600))
	}
	s.Dir = sec
	spec := batch.Spec{JobID: "j1", WorkflowName: "w.1", StepName: "s", Workspace: ws, JobDir: jd, Secrets: s}
	script, err := Render(spec, Options{RedirectOutput: true})
	require.NoError(t, err)
	for k, v := range secrets {
		if strings.HasPrefix(k, asuser.SecretsEnvDir+"/") {
			assert.NotContains(t, script, v, "no value is in the script")
		}
	}
	require.NoError(t, os.WriteFile(filepath.Join(jd, asuser.ScriptFile), []byte(script), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(jd, asuser.CommandFile), []byte(command), 0o600))
	cmd := exec.Command("/bin/sh", filepath.Join(jd, asuser.ScriptFile))
	cmd.Env = append(os.Environ(), "PATH="+bin+":"+os.Getenv("PATH"))
	_ = cmd.Run()
	e, err := os.ReadFile(filepath.Join(jd, asuser.ExitFile))
	require.NoError(t, err)
	l, err := os.ReadFile(filepath.Join(jd, asuser.OutputFile))
	require.NoError(t, err)
	return jd, strings.TrimSpace(string(e)), string(l)
}

func TestSecretsReachTheCommand(t *testing.T) {
	tricky := "it's a \"$HOME\" `x`\nsecond line\n\n"
	jd, exit, log := secretsJob(t, map[string]string{
		"env/TOKEN":            tricky,
		"env/PLAIN":            "plain-value",
		"file/.keytab":         "KEYTAB-BYTES",
		"file/user.pem":        "PEM",
		"file/.reana-upload-x": "half written",
	}, batch.Secrets{}, `printf '%s' "$TOKEN" | od -c | head -3; ls -A "$REANA_SECRETS_DIR"; stat -c %a "$REANA_SECRETS_DIR" "$REANA_SECRETS_DIR/.keytab"; cat "$REANA_SECRETS_DIR/.keytab"; echo; echo "plain=$PLAIN"`, "")
	require.Equal(t, "0", exit, log)
	assert.Contains(t, log, ".keytab\nuser.pem\n")
	assert.NotContains(t, log, ".reana-upload-")
	assert.Contains(t, log, "700\n600\n")
	assert.Contains(t, log, "KEYTAB-BYTES")
	assert.Contains(t, log, "plain=plain-value")
	assert.Contains(t, log, `l   i   n   e  \n  \n`+"\n", "the trailing newlines of a value are kept")
	_, err := os.Stat(filepath.Join(jd, asuser.SecretsJobDir))
	assert.ErrorIs(t, err, os.ErrNotExist, "the copies are gone once the job ended")
}

func TestSecretsRefuseALinkedDirectory(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "elsewhere")
	require.NoError(t, os.MkdirAll(filepath.Join(real, "env"), 0o700))
	link := filepath.Join(dir, "secrets")
	require.NoError(t, os.Symlink(real, link))
	ws, jd := filepath.Join(dir, "ws"), filepath.Join(dir, "job")
	require.NoError(t, os.MkdirAll(ws, 0o700))
	require.NoError(t, os.MkdirAll(jd, 0o700))
	script, err := Render(batch.Spec{JobID: "j", Workspace: ws, JobDir: jd, Secrets: batch.Secrets{Dir: link}}, Options{RedirectOutput: true})
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(jd, asuser.ScriptFile), []byte(script), 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(jd, asuser.CommandFile), []byte("true"), 0o600))
	_ = exec.Command("/bin/sh", filepath.Join(jd, asuser.ScriptFile)).Run()
	exit, _ := os.ReadFile(filepath.Join(jd, asuser.ExitFile))
	assert.Equal(t, "127", strings.TrimSpace(string(exit)))
	log, _ := os.ReadFile(filepath.Join(jd, asuser.OutputFile))
	assert.Contains(t, string(log), "symbolic link")
}

// fakeKrb is a kinit that records its arguments and KRB5CCNAME and makes
// the cache, and a kdestroy that removes it.
func fakeKrb(t *testing.T) string {
	bin := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(bin, "kinit"), []byte(`#!/bin/sh
[ "$(cat "$3")" = good ] || { echo "kinit: Password incorrect while getting initial credentials" >&2; exit 1; }
echo "$@ $KRB5CCNAME" > "`+bin+`/kinit.args"; echo ticket > "${KRB5CCNAME#FILE:}"
`), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(bin, "kdestroy"), []byte(`#!/bin/sh
rm -f "${KRB5CCNAME#FILE:}"; echo done > "`+bin+`/kdestroy.ran"
`), 0o755))
	return bin
}

func TestKerberos(t *testing.T) {
	krb := batch.Secrets{Kerberos: true, KeytabSecrets: []string{"CERN_KEYTAB", "SITE_KEYTAB"}, UserSecrets: []string{"CERN_USER"}}
	tests := []struct {
		name     string
		secrets  map[string]string
		wantExit string
		wantLog  string
	}{
		{"a ticket for the command", map[string]string{"env/CERN_KEYTAB": ".keytab", "env/CERN_USER": "alice@SITE.TEST", "file/.keytab": "good"}, "0", "cache=FILE:"},
		{"a site-named keytab secret", map[string]string{"env/SITE_KEYTAB": "k.tab", "env/CERN_USER": "alice", "file/k.tab": "good"}, "0", "cache=FILE:"},
		{"no keytab secret", map[string]string{"env/CERN_USER": "alice"}, "1", "add it with reana-client secrets-add --file KEYTAB --env CERN_KEYTAB=KEYTAB"},
		{"the keytab file is missing", map[string]string{"env/CERN_KEYTAB": ".keytab", "env/CERN_USER": "alice"}, "1", "the keytab .keytab that CERN_KEYTAB names is not among your file secrets"},
		{"no principal", map[string]string{"env/CERN_KEYTAB": ".keytab", "file/.keytab": "good"}, "1", "--env CERN_USER=PRINCIPAL"},
		{"a wrong keytab", map[string]string{"env/CERN_KEYTAB": ".keytab", "env/CERN_USER": "alice", "file/.keytab": "bad"}, "1", "kinit with the keytab .keytab for alice failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bin := fakeKrb(t)
			jd, exit, log := secretsJob(t, tt.secrets, krb, `echo "cache=$KRB5CCNAME"; cat "${KRB5CCNAME#FILE:}"`, bin)
			require.Equal(t, tt.wantExit, exit, log)
			assert.Contains(t, log, tt.wantLog)
			if exit != "0" {
				return
			}
			assert.Contains(t, log, "cache=FILE:"+filepath.Join(jd, asuser.SecretsJobDir, asuser.KrbCacheFile)+"\nticket\n")
			_, err := os.Stat(filepath.Join(bin, "kdestroy.ran"))
			assert.NoError(t, err, "kdestroy ran after the command")
		})
	}
}
