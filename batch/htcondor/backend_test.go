package htcondor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
)

// fakeCondor plays the user's helper (job.submit, job.follow, job.logs,
// exec) and the daemon's queries, over in-memory logs and exit files.
type fakeCondor struct {
	mu        sync.Mutex
	logs      map[string]string // job dir -> event log
	exits     map[string]int    // job dir -> exit status file
	submits   []asuser.BatchSubmitArgs
	submitOut asuser.BatchSubmitResult
	// interrupted makes the next job.submit report an earlier interrupted attempt.
	interrupted bool
	// refuse, when set, is condor_submit's stderr refusing a job submitted
	// on its own (job.submit, job.submitmany), or "" to take it.
	refuse func(asuser.BatchSubmitArgs) string
	// clusters are the job.submitcluster calls, answered with cluster.
	clusters []asuser.BatchSubmitClusterArgs
	cluster  []asuser.BatchSubmitOutcome
	// clusterFails, when set, is the job.submitcluster call (from 1)
	// whose helper fails; without cluster, each call queues its jobs as
	// cluster 20+call.
	clusterFails int
	execs        [][]string
	execErr      string
	queries      [][]string
	queue        string // condor_q -af output
	history      string // condor_history -af output
	queryErr     string
	follows      int
	followErr    string
}

func newFake() *fakeCondor {
	return &fakeCondor{logs: map[string]string{}, exits: map[string]int{},
		submitOut: asuser.BatchSubmitResult{ID: "12.0 - 12.0"}}
}

func roundTrip(from, to any) error {
	b, err := json.Marshal(from)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, to)
}

func (f *fakeCondor) Call(_ context.Context, _ asuser.Account, op asuser.Op, args, result any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	switch op {
	case "job.submit":
		a := args.(asuser.BatchSubmitArgs)
		if f.interrupted && !a.Force {
			f.interrupted = false
			return roundTrip(asuser.BatchSubmitResult{Interrupted: true}, result)
		}
		f.submits = append(f.submits, a)
		return roundTrip(f.submitOne(a), result)
	case "job.submitmany":
		var out []asuser.BatchSubmitOutcome
		for _, a := range args.(asuser.BatchSubmitManyArgs).Jobs {
			f.submits = append(f.submits, a)
			out = append(out, asuser.BatchSubmitOutcome{Result: f.submitOne(a)})
		}
		return roundTrip(out, result)
	case "job.submitcluster":
		a := args.(asuser.BatchSubmitClusterArgs)
		f.clusters = append(f.clusters, a)
		if len(f.clusters) == f.clusterFails {
			return errors.New("helper: signal: killed")
		}
		if f.cluster != nil {
			return roundTrip(f.cluster, result)
		}
		out := make([]asuser.BatchSubmitOutcome, len(a.Jobs))
		for i := range out {
			out[i].Result.ID = fmt.Sprintf("%d.%d", 20+len(f.clusters), i)
		}
		return roundTrip(out, result)
	case "job.follow":
		f.follows++
		a := args.(asuser.JobFollowArgs)
		out := map[string]asuser.FollowResult{}
		for _, l := range a.Logs {
			dir := strings.TrimSuffix(l.Path, "/"+EventLogFile)
			log, ok := f.logs[dir]
			r := asuser.FollowResult{Exists: ok, Size: int64(len(log))}
			if ok && l.Offset < int64(len(log)) {
				r.Data = []byte(log[l.Offset:min(int64(len(log)), l.Offset+a.MaxBytes)])
			}
			if f.followErr != "" {
				r = asuser.FollowResult{Exists: true, Error: f.followErr}
			}
			if code, ok := f.exits[dir]; ok {
				r.Exit = asuser.ExitInfo{Present: true, ExitCode: code}
			}
			out[l.ID] = r
		}
		return roundTrip(out, result)
	case "job.logs":
		return roundTrip(asuser.JobLogsResult{Text: "step output\n"}, result)
	case "exec":
		a := args.(asuser.ExecArgs)
		f.execs = append(f.execs, a.Argv)
		if f.execErr != "" {
			return roundTrip(asuser.ExecResult{ExitCode: 1, Stderr: f.execErr}, result)
		}
		return roundTrip(asuser.ExecResult{Stdout: "Job 12.0 marked for removal\n"}, result)
	}
	return fmt.Errorf("unexpected op %s", op)
}

// submitOne is condor_submit's answer for one job on its own.
func (f *fakeCondor) submitOne(a asuser.BatchSubmitArgs) asuser.BatchSubmitResult {
	if f.refuse != nil {
		if msg := f.refuse(a); msg != "" {
			return asuser.BatchSubmitResult{ExitCode: 1, Stderr: msg}
		}
	}
	return f.submitOut
}

func (f *fakeCondor) query(_ context.Context, argv []string) ([]byte, []byte, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.queries = append(f.queries, argv)
	if f.queryErr != "" {
		return nil, []byte(f.queryErr), &exec.ExitError{}
	}
	if strings.HasSuffix(argv[0], "condor_q") {
		return []byte(f.queue), nil, nil
	}
	return []byte(f.history), nil, nil
}

func errorsIsUnavailable(err error) bool { return errors.Is(err, batch.ErrUnavailable) }

// submitted is alice's job "job-a", submitted as 12.0 at t0 to a fresh
// fake pool: the start of most tests here.
func submitted(t *testing.T) (t0 time.Time, f *fakeCondor, c *clock, b *Backend, s batch.Spec, h batch.Handle) {
	t.Helper()
	t0 = time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	f, c = newFake(), &clock{t: t0}
	b = newBackend(f, c)
	s = spec("job-a")
	h, err := b.Submit(context.Background(), s)
	require.NoError(t, err)
	return t0, f, c, b, s, h
}

func spec(id string) batch.Spec {
	return batch.Spec{JobID: id, WorkflowID: "wf-1", WorkflowName: "fit.1", StepName: "fitdata",
		Command: "python fit.py", Workspace: "/home/alice/reana/wf-1", JobDir: "/home/alice/reana/jobs/wf-1/" + id,
		User: asuser.Account{Name: "alice", UID: 4101, GID: 4101}}
}

const (
	evSubmit  = "000 (012.000.000) 2026-11-25 10:00:00 Job submitted from host: <10.0.0.1:9618>\n...\n"
	evExecute = "001 (012.000.000) 2026-11-25 10:00:01 Job executing on host: <10.0.0.2:9618>\n...\n"
	evHeld    = "012 (012.000.000) 2026-11-25 10:00:05 Job was held.\n\tvia condor_hold (by user root)\n\tCode 1 Subcode 0\n...\n"
	evRelease = "013 (012.000.000) 2026-11-25 10:01:00 Job was released.\n\tvia condor_release (by user root)\n...\n"
	evAbort   = "009 (012.000.000) 2026-11-25 10:02:00 Job was aborted.\n\tvia condor_rm (by user alice)\n...\n"
)

func evTerminated(rv int) string {
	return fmt.Sprintf("005 (012.000.000) 2026-11-25 10:00:30 Job terminated.\n\t(1) Normal termination (return value %d)\n"+
		"\t\tUsr 0 00:00:00, Sys 0 00:00:00  -  Run Remote Usage\n\t0  -  Run Bytes Sent By Job\n...\n", rv)
}

const evJobAd = "028 (012.000.000) 2026-11-25 10:00:31 Job ad information event triggered.\n...\n"

const evSignal = "005 (012.000.000) 2026-11-25 10:00:30 Job terminated.\n\t(0) Abnormal termination (signal 9)\n\t(0) No core file\n...\n"

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func newBackend(f *fakeCondor, c *clock) *Backend {
	return &Backend{Runner: f, Query: f.query, Now: c.now, Parser: Parser{Location: time.UTC},
		Config: Config{BinDir: "/opt/condor/bin", ConfigFile: "/etc/site/condor_config", HoldTimeout: time.Hour}}
}

func TestSubmitWritesDescriptionAndRunsTerse(t *testing.T) {
	f, c := newFake(), &clock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	b := newBackend(f, c)
	b.Config.Schedd, b.Config.Pool = "schedd01.site", "cm.site"
	h, err := b.Submit(context.Background(), spec("job-a"))
	require.NoError(t, err)
	assert.Equal(t, "12.0", h.ID)
	require.Len(t, f.submits, 1)
	a := f.submits[0]
	assert.Equal(t, []string{"/opt/condor/bin/condor_submit", "-terse", "-name", "schedd01.site", "-pool", "cm.site",
		"/home/alice/reana/jobs/wf-1/job-a/job.sub"}, a.Argv)
	assert.Contains(t, a.Files[SubmitFile], `+ReanaJob = "job-a"`)
	assert.Equal(t, []string{"CONDOR_CONFIG=/etc/site/condor_config"}, a.Env)
	assert.Empty(t, f.queries, "a submission asks the schedd nothing else")
}

func TestSubmitErrors(t *testing.T) {
	tests := []struct {
		name, stderr string
		unavailable  bool
	}{
		{"schedd down", "\nERROR: Can't find address of local schedd\n", true},
		{"schedd crashed", "\nERROR: Failed to connect to local queue manager\nCEDAR:6001:Failed to connect to <127.0.0.1:9618>\n", true},
		{"refused by the schedd", "\nERROR: Failed to commit job submission into the queue.\nERROR: SUBMIT_REQUIREMENTS not met\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			f.submitOut = asuser.BatchSubmitResult{ExitCode: 1, Stderr: tt.stderr}
			_, err := newBackend(f, &clock{}).Submit(context.Background(), spec("job-a"))
			require.Error(t, err)
			assert.Equal(t, tt.unavailable, errorsIsUnavailable(err), err.Error())
			assert.NotContains(t, err.Error(), "\n")
		})
	}
}

func TestInterruptedSubmitFindsTheJobInsteadOfSubmittingTwice(t *testing.T) {
	f := newFake()
	f.interrupted = true
	f.queue = "job-a 77 0 alice 2 undefined undefined undefined 1764064800 undefined\n"
	h, err := newBackend(f, &clock{}).Submit(context.Background(), spec("job-a"))
	require.NoError(t, err)
	assert.Equal(t, "77.0", h.ID)
	assert.Empty(t, f.submits, "found, not submitted again")
	require.Len(t, f.queries, 1)
	assert.Contains(t, f.queries[0], `ReanaJob =?= "job-a" && Owner =?= "alice"`)

	// Not in the queue nor in the history: the submission never reached
	// the schedd, so it is made now.
	f = newFake()
	f.interrupted = true
	h, err = newBackend(f, &clock{}).Submit(context.Background(), spec("job-b"))
	require.NoError(t, err)
	assert.Equal(t, "12.0", h.ID)
	require.Len(t, f.submits, 1)
	assert.True(t, f.submits[0].Force)
	assert.Len(t, f.queries, 2, "condor_q, then condor_history")
}

// poll runs one Status round for one job and returns its status and the
// job with the handle the engine would store.
func poll(t *testing.T, b *Backend, j batch.Job) (batch.Status, batch.Job) {
	t.Helper()
	out, err := b.Status(context.Background(), []batch.Job{j})
	require.NoError(t, err)
	st, ok := out[j.Spec.JobID]
	require.True(t, ok, "a status for the job")
	if st.Handle != nil {
		j.Handle = *st.Handle
	}
	return st, j
}

func TestFollowingTheLog(t *testing.T) {
	_, f, _, b, s, h := submitted(t)
	j := batch.Job{Spec: s, Handle: h}

	f.logs[s.JobDir] = evSubmit + evExecute + "005 (012.000.000) 2026-11-25 10:00:30 Job term" // cut mid-event
	st, j := poll(t, b, j)
	assert.Equal(t, batch.Running, st.State)
	require.NotNil(t, st.Handle, "progress is stored")
	var p progress
	require.NoError(t, json.Unmarshal(j.Handle.Data, &p))
	assert.Equal(t, int64(len(evSubmit+evExecute)), p.Offset, "stops before the unfinished event")

	// Nothing new: the same status, and nothing to store.
	st, j = poll(t, b, j)
	assert.Equal(t, batch.Running, st.State)
	assert.Nil(t, st.Handle)

	f.logs[s.JobDir] = evSubmit + evExecute + evTerminated(0)
	f.exits[s.JobDir] = 0
	st, _ = poll(t, b, j)
	assert.Equal(t, batch.Succeeded, st.State)
	require.NotNil(t, st.ExitCode)
	assert.Equal(t, 0, *st.ExitCode)
	assert.Empty(t, f.queries, "in steady state the schedd is asked nothing")
}

func TestEnds(t *testing.T) {
	tests := []struct {
		name   string
		log    string
		exit   *int
		state  batch.State
		code   *int
		signal int
		reason string
	}{
		{"success", evSubmit + evExecute + evTerminated(0), ptr(0), batch.Succeeded, ptr(0), 0, ""},
		{"return value", evSubmit + evExecute + evTerminated(3), ptr(3), batch.Failed, ptr(3), 0, "command exited with status 3 (HTCondor job 12.0)"},
		{"signal", evSubmit + evExecute + evSignal, nil, batch.Failed, nil, 9, "killed by signal 9"},
		{"the script's record wins", evSubmit + evExecute + evTerminated(0), ptr(2), batch.Failed, ptr(2), 0, "status 2"},
		{"success whose exit status is not visible yet", evSubmit + evExecute + evTerminated(0), nil, batch.Running, nil, 0, ""},
		{"events after the end", evSubmit + evExecute + evTerminated(0) + evJobAd, ptr(2), batch.Failed, ptr(2), 0, "status 2"},
		{"removed", evSubmit + evExecute + evAbort, nil, batch.Failed, nil, 0, "was removed (via condor_rm (by user alice))"},
		{"over its runtime", evSubmit + evExecute + strings.Replace(evAbort, "via condor_rm (by user alice)",
			"The job attribute PeriodicRemove expression '(JobStatus == 2) && ((time() - EnteredCurrentStatus) > 1200)' evaluated to TRUE", 1),
			nil, batch.Failed, nil, 0, "ran longer than its htcondor_max_runtime"},
		{"held", evSubmit + evExecute + evHeld, nil, batch.Pending, nil, 0, "held: via condor_hold (by user root)"},
		{"released", evSubmit + evExecute + evHeld + evRelease, nil, batch.Pending, nil, 0, ""},
		{"released and run again", evSubmit + evExecute + evHeld + evRelease + evExecute + evTerminated(0), ptr(0), batch.Succeeded, ptr(0), 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, c := newFake(), &clock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
			b := newBackend(f, c)
			s := spec("job-a")
			h, err := b.Submit(context.Background(), s)
			require.NoError(t, err)
			f.logs[s.JobDir] = tt.log
			if tt.exit != nil {
				f.exits[s.JobDir] = *tt.exit
			}
			st, _ := poll(t, b, batch.Job{Spec: s, Handle: h})
			assert.Equal(t, tt.state, st.State)
			assert.Equal(t, tt.code, st.ExitCode)
			assert.Equal(t, tt.signal, st.Signal)
			if tt.reason == "" {
				assert.Empty(t, st.Reason)
			} else {
				assert.Contains(t, st.Reason, tt.reason)
			}
			assert.Empty(t, f.queries)
		})
	}
}

func ptr(i int) *int { return &i }

func TestHeldPastTheLimitIsRemovedWithItsReason(t *testing.T) {
	_, f, c, b, s, h := submitted(t)
	f.logs[s.JobDir] = evSubmit + evExecute + evHeld
	c.t = time.Date(2026, 11, 25, 10, 30, 0, 0, time.UTC)
	st, j := poll(t, b, batch.Job{Spec: s, Handle: h})
	assert.Equal(t, batch.Pending, st.State)
	assert.Empty(t, f.execs)

	c.t = time.Date(2026, 11, 25, 11, 0, 6, 0, time.UTC) // held at 10:00:05, limit 1h
	st, _ = poll(t, b, j)
	assert.Equal(t, batch.Failed, st.State)
	assert.Contains(t, st.Reason, "held for more than 1h0m0s")
	assert.Contains(t, st.Reason, "via condor_hold (by user root)")
	require.Len(t, f.execs, 1)
	assert.Equal(t, []string{"/opt/condor/bin/condor_rm", "-reason", "held for more than 1h0m0s by reana-site", "12.0"}, f.execs[0])
}

func TestScheddFallback(t *testing.T) {
	t0 := time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		log     *string
		exit    *int
		queue   string
		history string
		state   batch.State
		reason  string
	}{
		{name: "log missing, job idle in the queue", queue: ad("job-a", 1, "undefined"), state: batch.Pending},
		{name: "log missing, held in the queue", queue: ad("job-a", 5, "Disk quota exceeded"), state: batch.Pending, reason: "held: Disk quota exceeded"},
		{name: "log missing, completed in the history", exit: ptr(0), history: ad("job-a", 4, "undefined"), state: batch.Succeeded},
		{name: "log missing, completed without an exit file", history: ad("job-a", 4, "undefined"), state: batch.Failed, reason: "final state unknown"},
		{name: "log missing, removed in the history", history: ad("job-a", 3, "via condor_rm (by user bob)"), state: batch.Failed, reason: "was removed (via condor_rm (by user bob))"},
		{name: "vanished without evidence", state: batch.Failed, reason: "final state unknown"},
		{name: "vanished, but the script recorded its exit", exit: ptr(4), state: batch.Failed, reason: "status 4"},
		{name: "exit recorded, terminate event late, still running", log: strp(evSubmit + evExecute), exit: ptr(0), queue: ad("job-a", 2, "undefined"), state: batch.Running},
		{name: "another user's job claiming to be ours is ignored", queue: "job-a 12 0 mallory 3 undefined undefined undefined 0 undefined\n", state: batch.Failed, reason: "final state unknown"},
		{name: "a job with our ids but another ReanaJob is not ours", history: "job-b 12 0 alice 4 0 false undefined 0 undefined\n", exit: nil, state: batch.Failed, reason: "final state unknown"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, c := newFake(), &clock{t: t0}
			b := newBackend(f, c)
			s := spec("job-a")
			h, err := b.Submit(context.Background(), s)
			require.NoError(t, err)
			if tt.log != nil {
				f.logs[s.JobDir] = *tt.log
			}
			if tt.exit != nil {
				f.exits[s.JobDir] = *tt.exit
			}
			f.queue, f.history = tt.queue, tt.history
			j := batch.Job{Spec: s, Handle: h}
			st, j := poll(t, b, j)
			assert.Empty(t, f.queries, "within the grace the log is trusted")
			assert.NotEqual(t, batch.Failed, st.State)

			c.t = t0.Add(2 * DefaultLogGrace)
			st, j = poll(t, b, j)
			assert.Equal(t, tt.state, st.State)
			if tt.reason != "" {
				assert.Contains(t, st.Reason, tt.reason)
			}
			assert.NotEmpty(t, f.queries)
			assert.Contains(t, f.queries[0], "-allusers")
			if st.State.Terminal() {
				return
			}
			// Asked once per grace, not every poll.
			n := len(f.queries)
			c.t = c.t.Add(time.Second)
			poll(t, b, j)
			assert.Len(t, f.queries, n)
		})
	}
}

func strp(s string) *string { return &s }

// ad is one -af line for job 12.0 of alice.
func ad(reanaJob string, status int, reason string) string {
	return fmt.Sprintf("%s 12 0 alice %d 0 false undefined 1764064800 %s\n", reanaJob, status, reason)
}

// TestScheddDownIsReportedUntilItAnswers: the texts a real 24.0 pool
// printed for a stopped, crashed or hung schedd are an outage, reported on
// every poll until a query answers, and asked again at the retry pace, not
// once per grace; nothing fails meanwhile.
func TestScheddDownIsReportedUntilItAnswers(t *testing.T) {
	tests := []struct{ name, stderr string }{
		{"stopped schedd, condor_q", "Error: Can't find address for schedd reana-test@127.0.0.1\n"},
		{"crashed schedd", "DCSchedd::actOnJobs:6001:Failed to connect to schedd\n"},
		{"hung schedd", "\n-- Failed to fetch ads from: <10.0.0.1:9618> : schedd01\nSECMAN:2007:Read failure during security negotiation.\n"},
		{"unreachable host", "\n-- Failed to fetch ads from: <10.0.0.1:9618> : schedd01\nCEDAR:6001:Failed to connect to <10.0.0.1:9618>\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t0, f, c, b, s, h := submitted(t)
			f.logs[s.JobDir] = evSubmit + evExecute
			f.exits[s.JobDir] = 0 // ended while the schedd was down: no 005 yet
			f.queryErr = tt.stderr
			_, j := poll(t, b, batch.Job{Spec: s, Handle: h})
			c.t = t0.Add(2 * DefaultLogGrace)
			for i := 0; i < 7; i++ {
				out, err := b.Status(context.Background(), []batch.Job{j})
				require.Error(t, err, "poll %d", i)
				assert.True(t, errorsIsUnavailable(err), err.Error())
				assert.Contains(t, err.Error(), strings.TrimSpace(strings.Split(strings.TrimSpace(tt.stderr), "\n")[0]))
				assert.Equal(t, batch.Running, out["job-a"].State, "nothing fails for an outage")
				if h := out["job-a"].Handle; h != nil {
					j.Handle = *h
				}
				c.t = c.t.Add(2 * time.Second)
			}
			assert.Len(t, f.queries, 2, "asked again after 10s, not every poll and not once a minute")

			// The schedd is back: its held-back events arrive together, and
			// the job ends as it did, with no outage left.
			f.queryErr = ""
			f.logs[s.JobDir] += "022 (012.000.000) 2026-11-25 10:00:20 Job disconnected, attempting to reconnect\n...\n" +
				"023 (012.000.000) 2026-11-25 10:00:21 Job reconnected to <10.0.0.2:9618>\n...\n" + evTerminated(0)
			st, _ := poll(t, b, j)
			assert.Equal(t, batch.Succeeded, st.State)
		})
	}
}

func TestScheddBackEndsTheOutage(t *testing.T) {
	t0, f, c, b, s, h := submitted(t)
	f.logs[s.JobDir] = evSubmit + evExecute
	f.exits[s.JobDir] = 0
	f.queryErr = "Error: Can't find address for schedd reana-test@127.0.0.1\n"
	_, j := poll(t, b, batch.Job{Spec: s, Handle: h})
	c.t = t0.Add(2 * DefaultLogGrace)
	out, err := b.Status(context.Background(), []batch.Job{j})
	require.True(t, errorsIsUnavailable(err))
	j.Handle = *out["job-a"].Handle
	// Answered, with the job still running (reconnecting): the outage is
	// over and the job goes on.
	f.queryErr, f.queue = "", ad("job-a", 2, "undefined")
	c.t = c.t.Add(11 * time.Second)
	st, j := poll(t, b, j)
	assert.Equal(t, batch.Running, st.State)
	c.t = c.t.Add(time.Second)
	st, _ = poll(t, b, j)
	assert.Equal(t, batch.Running, st.State)
}

func TestSilentLogsAreCheckedRarely(t *testing.T) {
	_, f, c, b, s, h := submitted(t)
	f.logs[s.JobDir] = evSubmit + evExecute
	f.queue = ad("job-a", 2, "undefined")
	j := batch.Job{Spec: s, Handle: h}
	for i := 0; i < 100; i++ {
		c.t = c.t.Add(10 * time.Second)
		_, j = poll(t, b, j)
	}
	assert.Empty(t, f.queries, "a running job is silent; under half an hour nobody asks")
	c.t = c.t.Add(DefaultSilenceCheck)
	st, _ := poll(t, b, j)
	assert.Equal(t, batch.Running, st.State)
	assert.Len(t, f.queries, 1)
}

func TestRestartResumesFromTheStoredOffset(t *testing.T) {
	f, c := newFake(), &clock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	s := spec("job-a")
	h, err := newBackend(f, c).Submit(context.Background(), s)
	require.NoError(t, err)
	f.logs[s.JobDir] = evSubmit + evExecute + evHeld
	_, j := poll(t, newBackend(f, c), batch.Job{Spec: s, Handle: h})

	// A new daemon (a new Backend) with the stored handle reads only what
	// follows, and still knows the job is held, and since when.
	f.logs[s.JobDir] += evRelease
	b2 := newBackend(f, c)
	st, j := poll(t, b2, j)
	assert.Equal(t, batch.Pending, st.State)
	assert.Empty(t, st.Reason, "released")
	var p progress
	require.NoError(t, json.Unmarshal(j.Handle.Data, &p))
	assert.Equal(t, int64(len(f.logs[s.JobDir])), p.Offset)
}

func TestCancel(t *testing.T) {
	tests := []struct {
		name, stderr string
		ok           bool
	}{
		{"removed", "", true},
		{"already gone", "Job 12.0 not found\n", true},
		{"already being removed", "Job 12.0 already marked for removal\n", true},
		{"refused", "Permission denied to remove job 12.0\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFake()
			f.execErr = tt.stderr
			b := newBackend(f, &clock{})
			err := b.Cancel(context.Background(), batch.Job{Spec: spec("job-a"), Handle: batch.Handle{ID: "12.0"}})
			if tt.ok {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
				assert.Contains(t, err.Error(), "Permission denied")
			}
			require.Len(t, f.execs, 1)
			assert.Equal(t, "/opt/condor/bin/condor_rm", f.execs[0][0])
			assert.Equal(t, "12.0", f.execs[0][len(f.execs[0])-1])
		})
	}
}

func TestParseTerse(t *testing.T) {
	c, p, err := ParseTerse("123.0 - 123.0\n")
	require.NoError(t, err)
	assert.Equal(t, [2]int{123, 0}, [2]int{c, p})
	for _, bad := range []string{"", "Submitting job(s).", "123.0 - 123.9", "1 job(s) submitted to cluster 5."} {
		_, _, err := ParseTerse(bad)
		assert.Error(t, err, bad)
	}
}

func TestConstraints(t *testing.T) {
	assert.Equal(t, "(ClusterId == 12 && ProcId == 0) || (ClusterId == 13 && ProcId == 1)", IDConstraint([][2]int{{12, 0}, {13, 1}}))
	c, err := SubmittedConstraint("a-1", "alice")
	require.NoError(t, err)
	assert.Equal(t, `ReanaJob =?= "a-1" && Owner =?= "alice"`, c)
	_, err = SubmittedConstraint(`x" || true || "`, "alice")
	assert.Error(t, err)
	_, err = SubmittedConstraint("a-1", `a" || true || "`)
	assert.Error(t, err)
}

func TestSuccessWithoutExitStatusFailsAfterTheGrace(t *testing.T) {
	t0, f, c, b, s, h := submitted(t)
	f.logs[s.JobDir] = evSubmit + evExecute + evTerminated(0)
	st, j := poll(t, b, batch.Job{Spec: s, Handle: h})
	assert.Equal(t, batch.Running, st.State, "the exit-status file may not be visible over NFS yet")
	c.t = t0.Add(DefaultLogGrace + time.Second)
	st, _ = poll(t, b, j)
	assert.Equal(t, batch.Failed, st.State)
	assert.Contains(t, st.Reason, "final state unknown")
}

func TestHeldSeenOnlyByTheScheddTimesOut(t *testing.T) {
	t0, f, c, b, s, h := submitted(t)
	f.queue = fmt.Sprintf("job-a 12 0 alice 5 0 false undefined %d Disk quota exceeded\n", t0.Unix())
	c.t = t0.Add(2 * DefaultLogGrace)
	st, j := poll(t, b, batch.Job{Spec: s, Handle: h})
	assert.Equal(t, "held: Disk quota exceeded", st.Reason)
	// Polls in between keep saying why, without asking again.
	c.t = c.t.Add(time.Second)
	st, j = poll(t, b, j)
	assert.Equal(t, "held: Disk quota exceeded", st.Reason)
	assert.Len(t, f.queries, 1)
	// The log never appears, but the hold is timed all the same. (Held is
	// only acted on once the log is read to its end, so give it one.)
	f.logs[s.JobDir] = ""
	c.t = t0.Add(time.Hour + time.Minute)
	st, _ = poll(t, b, j)
	assert.Equal(t, batch.Failed, st.State)
	assert.Contains(t, st.Reason, "Disk quota exceeded")
	require.Len(t, f.execs, 1)
}

func TestFailedRemovalOfAHeldJobIsRetriedAfterTheGrace(t *testing.T) {
	t0, f, c, b, s, h := submitted(t)
	f.logs[s.JobDir] = evSubmit + evExecute + evHeld
	f.execErr = "\nCEDAR:6001:Failed to connect to <10.0.0.1:9618>\nNo result found for job 12.0\n"
	c.t = t0.Add(2 * time.Hour)
	j := batch.Job{Spec: s, Handle: h}
	for i := 0; i < 10; i++ {
		var st batch.Status
		st, j = poll(t, b, j)
		assert.Equal(t, batch.Pending, st.State)
		c.t = c.t.Add(time.Second)
	}
	assert.Len(t, f.execs, 1, "one condor_rm per grace, not one per poll")
	c.t = c.t.Add(DefaultLogGrace)
	f.execErr = ""
	st, _ := poll(t, b, j)
	assert.Equal(t, batch.Failed, st.State)
	assert.Len(t, f.execs, 2)
}

func TestUnreadableLogIsAskedOfTheSchedd(t *testing.T) {
	t0, f, c, b, s, h := submitted(t)
	f.followErr = "/home/alice/reana/jobs/wf-1/job-a/events.log is not a regular file"
	f.history = ad("job-a", 4, "undefined")
	f.exits[s.JobDir] = 0
	st, j := poll(t, b, batch.Job{Spec: s, Handle: h})
	assert.False(t, st.State.Terminal())
	c.t = t0.Add(2 * DefaultLogGrace)
	st, _ = poll(t, b, j)
	assert.Equal(t, batch.Succeeded, st.State, "the history and the exit-status file settle it")
	assert.NotEmpty(t, f.queries)
}

func TestNotAnEventLog(t *testing.T) {
	_, f, _, b, s, h := submitted(t)
	f.logs[s.JobDir] = strings.Repeat(`{"MyType": "SubmitEvent"}`+"\n", 100000) // a JSON log
	st, _ := poll(t, b, batch.Job{Spec: s, Handle: h})
	assert.Equal(t, batch.Failed, st.State)
	assert.Contains(t, st.Reason, "not in HTCondor's text format")
}

func TestFollowBudgetPerUser(t *testing.T) {
	f, c := newFake(), &clock{t: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
	b := newBackend(f, c)
	var jobs []batch.Job
	for i := 0; i < 1000; i++ {
		s := spec(fmt.Sprint("job-", i))
		h, err := b.Submit(context.Background(), s)
		require.NoError(t, err)
		jobs = append(jobs, batch.Job{Spec: s, Handle: h})
	}
	var asked int64
	f2 := &budgetSpy{fakeCondor: f, asked: &asked}
	b.Runner = f2
	_, err := b.Status(context.Background(), jobs)
	require.NoError(t, err)
	assert.Equal(t, int64(64<<10), asked, "16 MiB over 1,000 logs, but at least 64 KiB each")
}

type budgetSpy struct {
	*fakeCondor
	asked *int64
}

func (s *budgetSpy) Call(ctx context.Context, acct asuser.Account, op asuser.Op, args, result any) error {
	if a, ok := args.(asuser.JobFollowArgs); ok {
		*s.asked = a.MaxBytes
	}
	return s.fakeCondor.Call(ctx, acct, op, args, result)
}

func TestCancelUnrecorded(t *testing.T) {
	f := newFake()
	f.queue = "job-a 77 0 alice 2 0 false undefined 1764064800 undefined\n"
	require.NoError(t, newBackend(f, &clock{}).CancelUnrecorded(context.Background(), spec("job-a")))
	require.Len(t, f.execs, 1)
	assert.Equal(t, "77.0", f.execs[0][len(f.execs[0])-1])

	// Never reached the schedd: nothing to remove.
	f = newFake()
	require.NoError(t, newBackend(f, &clock{}).CancelUnrecorded(context.Background(), spec("job-b")))
	assert.Empty(t, f.execs)
}

// TestLogsSayWhenHTCondorRanTheJobAgain: a killed condor_shadow makes
// HTCondor run the job again from the start (two 001 events, nothing in
// between, seen on a 24.0 pool); the step's log says so.
func TestLogsSayWhenHTCondorRanTheJobAgain(t *testing.T) {
	tests := []struct {
		name, log, note string
	}{
		{"one run", evSubmit + evExecute + evTerminated(0), ""},
		{"killed shadow", evSubmit + evExecute + evExecute + evTerminated(0), "HTCondor ran job 12.0 2 times: it started the command again from the beginning on its own, after it lost the job's shadow"},
		{"held and released", evSubmit + evExecute + evHeld + evRelease + evExecute + evTerminated(0), "HTCondor ran job 12.0 2 times: it started the command again from the beginning after an eviction or a hold"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, f, _, b, s, h := submitted(t)
			f.logs[s.JobDir] = tt.log
			f.exits[s.JobDir] = 0
			st, j := poll(t, b, batch.Job{Spec: s, Handle: h})
			assert.Equal(t, batch.Succeeded, st.State, "HTCondor's own rerun is no failure")
			out, err := b.Logs(context.Background(), j)
			require.NoError(t, err)
			if tt.note == "" {
				assert.Equal(t, "step output\n", out)
			} else {
				assert.Contains(t, out, tt.note)
			}
		})
	}
}

// TestLogThatNeverAppearsIsExplained: condor_submit accepts a log the schedd
// cannot write, and a real pool runs the job with no log ever written. After
// the grace the schedd is asked, and the user is told why the step is
// followed that way; the job still ends by the schedd's word.
func TestLogThatNeverAppearsIsExplained(t *testing.T) {
	t0, f, c, b, s, h := submitted(t)
	f.queue = ad("job-a", 2, "undefined")
	st, j := poll(t, b, batch.Job{Spec: s, Handle: h})
	assert.Empty(t, st.Reason, "within the grace nothing is said")
	c.t = t0.Add(2 * DefaultLogGrace)
	st, j = poll(t, b, j)
	assert.Equal(t, batch.Running, st.State)
	assert.Contains(t, st.Reason, "the event log /home/alice/reana/jobs/wf-1/job-a/events.log of HTCondor job 12.0 has not appeared 2m0s after submission")
	f.queue, f.history = "", ad("job-a", 4, "undefined")
	c.t = c.t.Add(2 * DefaultLogGrace)
	st, _ = poll(t, b, j)
	assert.Equal(t, batch.Failed, st.State, "no exit status and no log: not taken for a success")
	assert.Contains(t, st.Reason, "final state unknown")
	assert.Contains(t, st.Reason, "has not appeared")
}
