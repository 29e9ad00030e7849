//go:build e2e

package e2e

import (
	"encoding/base64"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/test/harness"
)

// secretsDirOf is where the daemon keeps a user's secrets.
func secretsDirOf(d *Daemon, u *User) string {
	return strings.NewReplacer("{home}", u.Home, "{user}", u.Name).Replace(d.SecretsRoot)
}

// addSecrets gives u an env secret TOKEN and a file secret key.pem with
// fresh random values, through the real reana-client, and returns them.
func addSecrets(t *testing.T, u *User, dir string) (token, key string) {
	t.Helper()
	token, key = "tok-"+harness.RandomHex(12), "key-"+harness.RandomHex(12)
	out, code := u.Run(t, dir, nil, "sh", "-c", `umask 077; printf '%s\n' "$1" > key.pem`, "sh", key)
	require.Zero(t, code, out)
	out = u.MustClient(t, dir, "secrets-add", "--env", "TOKEN="+token, "--file", filepath.Join(dir, "key.pem"))
	assert.Contains(t, out, "successfully uploaded")
	require.NoError(t, os.Remove(filepath.Join(dir, "key.pem")))
	return token, key
}

func TestSecretsWithTheRealClient(t *testing.T) {
	d := StartDaemon(t)
	alice, bob := d.AddUser(t, "alice"), d.AddUser(t, "bob")
	dir, bobDir := alice.WorkDir(t, ""), bob.WorkDir(t, "")
	token, key := addSecrets(t, alice, dir)

	out := alice.MustClient(t, dir, "secrets-list")
	assert.Regexp(t, `TOKEN\s+env`, out)
	assert.Regexp(t, `key.pem\s+file`, out)
	assert.NotContains(t, out, token)
	assert.NotContains(t, out, key)

	out, code := alice.Client(t, dir, "secrets-add", "--env", "TOKEN=again")
	assert.NotZero(t, code)
	assert.Contains(t, out, "already exists")
	out = alice.MustClient(t, dir, "secrets-add", "--overwrite", "--env", "TOKEN=replaced")
	assert.Contains(t, out, "successfully uploaded")
	b, err := os.ReadFile(filepath.Join(secretsDirOf(d, alice), "env", "TOKEN"))
	require.NoError(t, err)
	assert.Equal(t, "replaced", string(b))

	// bob sees nothing of alice's, and his helper cannot read her directory.
	out = bob.MustClient(t, bobDir, "secrets-list")
	assert.NotContains(t, out, "TOKEN")
	assert.NotContains(t, out, "key.pem")
	out, code = bob.Run(t, "/", nil, "cat", filepath.Join(secretsDirOf(d, alice), "env", "TOKEN"))
	assert.NotZero(t, code, out)
	assert.NotContains(t, out, "replaced")
	out, code = bob.Client(t, bobDir, "secrets-delete", "TOKEN")
	assert.NotZero(t, code)
	assert.Contains(t, out, "do not exist")

	out = alice.MustClient(t, dir, "secrets-delete", "TOKEN")
	assert.Contains(t, out, "successfully deleted")
	out, code = alice.Client(t, dir, "secrets-delete", "TOKEN")
	assert.NotZero(t, code)
	assert.Contains(t, out, "Secrets TOKEN do not exist")

	// A bad name is refused with the reason (shown by the client with
	// debug logging: 0.9.6 prints only "Something went wrong" otherwise).
	out, code = alice.Client(t, dir, "--loglevel", "DEBUG", "secrets-add", "--env", "REANA_WORKSPACE=x")
	assert.NotZero(t, code)
	assert.Contains(t, out, "reserved")

	out, err = d.Admin("secrets", "list", "alice")
	require.NoError(t, err)
	assert.Contains(t, out, "key.pem")
	assert.NotContains(t, out, key)

	out, err = d.Admin("user", "remove", "alice")
	require.NoError(t, err, out)
	assert.Contains(t, out, "1 secret(s) of alice removed")
	assert.NoDirExists(t, secretsDirOf(d, alice))
	assert.NoFileExists(t, filepath.Join(secretsDirOf(d, alice), "file", "key.pem"))
}

// oneStep is a serial workflow of one step that runs command (with $$
// for $: REANA's serial engine expands $name as a parameter) on backend
// ("" or "local": the site's default), with resources (YAML lines of
// workflow.resources, or "").
func oneStep(backend, resources, command string) string {
	cb := ""
	if backend != "" && backend != "local" {
		cb = "\n        compute_backend: " + backend
	}
	if resources != "" {
		resources = "  resources:\n    " + resources + "\n"
	}
	return `version: 0.9.0
workflow:
  type: serial
` + resources + `  specification:
    steps:
      - name: step
        environment: docker.io/library/debian:12-slim` + cb + `
        commands:
          - ` + command + "\n"
}

// secretsSpec records what the step saw of the secrets (digests only, so
// no value reaches the workspace or the log) and sleeps, so the test can
// look at the processes.
func secretsSpec(backend string) string {
	return oneStep(backend, "", `printf '%s' "$$TOKEN" | sha256sum > env.sum; sha256sum < "$$REANA_SECRETS_DIR/key.pem" > file.sum; stat -c %a "$$REANA_SECRETS_DIR" > dir.mode; echo "$$REANA_SECRETS_DIR" > dir.path; sleep 4`)
}

func TestSecretsReachSteps(t *testing.T) {
	for _, backend := range []string{"local", "slurmcern", "htcondorcern", "kubernetes"} {
		t.Run(backend, func(t *testing.T) {
			var extra []string
			wantDir := "" // a private directory in the job's directory
			switch backend {
			case "slurmcern":
				harness.EnsureSlurm(t, env.Repo)
				extra = []string{"REANA_SITE_BACKENDS=local,slurm"}
			case "kubernetes":
				extra = harness.StartKubernetes(t, env).DaemonEnv()
				wantDir = "/etc/reana/secrets" // the pod's Secret's volume
			case "htcondorcern":
				pool := harness.StartHTCondor(t, env)
				extra = append([]string{"REANA_SITE_BACKENDS=local,htcondor"}, pool.DaemonEnv()...)
			}
			d := StartDaemon(t, extra...)
			alice := d.AddUser(t, "alice")
			dir := alice.WorkDir(t, "")
			token, key := addSecrets(t, alice, dir)
			runSecretsStep(t, d, alice, dir, secretsSpec(backend), token, key, wantDir)
		})
	}
}

func TestSecretsReachContainerSteps(t *testing.T) {
	d, alice := containerDaemon(t, false)
	dir := alice.WorkDir(t, "")
	token, key := addSecrets(t, alice, dir)
	runSecretsStep(t, d, alice, dir, secretsSpec("local"), token, key, "/etc/reana/secrets")
}

// runSecretsStep runs the workflow and checks that the step saw both
// secrets, and that neither value shows in any process's argv while it
// ran, in the logs, the status, the daemon's output, or a file left in the
// job directory.
func runSecretsStep(t *testing.T, d *Daemon, u *User, dir, spec, token, key, wantDir string) {
	t.Helper()
	out, code := u.Run(t, dir, nil, "sh", "-c", `printf '%s' "$1" > reana.yaml`, "sh", spec)
	require.Zero(t, code, out)
	out, code = u.Client(t, dir, "run", "-w", "secret")
	require.Zero(t, code, "%s\nlogs: %s", out, u.Logs(t, "secret.1"))

	// Every process's argv, as ps shows it to anyone, while the step runs.
	var seen strings.Builder // written by the sampler only until stop returns
	stop := harness.Every(200*time.Millisecond, func() {
		o, _ := exec.Command("ps", "-eo", "args").CombinedOutput()
		seen.Write(o)
	})
	wf := u.WaitStatus(t, "secret.1", 3*time.Minute, "finished", "failed")
	stop()
	logs := u.Logs(t, "secret.1")
	require.Equal(t, "finished", wf.Status, logs)
	assert.Contains(t, seen.String(), "sleep 4", "ps ran while the step ran")
	assert.NotContains(t, seen.String(), token)
	assert.NotContains(t, seen.String(), key)

	ws := d.WorkspaceOf(u, wf.ID)
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(ws, name))
		require.NoError(t, err)
		return strings.TrimSpace(string(b))
	}
	digest := func(s string) string {
		o, err := exec.Command("sh", "-c", `printf '%s' "$1" | sha256sum`, "sh", s).Output()
		require.NoError(t, err)
		return strings.TrimSpace(string(o))
	}
	assert.Equal(t, digest(token), read("env.sum"), "the env secret reached the step")
	assert.Equal(t, digest(key+"\n"), read("file.sum"), "the file secret reached the step")
	// The user's only (a Kubernetes secret volume is read-only: 0500).
	assert.Regexp(t, `^[57]00$`, read("dir.mode"))
	if wantDir != "" {
		assert.Equal(t, wantDir, read("dir.path"))
	}

	status := u.MustClient(t, dir, "status", "-w", "secret.1", "-v", "--json")
	for _, text := range []string{logs, status, u.MustClient(t, dir, "logs", "-w", "secret.1"), d.Output()} {
		assert.NotContains(t, text, token)
		assert.NotContains(t, text, key)
	}
	jobs := filepath.Join(filepath.Dir(filepath.Dir(ws)), "jobs", wf.ID)
	o, _ := exec.Command("grep", "-rls", "-e", token, "-e", key, jobs).CombinedOutput()
	assert.Empty(t, strings.TrimSpace(string(o)), "no file of the job directory holds a value")
	left, _ := filepath.Glob(filepath.Join(jobs, "*", "secrets"))
	assert.Empty(t, left, "the job's secret directory is gone")
}

// kerberosSpec is a step with REANA's kerberos: true that lists its
// ticket cache.
func kerberosSpec(backend string) string {
	return oneStep(backend, "kerberos: true", `klist > klist.txt; echo "$$KRB5CCNAME" > ccname.txt`)
}

// TestKerberosFromSecrets runs kerberos: true against the real MIT KDC:
// the step's klist shows the user's principal, from a cache of its own
// that is gone afterwards; a keytab of another principal, or none, fails
// the step saying what to do.
func TestKerberosFromSecrets(t *testing.T) {
	kdc := harness.StartKDC(t)
	harness.EnsureSlurm(t, env.Repo)
	d := StartDaemon(t, "REANA_SITE_KERBEROS_CONFIG="+kdc.Config, "REANA_SITE_BACKENDS=local,slurm")
	alice := d.AddUser(t, "alice")
	addKeytab := func(t *testing.T, dir, principal string) {
		t.Helper()
		b, err := os.ReadFile(kdc.Keytab(principal))
		require.NoError(t, err)
		p := filepath.Join(dir, "alice.keytab")
		require.NoError(t, os.WriteFile(p, b, 0o600))
		require.NoError(t, os.Chown(p, alice.UID, alice.GID))
		alice.MustClient(t, dir, "secrets-add", "--overwrite", "--file", p, "--env", "CERN_KEYTAB=alice.keytab", "--env", "CERN_USER=alice")
	}
	run := func(t *testing.T, dir, name string, backend ...string) (Workflow, string) {
		t.Helper()
		out, code := alice.Run(t, dir, nil, "sh", "-c", `printf '%s' "$1" > reana.yaml`, "sh", kerberosSpec(strings.Join(backend, "")))
		require.Zero(t, code, out)
		alice.MustClient(t, dir, "run", "-w", name)
		wf := alice.WaitStatus(t, name+".1", 2*time.Minute, "finished", "failed")
		return wf, alice.Logs(t, name+".1")
	}

	t.Run("no keytab", func(t *testing.T) {
		dir := alice.WorkDir(t, "")
		wf, logs := run(t, dir, "nokeytab")
		require.Equal(t, "failed", wf.Status, logs)
		assert.Contains(t, logs, "kerberos: true needs your keytab")
		assert.Contains(t, logs, "--env CERN_KEYTAB=KEYTAB")
	})
	for _, backend := range []string{"", "slurmcern"} {
		t.Run("a ticket for the step "+backend, func(t *testing.T) {
			dir := alice.WorkDir(t, "")
			addKeytab(t, dir, "alice")
			wf, logs := run(t, dir, "krb"+backend, backend)
			require.Equal(t, "finished", wf.Status, logs)
			checkTicket(t, d, alice, kdc, wf)
		})
	}
	t.Run("a wrong keytab", func(t *testing.T) {
		dir := alice.WorkDir(t, "")
		addKeytab(t, dir, "bob") // bob's keys, named as alice's
		wf, logs := run(t, dir, "wrongkt")
		require.Equal(t, "failed", wf.Status, logs)
		assert.Contains(t, logs, "kinit with the keytab alice.keytab for alice failed")
	})
}

// checkTicket: the step's klist showed alice's ticket, from a cache in
// its own job directory that is gone now.
func checkTicket(t *testing.T, d *Daemon, alice *User, kdc *harness.KDC, wf Workflow) {
	t.Helper()
	ws := d.WorkspaceOf(alice, wf.ID)
	b, err := os.ReadFile(filepath.Join(ws, "klist.txt"))
	require.NoError(t, err)
	assert.Contains(t, string(b), "Default principal: alice@"+kdc.Realm)
	assert.Contains(t, string(b), "krbtgt/"+kdc.Realm)
	cc, err := os.ReadFile(filepath.Join(ws, "ccname.txt"))
	require.NoError(t, err)
	cache := strings.TrimPrefix(strings.TrimSpace(string(cc)), "FILE:")
	jobs := filepath.Join(filepath.Dir(filepath.Dir(ws)), "jobs", wf.ID)
	assert.True(t, strings.HasPrefix(cache, jobs+"/"), "the cache %s is the job's own", cache)
	assert.NoFileExists(t, cache, "the ticket cache is gone after the step")
}

// TestSecretsBadInput: through the real daemon and helper, every refusal
// says why, and nothing is stored, least of all through a secret
// directory that was replaced by a symbolic link.
func TestSecretsBadInput(t *testing.T) {
	d := StartDaemon(t, "REANA_SITE_MAX_SECRET_BYTES=1048576")
	alice := d.AddUser(t, "alice")
	add := func(body string) (int, string) {
		code, b, err := d.Do("POST", "/api/secrets/?overwrite=false", alice.Token, strings.NewReader(body), "Content-Type", "application/json")
		require.NoError(t, err)
		return code, string(b)
	}
	big := base64.StdEncoding.EncodeToString(make([]byte, 10<<20))
	for _, tt := range []struct{ body, msg string }{
		{`{"a/b": {"value": "dg==", "type": "file"}}`, "must not contain '/'"},
		{`{"..": {"value": "dg==", "type": "file"}}`, "'..'"},
		{`{"A=B": {"value": "dg==", "type": "env"}}`, "'='"},
		{`{"A\u0000B": {"value": "dg==", "type": "env"}}`, "NUL"},
		{`{"big": {"value": "` + big + `", "type": "file"}}`, "at most 1 MiB"},
		{`{"A": {"value": "%%% not base64", "type": "env"}}`, "not base64"},
	} {
		code, body := add(tt.body)
		assert.Equal(t, http.StatusForbidden, code, body)
		assert.Contains(t, body, tt.msg)
	}
	assert.NoDirExists(t, secretsDirOf(d, alice), "nothing was stored")

	elsewhere := alice.WorkDir(t, "")
	out, code := alice.Run(t, "/", nil, "ln", "-s", elsewhere, secretsDirOf(d, alice))
	require.Zero(t, code, out)
	status, body := add(`{"TOKEN": {"value": "dg==", "type": "env"}}`)
	assert.Equal(t, http.StatusForbidden, status, body)
	assert.Contains(t, body, "cannot be stored")
	entries, err := os.ReadDir(elsewhere)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing was written where the link points")
}
