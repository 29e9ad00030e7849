//go:build e2e

package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/test/harness"
)

// TestKerberosTokenForReanaClient: alice kinits against the real KDC as
// herself, gets a token with curl --negotiate and with reana-site token
// --server, and the real reana-client works with each; bob, who is not
// registered, gets none.
func TestKerberosTokenForReanaClient(t *testing.T) {
	k := harness.StartKDC(t)
	d := StartDaemon(t, "REANA_SITE_KRB5_KEYTAB="+k.ServiceKeytab, "REANA_SITE_KRB5_SPN="+k.ServicePrincipal)
	_, err := d.Admin("user", "add", "alice")
	require.NoError(t, err)
	_, port, _ := strings.Cut(d.Addr, ":")
	// The name clients ask a ticket for is the URL's host: HTTP/localhost.
	server := "https://localhost:" + port

	alice, bob := posixUser(t, d, "alice"), posixUser(t, d, "bob")
	aliceEnv := kinitAs(t, k, alice)

	out, code := alice.Run(t, "/", aliceEnv, "curl", "-sS", "-k", "--negotiate", "-u", ":", "-X", "POST", server+"/site/token")
	require.Zero(t, code, out)
	var a struct{ User, Token, Export, Message string }
	require.NoError(t, json.Unmarshal([]byte(out), &a), out)
	assert.Equal(t, "alice", a.User)
	assert.Equal(t, "export REANA_SERVER_URL="+server+"\nexport REANA_ACCESS_TOKEN="+a.Token+"\n", a.Export)

	alice.Token = a.Token
	assert.Contains(t, alice.MustClient(t, "/", "ping"), "alice")
	alice.MustClient(t, "/", "list")

	// reana-site token --server, trusting the daemon's own certificate.
	cert := filepath.Join(filepath.Dir(ccacheOf(aliceEnv)), "tls.crt")
	b, err := os.ReadFile(filepath.Join(d.StateDir, "tls.crt"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(cert, b, 0o644))
	out, code = alice.Run(t, "/", aliceEnv, d.Env().Bin, "token", "--server", server, "--cacert", cert)
	require.Zero(t, code, out)
	token, rest, _ := strings.Cut(out, "\n")
	assert.Contains(t, rest, "export REANA_ACCESS_TOKEN="+token)
	old := alice.Token
	alice.Token = token
	assert.Contains(t, alice.MustClient(t, "/", "ping"), "alice")
	alice.MustClient(t, "/", "list")
	_, st := whoAmI(t, d, old)
	assert.Equal(t, http.StatusForbidden, st, "a new token ends the one before")

	// bob has a ticket but is not a user of the service: no token.
	bobEnv := kinitAs(t, k, bob)
	out, code = bob.Run(t, "/", bobEnv, "curl", "-sS", "-k", "--negotiate", "-u", ":", "-X", "POST", "-w", "\n%{http_code}", server+"/site/token")
	require.Zero(t, code, out)
	body, status, _ := strings.Cut(out, "\n")
	assert.Equal(t, strconv.Itoa(http.StatusForbidden), strings.TrimSpace(status), out)
	assert.Contains(t, body, "not registered with this service")
	_, err = d.Admin("token", "revoke", "bob")
	assert.Error(t, err, "bob must not have become a user")

	// No ticket: 401 with the Negotiate challenge.
	out, code = alice.Run(t, "/", nil, "curl", "-sS", "-k", "-i", "-X", "POST", server+"/site/token")
	require.Zero(t, code, out)
	assert.Contains(t, out, "401")
	assert.Contains(t, strings.ToLower(out), "www-authenticate: negotiate")
	// With the web pages on, the answer offers them too.
	assert.Contains(t, out, "get a Kerberos ticket with kinit")
}

// TestFailedSignInsAreRateLimited: a loop of wrong Negotiate tickets at
// /site/token is cut off with 429, and so, from that address, are the
// API's token checks and a real ticket: one limiter guards both ways in.
func TestFailedSignInsAreRateLimited(t *testing.T) {
	k := harness.StartKDC(t)
	d := StartDaemon(t, "REANA_SITE_KRB5_KEYTAB="+k.ServiceKeytab, "REANA_SITE_KRB5_SPN="+k.ServicePrincipal)
	alice := d.AddUser(t, "alice")
	_, st := whoAmI(t, d, alice.Token)
	require.Equal(t, http.StatusOK, st)

	limited := 0
	var body []byte
	for i := 0; i < 100 && limited == 0; i++ {
		st, b, err := d.Do(http.MethodPost, "/site/token", "", nil, "Authorization", "Negotiate bm90IGEgdG9rZW4=")
		require.NoError(t, err)
		switch st {
		case http.StatusTooManyRequests:
			limited, body = i, b
		default:
			require.Equal(t, http.StatusUnauthorized, st, "%s", b)
		}
	}
	require.NotZero(t, limited, "100 wrong tickets in a row must be cut off")
	assert.Contains(t, string(body), "Too many failed authentication attempts")

	_, st = whoAmI(t, d, alice.Token)
	assert.Equal(t, http.StatusTooManyRequests, st, "the API's token checks share the limit")
	_, port, _ := strings.Cut(d.Addr, ":")
	u := posixUser(t, d, "alice")
	out, code := u.Run(t, "/", kinitAs(t, k, u), "curl", "-sS", "-k", "-o", "/dev/null", "-w", "%{http_code}",
		"--negotiate", "-u", ":", "-X", "POST", "https://localhost:"+port+"/site/token")
	require.Zero(t, code, out)
	assert.Equal(t, strconv.Itoa(http.StatusTooManyRequests), strings.TrimSpace(out), "a right ticket is not checked either while the address is refused")
}

// kinitAs runs kinit as u with u's password (the test KDC's <name>pw) into
// a credential cache of u's own, and returns the environment that uses it.
func kinitAs(t *testing.T, k *harness.KDC, u *User) []string {
	t.Helper()
	dir := filepath.Join(u.Home, ".reana-e2e", env.RunID+"-krb-"+harness.RandomHex(4))
	out, code := u.Run(t, "/", nil, "mkdir", "-p", "-m", "0700", dir)
	require.Zero(t, code, out)
	t.Cleanup(func() { os.RemoveAll(dir) })
	e := k.Env(filepath.Join(dir, "ccache"))
	out, code = u.Run(t, "/", e, "sh", "-c", `echo "$1" | kinit "$2"`, "kinit", k.Password(u.Name), u.Name+"@"+k.Realm)
	require.Zero(t, code, out)
	out, code = u.Run(t, "/", e, "klist")
	require.Zero(t, code, out)
	require.Contains(t, out, u.Name+"@"+k.Realm)
	return e
}

// ccacheOf is the cache file of an environment from kinitAs.
func ccacheOf(e []string) string {
	for _, v := range e {
		if c, ok := strings.CutPrefix(v, "KRB5CCNAME=FILE:"); ok {
			return c
		}
	}
	return ""
}
