package harness

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// HTCondor is a private pool of the HTCondor test stand-in
// (test/htcondor): its own spool, its own configuration file, and the
// stand-in's condor_* commands. The daemon finds them the way a site
// points it at a real pool, with REANA_SITE_HTCONDOR_BIN_DIR and
// REANA_SITE_HTCONDOR_CONFIG.
type HTCondor struct {
	Bin    string // the stand-in's condor_* commands
	Config string // the CONDOR_CONFIG file
	Spool  string
}

// StartHTCondor makes a fresh stand-in pool for one test. Its jobs are
// removed when the test ends.
func StartHTCondor(t testing.TB, e *Env, knobs ...string) *HTCondor {
	t.Helper()
	dir, err := os.MkdirTemp("", "reana-htcondor-")
	if err != nil {
		t.Fatal(err)
	}
	// The test users submit to it, so they must reach the spool; the spool
	// itself is shared like /tmp.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	h := &HTCondor{Bin: filepath.Join(e.Repo, "test", "htcondor", "bin"),
		Config: filepath.Join(dir, "condor_config"), Spool: filepath.Join(dir, "spool")}
	if err := os.Mkdir(h.Spool, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(h.Spool, 0o1777); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf("# HTCondor test stand-in pool for %s\nSPOOL = %s\nSCHEDD_NAME = standin@%s\nSTANDIN_MATCH_DELAY = 0.1\nSTANDIN_PERIODIC_INTERVAL = 1\n",
		t.Name(), h.Spool, "localhost")
	conf += strings.Join(knobs, "\n") + "\n"
	if err := os.WriteFile(h.Config, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		h.SetDown(t, false)
		// Remove what is left (as root, the queue super user), let the
		// shadows write their events, then drop the pool.
		_, _ = h.Run("condor_rm", "-constraint", "true")
		time.Sleep(300 * time.Millisecond)
		_ = os.RemoveAll(dir)
	})
	return h
}

// DaemonEnv points the daemon at this pool.
func (h *HTCondor) DaemonEnv() []string {
	return []string{"REANA_SITE_HTCONDOR_BIN_DIR=" + h.Bin, "REANA_SITE_HTCONDOR_CONFIG=" + h.Config}
}

// Run runs one of the stand-in's commands as root (HTCondor's queue super
// user) and returns its combined output and exit status.
func (h *HTCondor) Run(name string, args ...string) (string, int) {
	cmd := exec.Command(filepath.Join(h.Bin, name), args...)
	cmd.Env = append(os.Environ(), "CONDOR_CONFIG="+h.Config)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	}
	if err != nil {
		return err.Error(), -1
	}
	return string(out), 0
}

// MustRun is Run that fails the test on a non-zero exit.
func (h *HTCondor) MustRun(t testing.TB, name string, args ...string) string {
	t.Helper()
	out, code := h.Run(name, args...)
	if code != 0 {
		t.Fatalf("%s %s: exit %d: %s", name, strings.Join(args, " "), code, out)
	}
	return out
}

// SetDown makes the stand-in's schedd unreachable (or reachable again):
// commands fail as HTCondor's do, while running jobs go on.
func (h *HTCondor) SetDown(t testing.TB, down bool) {
	t.Helper()
	p := filepath.Join(h.Spool, "schedd_down")
	if down {
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
}
