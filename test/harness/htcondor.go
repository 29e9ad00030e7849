package harness

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// HTCondor is the pool one test submits to: the real personal pool of
// test/htcondor/pool.sh when it can run, else a private pool of the
// stand-in (test/htcondor), with its own spool and configuration file. The
// daemon finds either the way a site points it at a pool, with
// REANA_SITE_HTCONDOR_BIN_DIR and REANA_SITE_HTCONDOR_CONFIG.
type HTCondor struct {
	Bin    string // the condor_* commands
	Config string // the CONDOR_CONFIG file
	Spool  string // the stand-in's spool; empty on the real pool
	// Real is set on the real pool.
	Real bool
	repo string
}

// poolStartTimeout bounds pool.sh start: unpacking and a first start take
// a few seconds; a pool that is not up by then is not used.
const poolStartTimeout = 90 * time.Second

// StartHTCondor gives one test a pool: the real one when it starts (as
// root, with the HTCondor kit present and REANA_SITE_HTCONDOR_POOL not
// "standin"), the stand-in otherwise, saying which and why. Knobs are
// stand-in configuration; asking for them means the stand-in. The test's
// jobs are removed when it ends.
func StartHTCondor(t testing.TB, e *Env, knobs ...string) *HTCondor {
	t.Helper()
	if len(knobs) == 0 {
		h, why := startRealPool(t, e)
		if h != nil {
			return h
		}
		t.Logf("HTCondor: using the stand-in (%s)", why)
	}
	return StartHTCondorStandin(t, e, knobs...)
}

// poolMemo is why the real pool failed to start in this test run, if it
// did.
type poolMemo struct {
	mu     sync.Mutex
	failed string
}

// startRealPool runs `test/htcondor/pool.sh start`; nil and the reason
// when the real pool cannot be used, which is never a test failure. A
// failure is remembered for the rest of the run.
func startRealPool(t testing.TB, e *Env) (*HTCondor, string) {
	t.Helper()
	if e.pool == nil {
		return tryRealPool(t, e)
	}
	e.pool.mu.Lock()
	defer e.pool.mu.Unlock()
	if e.pool.failed != "" {
		return nil, e.pool.failed + " (earlier in this run)"
	}
	h, why := tryRealPool(t, e)
	if h == nil {
		e.pool.failed = why
	}
	return h, why
}

func tryRealPool(t testing.TB, e *Env) (*HTCondor, string) {
	t.Helper()
	if os.Getenv("REANA_SITE_HTCONDOR_POOL") == "standin" {
		return nil, "REANA_SITE_HTCONDOR_POOL=standin"
	}
	if os.Geteuid() != 0 {
		return nil, "the real pool needs root"
	}
	script := filepath.Join(e.Repo, "test", "htcondor", "pool.sh")
	ctx, cancel := context.WithTimeout(context.Background(), poolStartTimeout)
	defer cancel()
	out, err := exec.CommandContext(ctx, "bash", script, "start").CombinedOutput()
	if err != nil {
		return nil, fmt.Sprintf("pool.sh start: %v: %s", err, strings.TrimSpace(string(out)))
	}
	envOut, err := exec.CommandContext(ctx, "bash", script, "env").Output()
	if err != nil {
		return nil, fmt.Sprintf("pool.sh env: %v", err)
	}
	h := &HTCondor{Real: true, repo: e.Repo}
	sc := bufio.NewScanner(strings.NewReader(string(envOut)))
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), "=")
		switch k {
		case "BIN":
			h.Bin = v
		case "CONFIG":
			h.Config = v
		}
	}
	if h.Bin == "" || h.Config == "" {
		return nil, "pool.sh env printed no BIN or CONFIG"
	}
	t.Logf("HTCondor: the real pool (%s)", strings.TrimSpace(string(out)))
	t.Cleanup(func() {
		h.SetDown(t, false)
		// The pool outlives the test; its jobs do not. Root is a queue
		// super user.
		_, _ = h.Run("condor_rm", "-all")
	})
	return h, ""
}

// StartHTCondorStandin makes a fresh stand-in pool for one test, for the
// cases a real pool cannot produce on demand. Its jobs are removed when
// the test ends.
func StartHTCondorStandin(t testing.TB, e *Env, knobs ...string) *HTCondor {
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

// SetDown makes the schedd unreachable (or reachable again): commands
// fail as HTCondor's do, while running jobs go on. On the real pool it is
// condor_off -fast -schedd, and back on waits until the schedd answers.
func (h *HTCondor) SetDown(t testing.TB, down bool) {
	t.Helper()
	if h.Real {
		cmd := "start-schedd"
		if down {
			cmd = "stop-schedd"
		}
		out, err := exec.Command("bash", filepath.Join(h.repo, "test", "htcondor", "pool.sh"), cmd).CombinedOutput()
		if err != nil {
			t.Fatalf("test/htcondor/pool.sh %s: %v: %s", cmd, err, out)
		}
		return
	}
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
