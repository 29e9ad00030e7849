package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/daemon/spec"
	"github.com/reana-site/reana-site/daemon/store"
)

// fakeBackend runs nothing: a job's fate is decided by its command, which
// the tests write as "ok", "fail", "hang" or "down" (batch system
// unreachable at submit).
type fakeBackend struct {
	mu        sync.Mutex
	submitted []string // commands, in submission order
	byJob     map[string]string
	cancelled map[string]bool
	statusN   int             // Status calls
	nodeFails map[string]bool // commands whose node failed under them once
	// waits are reasons that commands starting with "wait" are waiting
	// for; each status round also reports progress in the handle.
	waits map[string]string
}

func newFake() *fakeBackend {
	return &fakeBackend{byJob: map[string]string{}, cancelled: map[string]bool{}, nodeFails: map[string]bool{}, waits: map[string]string{}}
}

func (f *fakeBackend) Name() string { return "local" }

func (f *fakeBackend) Submit(_ context.Context, s batch.Spec) (batch.Handle, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if strings.HasPrefix(s.Command, "down") {
		return batch.Handle{}, fmt.Errorf("contact scheduler: %w", batch.ErrUnavailable)
	}
	if _, dup := f.byJob[s.JobID]; !dup {
		f.submitted = append(f.submitted, s.Command)
	}
	f.byJob[s.JobID] = s.Command
	return batch.Handle{Backend: "local", ID: "fake-" + s.JobID}, nil
}

func (f *fakeBackend) Status(_ context.Context, jobs []batch.Job) (map[string]batch.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.statusN++
	out := map[string]batch.Status{}
	for _, j := range jobs {
		zero, one := 0, 1
		switch cmd := f.byJob[j.Spec.JobID]; {
		case f.cancelled[j.Spec.JobID]:
			out[j.Spec.JobID] = batch.Status{State: batch.Stopped}
		case strings.HasPrefix(cmd, "ok"):
			out[j.Spec.JobID] = batch.Status{State: batch.Succeeded, ExitCode: &zero}
		case strings.HasPrefix(cmd, "nodefail") && !f.nodeFails[cmd]:
			f.nodeFails[cmd] = true
			out[j.Spec.JobID] = batch.Status{State: batch.Failed, Reason: "node failed", Retry: true}
		case strings.HasPrefix(cmd, "nodefail"):
			out[j.Spec.JobID] = batch.Status{State: batch.Succeeded, ExitCode: &zero}
		case strings.HasPrefix(cmd, "fail"):
			out[j.Spec.JobID] = batch.Status{State: batch.Failed, ExitCode: &one, Reason: "exit code 1"}
		case strings.HasPrefix(cmd, "pend"):
			// As "wait", without progress in the handle.
			out[j.Spec.JobID] = batch.Status{State: batch.Pending, Reason: f.waits[cmd], Note: "Priority"}
		case strings.HasPrefix(cmd, "wait"):
			h := j.Handle
			h.Data = json.RawMessage(fmt.Sprintf(`{"round":%d}`, f.statusN))
			out[j.Spec.JobID] = batch.Status{State: batch.Pending, Reason: f.waits[cmd], Handle: &h}
		default:
			out[j.Spec.JobID] = batch.Status{State: batch.Running}
		}
	}
	return out, nil
}

func (f *fakeBackend) Cancel(_ context.Context, j batch.Job) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancelled[j.Spec.JobID] = true
	return nil
}

func (f *fakeBackend) Logs(_ context.Context, j batch.Job) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return "output of " + f.byJob[j.Spec.JobID] + "\n", nil
}

func (f *fakeBackend) commands() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.submitted...)
}

type fixture struct {
	db    *store.DB
	be    *fakeBackend
	eng   *Engine
	owner string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "test.db"))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	u, err := db.CreateUser(ctx, store.User{Name: "alice", UID: 4101})
	require.NoError(t, err)
	be := newFake()
	eng := &Engine{
		DB:             db,
		Backends:       map[string]batch.Backend{"local": be},
		DefaultBackend: "local",
		Account: func(context.Context, string) (asuser.Account, error) {
			return asuser.Account{Name: "alice", UID: 4101, GID: 4101}, nil
		},
	}
	return &fixture{db: db, be: be, eng: eng, owner: u.ID}
}

// queue stores a queued serial workflow whose steps have the given commands.
func (f *fixture) queue(t *testing.T, steps [][]string, params, opts map[string]any) string {
	t.Helper()
	var ss []map[string]any
	for i, cmds := range steps {
		ss = append(ss, map[string]any{"name": fmt.Sprintf("s%d", i), "environment": "img", "commands": cmds})
	}
	spec, err := json.Marshal(map[string]any{
		"inputs":   map[string]any{"parameters": map[string]any{"n": "1"}},
		"workflow": map[string]any{"type": "serial", "specification": map[string]any{"steps": ss}},
	})
	require.NoError(t, err)
	p, _ := json.Marshal(params)
	o, _ := json.Marshal(opts)
	id := uuid.NewString()
	wf := &store.Workflow{
		ID: id, OwnerID: f.owner, Name: "wf", Status: store.StatusQueued,
		Spec: spec, InputParameters: p, OperationalOptions: o,
		WorkspacePath: "/ws/" + id, JobsPath: "/jobs/" + id,
	}
	require.NoError(t, f.db.CreateWorkflow(context.Background(), wf))
	return id
}

// run ticks the engine until nothing changes any more.
func (f *fixture) run(t *testing.T, id string) store.Workflow {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < 50; i++ {
		f.eng.Tick(ctx)
	}
	wf, err := f.db.GetWorkflow(ctx, id)
	require.NoError(t, err)
	return wf
}

func TestSerialWorkflows(t *testing.T) {
	tests := []struct {
		name      string
		steps     [][]string
		params    map[string]any
		opts      map[string]any
		status    store.WorkflowStatus
		submitted []string
		logs      []string
	}{
		{
			name:      "all steps in order",
			steps:     [][]string{{"ok a", "ok b"}, {"ok c"}},
			status:    store.StatusFinished,
			submitted: []string{"ok a", "ok b", "ok c"},
		},
		{
			name:      "first failing command fails the workflow",
			steps:     [][]string{{"ok a", "fail b", "ok never"}, {"ok never2"}},
			status:    store.StatusFailed,
			submitted: []string{"ok a", "fail b"},
		},
		{
			name:      "parameters from the spec",
			steps:     [][]string{{"ok ${n}"}},
			status:    store.StatusFinished,
			submitted: []string{"ok 1"},
		},
		{
			name:      "-p overrides the spec",
			steps:     [][]string{{"ok ${n}"}},
			params:    map[string]any{"n": "2000"},
			status:    store.StatusFinished,
			submitted: []string{"ok 2000"},
		},
		{
			name:      "TARGET stops after that step",
			steps:     [][]string{{"ok a"}, {"ok b"}, {"ok c"}},
			opts:      map[string]any{"TARGET": "s1"},
			status:    store.StatusFinished,
			submitted: []string{"ok a", "ok b"},
		},
		{
			name:      "FROM starts at that step",
			steps:     [][]string{{"ok a"}, {"ok b"}, {"ok c"}},
			opts:      map[string]any{"FROM": "s1"},
			status:    store.StatusFinished,
			submitted: []string{"ok b", "ok c"},
		},
		{
			// As REANA's engine does: an unknown TARGET runs every step.
			name:      "unknown TARGET runs to the end",
			steps:     [][]string{{"ok a"}, {"ok b"}},
			opts:      map[string]any{"TARGET": "nope"},
			status:    store.StatusFinished,
			submitted: []string{"ok a", "ok b"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			id := f.queue(t, tt.steps, tt.params, tt.opts)
			wf := f.run(t, id)
			assert.Equal(t, tt.status, wf.Status, "logs: %s", wf.Logs)
			if tt.submitted != nil {
				assert.Equal(t, tt.submitted, f.be.commands())
			}
			for _, l := range tt.logs {
				assert.Contains(t, wf.Logs, l)
			}
			assert.NotNil(t, wf.FinishedAt)
		})
	}
}

func TestFailedJobKeepsExitCodeAndOutput(t *testing.T) {
	f := newFixture(t)
	id := f.queue(t, [][]string{{"fail here"}}, nil, nil)
	f.run(t, id)
	jobs, err := f.db.JobsForWorkflow(context.Background(), id)
	require.NoError(t, err)
	require.Len(t, jobs, 1)
	require.NotNil(t, jobs[0].ExitCode)
	assert.Equal(t, 1, *jobs[0].ExitCode)
	assert.Contains(t, jobs[0].Logs, "output of fail here")
	assert.Contains(t, jobs[0].Logs, "exit code 1")
}

func TestStatusTransitions(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id := f.queue(t, [][]string{{"hang"}}, nil, nil)
	f.eng.Tick(ctx)
	wf, err := f.db.GetWorkflow(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, store.StatusRunning, wf.Status)
	assert.NotNil(t, wf.StartedAt)

	wf, err = f.eng.Stop(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, store.StatusStopped, wf.Status)
	assert.NotNil(t, wf.StoppedAt)
	jobs, err := f.db.JobsForWorkflow(ctx, id)
	require.NoError(t, err)
	require.Len(t, jobs, 1)
	assert.Equal(t, store.JobStopped, jobs[0].Status)
	assert.True(t, f.be.cancelled[jobs[0].ID])

	_, err = f.eng.Stop(ctx, id)
	assert.ErrorIs(t, err, ErrNotRunning)
	f.run(t, id)
	assert.Len(t, f.be.commands(), 1, "nothing is submitted after stop")
}

func TestUnavailableBackendRetriesWithoutFailing(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id := f.queue(t, [][]string{{"down now"}}, nil, nil)
	for i := 0; i < 5; i++ {
		f.eng.Tick(ctx)
	}
	wf, err := f.db.GetWorkflow(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, store.StatusPending, wf.Status)
	assert.Contains(t, wf.StatusMessage, "unreachable")
	jobs, err := f.db.JobsForWorkflow(ctx, id)
	require.NoError(t, err)
	assert.Len(t, jobs, 1, "one intent, retried, never duplicated")
}

// TestRestartResumes: a second engine on the same store (a restarted
// daemon) neither reruns finished jobs nor resubmits running ones, and
// submits a job whose intent was recorded but whose handle was not.
func TestRestartResumes(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	id := f.queue(t, [][]string{{"ok a"}, {"hang b"}, {"ok c"}}, nil, nil)
	for i := 0; i < 10; i++ {
		f.eng.Tick(ctx)
	}
	assert.Equal(t, []string{"ok a", "hang b"}, f.be.commands())

	// The daemon dies; the batch system lets "hang b" finish meanwhile.
	jobs, err := f.db.JobsForWorkflow(ctx, id)
	require.NoError(t, err)
	f.be.mu.Lock()
	f.be.byJob[jobs[1].ID] = "ok b (finished while down)"
	f.be.mu.Unlock()

	restarted := &Engine{DB: f.db, Backends: f.eng.Backends, DefaultBackend: "local", Account: f.eng.Account}
	for i := 0; i < 10; i++ {
		restarted.Tick(ctx)
	}
	wf, err := f.db.GetWorkflow(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, store.StatusFinished, wf.Status)
	assert.Equal(t, []string{"ok a", "hang b", "ok c"}, f.be.commands(), "each job submitted once")

	// A job with intent but no handle is submitted again (idempotently).
	id2 := f.queue(t, [][]string{{"ok x"}}, nil, nil)
	require.NoError(t, f.db.CreateJob(ctx, &store.Job{WorkflowID: id2, StepName: "s0", Command: "ok x", Backend: "local", Status: store.JobCreated}))
	_, err = f.db.UpdateWorkflow(ctx, id2, func(w *store.Workflow) error { w.Status = store.StatusPending; return nil })
	require.NoError(t, err)
	for i := 0; i < 10; i++ {
		restarted.Tick(ctx)
	}
	wf, err = f.db.GetWorkflow(ctx, id2)
	require.NoError(t, err)
	assert.Equal(t, store.StatusFinished, wf.Status)
	all, err := f.db.JobsForWorkflow(ctx, id2)
	require.NoError(t, err)
	assert.Len(t, all, 1)
}

func TestOnePollForManyJobs(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for i := 0; i < 20; i++ {
		f.queue(t, [][]string{{"hang"}}, nil, nil)
	}
	f.eng.Tick(ctx)
	f.be.mu.Lock()
	f.be.statusN = 0
	f.be.mu.Unlock()
	f.eng.Tick(ctx)
	assert.Equal(t, 1, f.be.statusN, "one status call per backend per round, whatever the number of jobs")
}

func TestNodeFailureIsRetriedOnce(t *testing.T) {
	for _, tt := range []struct {
		retries int
		want    store.WorkflowStatus
		jobs    int
	}{
		{retries: 1, want: store.StatusFinished, jobs: 2},
		{retries: 0, want: store.StatusFailed, jobs: 1},
	} {
		t.Run(fmt.Sprint("retries=", tt.retries), func(t *testing.T) {
			f := newFixture(t)
			f.eng.Retries = tt.retries
			id := f.queue(t, [][]string{{"nodefail x"}}, nil, nil)
			wf := f.run(t, id)
			assert.Equal(t, tt.want, wf.Status)
			jobs, err := f.db.JobsForWorkflow(context.Background(), id)
			require.NoError(t, err)
			require.Len(t, jobs, tt.jobs)
			if tt.retries > 0 {
				assert.Equal(t, store.JobRetried, jobs[0].Status)
				assert.Contains(t, jobs[0].Logs, "submitting it again")
				assert.Equal(t, 1, jobs[1].Attempt)
			}
		})
	}
}

func TestWaitReasonsAndProgress(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	f.be.mu.Lock()
	f.be.waits["wait a"] = "held: scratch disk full"
	f.be.mu.Unlock()
	id := f.queue(t, [][]string{{"wait a"}}, nil, nil)
	wf := f.run(t, id)
	assert.Equal(t, store.StatusRunning, wf.Status)
	assert.Equal(t, "waiting: step s0: held: scratch disk full", wf.StatusMessage)

	jobs, err := f.db.JobsForWorkflow(ctx, id)
	require.NoError(t, err)
	require.Len(t, jobs, 1)
	var h batch.Handle
	require.NoError(t, json.Unmarshal(jobs[0].Handle, &h))
	assert.Contains(t, string(h.Data), `"round"`, "the backend's progress is stored with the job")

	// Released: the message goes, the step still waits.
	f.be.mu.Lock()
	f.be.waits["wait a"] = ""
	f.be.mu.Unlock()
	wf = f.run(t, id)
	assert.Equal(t, store.StatusRunning, wf.Status)
	assert.Empty(t, wf.StatusMessage)
}

// TestSchedulerStatePerStep: a running job's row carries the scheduler's
// latest word on it, for the details page, and a poll that learns nothing
// new writes nothing.
func TestSchedulerStatePerStep(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	set := func(fn func()) {
		f.be.mu.Lock()
		defer f.be.mu.Unlock()
		fn()
	}
	set(func() { f.be.waits["pend a"] = "Slurm job 7 is pending: Dependency" })
	id := f.queue(t, [][]string{{"pend a"}}, nil, nil)
	job := func() store.Job {
		jobs, err := f.db.JobStates(ctx, id)
		require.NoError(t, err)
		require.Len(t, jobs, 1)
		return jobs[0]
	}
	f.run(t, id)
	assert.Equal(t, "Slurm job 7 is pending: Dependency", job().Reason)

	var writes atomic.Int32
	f.db.ObserveTransactions(func(kind string, _ time.Duration) {
		if kind == "write" {
			writes.Add(1)
		}
	})
	f.run(t, id)
	f.db.ObserveTransactions(nil)
	assert.Zero(t, writes.Load(), "50 polls that learn nothing new write nothing")

	set(func() { f.be.waits["pend a"] = "" })
	f.run(t, id)
	assert.Equal(t, "pending (Priority)", job().Reason, "with no reason, the state and the scheduler's note")

	jobID := job().ID
	set(func() { f.be.byJob[jobID] = "hang" })
	f.run(t, id)
	assert.Equal(t, "running", job().Reason)

	set(func() { f.be.byJob[jobID] = "ok" })
	wf := f.run(t, id)
	assert.Equal(t, store.StatusFinished, wf.Status)
	assert.Empty(t, job().Reason, "an ended job keeps the reason it ended with")
}

// preflightBackend is a backend that would refuse every step now.
type preflightBackend struct {
	*fakeBackend
	err error
}

func (p preflightBackend) Preflight() error { return p.err }

func (p preflightBackend) ImageNative() bool { return true }

func TestCheckPreflight(t *testing.T) {
	f := newFixture(t)
	f.eng.Backends["kubernetes"] = preflightBackend{fakeBackend: newFake(), err: fmt.Errorf(`pods "x" is forbidden: violates PodSecurity "restricted:latest"`)}
	steps := []spec.Step{{Name: "a", ComputeBackend: ""}, {Name: "b", ComputeBackend: "kubernetes"}}
	require.NoError(t, f.eng.CheckBackends(steps), "the backend exists")
	acct := asuser.Account{Name: "alice", UID: 4101, GID: 4101}
	err := f.eng.CheckPreflight(steps, acct, "/ws")
	require.Error(t, err)
	assert.Equal(t, `step b cannot run on kubernetes now: pods "x" is forbidden: violates PodSecurity "restricted:latest"`, err.Error())
	assert.NoError(t, f.eng.CheckPreflight(steps[:1], acct, "/ws"))

	// An outage alone does not refuse; an outage joined with a refusal does.
	f.eng.Backends["kubernetes"] = preflightBackend{fakeBackend: newFake(), err: fmt.Errorf("list pods: %w", batch.ErrUnavailable)}
	assert.NoError(t, f.eng.CheckPreflight(steps, acct, "/ws"))
	f.eng.Backends["kubernetes"] = preflightBackend{fakeBackend: newFake(), err: errors.Join(fmt.Errorf("x: %w", batch.ErrUnavailable), fmt.Errorf("claim unbound"))}
	assert.Error(t, f.eng.CheckPreflight(steps, acct, "/ws"))

	// The step itself, as this user would submit it, is checked too.
	f.eng.Backends["kubernetes"] = specChecker{fakeBackend: newFake()}
	err = f.eng.CheckPreflight(steps, acct, "/elsewhere/w1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "step b cannot run on kubernetes: workspace /elsewhere/w1")
}

type specChecker struct{ *fakeBackend }

func (specChecker) CheckSpec(s batch.Spec) error {
	if !strings.HasPrefix(s.Workspace, "/ws") || s.User.UID != 4101 || s.StepName != "b" {
		return fmt.Errorf("workspace %s is outside the claim", s.Workspace)
	}
	return nil
}

// unrecordedBackend also finds jobs whose handle was never recorded.
type unrecordedBackend struct {
	*fakeBackend
	cancelled *[]string
}

func (u unrecordedBackend) CancelUnrecorded(_ context.Context, s batch.Spec) error {
	*u.cancelled = append(*u.cancelled, s.Command)
	return nil
}

func TestStopCancelsASubmissionWithoutHandle(t *testing.T) {
	f := newFixture(t)
	var cancelled []string
	f.eng.Backends["local"] = unrecordedBackend{fakeBackend: f.be, cancelled: &cancelled}
	id := f.queue(t, [][]string{{"down a"}}, nil, nil) // the batch system does not answer
	f.run(t, id)
	jobs, err := f.db.JobsForWorkflow(context.Background(), id)
	require.NoError(t, err)
	require.Len(t, jobs, 1)
	require.Empty(t, jobs[0].Handle)
	// As a daemon that died between recording its intent and the
	// backend's answer left it.
	_, err = f.db.UpdateJob(context.Background(), jobs[0].ID, func(j *store.Job) error {
		j.Status = store.JobSubmitting
		return nil
	})
	require.NoError(t, err)

	wf, err := f.eng.Stop(context.Background(), id)
	require.NoError(t, err)
	assert.Equal(t, store.StatusStopped, wf.Status)
	assert.Equal(t, []string{"down a"}, cancelled, "the job the submission may have made is looked for and stopped")
}
