//go:build e2e

package e2e

import (
	"crypto/rand"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/batch/jobscript"
	"github.com/reana-site/reana-site/containers"
	"github.com/reana-site/reana-site/test/harness"
)

// apptainers are the programs the container tests can run against: the
// stand-in always, the real Apptainer when test/setup.sh installed it.
func apptainers(t *testing.T) map[string]string {
	t.Helper()
	if env.Standin == "" || env.Images == "" {
		t.Skip("no Apptainer stand-in or test images: run test/setup.sh")
	}
	out := map[string]string{"standin": env.Standin}
	if env.RealApptainer != "" {
		out["apptainer"] = env.RealApptainer
	} else {
		t.Logf("the stand-in only: %s", env.ApptainerNote)
	}
	return out
}

// apptainer is the program a container test runs: the real Apptainer
// when installed, else the stand-in, which the test log then says.
func apptainer(t *testing.T) string {
	t.Helper()
	if env.Apptainer == "" || env.Images == "" {
		t.Skip("no Apptainer stand-in or test images: run test/setup.sh")
	}
	if env.RealApptainer == "" {
		t.Logf("on the Apptainer stand-in, not the real one: %s", env.ApptainerNote)
	} else {
		t.Logf("on the real Apptainer %s", env.RealApptainer)
	}
	return env.Apptainer
}

// TestContainersScriptSignalEndsStep: HTCondor stops a job by sending
// SIGTERM to the job script alone, not to its process group. The script
// must pass it on to apptainer and wait, so that no process of the step
// is left behind (with --pid the step's PID namespace ends with the
// payload), and still record the exit status.
func TestContainersScriptSignalEndsStep(t *testing.T) {
	for name, prog := range apptainers(t) {
		t.Run(name, func(t *testing.T) {
			j := harness.NewJobDirs(t, "alice", ".reana-e2e-signal-")
			ws, jd := j.Workspace, j.JobDir

			// The marker is a sleep length no other process has.
			n, err := rand.Int(rand.Reader, big.NewInt(1e9))
			require.NoError(t, err)
			marker := fmt.Sprintf("3600.%09d", n.Int64())
			spec := batch.Spec{JobID: "j1", WorkflowName: "w.1", StepName: "s", Workspace: ws, JobDir: jd,
				Env: map[string]string{"REANA_WORKSPACE": ws}}
			runner, err := containers.ExecArgs(containers.Config{Apptainer: prog},
				containers.Resolved{Path: filepath.Join(env.Images, "debian-12-slim")}, spec)
			require.NoError(t, err)
			script, err := jobscript.Render(spec, jobscript.Options{Runner: runner})
			require.NoError(t, err)
			command := "trap 'exit 7' TERM; sleep " + marker + " & sleep " + marker + " & echo started > started; wait"
			j.WriteJob(t, script, command)

			cmd := j.Command()
			out := &strings.Builder{}
			cmd.Stdout, cmd.Stderr = out, out
			// Its own session: the signal below goes to the script's pid
			// only, and the clean-up can reach whatever is left.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
			require.NoError(t, cmd.Start())
			script0 := cmd.Process.Pid
			t.Cleanup(func() {
				for _, p := range harness.MarkedPIDs(marker) {
					_ = syscall.Kill(p, syscall.SIGKILL)
				}
				_ = syscall.Kill(-script0, syscall.SIGKILL)
			})
			require.Eventually(t, func() bool {
				_, err := os.Stat(filepath.Join(ws, "started"))
				return err == nil && len(harness.MarkedPIDs(marker)) == 2
			}, 30*time.Second, 50*time.Millisecond, "the step did not start:\n%s", out)

			require.NoError(t, syscall.Kill(script0, syscall.SIGTERM))
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(30 * time.Second):
				t.Fatalf("the job script did not end after SIGTERM:\n%s", out)
			}
			assert.Eventually(t, func() bool { return len(harness.MarkedPIDs(marker)) == 0 }, 10*time.Second, 100*time.Millisecond,
				"processes of the step outlived the job script: %v", harness.MarkedPIDs(marker))
			exit, err := os.ReadFile(filepath.Join(jd, asuser.ExitFile))
			require.NoError(t, err, "the script must record the exit status:\n%s", out)
			assert.Equal(t, "7", strings.TrimSpace(string(exit)), "the step's TERM trap ran and its status was kept:\n%s", out)
		})
	}
}

// TestContainersStopLeavesNoProcess: a stop of a workflow whose step runs
// in its image ends every process of the step, Apptainer's own included,
// on each backend, each stopping it its own way (HTCondor's condor_rm
// signals the job script alone, which passes the signal on to apptainer,
// whose --pid namespace ends the rest).
func TestContainersStopLeavesNoProcess(t *testing.T) {
	prog := apptainer(t)
	for _, backend := range []string{"local", "slurm", "htcondor"} {
		t.Run(backend, func(t *testing.T) {
			vars := []string{"REANA_SITE_CONTAINERS=apptainer", "REANA_SITE_APPTAINER=" + prog,
				"REANA_SITE_IMAGE_UNPACKED_ROOTS=" + filepath.Join(env.Images, "unpacked"), "REANA_SITE_IMAGE_PULL=false"}
			file := "reana.yaml"
			switch backend {
			case "local":
				vars = append(vars, "REANA_SITE_BACKENDS=local")
			case "slurm":
				harness.EnsureSlurm(t, env.Repo)
				vars = append(vars, "REANA_SITE_BACKENDS=local,slurm")
				file = "reana-slurm.yaml"
			case "htcondor":
				pool := harness.StartHTCondor(t, env)
				vars = append(append(vars, "REANA_SITE_BACKENDS=local,htcondor"), pool.DaemonEnv()...)
				file = "reana-htcondor.yaml"
			}
			d := StartDaemon(t, vars...)
			alice := d.AddUser(t, "alice")
			dir := alice.WorkDir(t, "sleepy")
			// The sleep's length is the marker: no other process has it.
			n, err := rand.Int(rand.Reader, big.NewInt(1e6))
			require.NoError(t, err)
			seconds := strconv.FormatInt(3600+n.Int64(), 10)
			alice.MustClient(t, dir, "run", "-w", "boxstop", "-f", file, "-p", "seconds="+seconds)
			// Whatever fails, the step does not outlive the test (cleanups
			// run before the daemon's own).
			t.Cleanup(func() { _, _ = alice.Client(t, dir, "stop", "-w", "boxstop.1", "--force") })
			alice.WaitStatus(t, "boxstop.1", time.Minute, "running")
			// The sleep itself, not apptainer's command line naming it.
			var sleeping []int
			for deadline := time.Now().Add(2 * time.Minute); len(sleeping) == 0; sleeping = harness.MarkedPIDs(seconds) {
				w, _ := alice.Status(t, "boxstop.1")
				if w.Status != "running" || time.Now().After(deadline) {
					t.Fatalf("the step's sleep did not start (workflow %s):\n%s", w.Status, alice.Logs(t, "boxstop.1"))
				}
				time.Sleep(100 * time.Millisecond)
			}
			// Apptainer's own processes ("Apptainer runtime parent",
			// appinit) name neither the step nor its workspace: the step is
			// the whole tree of the user's processes the sleep is in.
			tree := userTree(alice.UID, sleeping[0])
			t.Logf("the step's processes: %v", tree)
			t.Cleanup(func() {
				for pid, p := range tree {
					if now, ok := procStart(pid); ok && now.start == p.start {
						_ = syscall.Kill(pid, syscall.SIGKILL)
					}
				}
			})
			require.GreaterOrEqual(t, len(tree), 3, "a job script, apptainer's and the sleep")

			alice.MustClient(t, dir, "stop", "-w", "boxstop.1", "--force")
			alice.WaitStatus(t, "boxstop.1", time.Minute, "stopped")
			left := func() []string {
				var out []string
				for pid, p := range tree {
					if now, ok := procStart(pid); ok && now.start == p.start {
						out = append(out, fmt.Sprintf("%d %s", pid, p.cmd))
					}
				}
				for _, pid := range harness.MarkedPIDs(seconds) {
					out = append(out, fmt.Sprintf("%d sleep %s", pid, seconds))
				}
				return out
			}
			assert.Eventually(t, func() bool { return len(left()) == 0 }, 30*time.Second, 100*time.Millisecond,
				"processes of the step outlived the stop: %v", left())
		})
	}
}

// proc is a process as /proc shows it: its parent, owner, start time (in
// clock ticks since boot, which tells a reused pid apart) and command.
type proc struct {
	ppid, uid int
	start     string
	cmd       string
}

func procStart(pid int) (proc, bool) {
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	st := procStatusMaybe(pid)
	if err != nil || st == nil {
		return proc{}, false
	}
	// The fields after the command, which is in parentheses and may hold
	// spaces: state, ppid, ... starttime is the 22nd field overall.
	f := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
	if len(f) < 20 {
		return proc{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	uid, _ := strconv.Atoi(strings.Fields(st["Uid"])[0])
	cmd, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	return proc{ppid: ppid, uid: uid, start: f[19], cmd: strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))}, true
}

// userTree is the tree of uid's processes that pid belongs to: from its
// topmost ancestor of that uid (the job script; not the daemon's helper,
// which starts local jobs and outlives them) down, with every descendant.
func userTree(uid, pid int) map[int]proc {
	all := map[int]proc{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		if n, err := strconv.Atoi(e.Name()); err == nil {
			if p, ok := procStart(n); ok {
				all[n] = p
			}
		}
	}
	top := pid
	for {
		p, ok := all[top]
		parent := all[p.ppid]
		if !ok || parent.uid != uid || p.ppid <= 1 || isHelper(parent.cmd) {
			break
		}
		top = p.ppid
	}
	tree := map[int]proc{top: all[top]}
	for grew := true; grew; {
		grew = false
		for n, p := range all {
			if _, in := tree[n]; !in && p.uid == uid {
				if _, parentIn := tree[p.ppid]; parentIn {
					tree[n] = p
					grew = true
				}
			}
		}
	}
	return tree
}

// isHelper tells the daemon's helper (reana-site worker) by its command.
func isHelper(cmd string) bool {
	f := strings.Fields(cmd)
	return len(f) > 0 && filepath.Base(f[0]) == "reana-site"
}
