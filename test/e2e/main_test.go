//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"testing"

	"github.com/reana-site/reana-site/test/harness"
)

var env *harness.Env // set once in TestMain, read-only afterwards

func TestMain(m *testing.M) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "end-to-end tests must run as root: they start the daemon as root and act as the test users")
		os.Exit(1)
	}
	repo, err := filepath.Abs("../..")
	if err == nil {
		env, err = harness.Prepare(repo)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e setup:", err)
		os.Exit(1)
	}
	code := m.Run()
	env.Close()
	if code == 0 {
		cleanHomes()
	}
	os.Exit(code)
}

// cleanHomes removes what this run left in the test users' homes (kept
// when a test failed, for a look).
func cleanHomes() {
	for _, name := range []string{"alice", "bob"} {
		pw, err := user.Lookup(name)
		if err != nil {
			continue
		}
		matches, _ := filepath.Glob(filepath.Join(pw.HomeDir, ".reana-e2e", env.RunID+"-*"))
		for _, m := range matches {
			_ = os.RemoveAll(m)
		}
	}
}

// Short names for the harness types the tests use everywhere.
type (
	Daemon   = harness.Daemon
	User     = harness.User
	Workflow = harness.Workflow
)

// StartDaemon starts a daemon of this suite.
func StartDaemon(t *testing.T, extraEnv ...string) *Daemon {
	return harness.StartDaemon(t, env, extraEnv...)
}

func execCombined(argv ...string) (string, error) { return harness.ExecCombined(argv...) }
