// Package helpertest runs the real helper in tests, across the real
// process boundary, without a daemon and without being root: the test
// binary itself acts as `reana-site worker` when started with envVar set.
//
// A test package that uses Runner needs a TestMain that calls
// MaybeRunHelper first:
//
//	func TestMain(m *testing.M) {
//		helpertest.MaybeRunHelper()
//		os.Exit(m.Run())
//	}
package helpertest

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/helper"
)

// envVar makes the test binary act as the helper.
const envVar = "REANA_SITE_TEST_AS_HELPER"

// TestUser is the unprivileged account helpers run as when the tests run
// as root; test/setup.sh creates it.
const TestUser = "alice"

// MaybeRunHelper turns the test binary into the helper when a Runner of
// this package started it, and then exits; otherwise it returns at once.
func MaybeRunHelper() {
	if os.Getenv(envVar) != "1" {
		return
	}
	os.Exit(helper.Main(context.Background(), os.Stdin, os.Stdout))
}

// Runner returns a Runner that starts this test binary as the helper, the
// account the helper runs as, and a fresh directory that account owns,
// for workspaces and job directories.
//
// Run as a user, the helper is that user. Run as root (as CI runs `go
// test`), the helper, which refuses to run with any privilege, runs as
// TestUser instead, and the test is skipped if there is no such account.
// Two things then stand between TestUser and the test: go test builds the
// binary in a 0700 directory of root's, where TestUser cannot execute it,
// so it is copied into a 0755 one; and t.TempDir is root's and 0700, so the
// returned directory is made separately and given to TestUser.
func Runner(t *testing.T) (*asuser.Runner, asuser.Account, string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatalf("helpertest: find the test binary: %v", err)
	}
	r := &asuser.Runner{Exe: exe, Env: []string{envVar + "=1"}}
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			t.Fatalf("helpertest: look up the current user: %v", err)
		}
		return r, account(t, u), t.TempDir()
	}
	u, err := user.Lookup(TestUser)
	if err != nil {
		t.Skipf("helpertest: running as root, the helper must run as the test user %q, who does not exist here (test/setup.sh creates it): %v", TestUser, err)
	}
	acct := account(t, u)
	r.CanSwitch = true
	binDir := tempDir(t, "helpertest-bin-")
	if err := os.Chmod(binDir, 0o755); err != nil {
		t.Fatalf("helpertest: open the binary's directory to %s: %v", TestUser, err)
	}
	r.Exe = filepath.Join(binDir, filepath.Base(exe))
	if err := copyFile(exe, r.Exe); err != nil {
		t.Fatalf("helpertest: copy the test binary: %v", err)
	}
	dir := tempDir(t, "helpertest-ws-")
	if err := os.Chown(dir, int(acct.UID), int(acct.GID)); err != nil {
		t.Fatalf("helpertest: give %s to %s: %v", dir, TestUser, err)
	}
	return r, acct, dir
}

// tempDir is a directory of its own under the system's temporary
// directory, removed after the test.
func tempDir(t *testing.T, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatalf("helpertest: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

func account(t *testing.T, u *user.User) asuser.Account {
	t.Helper()
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		t.Fatalf("helpertest: uid %q of %s: %v", u.Uid, u.Username, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		t.Fatalf("helpertest: gid %q of %s: %v", u.Gid, u.Username, err)
	}
	acct := asuser.Account{Name: u.Username, UID: uint32(uid), GID: uint32(gid), Home: u.HomeDir}
	gids, err := u.GroupIds()
	if err != nil {
		t.Fatalf("helpertest: groups of %s: %v", u.Username, err)
	}
	for _, g := range gids {
		n, err := strconv.ParseUint(g, 10, 32)
		if err != nil {
			t.Fatalf("helpertest: group %q of %s: %v", g, u.Username, err)
		}
		acct.Groups = append(acct.Groups, uint32(n))
	}
	return acct
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o755)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s to %s: %w", src, dst, err)
	}
	return out.Close()
}
