package harness

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
)

// KDC is the real MIT Kerberos KDC that test/kdc/kdc.sh runs in a
// throwaway realm on loopback. Its principals: alice, bob, alice/admin
// (password <first component>pw, and a keytab each), HTTP/localhost (the
// daemon's) and HTTP/other.test (another service's).
type KDC struct {
	Realm string
	// Addr is the KDC's host:port (TCP and UDP).
	Addr string
	// Dir holds the realm's files.
	Dir string
	// Config is the krb5.conf clients use (KRB5_CONFIG).
	Config string
	// ServicePrincipal and ServiceKeytab are the daemon's HTTP/localhost
	// principal (without the realm) and its keytab, mode 0600, root's.
	ServicePrincipal, ServiceKeytab string
	// OtherPrincipal and OtherKeytab are a service that is not the daemon.
	OtherPrincipal, OtherKeytab string
}

// StartKDC starts the shared test KDC when it is not running (kdc.sh start
// is idempotent and does so under a lock) and describes it. The KDC keeps
// running after the test, like Slurm; it skips the test when krb5kdc is not
// installed.
func StartKDC(t testing.TB) *KDC {
	t.Helper()
	if _, err := exec.LookPath("krb5kdc"); err != nil {
		t.Skip("krb5kdc is not installed (test/setup.sh installs krb5-kdc krb5-admin-server krb5-user)")
	}
	if os.Geteuid() != 0 {
		t.Skip("the test KDC's keytabs are root's: run as root")
	}
	script := filepath.Join(kdcRepo(t), "test", "kdc", "kdc.sh")
	if out, err := exec.Command("bash", script, "start").CombinedOutput(); err != nil {
		t.Fatalf("%s start: %v: %s", script, err, out)
	}
	out, err := exec.Command("bash", script, "env").Output()
	if err != nil {
		t.Fatalf("%s env: %v", script, err)
	}
	vars := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			vars[k] = v
		}
	}
	return &KDC{
		Realm: vars["KDC_REALM"], Addr: vars["KDC_ADDR"], Dir: vars["KDC_DIR"], Config: vars["KRB5_CONFIG"],
		ServicePrincipal: vars["KDC_SERVICE_PRINCIPAL"], ServiceKeytab: vars["KDC_SERVICE_KEYTAB"],
		OtherPrincipal: vars["KDC_OTHER_PRINCIPAL"], OtherKeytab: vars["KDC_OTHER_KEYTAB"],
	}
}

// kdcRepo is the repository root, found from this file so that tests of
// any package (not only e2e, which knows it) can start the KDC.
func kdcRepo(t testing.TB) string {
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot find the harness source file")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// Keytab is the keytab of a user principal (without the realm), e.g.
// "alice" or "alice/admin".
func (k *KDC) Keytab(principal string) string {
	return filepath.Join(k.Dir, strings.ReplaceAll(principal, "/", "_")+".keytab")
}

// Password is a user principal's password.
func (k *KDC) Password(principal string) string {
	name, _, _ := strings.Cut(principal, "/")
	return name + "pw"
}

// Env is the environment a Kerberos client needs to use ccache (a file)
// against this KDC.
func (k *KDC) Env(ccache string) []string {
	return []string{"KRB5_CONFIG=" + k.Config, "KRB5CCNAME=FILE:" + ccache}
}

// Kinit gets principal's TGT from its keytab into a credential cache of
// the test's own and returns the cache's path. With owner set (a POSIX
// user name), the cache and its directory belong to that user, so a
// program run as the user can read it.
func (k *KDC) Kinit(t testing.TB, principal, owner string) string {
	t.Helper()
	dir := t.TempDir()
	ccache := filepath.Join(dir, "ccache")
	k.Run(t, ccache, "kinit", "-k", "-t", k.Keytab(principal), principal+"@"+k.Realm)
	if owner != "" {
		u, err := user.Lookup(owner)
		if err != nil {
			t.Fatalf("look up %s: %v", owner, err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		for _, p := range []string{dir, ccache} {
			if err := os.Chown(p, uid, gid); err != nil {
				t.Fatal(err)
			}
		}
	}
	return ccache
}

// Run runs a Kerberos tool (kinit, kvno, klist, curl --negotiate...) with
// this KDC's configuration and the credential cache ccache, and fails the
// test when it fails; it returns the combined output.
func (k *KDC) Run(t testing.TB, ccache string, argv ...string) string {
	t.Helper()
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = append(os.Environ(), k.Env(ccache)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v: %v: %s", argv, err, out)
	}
	return string(out)
}
