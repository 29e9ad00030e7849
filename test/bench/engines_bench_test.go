//go:build bench

package bench

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/test/harness"
)

// chainLength is the number of jobs of test/testdata/snakemake-chain.
const chainLength = 20

// TestBenchEngines: on the local backend, how long after one Snakemake
// job ends the engine's next job starts, the wall time of a 20-job chain
// against the same 20 commands as one serial workflow, and the memory of
// an engine process.
func TestBenchEngines(t *testing.T) {
	d := harness.StartDaemon(t, env, append(harness.EngineEnv(t, env), "REANA_SITE_POLL_INTERVAL=500ms")...)
	alice := d.AddUser(t, "alice")

	// The serial run of the same commands.
	cmds := []string{"sleep 0.2 && mkdir -p out && touch out/r1"}
	for i := 2; i <= chainLength; i++ {
		cmds = append(cmds, fmt.Sprintf("sleep 0.2 && touch out/r%d", i))
	}
	spec, _ := json.Marshal(map[string]any{"version": "0.9.0", "workflow": map[string]any{"type": "serial",
		"specification": map[string]any{"steps": []map[string]any{{"name": "chain", "environment": "docker.io/library/debian:12-slim", "commands": cmds}}}}})
	id, err := createWorkflow(d, alice.Token, "serial-chain", spec)
	require.NoError(t, err)
	start := time.Now()
	require.NoError(t, startWorkflow(d, alice.Token, id))
	alice.WaitStatus(t, id, 4*time.Minute, "finished")
	serial := time.Since(start)

	dir := alice.WorkDir(t, "snakemake-chain")
	alice.MustClient(t, dir, "create", "-w", "smk-chain")
	alice.MustClient(t, dir, "upload", "-w", "smk-chain")
	start = time.Now()
	alice.MustClient(t, dir, "start", "-w", "smk-chain")
	wf := alice.WaitStatus(t, "smk-chain.1", 4*time.Minute, "finished")
	chain := time.Since(start)

	// Each job script writes its pid file when it starts and its exit file
	// when it ends, in its own job directory; the earliest to start is the
	// engine process.
	jobsDir := filepath.Join(filepath.Dir(filepath.Dir(d.WorkspaceOf(alice, wf.ID))), "jobs", wf.ID)
	type span struct{ start, end time.Time }
	var spans []span
	ents, err := os.ReadDir(jobsDir)
	require.NoError(t, err)
	for _, e := range ents {
		s, err1 := os.Stat(filepath.Join(jobsDir, e.Name(), asuser.PIDFile))
		x, err2 := os.Stat(filepath.Join(jobsDir, e.Name(), asuser.ExitFile))
		if err1 == nil && err2 == nil {
			spans = append(spans, span{s.ModTime(), x.ModTime()})
		}
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i].start.Before(spans[j].start) })
	require.Len(t, spans, chainLength+1, "the engine process and one job per rule")
	spans = spans[1:]
	var handoffs []time.Duration
	for i := 1; i < len(spans); i++ {
		handoffs = append(handoffs, spans[i].start.Sub(spans[i-1].end))
	}
	sort.Slice(handoffs, func(i, j int) bool { return handoffs[i] < handoffs[j] })
	report("engine_job_handoff_p50_ms", durMS(handoffs[len(handoffs)/2]), "ms", "< 1000")
	t.Logf("the chain took %s with Snakemake, %s as one serial workflow", chain, serial)
	report("engine_overhead_ratio", chain.Seconds()/serial.Seconds(), "x", "<= 1.3")

	engineRSS(t, alice)
}

// engineRSS reports the resident memory of the engine process of a run
// whose only job sleeps, found by its command line and its run's id.
func engineRSS(t *testing.T, u *harness.User) {
	t.Helper()
	dir := u.WorkDir(t, "snakemake-faults")
	u.MustClient(t, dir, "run", "-w", "smk-idle", "-p", "seconds=30")
	wf := u.WaitStatus(t, "smk-idle.1", time.Minute, "running")
	var pid int
	require.Eventually(t, func() bool {
		for _, p := range harness.MarkedPIDs("reana_site_engines") {
			environ, _ := os.ReadFile("/proc/" + strconv.Itoa(p) + "/environ")
			if strings.Contains(string(environ), "REANA_WORKFLOW_UUID="+wf.ID) {
				pid = p
				return true
			}
		}
		return false
	}, time.Minute, 200*time.Millisecond)
	time.Sleep(5 * time.Second) // past the engine's start-up
	report("engine_rss_mb", rssMB(t, pid), "MB", "report")
	u.MustClient(t, dir, "stop", "-w", "smk-idle.1", "--force")
}

// activeRuns is the number of engine runs TestBenchEngineRunsDaemonRSS
// keeps active at once.
const activeRuns = 50

// TestBenchEngineRunsDaemonRSS: the daemon's resident memory while 50
// Snakemake runs are active, each with its engine process alive and one
// job running.
func TestBenchEngineRunsDaemonRSS(t *testing.T) {
	d := harness.StartDaemon(t, env, append(harness.EngineEnv(t, env), "REANA_SITE_POLL_INTERVAL=500ms")...)
	alice := d.AddUser(t, "alice")
	dir := alice.WorkDir(t, "snakemake-faults")
	idle := rssMB(t, d.Pid())
	var ids []string
	t.Cleanup(func() {
		// Through the API: reana-client would start Python 50 times.
		for _, id := range ids {
			_, _, _ = d.Do("PUT", "/api/workflows/"+id+"/status?status=stop", alice.Token,
				strings.NewReader(`{"force_stop": true}`), "Content-Type", "application/json")
		}
		for _, id := range ids {
			alice.WaitStatus(t, id, 2*time.Minute, "stopped")
		}
	})
	for i := 0; i < activeRuns; i++ {
		name := fmt.Sprintf("smk-many%d", i)
		alice.MustClient(t, dir, "run", "-w", name, "-p", "seconds=600")
		ids = append(ids, name+".1")
	}
	// Active: every run's engine has submitted its slow job and that job
	// runs.
	for _, id := range ids {
		require.Eventually(t, func() bool {
			st, _ := alice.Status(t, id)
			return st.Status == "running" && st.Progress.Running.Total > 0
		}, 5*time.Minute, time.Second, "run %s never had a job running", id)
	}
	require.GreaterOrEqual(t, len(harness.MarkedPIDs("reana_site_engines")), activeRuns, "one engine process per run")
	time.Sleep(5 * time.Second)
	t.Logf("daemon RSS %.1f MB before the runs", idle)
	report("engine_runs50_daemon_rss_mb", rssMB(t, d.Pid()), "MB", "report")
}
