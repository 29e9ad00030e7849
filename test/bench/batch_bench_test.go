//go:build bench

package bench

// The figures of batched submission: the HTCondor submit overhead on the
// stand-in, a burst of 1,000 Slurm workflows, and how long one user's single
// job waits while another has 2,000 ready.

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/batch/slurm"
	"github.com/reana-site/reana-site/daemon/store"
	"github.com/reana-site/reana-site/test/harness"
)

// createMany creates n workflows of spec through the API, 8 at a time.
func createMany(t *testing.T, d *harness.Daemon, token, prefix string, n int, spec []byte) []string {
	t.Helper()
	ids := make([]string, n)
	eachParallel(t, n, 8, func(i int) error {
		id, err := createWorkflow(d, token, fmt.Sprintf("%s%d", prefix, i), spec)
		ids[i] = id
		return err
	})
	return ids
}

// eachParallel runs fn(0..n-1) with at most par at once.
func eachParallel(t *testing.T, n, par int, fn func(i int) error) {
	t.Helper()
	next := make(chan int, n)
	for i := 0; i < n; i++ {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := 0; w < par; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				if err := fn(i); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
}

func workflowSet(ids []string) map[string]bool {
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// byWorkflowComment matches reana-site's Slurm jobs of the given workflows.
func byWorkflowComment(wanted map[string]bool) func(id, comment string) string {
	return func(_, comment string) string {
		if _, wf, ok := strings.Cut(comment, " workflow="); ok && wanted[wf] {
			return wf
		}
		return ""
	}
}

// stopAndCancel stops the daemon and cancels what is left of the given
// workflows' Slurm jobs (their submission was what was measured; running
// them two at a time would take minutes), and waits for an idle queue.
func stopAndCancel(t *testing.T, d *harness.Daemon, wanted map[string]bool) {
	t.Helper()
	d.Stop()
	cancelJobs(t, func(j slurm.QueueJob) bool {
		_, wf, ok := strings.Cut(j.Comment, " workflow=")
		return ok && wanted[wf]
	})
	waitQueueIdle(t, 3*time.Minute)
}

// plainSbatch is n sbatch calls as alice in one shell loop, timed until
// Slurm knows every job, which it then cancels. The comment only lets the
// poller tell these jobs apart (reana-site's carry one too).
func plainSbatch(t *testing.T, n int) time.Duration {
	t.Helper()
	tag := "bench-plain-" + harness.RandomHex(6)
	took, _ := timeUntilKnown(t, func() error {
		script := fmt.Sprintf(`cd "$HOME" && for i in $(seq %d); do sbatch --parsable --output=/dev/null --comment=%s --wrap true >/dev/null || exit 1; done`, n, tag)
		out, err := exec.Command("setpriv", "--reuid=alice", "--regid=alice", "--init-groups", "--reset-env", "bash", "-c", script).CombinedOutput()
		if err != nil {
			return fmt.Errorf("sbatch loop: %v: %s", err, out)
		}
		return nil
	}, func(id, comment string) string {
		if comment == tag {
			return id
		}
		return ""
	}, n, 10*time.Minute)
	cancelJobs(t, func(j slurm.QueueJob) bool { return j.Comment == tag })
	return took
}

// TestBenchSlurmBurst: 1,000 Slurm workflows started at once (8 start
// calls in flight), timed until Slurm knows every job, beside 1,000 plain
// sbatch calls.
func TestBenchSlurmBurst(t *testing.T) {
	const n = 1000
	harness.EnsureSlurm(t, env.Repo)
	waitQueueIdle(t, 3*time.Minute)
	d := harness.StartDaemon(t, env, "REANA_SITE_BACKENDS=local,slurm")
	alice := d.AddUser(t, "alice")
	ids := createMany(t, d, alice.Token, "burst", n, slurmSpec("true"))
	wanted := workflowSet(ids)

	reana, _ := timeUntilKnown(t, func() error {
		eachParallel(t, n, 8, func(i int) error { return startWorkflow(d, alice.Token, ids[i]) })
		return nil
	}, byWorkflowComment(wanted), n, 10*time.Minute)
	t.Logf("reana-site: %d workflows started and known to Slurm in %s", n, reana.Round(time.Millisecond))
	stopAndCancel(t, d, wanted)
	plain := plainSbatch(t, n)
	t.Logf("plain sbatch: %d jobs known to Slurm in %s", n, plain.Round(time.Millisecond))
	report("burst_1000_submit_s", reana.Seconds(), "s", fmt.Sprintf("report; plain sbatch %.2f s", plain.Seconds()))
	report("burst_1000_plain_sbatch_s", plain.Seconds(), "s", "reference")
	waitQueueIdle(t, 3*time.Minute)
}

// seedQueued stores n queued copies of the template workflow for the same
// owner (sharing its workspace; each job still gets its own directory), so
// that they are all ready when the daemon starts, as after a burst of
// starts.
func seedQueued(t *testing.T, db *store.DB, template store.Workflow, n int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i++ {
		wf := template
		wf.ID = uuid.NewString()
		wf.Name = fmt.Sprintf("%s-copy%d", template.Name, i)
		wf.Status = store.StatusQueued
		require.NoError(t, db.CreateWorkflow(ctx, &wf))
	}
}

// TestBenchFairness: bob's one Slurm job's wait, from the engine's first
// round, while alice has 2,000 ready Slurm jobs.
func TestBenchFairness(t *testing.T) {
	const many = 2000
	harness.EnsureSlurm(t, env.Repo)
	waitQueueIdle(t, 3*time.Minute)
	d := harness.StartDaemon(t, env, "REANA_SITE_BACKENDS=local,slurm")
	alice, bob := d.AddUser(t, "alice"), d.AddUser(t, "bob")
	aliceIDs := createMany(t, d, alice.Token, "many", 1, slurmSpec("true"))
	bobIDs := createMany(t, d, bob.Token, "one", 1, slurmSpec("true"))

	// Queue them all in the store while the daemon is down: alice's 2,000
	// and bob's one are ready in the same first round.
	d.Stop()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(d.StateDir, "reana-site.db"))
	require.NoError(t, err)
	tmpl, err := db.GetWorkflow(ctx, aliceIDs[0])
	require.NoError(t, err)
	seedQueued(t, db, tmpl, many-1)
	for _, id := range append(aliceIDs, bobIDs...) {
		_, err := db.UpdateWorkflow(ctx, id, func(w *store.Workflow) error { w.Status = store.StatusQueued; return nil })
		require.NoError(t, err)
	}
	all, err := db.ActiveWorkflows(ctx)
	require.NoError(t, err)
	require.Len(t, all, many+1)
	wantedAlice := map[string]bool{}
	for _, wf := range all {
		if wf.ID != bobIDs[0] {
			wantedAlice[wf.ID] = true
		}
	}
	require.NoError(t, db.Close())

	var started time.Time
	before := time.Now()
	bobWait, _ := timeUntilKnown(t, func() error {
		d.Start()
		started = time.Now()
		return nil
	}, byWorkflowComment(map[string]bool{bobIDs[0]: true}), 1, 2*time.Minute)
	// timeUntilKnown counts from before the start; the wait is from the
	// daemon's first answer, by when its engine's first round has begun.
	wait := bobWait - started.Sub(before)
	aliceKnown := 0
	out, _ := exec.Command("squeue", "--noheader", "--states=all", "--format=%k").Output()
	for _, line := range strings.Split(string(out), "\n") {
		if _, wf, ok := strings.Cut(strings.TrimSpace(line), " workflow="); ok && wantedAlice[wf] {
			aliceKnown++
		}
	}
	t.Logf("bob's job reached Slurm %s after the daemon answered (%s after it was started); alice had %d of her %d jobs in Slurm then",
		wait.Round(time.Millisecond), bobWait.Round(time.Millisecond), aliceKnown, many)
	wantedAlice[bobIDs[0]] = true
	stopAndCancel(t, d, wantedAlice)
	report("fairness_small_user_wait_ms", durMS(wait), "ms", "< 2000")
}

// TestBenchHTCondorSubmitOverhead: 200 one-step HTCondor workflows started
// through the API against 200 plain condor_submit calls by the same user,
// on the stand-in; each timed until the last condor_submit answered.
func TestBenchHTCondorSubmitOverhead(t *testing.T) {
	const n = 200
	pool := harness.StartHTCondorStandin(t, env)
	d := harness.StartDaemon(t, env, append([]string{"REANA_SITE_BACKENDS=local,htcondor"}, pool.DaemonEnv()...)...)
	alice := d.AddUser(t, "alice")
	spec := strings.Replace(string(slurmSpec("true")), `"slurmcern"`, `"htcondorcern"`, 1)
	ids := createMany(t, d, alice.Token, "condorover", n, []byte(spec))
	wanted := workflowSet(ids)

	start := time.Now()
	for _, id := range ids {
		require.NoError(t, startWorkflow(d, alice.Token, id))
	}
	var last time.Time
	require.Eventually(t, func() bool {
		at, ok := lastSubmission(d.Output(), wanted)
		last = at
		return ok && strings.Count(d.Output(), `msg="job submitted"`) >= n
	}, 5*time.Minute, 50*time.Millisecond)
	reana := last.Sub(start)
	t.Logf("reana-site: %d workflows started and their condor_submit answered in %s", n, reana.Round(time.Millisecond))
	d.Stop()
	_, _ = pool.Run("condor_rm", "-constraint", "true")

	dir, err := os.MkdirTemp("", "reana-bench-condor-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o777))
	desc := fmt.Sprintf("executable = /bin/true\noutput = /dev/null\nerror = /dev/null\nlog = %s/plain.log\nqueue\n", dir)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "plain.sub"), []byte(desc), 0o644))
	script := fmt.Sprintf(`for i in $(seq %d); do %s -terse %s/plain.sub >/dev/null || exit 1; done`, n, filepath.Join(pool.Bin, "condor_submit"), dir)
	cmd := exec.Command("setpriv", "--reuid=alice", "--regid=alice", "--init-groups", "--reset-env", "env", "CONDOR_CONFIG="+pool.Config, "bash", "-c", script)
	s := time.Now()
	out, err := cmd.CombinedOutput()
	plain := time.Since(s)
	require.NoError(t, err, "%s", out)
	t.Logf("plain condor_submit: %d jobs in %s; per job: reana-site %.1f ms, plain %.1f ms", n, plain.Round(time.Millisecond),
		durMS(reana)/n, durMS(plain)/n)
	report("htcondor_submit_overhead_ratio", reana.Seconds()/plain.Seconds(), "x", "<= 1.05")
}
