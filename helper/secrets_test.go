package helper_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/test/helpertest"
)

func mode(t *testing.T, p string) os.FileMode {
	t.Helper()
	fi, err := os.Lstat(p)
	require.NoError(t, err)
	return fi.Mode().Perm()
}

func TestSecretsRoundTrip(t *testing.T) {
	ctx := context.Background()
	r, acct, dir := helpertest.Runner(t)
	sec := filepath.Join(dir, "secrets")
	write := func(overwrite bool, s ...asuser.Secret) error {
		return asuser.WriteSecrets(ctx, r, acct, asuser.SecretsWriteArgs{Dir: sec, Secrets: s, Overwrite: overwrite})
	}
	require.NoError(t, write(false,
		asuser.Secret{Name: "TOKEN", Type: asuser.SecretEnv, Value: []byte("t0ken")},
		asuser.Secret{Name: ".keytab", Type: asuser.SecretFile, Value: []byte{0, 1, 2}}))
	assert.Equal(t, os.FileMode(0o700), mode(t, sec))
	assert.Equal(t, os.FileMode(0o700), mode(t, filepath.Join(sec, "env")))
	assert.Equal(t, os.FileMode(0o600), mode(t, filepath.Join(sec, "env", "TOKEN")))
	assert.Equal(t, os.FileMode(0o600), mode(t, filepath.Join(sec, "file", ".keytab")))

	err := write(false, asuser.Secret{Name: "NEW", Type: asuser.SecretEnv, Value: []byte("n")},
		asuser.Secret{Name: "TOKEN", Type: asuser.SecretEnv, Value: []byte("other")})
	require.True(t, asuser.IsKind(err, asuser.KindExists), "%v", err)
	assert.Contains(t, err.Error(), "TOKEN")
	assert.NoFileExists(t, filepath.Join(sec, "env", "NEW"), "a refused request writes nothing")

	// Overwriting with another type replaces the old one.
	require.NoError(t, write(true, asuser.Secret{Name: "TOKEN", Type: asuser.SecretFile, Value: []byte("as a file")}))
	assert.NoFileExists(t, filepath.Join(sec, "env", "TOKEN"))
	b, err := os.ReadFile(filepath.Join(sec, "file", "TOKEN"))
	require.NoError(t, err)
	assert.Equal(t, "as a file", string(b))

	got, err := asuser.ReadSecrets(ctx, r, acct, asuser.SecretsDirArgs{Dir: sec})
	require.NoError(t, err)
	assert.ElementsMatch(t, []asuser.Secret{
		{Name: ".keytab", Type: asuser.SecretFile, Value: []byte{0, 1, 2}},
		{Name: "TOKEN", Type: asuser.SecretFile, Value: []byte("as a file")},
	}, got)

	res, err := asuser.DeleteSecrets(ctx, r, acct, asuser.SecretsDeleteArgs{Dir: sec, Names: []string{"TOKEN", "NOPE", "../x"}})
	require.NoError(t, err)
	assert.Equal(t, []string{"NOPE", "../x"}, res.Missing)
	assert.FileExists(t, filepath.Join(sec, "file", "TOKEN"), "nothing is deleted when one name is missing")
	res, err = asuser.DeleteSecrets(ctx, r, acct, asuser.SecretsDeleteArgs{Dir: sec, Names: []string{"TOKEN"}})
	require.NoError(t, err)
	assert.Equal(t, []string{"TOKEN"}, res.Deleted)
	assert.NoFileExists(t, filepath.Join(sec, "file", "TOKEN"))

	n, err := asuser.RemoveSecrets(ctx, r, acct, asuser.SecretsDirArgs{Dir: sec})
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.NoDirExists(t, sec)
	n, err = asuser.RemoveSecrets(ctx, r, acct, asuser.SecretsDirArgs{Dir: sec})
	require.NoError(t, err, "a missing directory is nothing to remove")
	assert.Zero(t, n)
}

func TestSecretsRefused(t *testing.T) {
	ctx := context.Background()
	r, acct, dir := helpertest.Runner(t)
	for _, name := range []string{"a/b", "..", "x..y", "A=B", "nul\x00", "", "REANA_X", "1ABC", "with space"} {
		err := asuser.WriteSecrets(ctx, r, acct, asuser.SecretsWriteArgs{Dir: filepath.Join(dir, "s"),
			Secrets: []asuser.Secret{{Name: name, Type: asuser.SecretEnv, Value: []byte("v")}}})
		assert.True(t, asuser.IsKind(err, asuser.KindBadPath), "%q: %v", name, err)
	}
	assert.NoDirExists(t, filepath.Join(dir, "s"), "nothing was made for a refused name")

	// The secret directory replaced by a link: refused, nothing written
	// where it points.
	elsewhere := filepath.Join(dir, "elsewhere")
	require.NoError(t, os.Mkdir(elsewhere, 0o700))
	require.NoError(t, os.Chown(elsewhere, int(acct.UID), int(acct.GID)))
	link := filepath.Join(dir, "linked")
	require.NoError(t, os.Symlink(elsewhere, link))
	err := asuser.WriteSecrets(ctx, r, acct, asuser.SecretsWriteArgs{Dir: link,
		Secrets: []asuser.Secret{{Name: "TOKEN", Type: asuser.SecretEnv, Value: []byte("v")}}})
	require.Error(t, err)
	assert.True(t, asuser.IsKind(err, asuser.KindBadPath), "%v", err)
	entries, err := os.ReadDir(elsewhere)
	require.NoError(t, err)
	assert.Empty(t, entries)
	_, err = asuser.ReadSecrets(ctx, r, acct, asuser.SecretsDirArgs{Dir: link})
	assert.True(t, asuser.IsKind(err, asuser.KindBadPath), "%v", err)
}

// TestKilledJobLosesItsSecrets: a local job whose script died without
// its cleanup (no exit status, no live script) has its copies of the
// secrets removed when its status is asked.
func TestKilledJobLosesItsSecrets(t *testing.T) {
	r, acct, _, jobs := workspace(t)
	jd := filepath.Join(jobs, "j1")
	for _, d := range []string{jd, filepath.Join(jd, asuser.SecretsJobDir)} {
		require.NoError(t, os.Mkdir(d, 0o700))
		require.NoError(t, os.Chown(d, int(acct.UID), int(acct.GID)))
	}
	for _, f := range []string{filepath.Join(jd, "started"), filepath.Join(jd, asuser.SecretsJobDir, "key.pem")} {
		require.NoError(t, os.WriteFile(f, []byte("x"), 0o600))
		require.NoError(t, os.Chown(f, int(acct.UID), int(acct.GID)))
	}
	st, err := asuser.JobStatus(context.Background(), r, acct, asuser.JobStatusArgs{Jobs: []asuser.JobRef{{ID: "j1", JobDir: jd}}})
	require.NoError(t, err)
	assert.False(t, st["j1"].Alive)
	assert.NoDirExists(t, filepath.Join(jd, asuser.SecretsJobDir))
}
