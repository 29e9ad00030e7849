//go:build bench

package bench

// The Slurm figures: submission overhead against plain sbatch, scheduler
// queries per poll, and the pause between one Slurm step and the next. They
// need the real single-node Slurm of test/slurm/slurm.sh (started here if
// it is not running); REANA_SITE_SLURM=0 skips them.
//
// The handoff runs before the overhead benchmark: the overhead benchmark
// leaves 400 jobs that Slurm keeps for five minutes after they end
// (MinJobAge), and although the daemon's poll asks only for its own jobs,
// a controller holding more answers more slowly. Each benchmark logs the
// controller's job count beside its figures.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/batch/slurm"
	"github.com/reana-site/reana-site/test/harness"
)

// slurmSpec is a serial workflow of one Slurm step with the given commands,
// as reana-client would send it (JSON of reana.yaml).
func slurmSpec(commands ...string) []byte {
	b, _ := json.Marshal(map[string]any{
		"version": "0.9.0",
		"workflow": map[string]any{
			"type": "serial",
			"specification": map[string]any{
				"steps": []map[string]any{{
					"name":            "s",
					"environment":     "docker.io/library/debian:12-slim",
					"compute_backend": "slurmcern",
					"commands":        commands,
				}},
			},
		},
	})
	return b
}

// createWorkflow creates one workflow through the API and returns its id.
func createWorkflow(d *harness.Daemon, token, name string, spec []byte) (string, error) {
	st, body, err := d.Do("POST", "/api/workflows?workflow_name="+url.QueryEscape(name), token,
		bytes.NewReader(spec), "Content-Type", "application/json")
	if err != nil {
		return "", err
	}
	if st != http.StatusCreated {
		return "", fmt.Errorf("create %s: HTTP %d: %s", name, st, body)
	}
	var r struct {
		ID string `json:"workflow_id"`
	}
	if err := json.Unmarshal(body, &r); err != nil || r.ID == "" {
		return "", fmt.Errorf("create %s: answer %q: %v", name, body, err)
	}
	return r.ID, nil
}

func startWorkflow(d *harness.Daemon, token, id string) error {
	st, body, err := d.Do("POST", "/api/workflows/"+id+"/start", token,
		strings.NewReader("{}"), "Content-Type", "application/json")
	if err != nil {
		return err
	}
	if st != http.StatusOK {
		return fmt.Errorf("start %s: HTTP %d: %s", id, st, body)
	}
	return nil
}

// squeueAll is every job the controller knows, as root sees them, read by
// the backend's own parser.
func squeueAll(t *testing.T) map[string]slurm.QueueJob {
	t.Helper()
	out, err := exec.Command("squeue", "--noheader", "--states=all", "--format=%i|%T|%k").Output()
	require.NoError(t, err, "squeue")
	jobs := map[string]slurm.QueueJob{}
	for id, j := range slurm.ParseSqueue(out) {
		// The third field asked for here is the comment, not the reason.
		j.Comment, j.Reason = j.Reason, ""
		jobs[id] = j
	}
	return jobs
}

// waitQueueIdle waits until no job of anyone is pending or running, so a
// phase does not pay for the scheduling of the one before.
func waitQueueIdle(t *testing.T, timeout time.Duration) {
	t.Helper()
	start := time.Now()
	for {
		active := 0
		for _, j := range squeueAll(t) {
			if !j.Terminal() {
				active++
			}
		}
		if active == 0 {
			t.Logf("Slurm queue idle after %s", time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Since(start) > timeout {
			t.Fatalf("Slurm still has %d pending or running jobs after %s; the benchmarks need the node to themselves", active, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// timeUntilKnown runs act in the background and polls the controller as
// root, back to back with a 10 ms pause, until want jobs match; the time
// is from just before act until the query that saw them all returned. Both
// phases of the overhead benchmark use it, so both carry the same polling
// load and the same measurement lag. It asks for ids and comments only
// (squeue -o): the same jobs as `squeue --json`, but in some 10 ms instead
// of about 90 ms with the few hundred finished jobs Slurm keeps for five
// minutes, which would otherwise blur the shorter phase by a tenth.
func timeUntilKnown(t *testing.T, act func() error, match func(id, comment string) string, want int, timeout time.Duration) (time.Duration, int) {
	t.Helper()
	errc := make(chan error, 1)
	start := time.Now()
	go func() { errc <- act() }()
	polls := 0
	var elapsed time.Duration
	for {
		out, err := exec.Command("squeue", "--noheader", "--states=all", "--format=%i %k").Output()
		polls++
		require.NoError(t, err, "squeue")
		seen := map[string]bool{}
		for _, line := range strings.Split(string(out), "\n") {
			id, comment, _ := strings.Cut(strings.TrimSpace(line), " ")
			if k := match(id, comment); k != "" {
				seen[k] = true
			}
		}
		if len(seen) >= want {
			elapsed = time.Since(start)
			break
		}
		select {
		case err := <-errc:
			require.NoError(t, err)
			errc <- nil // act is over; keep polling for the stragglers
		default:
		}
		require.Less(t, time.Since(start), timeout, "only %d of %d jobs known to Slurm", len(seen), want)
		time.Sleep(10 * time.Millisecond)
	}
	require.NoError(t, <-errc)
	return elapsed, polls
}

// lastSubmission is the daemon's log stamp of its last "job submitted"
// line for the given workflows (logged once sbatch answered and the job's
// handle was stored).
func lastSubmission(log string, workflows map[string]bool) (time.Time, bool) {
	var last time.Time
	for _, line := range strings.Split(log, "\n") {
		if !strings.Contains(line, `msg="job submitted"`) {
			continue
		}
		_, wf, _ := strings.Cut(line, " workflow=")
		wf, _, _ = strings.Cut(wf, " ")
		if !workflows[wf] {
			continue
		}
		stamp, _, _ := strings.Cut(strings.TrimPrefix(strings.TrimSpace(line), "time="), " ")
		if at, err := time.Parse(time.RFC3339Nano, stamp); err == nil && at.After(last) {
			last = at
		}
	}
	return last, !last.IsZero()
}

// cancelJobs cancels, as root, the pending and running jobs that match.
func cancelJobs(t *testing.T, match func(slurm.QueueJob) bool) {
	t.Helper()
	var ids []string
	for id, j := range squeueAll(t) {
		if !j.Terminal() && match(j) {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return
	}
	out, err := exec.Command("scancel", ids...).CombinedOutput()
	// A job may end between squeue and scancel; scancel then complains
	// about that job only.
	if err != nil && !strings.Contains(string(out), "already completed") && !strings.Contains(string(out), "Invalid job id") {
		t.Fatalf("scancel: %v: %s", err, out)
	}
	t.Logf("cancelled %d queued jobs", len(ids))
}

// logControllerLoad records how many jobs the controller holds (finished
// ones stay MinJobAge, five minutes here) and what one full squeue costs
// with them: both figures below depend on it.
func logControllerLoad(t *testing.T) {
	t.Helper()
	start := time.Now()
	jobs := squeueAll(t)
	t.Logf("Slurm controller holds %d jobs (finished ones included); one full squeue took %s",
		len(jobs), time.Since(start).Round(time.Millisecond))
}

// countWorkflows is how many of the user's workflows are in the given
// (comma-separated) states.
func countWorkflows(t *testing.T, d *harness.Daemon, u *harness.User, status string) int {
	t.Helper()
	var r struct {
		Total int `json:"total"`
	}
	st := d.JSON(t, "GET", "/api/workflows?type=batch&page=1&size=1&status="+status, u.Token, nil, &r)
	require.Equal(t, http.StatusOK, st)
	return r.Total
}

// callLog is one line the wrapper scripts write.
type callLog struct {
	at   time.Time
	name string
	args string
}

// slurmWrappers makes a directory (for REANA_SITE_SLURM_BIN_DIR) of
// wrappers of the Slurm commands; see commandWrappers.
func slurmWrappers(t *testing.T) (binDir, logPath string) {
	return commandWrappers(t, "", []string{"sbatch", "squeue", "scancel", "sacct", "scontrol"})
}

// commandWrappers makes a directory (for a *_BIN_DIR setting) of wrappers
// that note the time of every call (bash's $EPOCHREALTIME, no extra
// process) in a log anyone can append to, then exec the real command from
// realDir (or PATH, when realDir is empty; commands missing from PATH are
// left out, for the optional sacct and scontrol).
func commandWrappers(t *testing.T, realDir string, names []string) (binDir, logPath string) {
	t.Helper()
	binDir, err := os.MkdirTemp("", "reana-bench-bin-")
	require.NoError(t, err)
	logDir, err := os.MkdirTemp("", "reana-bench-log-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(binDir); os.RemoveAll(logDir) })
	require.NoError(t, os.Chmod(binDir, 0o755))
	require.NoError(t, os.Chmod(logDir, 0o1777))
	logPath = filepath.Join(logDir, "calls.log")
	require.NoError(t, os.WriteFile(logPath, nil, 0o666))
	require.NoError(t, os.Chmod(logPath, 0o666))
	for _, name := range names {
		real := filepath.Join(realDir, name)
		if realDir == "" {
			if real, err = exec.LookPath(name); err != nil {
				continue
			}
		}
		script := fmt.Sprintf("#!/bin/bash\nprintf '%%s %s %%s\\n' \"${EPOCHREALTIME/,/.}\" \"$*\" >>%s\nexec %s \"$@\"\n", name, logPath, real)
		require.NoError(t, os.WriteFile(filepath.Join(binDir, name), []byte(script), 0o755))
	}
	return binDir, logPath
}

func readCallLog(t *testing.T, path string) []callLog {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var calls []callLog
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<16), 1<<20)
	for sc.Scan() {
		ts, rest, _ := strings.Cut(sc.Text(), " ")
		name, args, _ := strings.Cut(rest, " ")
		whole, frac, _ := strings.Cut(ts, ".")
		sec, err := strconv.ParseInt(whole, 10, 64)
		require.NoError(t, err, "log line %q", sc.Text())
		ns, err := strconv.ParseInt((frac + "000000000")[:9], 10, 64)
		require.NoError(t, err, "log line %q", sc.Text())
		calls = append(calls, callLog{at: time.Unix(sec, ns), name: name, args: args})
	}
	require.NoError(t, sc.Err())
	sort.Slice(calls, func(i, j int) bool { return calls[i].at.Before(calls[j].at) })
	return calls
}

func durMS(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// TestBenchSlurmStepHandoff: one Slurm step of 31 commands, each its own
// Slurm job; the handoff is from the end of one job's command (the mtime
// of the exit-status file its script writes) to the sbatch of the next.
func TestBenchSlurmStepHandoff(t *testing.T) {
	const commands = 31
	harness.EnsureSlurm(t, env.Repo)
	waitQueueIdle(t, 3*time.Minute)
	logControllerLoad(t)
	binDir, logPath := slurmWrappers(t)
	d := harness.StartDaemon(t, env, "REANA_SITE_BACKENDS=local,slurm", "REANA_SITE_SLURM_BIN_DIR="+binDir)
	alice := d.AddUser(t, "alice")

	cmds := make([]string, commands)
	for i := range cmds {
		cmds[i] = "true"
	}
	id, err := createWorkflow(d, alice.Token, "handoff", slurmSpec(cmds...))
	require.NoError(t, err)
	start := time.Now()
	require.NoError(t, startWorkflow(d, alice.Token, id))
	alice.WaitStatus(t, id, 4*time.Minute, "finished")
	total := time.Since(start)

	calls := readCallLog(t, logPath)
	jobsDir := filepath.Join(filepath.Dir(filepath.Dir(d.WorkspaceOf(alice, id))), "jobs", id)
	type submitted struct {
		job   string
		at    time.Time
		ended time.Time
	}
	var subs []submitted
	var squeues []time.Time
	counts := map[string]int{}
	for _, c := range calls {
		counts[c.name]++
		switch c.name {
		case "squeue":
			squeues = append(squeues, c.at)
		case "sbatch":
			if !strings.Contains(c.args, "workflow="+id) {
				continue
			}
			_, rest, ok := strings.Cut(c.args, "--comment=reana-site job=")
			require.True(t, ok, "sbatch without the job comment: %s", c.args)
			job, _, _ := strings.Cut(rest, " ")
			fi, err := os.Stat(filepath.Join(jobsDir, job, "exit"))
			require.NoError(t, err, "exit-status file of job %s", job)
			subs = append(subs, submitted{job: job, at: c.at, ended: fi.ModTime()})
		}
	}
	require.Len(t, subs, commands, "one sbatch per command")

	var handoffs, slurmSide, daemonSide, inSlurm []time.Duration
	for _, sub := range subs {
		inSlurm = append(inSlurm, sub.ended.Sub(sub.at))
	}
	for i := 1; i < len(subs); i++ {
		prev, cur := subs[i-1], subs[i]
		h := cur.at.Sub(prev.ended)
		require.Positive(t, h, "job %s submitted before job %s ended", cur.job, prev.job)
		handoffs = append(handoffs, h)
		// The squeue that let the engine see the end is the last one before
		// the next sbatch (the engine settles and submits within that poll).
		var trigger time.Time
		for _, q := range squeues {
			if q.Before(cur.at) {
				trigger = q
			}
		}
		if trigger.After(prev.ended) {
			slurmSide = append(slurmSide, trigger.Sub(prev.ended))
			daemonSide = append(daemonSide, cur.at.Sub(trigger))
		}
	}
	median := func(ds []time.Duration) time.Duration {
		s := append([]time.Duration(nil), ds...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return s[len(s)/2]
	}
	t.Logf("%d commands in %s; %d handoffs: min %s, median %s, max %s",
		commands, total.Round(time.Millisecond), len(handoffs),
		extreme(handoffs, 0), median(handoffs).Round(time.Millisecond), extreme(handoffs, -1))
	if len(slurmSide) > 0 {
		t.Logf("median split: %s from the command's end until the squeue that showed the job over (Slurm's completion plus the 200 ms poll), %s from that squeue to the next sbatch (daemon: squeue, exit status and logs read as alice, store, submission helper)",
			median(slurmSide).Round(time.Millisecond), median(daemonSide).Round(time.Millisecond))
	}
	t.Logf("each job took a median %s from its sbatch to its command's end (Slurm starts batch jobs with a delay; not part of the handoff)",
		median(inSlurm).Round(time.Millisecond))
	t.Logf("Slurm commands run through the wrappers: %d sbatch, %d squeue, %d sacct, %d scontrol, %d scancel (%.1f squeue per second of the run)",
		counts["sbatch"], counts["squeue"], counts["sacct"], counts["scontrol"], counts["scancel"], float64(counts["squeue"])/total.Seconds())
	report("step_handoff_p50_ms", durMS(median(handoffs)), "ms", "< 1000")
	report("step_handoff_p99_ms", durMS(p99(handoffs)), "ms", "< 2000")
}

// extreme returns the smallest (0) or largest (-1) duration, rounded.
func extreme(ds []time.Duration, which int) time.Duration {
	s := append([]time.Duration(nil), ds...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if which < 0 {
		return s[len(s)-1].Round(time.Millisecond)
	}
	return s[0].Round(time.Millisecond)
}

// TestBenchSlurmSubmitOverhead: 200 one-step Slurm workflows started
// through the API against 200 plain sbatch calls by the same user, each
// timed until Slurm knows every job.
func TestBenchSlurmSubmitOverhead(t *testing.T) {
	const n = 200
	harness.EnsureSlurm(t, env.Repo)
	waitQueueIdle(t, 3*time.Minute)
	logControllerLoad(t)
	d := harness.StartDaemon(t, env, "REANA_SITE_BACKENDS=local,slurm")
	alice := d.AddUser(t, "alice")

	// Create all runs first (not timed): the workspaces exist beforehand, as
	// after `reana-client create` and `upload`.
	spec := slurmSpec("true")
	ids := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	next := make(chan int, n)
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				id, err := createWorkflow(d, alice.Token, fmt.Sprintf("subover%d", i), spec)
				if err != nil {
					errs <- err
					return
				}
				ids[i] = id
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	wanted := make(map[string]bool, n)
	for _, id := range ids {
		wanted[id] = true
	}

	// Phase 1: reana-site, start calls one after the other as a script
	// would send them.
	var reanaStart time.Time
	reana, reanaPolls := timeUntilKnown(t, func() error {
		reanaStart = time.Now()
		for _, id := range ids {
			if err := startWorkflow(d, alice.Token, id); err != nil {
				return err
			}
		}
		return nil
	}, func(_, comment string) string {
		if _, wf, ok := strings.Cut(comment, " workflow="); ok && wanted[wf] {
			return wf
		}
		return ""
	}, n, 3*time.Minute)
	t.Logf("reana-site: %d workflows started and known to Slurm in %s (%d squeue polls by the bench)", n, reana.Round(time.Millisecond), reanaPolls)
	if last, ok := lastSubmission(d.Output(), wanted); ok {
		t.Logf("reana-site's own log: last sbatch answered %s after the first start call (millisecond log stamps)", last.Sub(reanaStart).Round(time.Millisecond))
	}

	// Slurm here starts a batch job about 3 s after it is submitted
	// (batch_sched_delay) and runs two at a time, so letting 200 runs end
	// would take some 4 minutes. Their submission is what is measured: stop
	// the daemon and cancel what is still queued, so that plain sbatch
	// starts on an idle queue as reana-site did.
	require.Zero(t, countWorkflows(t, d, alice, "failed,stopped"), "some runs failed:\n%s", d.Output())
	stopAndCancel(t, d, wanted)

	// Phase 2: plain sbatch as alice, one process looping (plainSbatch).
	plain := plainSbatch(t, n)
	t.Logf("plain sbatch: %d jobs known to Slurm in %s", n, plain.Round(time.Millisecond))
	t.Logf("per job: reana-site %.1f ms, plain sbatch %.1f ms", float64(reana.Microseconds())/1000/n, float64(plain.Microseconds())/1000/n)
	report("slurm_submit_overhead_ratio", reana.Seconds()/plain.Seconds(), "x", "<= 1.05")
	waitQueueIdle(t, 2*time.Minute)
}

// benchRunner plays the users' helper processes for the backend-level
// benchmark; only ended jobs would reach it.
type benchRunner struct {
	mu    sync.Mutex
	calls int
}

func (r *benchRunner) Call(_ context.Context, _ asuser.Account, op asuser.Op, args, result any) error {
	r.mu.Lock()
	r.calls++
	r.mu.Unlock()
	var out any
	switch op {
	case "job.readexit":
		out = map[string]any{}
	default:
		return fmt.Errorf("unexpected helper op %s", op)
	}
	b, _ := json.Marshal(out)
	return json.Unmarshal(b, result)
}

// TestBenchSlurmQueriesPerPoll: scheduler queries in one status round for
// 10, 1,000 and 10,000 tracked jobs. A single-node test Slurm cannot hold
// 10,000 jobs, so this drives slurm.Backend.Status with a synthetic
// squeue answer; the daemon's poll calls exactly this method with
// every running Slurm job of every user (the end-to-end suite exercises
// that path against the real Slurm).
func TestBenchSlurmQueriesPerPoll(t *testing.T) {
	for _, n := range []int{10, 1000, 10000} {
		var queued []string
		jobs := make([]batch.Job, 0, n)
		for i := 0; i < n; i++ {
			queued = append(queued, fmt.Sprintf("%d|RUNNING|None", i+1))
			jobs = append(jobs, batch.Job{
				Spec: batch.Spec{
					JobID: fmt.Sprint("j", i), WorkflowID: fmt.Sprint("w", i%50), Command: "true",
					Workspace: "/home/alice/reana/workflows/w", JobDir: fmt.Sprintf("/home/alice/reana/jobs/w/j%d", i),
					User: asuser.Account{Name: "alice", UID: 4101, GID: 4101},
				},
				Handle: batch.Handle{Backend: slurm.Name, Version: 1, ID: fmt.Sprint(i + 1)},
			})
		}
		doc := []byte(strings.Join(queued, "\n") + "\n")
		queries := 0
		var asked []string
		r := &benchRunner{}
		b := &slurm.Backend{Runner: r, Query: func(_ context.Context, argv []string) ([]byte, []byte, error) {
			queries++
			asked = append(asked, filepath.Base(argv[0]))
			if filepath.Base(argv[0]) != "squeue" {
				return nil, nil, nil // sacct or scontrol: nothing to add
			}
			return doc, nil, nil
		}}
		start := time.Now()
		st, err := b.Status(context.Background(), jobs)
		took := time.Since(start)
		require.NoError(t, err)
		require.Len(t, st, n)
		for id, s := range st {
			require.Equal(t, batch.Running, s.State, id)
		}
		t.Logf("%d jobs: %d scheduler queries %v, %d helper calls, status round %s", n, queries, asked, r.calls, took.Round(time.Microsecond))
		report(fmt.Sprintf("slurm_queries_per_poll_%d", n), float64(queries), "queries", "== 1")
	}
}
