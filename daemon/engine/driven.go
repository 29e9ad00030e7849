package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/daemon/spec"
	"github.com/reana-site/reana-site/daemon/store"
)

// Workflows that are not serial (cwl, snakemake, yadage) are driven by an
// engine process of their own, which runs as the owner (its input is user
// code: a Snakefile is Python). The engine records that process as one
// row (store.EngineStepIndex) and submits it like a step; every job the
// process asks for (daemon/workflowengine hands it over through AddJob) is
// another row, submitted, polled, stopped and recovered after a restart
// exactly as a serial step is. The process's exit decides how the run
// ends; a failed job fails only itself, since the engine process decides
// what follows from it.

// JobRequest is what a workflow engine's adapter asked for one job, kept
// with the job (store.Job.Request) so the job is rebuilt the same way
// after a restart.
type JobRequest struct {
	Hints batch.Hints       `json:"hints"`
	Env   map[string]string `json:"env,omitempty"`
	// Host runs the command on this host even where steps run in their
	// images: the engine process itself, whose interpreter is the site's.
	Host bool `json:"host,omitempty"`
	// Command, when set, is what runs; the job's Command is then only
	// shown (REANA's prettified_cmd: a Yadage script rather than the
	// base64 pipe that runs it).
	Command string `json:"command,omitempty"`
}

// defaultMaxEngineJobs is REANA's SNAKEMAKE_MAX_PARALLEL_JOBS.
const defaultMaxEngineJobs = 300

// Errors of AddJob.
var (
	// ErrJobConflict means the key names a job of another workflow.
	ErrJobConflict = errors.New("the job key belongs to another workflow")
	// ErrTooManyJobs means the run has as many active jobs as allowed.
	ErrTooManyJobs = errors.New("too many active jobs")
	// ErrBadBackend means the job names a backend this site does not offer.
	ErrBadBackend = errors.New("bad compute backend")
)

func requestOf(j store.Job) JobRequest {
	var r JobRequest
	if len(j.Request) > 0 {
		_ = json.Unmarshal(j.Request, &r) // written by AddJob or the engine process's builder
	}
	return r
}

func (e *Engine) maxEngineJobs() int {
	if e.MaxEngineJobs > 0 {
		return e.MaxEngineJobs
	}
	return defaultMaxEngineJobs
}

// advanceDriven starts a driven workflow's engine process, submits the
// jobs it asked for (up to the cap) and ends the workflow once the process
// ended. The caller holds the workflow's lock; with a round, the jobs join
// the round's groups (a scatter of hundreds of rules goes to its batch
// system as a few groups, not one helper each) and the lock goes with
// them, released when the last of them has its handle recorded: the
// result tells whether it was handed over.
func (e *Engine) advanceDriven(ctx context.Context, wf store.Workflow, r *round, unlock func()) bool {
	jobs, err := e.DB.JobStates(ctx, wf.ID)
	if err != nil {
		e.Log.Error("load jobs", "workflow", wf.ID, "err", err)
		return false
	}
	var proc *store.Job
	running := 0
	var waiting []store.Job
	for i, j := range jobs {
		switch {
		case j.StepIndex == store.EngineStepIndex:
			proc = &jobs[i]
		case j.Status == store.JobRunning:
			running++
		case j.Status == store.JobCreated || j.Status == store.JobSubmitting:
			waiting = append(waiting, j)
		}
	}
	if proc == nil {
		e.startEngineProcess(ctx, wf)
		return false
	}
	switch proc.Status {
	case store.JobCreated, store.JobSubmitting:
		e.submit(ctx, wf, *proc, nil, nil)
		return false
	case store.JobRunning:
		// Without a round, submit submits at once and keeps no share, so
		// the lock is released by the last done below.
		release := shareLock(unlock)
		for _, j := range waiting[:min(len(waiting), max(0, e.maxEngineJobs()-running))] {
			release.add()
			if !e.submit(ctx, wf, j, r, release.done) {
				release.done()
			}
		}
		release.done() // advanceDriven's own share
		return true
	}
	// The engine process ended, so nobody waits for its jobs any more.
	for _, j := range jobs {
		if j.StepIndex == store.EngineStepIndex || !active(j.Status) {
			continue
		}
		if err := e.stopJob(ctx, wf, j, "the workflow engine ended before this job"); err != nil {
			e.Log.Warn("stop a job the workflow engine left", "workflow", wf.ID, "job", j.ID, "err", err)
			return false // tried again next round
		}
	}
	if proc.Status == store.JobFinished {
		e.finish(ctx, wf.ID, store.StatusFinished, fmt.Sprintf("Workflow %s finished. Files available at %s.\n", wf.FullName(), wf.WorkspacePath))
		return false
	}
	why := proc.Reason
	if why == "" {
		why = string(proc.Status)
	}
	e.finish(ctx, wf.ID, store.StatusFailed, "Workflow exited unexpectedly.\nThe workflow engine ended: "+why+"\n")
	return false
}

// startEngineProcess records the workflow's engine process and submits it.
func (e *Engine) startEngineProcess(ctx context.Context, wf store.Workflow) {
	if e.EngineProcess == nil {
		e.finish(ctx, wf.ID, store.StatusFailed, fmt.Sprintf("Workflow exited unexpectedly.\nThis site runs no %s engine.\n", workflowType(wf)))
		return
	}
	j, err := e.EngineProcess(ctx, wf)
	if err != nil {
		e.finish(ctx, wf.ID, store.StatusFailed, "Workflow exited unexpectedly.\n"+err.Error()+"\n")
		return
	}
	j.WorkflowID, j.StepIndex, j.CommandIndex, j.Attempt, j.Status = wf.ID, store.EngineStepIndex, 0, 0, store.JobCreated
	if _, err := e.DB.UpdateWorkflow(ctx, wf.ID, func(w *store.Workflow) error {
		if w.Status == store.StatusQueued {
			w.Status = store.StatusPending
		}
		return nil
	}); err != nil {
		e.Log.Error("mark workflow pending", "workflow", wf.ID, "err", err)
		return
	}
	if err := e.DB.CreateJob(ctx, &j); err != nil {
		e.Log.Error("record engine process intent", "workflow", wf.ID, "err", err)
		return
	}
	e.submit(ctx, wf, j, nil, nil)
}

// sharedLock is a workflow's lock held by several jobs of one round: it
// is released when the last share is done.
type sharedLock struct {
	mu     sync.Mutex
	n      int
	unlock func()
}

// shareLock starts with one share, the caller's own.
func shareLock(unlock func()) *sharedLock { return &sharedLock{n: 1, unlock: unlock} }

func (l *sharedLock) add() {
	l.mu.Lock()
	l.n++
	l.mu.Unlock()
}

func (l *sharedLock) done() {
	l.mu.Lock()
	l.n--
	last := l.n == 0
	l.mu.Unlock()
	if last {
		l.unlock()
	}
}

func workflowType(wf store.Workflow) string {
	s, _, err := spec.Parse(wf.Spec)
	if err != nil {
		return "workflow"
	}
	return s.Workflow.Type
}

func active(s store.JobStatus) bool {
	return s == store.JobCreated || s == store.JobSubmitting || s == store.JobRunning
}

// AddJob records a job that a driven workflow's engine process asks for
// and has it submitted. j.ID is the adapter's idempotency key made into an
// id: a job already recorded under it is returned as it is, so an adapter
// that asks again (after a daemon restart) never gets a second job.
// j.Backend is a canonical backend name or empty for the site default.
func (e *Engine) AddJob(ctx context.Context, workflowID string, j store.Job) (store.Job, error) {
	e.init()
	unlock := e.lock(workflowID)
	defer unlock()
	if cur, err := e.DB.GetJob(ctx, j.ID); err == nil {
		if cur.WorkflowID != workflowID {
			return store.Job{}, ErrJobConflict
		}
		return cur, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return store.Job{}, err
	}
	wf, err := e.DB.GetWorkflow(ctx, workflowID)
	if err != nil {
		return store.Job{}, err
	}
	if wf.Status != store.StatusRunning && wf.Status != store.StatusPending {
		return store.Job{}, ErrNotRunning
	}
	backend, err := e.backendFor(spec.Step{ComputeBackend: j.Backend})
	if err != nil {
		return store.Job{}, fmt.Errorf("%w: %v", ErrBadBackend, err)
	}
	jobs, err := e.DB.JobStates(ctx, workflowID)
	if err != nil {
		return store.Job{}, err
	}
	next, busy := 0, 0
	for _, x := range jobs {
		if x.StepIndex == store.EngineStepIndex {
			continue
		}
		next = max(next, x.StepIndex+1)
		if active(x.Status) {
			busy++
		}
	}
	if busy >= e.maxEngineJobs() {
		return store.Job{}, ErrTooManyJobs
	}
	j.WorkflowID, j.StepIndex, j.CommandIndex, j.Attempt = workflowID, next, 0, 0
	j.Backend, j.Status = backend, store.JobCreated
	if err := e.DB.CreateJob(ctx, &j); err != nil {
		return store.Job{}, err
	}
	e.Wake()
	return j, nil
}
