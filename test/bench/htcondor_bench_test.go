//go:build bench

package bench

// The HTCondor figures: schedd queries per poll in steady state, the cost
// of following event logs per new event, and the pause between one
// HTCondor step and the next. The first two drive htcondor.Backend.Status
// directly (the daemon's poll calls exactly this method with every running
// HTCondor job of every user); the handoff runs the daemon against the
// HTCondor test stand-in (test/htcondor).

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/user"
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
	"github.com/reana-site/reana-site/batch/htcondor"
	"github.com/reana-site/reana-site/test/harness"
)

const (
	benchSubmitEvent  = "000 (%03d.000.000) 2026-11-25 10:00:00 Job submitted from host: <10.0.0.1:9618?addrs=10.0.0.1-9618>\n...\n"
	benchExecuteEvent = "001 (%03d.000.000) 2026-11-25 10:00:01 Job executing on host: <10.0.0.2:9618?addrs=10.0.0.2-9618>\n...\n"
	benchImageEvent   = "006 (%03d.000.000) 2026-11-25 10:00:05 Image size of job updated: 1024\n\t1  -  MemoryUsage of job (MB)\n\t512  -  ResidentSetSize of job (KB)\n...\n"
)

// followRunner plays the users' helpers for the queries benchmark: every
// log exists and has nothing new past the offset asked for.
type followRunner struct {
	mu    sync.Mutex
	calls int
	size  map[string]int64 // path -> size
	data  map[string]string
}

func (r *followRunner) Call(_ context.Context, _ asuser.Account, op asuser.Op, args, result any) error {
	if op != "job.follow" {
		return fmt.Errorf("unexpected helper op %s", op)
	}
	r.mu.Lock()
	r.calls++
	r.mu.Unlock()
	a := args.(asuser.JobFollowArgs)
	out := make(map[string]asuser.FollowResult, len(a.Logs))
	for _, l := range a.Logs {
		d := r.data[l.Path]
		res := asuser.FollowResult{Exists: true, Size: int64(len(d))}
		if l.Offset < int64(len(d)) {
			res.Data = []byte(d[l.Offset:])
		}
		out[l.ID] = res
	}
	b, _ := json.Marshal(out)
	return json.Unmarshal(b, result)
}

func condorJobs(n int, jobRoot string) []batch.Job {
	jobs := make([]batch.Job, 0, n)
	t0 := time.Now()
	for i := 0; i < n; i++ {
		dir := filepath.Join(jobRoot, fmt.Sprintf("j%d", i))
		data, _ := json.Marshal(map[string]any{"job_dir": dir, "cluster": i + 1, "proc": 0, "submitted": t0})
		jobs = append(jobs, batch.Job{
			Spec: batch.Spec{JobID: fmt.Sprint("j", i), WorkflowID: fmt.Sprint("w", i%50), Command: "true",
				Workspace: "/home/alice/reana/workflows/w", JobDir: dir,
				User: asuser.Account{Name: "alice", UID: 4101, GID: 4101}},
			Handle: batch.Handle{Backend: htcondor.Name, Version: 1, ID: fmt.Sprintf("%d.0", i+1), Data: data},
		})
	}
	return jobs
}

// TestBenchHTCondorScheddQueriesPerPoll: schedd queries in one status
// round for 10, 1,000 and 10,000 running jobs whose logs have been read up
// to their end (steady state: running jobs write nothing for hours).
func TestBenchHTCondorScheddQueriesPerPoll(t *testing.T) {
	for _, n := range []int{10, 1000, 10000} {
		jobs := condorJobs(n, "/home/alice/reana/jobs/w")
		r := &followRunner{data: map[string]string{}}
		for i, j := range jobs {
			r.data[filepath.Join(j.Spec.JobDir, htcondor.EventLogFile)] = fmt.Sprintf(benchSubmitEvent+benchExecuteEvent, i+1, i+1)
		}
		queries := 0
		b := &htcondor.Backend{Runner: r, Query: func(context.Context, []string) ([]byte, []byte, error) {
			queries++
			return nil, nil, nil
		}}
		// The first round reads the logs to their end; the engine stores
		// the offsets it returns.
		st, err := b.Status(context.Background(), jobs)
		require.NoError(t, err)
		for i := range jobs {
			s := st[jobs[i].Spec.JobID]
			require.Equal(t, batch.Running, s.State)
			require.NotNil(t, s.Handle)
			jobs[i].Handle = *s.Handle
		}
		queries = 0
		start := time.Now()
		st, err = b.Status(context.Background(), jobs)
		took := time.Since(start)
		require.NoError(t, err)
		require.Len(t, st, n)
		t.Logf("%d jobs: %d schedd queries, %d helper calls in all, steady-state round %s", n, queries, r.calls, took.Round(time.Microsecond))
		report(fmt.Sprintf("htcondor_schedd_queries_per_poll_%d", n), float64(queries), "queries", "== 0")
	}
}

// TestBenchHTCondorEventFollow: the cost of following event logs per new
// event, through the real helper process running as alice: 1,000 jobs'
// logs in alice's home, one event appended to each per round.
func TestBenchHTCondorEventFollow(t *testing.T) {
	const n, rounds = 1000, 7
	pw, err := user.Lookup("alice")
	require.NoError(t, err)
	uid, _ := strconv.Atoi(pw.Uid)
	gid, _ := strconv.Atoi(pw.Gid)
	root, err := os.MkdirTemp(pw.HomeDir, ".reana-bench-condor-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(root) })
	jobs := condorJobs(n, root)
	for i, j := range jobs {
		j.Spec.User = asuser.Account{Name: "alice", UID: uint32(uid), GID: uint32(gid)}
		jobs[i] = j
		require.NoError(t, os.Mkdir(j.Spec.JobDir, 0o700))
		p := filepath.Join(j.Spec.JobDir, htcondor.EventLogFile)
		require.NoError(t, os.WriteFile(p, []byte(fmt.Sprintf(benchSubmitEvent+benchExecuteEvent, i+1, i+1)), 0o600))
		require.NoError(t, os.Chown(p, uid, gid))
		require.NoError(t, os.Chown(j.Spec.JobDir, uid, gid))
	}
	require.NoError(t, os.Chown(root, uid, gid))
	runner := &asuser.Runner{Exe: env.Bin, Args: []string{"worker"}, CanSwitch: true}
	b := &htcondor.Backend{Runner: runner, Query: func(context.Context, []string) ([]byte, []byte, error) {
		t.Error("the schedd was asked")
		return nil, nil, nil
	}}
	round := func() time.Duration {
		start := time.Now()
		st, err := b.Status(context.Background(), jobs)
		took := time.Since(start)
		require.NoError(t, err)
		for i := range jobs {
			s := st[jobs[i].Spec.JobID]
			require.Equal(t, batch.Running, s.State)
			if s.Handle != nil {
				jobs[i].Handle = *s.Handle
			}
		}
		return took
	}
	round() // read the submit and execute events
	var idle, busy []time.Duration
	for r := 0; r < rounds; r++ {
		idle = append(idle, round())
		for i, j := range jobs {
			f, err := os.OpenFile(filepath.Join(j.Spec.JobDir, htcondor.EventLogFile), os.O_APPEND|os.O_WRONLY, 0)
			require.NoError(t, err)
			_, err = fmt.Fprintf(f, benchImageEvent, i+1)
			require.NoError(t, err)
			require.NoError(t, f.Close())
		}
		busy = append(busy, round())
	}
	median := func(ds []time.Duration) time.Duration {
		s := append([]time.Duration(nil), ds...)
		sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
		return s[len(s)/2]
	}
	perEvent := float64(median(busy).Microseconds()) / n
	extra := float64((median(busy) - median(idle)).Microseconds()) / n
	t.Logf("%d logs of one user: a round with nothing new takes %s (one helper process reads them all), with one new event in each %s",
		n, median(idle).Round(time.Microsecond), median(busy).Round(time.Microsecond))
	t.Logf("per new event: %.1f µs in all, %.1f µs above a round with nothing new", perEvent, extra)
	report("htcondor_event_follow_us_per_event", perEvent, "us", "< 100 (own goal)")
}

// TestBenchHTCondorStepHandoff: one HTCondor step of 21 commands, each its
// own job on the stand-in; the handoff is from the terminate event of one
// job (the last write to its event log, so the log's mtime) to the
// condor_submit of the next, with the daemon's default 500 ms poll.
//
// It runs on the stand-in, then on the real pool of test/htcondor/pool.sh
// when that starts, whose figures carry "_real_pool".
func TestBenchHTCondorStepHandoff(t *testing.T) {
	t.Run("standin", func(t *testing.T) {
		benchHTCondorHandoff(t, harness.StartHTCondorStandin(t, env), "")
	})
	t.Run("real pool", func(t *testing.T) {
		pool := harness.StartHTCondor(t, env)
		if !pool.Real {
			t.Skip("the real HTCondor pool is not available")
		}
		benchHTCondorHandoff(t, pool, "_real_pool")
	})
}

func benchHTCondorHandoff(t *testing.T, pool *harness.HTCondor, suffix string) {
	const commands = 21
	binDir, logPath := commandWrappers(t, pool.Bin, []string{"condor_submit", "condor_q", "condor_history", "condor_rm"})
	// The production poll interval, and jobs of differing lengths: with
	// equal jobs the polls fall into step with the job ends and the
	// figure would flatter.
	d := harness.StartDaemon(t, env, "REANA_SITE_BACKENDS=local,htcondor", "REANA_SITE_POLL_INTERVAL=500ms",
		"REANA_SITE_HTCONDOR_BIN_DIR="+binDir, "REANA_SITE_HTCONDOR_CONFIG="+pool.Config)
	alice := d.AddUser(t, "alice")

	cmds := make([]string, commands)
	for i := range cmds {
		cmds[i] = fmt.Sprintf("sleep 0.%02d", (i*37)%100)
	}
	spec := strings.Replace(string(slurmSpec(cmds...)), `"slurmcern"`, `"htcondorcern"`, 1)
	id, err := createWorkflow(d, alice.Token, "condor-handoff", []byte(spec))
	require.NoError(t, err)
	start := time.Now()
	require.NoError(t, startWorkflow(d, alice.Token, id))
	alice.WaitStatus(t, id, 4*time.Minute, "finished")
	total := time.Since(start)

	jobsDir := filepath.Join(filepath.Dir(filepath.Dir(d.WorkspaceOf(alice, id))), "jobs", id)
	type submitted struct {
		job        string
		at, logged time.Time
	}
	var subs []submitted
	counts := map[string]int{}
	for _, c := range readCallLog(t, logPath) {
		counts[c.name]++
		if c.name != "condor_submit" {
			continue
		}
		// The description's path names the job: <jobs>/<workflow>/<job>/job.sub.
		desc := c.args[strings.LastIndex(c.args, " ")+1:]
		if !strings.HasPrefix(desc, jobsDir+"/") {
			continue
		}
		job := filepath.Base(filepath.Dir(desc))
		fi, err := os.Stat(filepath.Join(jobsDir, job, htcondor.EventLogFile))
		require.NoError(t, err, "event log of job %s", job)
		subs = append(subs, submitted{job: job, at: c.at, logged: fi.ModTime()})
	}
	require.Len(t, subs, commands, "one condor_submit per command")
	var handoffs []time.Duration
	for i := 1; i < len(subs); i++ {
		h := subs[i].at.Sub(subs[i-1].logged)
		require.Positive(t, h, "job %s submitted before job %s's terminate event", subs[i].job, subs[i-1].job)
		handoffs = append(handoffs, h)
	}
	sorted := append([]time.Duration(nil), handoffs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i] < sorted[j] })
	t.Logf("%d commands in %s; %d handoffs: min %s, median %s, max %s; HTCondor commands: %d condor_submit, %d condor_q, %d condor_history, %d condor_rm",
		commands, total.Round(time.Millisecond), len(handoffs), sorted[0].Round(time.Millisecond),
		sorted[len(sorted)/2].Round(time.Millisecond), sorted[len(sorted)-1].Round(time.Millisecond),
		counts["condor_submit"], counts["condor_q"], counts["condor_history"], counts["condor_rm"])
	report("htcondor_step_handoff_p50_ms"+suffix, durMS(sorted[len(sorted)/2]), "ms", "< 1000")
	report("htcondor_schedd_queries_during_handoff_run"+suffix, float64(counts["condor_q"]+counts["condor_history"]), "queries", "== 0")
}
