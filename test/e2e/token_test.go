//go:build e2e

package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/test/harness"
)

// tokenDaemon starts a daemon whose token socket the test users can reach.
func tokenDaemon(t *testing.T, selfService bool) (*Daemon, string) {
	t.Helper()
	dir, err := os.MkdirTemp("", "reana-token-")
	require.NoError(t, err)
	require.NoError(t, os.Chmod(dir, 0o755))
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "token.sock")
	env := []string{"REANA_SITE_TOKEN_SOCKET=" + sock}
	if selfService {
		env = append(env, "REANA_SITE_SELF_SERVICE=1")
	}
	return StartDaemon(t, env...), sock
}

// selfToken runs `reana-site token` as the given user.
func selfToken(t *testing.T, d *Daemon, u *User, sock string, args ...string) (string, int) {
	t.Helper()
	return u.Run(t, "/", []string{"REANA_SITE_TOKEN_SOCKET=" + sock}, append([]string{d.Env().Bin, "token"}, args...)...)
}

// whoAmI is the POSIX name the API sees behind a token (empty if refused).
func whoAmI(t *testing.T, d *Daemon, token string) (string, int) {
	t.Helper()
	var you struct {
		Username string `json:"username"`
	}
	st := d.JSON(t, "GET", "/api/you", token, nil, &you)
	return you.Username, st
}

func posixUser(t *testing.T, d *Daemon, name string) *User {
	t.Helper()
	return harness.PosixUser(t, d, name)
}

func TestSelfServiceTokens(t *testing.T) {
	d, sock := tokenDaemon(t, true)
	alice, bob := posixUser(t, d, "alice"), posixUser(t, d, "bob")

	// Each user gets their own token, with no admin involved.
	out, code := selfToken(t, d, alice, sock)
	require.Zero(t, code, out)
	aliceToken := strings.TrimSpace(out)
	who, st := whoAmI(t, d, aliceToken)
	require.Equal(t, http.StatusOK, st)
	assert.Equal(t, "alice", who)

	out, code = selfToken(t, d, bob, sock)
	require.Zero(t, code, out)
	who, _ = whoAmI(t, d, strings.TrimSpace(out))
	assert.Equal(t, "bob", who)

	// Asking again does not hand out a second token silently.
	out, code = selfToken(t, d, alice, sock)
	assert.NotZero(t, code)
	assert.Contains(t, out, "--rotate")

	// Rotation ends the old token.
	out, code = selfToken(t, d, alice, sock, "--rotate")
	require.Zero(t, code, out)
	rotated := strings.TrimSpace(out)
	assert.NotEqual(t, aliceToken, rotated)
	_, st = whoAmI(t, d, aliceToken)
	assert.Equal(t, http.StatusForbidden, st, "the old token must stop working")
	who, _ = whoAmI(t, d, rotated)
	assert.Equal(t, "alice", who)

	// A user name in the request is ignored: the kernel says who asks.
	out, code = alice.Run(t, "/", nil, "curl", "-s", "--unix-socket", sock, "-X", "POST", "http://x/token?action=rotate&user=bob&uid=4102")
	require.Zero(t, code, out)
	var a struct{ User, Token string }
	require.NoError(t, json.Unmarshal([]byte(out), &a), out)
	assert.Equal(t, "alice", a.User)
	who, _ = whoAmI(t, d, a.Token)
	assert.Equal(t, "alice", who, "a forged name must not give alice bob's token")

	// Revocation.
	out, code = selfToken(t, d, alice, sock, "--revoke")
	require.Zero(t, code, out)
	_, st = whoAmI(t, d, a.Token)
	assert.Equal(t, http.StatusForbidden, st)
}

func TestSelfServiceRefusals(t *testing.T) {
	d, sock := tokenDaemon(t, true)

	out, err := execCombined("env", "REANA_SITE_TOKEN_SOCKET="+sock, d.Env().Bin, "token")
	assert.Error(t, err, "root must be refused: %s", out)
	assert.Contains(t, out, "root")

	low := posixUser(t, d, "lowuid")
	out, code := selfToken(t, d, low, sock)
	assert.NotZero(t, code, out)
	assert.Contains(t, out, "below the site minimum")

	off, offSock := tokenDaemon(t, false)
	alice := posixUser(t, off, "alice")
	out, code = selfToken(t, off, alice, offSock)
	assert.NotZero(t, code, out)
	assert.Contains(t, out, "turned off")
}

// TestAdminThroughTheDaemon: `reana-site admin` acts through the running
// daemon's root-only socket (here with a state directory it could not
// have used itself), and nobody but root may use that socket.
func TestAdminThroughTheDaemon(t *testing.T) {
	d := StartDaemon(t)
	sock := filepath.Join(d.StateDir, "admin.sock")
	st, err := os.Stat(sock)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), st.Mode().Perm())

	elsewhere := t.TempDir()
	admin := func(args ...string) (string, error) {
		return execCombined(append([]string{"env", "REANA_SITE_ADMIN_SOCKET=" + sock, "REANA_SITE_STATE_DIR=" + elsewhere, d.Env().Bin, "admin"}, args...)...)
	}
	out, err := admin("user", "add", "bob")
	require.NoError(t, err, out)
	out, err = admin("token", "issue", "bob")
	require.NoError(t, err, out)
	who, code := whoAmI(t, d, strings.TrimSpace(out))
	assert.Equal(t, http.StatusOK, code)
	assert.Equal(t, "bob", who, "the token was issued by the running daemon")
	out, err = admin("user", "list")
	require.NoError(t, err, out)
	assert.Contains(t, out, "bob")
	out, err = admin("user", "add", "root")
	assert.Error(t, err, out)
	assert.NoFileExists(t, filepath.Join(elsewhere, "reana-site.db"), "nothing went to the other state directory")

	// Not for users: the socket's mode keeps them out.
	alice := posixUser(t, d, "alice")
	out, code = alice.Run(t, "/", nil, "curl", "-s", "-f", "--unix-socket", sock, "-X", "POST", "-d", `{"args":["user","add","alice"]}`, "http://x/admin")
	assert.NotZero(t, code, "alice reached the admin socket: %s", out)
}
