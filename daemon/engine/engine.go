// Package engine runs REANA serial workflows: one job per command, steps in
// order, the first failing command fails the workflow. All state lives in
// the store and every decision is made from it, so a daemon restarted at
// any moment continues where it stopped: a job whose intent was recorded
// but whose handle was not is submitted again (backends make that
// idempotent), a job with a handle is polled, and a finished job never runs
// again.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/containers"
	"github.com/reana-site/reana-site/daemon/metrics"
	"github.com/reana-site/reana-site/daemon/store"
)

// AccountFunc resolves a workflow owner to the POSIX account jobs run as,
// applying the site policy at the time of use. Errors wrapping
// ErrAccountRefused are final; others (a directory service that does not
// answer) are waited out like a batch system outage.
type AccountFunc func(ctx context.Context, ownerID string) (asuser.Account, error)

// ErrAccountRefused means the owner may not run anything any more.
var ErrAccountRefused = errors.New("account refused")

// Bounds on the helpers and batch commands one engine step waits for, so a
// user's process that hangs cannot stall everybody's workflows.
const (
	submitTimeout = 5 * time.Minute
	pullTimeout   = time.Hour
	statusTimeout = 2 * time.Minute
)

// Engine drives workflows forward.
type Engine struct {
	DB             *store.DB
	Backends       map[string]batch.Backend
	DefaultBackend string
	Account        AccountFunc
	Log            *slog.Logger
	// Poll is the interval between status rounds when nothing wakes the
	// engine earlier.
	Poll time.Duration
	// OnTerminal, if set, is called after a workflow reaches finished,
	// failed or stopped (e.g. to measure disk usage).
	OnTerminal func(ctx context.Context, wf store.Workflow)
	// Retries is how often a job the backend asks to retry (a node that
	// failed under it) is submitted again before its step fails.
	Retries int
	// OutageGrace is how long a step waits for an unreachable batch system
	// to take its submission before the step fails; zero means an hour.
	OutageGrace time.Duration
	// Images, when set, runs every step in its environment image with
	// Apptainer: the image is resolved (and pulled, if the site allows)
	// as the user when the step is submitted. Nil runs steps on the host.
	Images *containers.Resolver
	// SecretsDir is where a user's secrets are (the site's template filled
	// for them); each job reads them from there itself. Nil gives jobs no
	// secrets.
	SecretsDir func(asuser.Account) string
	// KeytabSecrets and UserSecrets name the env secrets kerberos: true
	// takes the keytab's name and the principal from, in order.
	KeytabSecrets, UserSecrets []string
	// KrbConfig is the krb5.conf of kerberos: true; empty means the node's.
	KrbConfig string
	// Metrics, when set, is told each round's duration and every
	// submission and status query; nil records nothing.
	Metrics *metrics.Metrics
	// RoundShare is how many jobs of one owner one round submits at most,
	// so that one user's thousands of ready jobs do not hold up another
	// user's few; zero means no bound.
	RoundShare int
	// EngineProcess, when set, runs the workflows that are not serial
	// (cwl, snakemake, yadage; daemon/workflowengine): it returns the job
	// that starts a run's engine process as the owner, which is recorded
	// and submitted like a step (driven.go). Nil fails such workflows.
	EngineProcess func(ctx context.Context, wf store.Workflow) (store.Job, error)
	// MaxEngineJobs caps the active jobs of one driven workflow; zero
	// means 300, REANA's SNAKEMAKE_MAX_PARALLEL_JOBS.
	MaxEngineJobs int

	wake  chan struct{}
	mu    sync.Mutex
	locks map[string]*sync.Mutex
	plans map[string]*plan
	// backoff paces the submissions that met an unreachable batch system,
	// by job id.
	backoff map[string]*retry
	// outage is when each backend's status query began to fail.
	outage map[string]time.Time
	// preps are the image resolutions (and pulls) in progress or done but
	// not yet used, by job id.
	preps map[string]*imagePrep
	// rounds is closed, and replaced, at the end of every round, so that
	// an engine adapter can wait for the next round instead of polling.
	rounds chan struct{}
	once   sync.Once
}

// advanceParallelism bounds how many workflows one round moves at once.
const advanceParallelism = 8

func (e *Engine) init() {
	e.once.Do(func() {
		e.wake = make(chan struct{}, 1)
		e.rounds = make(chan struct{})
		e.locks = map[string]*sync.Mutex{}
		e.plans = map[string]*plan{}
		e.backoff = map[string]*retry{}
		e.outage = map[string]time.Time{}
		e.preps = map[string]*imagePrep{}
		if e.OutageGrace == 0 {
			e.OutageGrace = time.Hour
		}
		if e.Log == nil {
			e.Log = slog.Default()
		}
		if e.Poll == 0 {
			e.Poll = batch.DefaultPollInterval
		}
	})
}

// Wake makes the engine look at its workflows now.
func (e *Engine) Wake() {
	e.init()
	select {
	case e.wake <- struct{}{}:
	default:
	}
}

// NextRound returns a channel that is closed when the round after the
// call ends (a round that is under way when it is called counts).
func (e *Engine) NextRound() <-chan struct{} {
	e.init()
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.rounds
}

func (e *Engine) roundEnded() {
	e.mu.Lock()
	close(e.rounds)
	e.rounds = make(chan struct{})
	e.mu.Unlock()
}

// Run drives workflows until ctx ends.
func (e *Engine) Run(ctx context.Context) {
	e.init()
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-e.wake:
		}
		e.Tick(ctx)
		t.Reset(e.Poll)
	}
}

func (e *Engine) lock(id string) func() {
	e.mu.Lock()
	l, ok := e.locks[id]
	if !ok {
		l = &sync.Mutex{}
		e.locks[id] = l
	}
	e.mu.Unlock()
	l.Lock()
	return l.Unlock
}

func (e *Engine) forget(id string) {
	e.mu.Lock()
	delete(e.plans, id)
	delete(e.locks, id)
	e.mu.Unlock()
}

// Tick advances every active workflow once and polls running jobs.
func (e *Engine) Tick(ctx context.Context) {
	e.init()
	defer e.roundEnded()
	defer func(start time.Time) { e.Metrics.Round(time.Since(start)) }(time.Now())
	wfs, err := e.DB.ActiveWorkflows(ctx)
	if err != nil {
		e.Log.Error("list active workflows", "err", err)
		return
	}
	// Workflows advance side by side: a submission waits on a helper and
	// the batch system, and one user's slow sbatch must not hold up the
	// others. Each workflow's own steps stay serial under its lock.
	// The jobs they make ready are gathered into one round and submitted
	// in groups per owner and backend (round.go), owners taking turns.
	r := newRound(e.RoundShare)
	var wg sync.WaitGroup
	sem := make(chan struct{}, advanceParallelism)
	for _, wf := range fairOrder(wfs) {
		if r.full(wf.OwnerID) {
			continue // the owner's share of this round is used up
		}
		wg.Add(1)
		sem <- struct{}{}
		go func(id string) {
			defer wg.Done()
			defer func() { <-sem }()
			e.advance(ctx, id, r)
		}(wf.ID)
	}
	wg.Wait()
	e.flush(ctx, r)
	e.poll(ctx, wfs)
}

func now() time.Time { return time.Now().UTC() }

func terminal(s store.WorkflowStatus) bool {
	switch s {
	case store.StatusFinished, store.StatusFailed, store.StatusStopped, store.StatusDeleted, store.StatusCreated:
		return true
	}
	return false
}

// advance moves one workflow forward as far as it can without waiting.
// With a round, the job it makes ready joins the round, which then holds
// the workflow's lock until the job's group is submitted; without one
// (a job just ended), the job is submitted at once.
func (e *Engine) advance(ctx context.Context, id string, r *round) {
	unlock := e.lock(id)
	handedOver := false
	defer func() {
		if !handedOver {
			unlock()
		}
	}()
	wf, err := e.DB.GetWorkflow(ctx, id)
	if err != nil {
		e.Log.Error("load workflow", "workflow", id, "err", err)
		return
	}
	if terminal(wf.Status) {
		return
	}
	p, err := e.planFor(wf)
	if err != nil {
		e.finish(ctx, wf.ID, store.StatusFailed, "Workflow exited unexpectedly.\n"+err.Error()+"\n")
		return
	}
	if p.driven {
		handedOver = e.advanceDriven(ctx, wf, r, unlock)
		return
	}
	if wf.Status == store.StatusQueued {
		wf, err = e.DB.UpdateWorkflow(ctx, id, func(w *store.Workflow) error {
			w.Status = store.StatusPending
			w.ProgressTotal = p.total
			if p.warning != "" {
				w.Logs += p.warning + "\n"
			}
			return nil
		})
		if err != nil {
			e.Log.Error("mark workflow pending", "workflow", id, "err", err)
			return
		}
	}
	jobs, err := e.DB.JobStates(ctx, id)
	if err != nil {
		e.Log.Error("load jobs", "workflow", id, "err", err)
		return
	}
	for _, j := range jobs {
		switch j.Status {
		case store.JobCreated, store.JobSubmitting:
			// Intent recorded, handle not (a crash, or a batch system that
			// was down): submit again; backends make this idempotent.
			handedOver = e.submit(ctx, wf, j, r, unlock)
			return
		case store.JobRunning:
			return
		case store.JobFailed, store.JobStopped:
			e.finish(ctx, id, store.StatusFailed, "")
			return
		}
	}
	next, ok := nextCommand(p, jobs)
	if !ok {
		e.finish(ctx, id, store.StatusFinished, fmt.Sprintf("Workflow %s finished. Files available at %s.\n", wf.FullName(), wf.WorkspacePath))
		return
	}
	st := p.steps[next.step]
	backend, err := e.backendFor(st)
	if err != nil {
		e.finish(ctx, id, store.StatusFailed, "Workflow exited unexpectedly.\n"+err.Error()+"\n")
		return
	}
	j := &store.Job{
		WorkflowID:   id,
		StepIndex:    next.step,
		CommandIndex: next.cmd,
		StepName:     st.Name,
		Command:      st.Commands[next.cmd],
		Image:        st.Environment,
		Backend:      backend,
		Status:       store.JobCreated,
		Attempt:      next.attempt,
	}
	if r != nil {
		// The round records its new jobs' intents together (round.go).
		handedOver = r.draft(pending{wf: wf, j: *j, unlock: unlock})
		return
	}
	if err := e.DB.CreateJob(ctx, j); err != nil {
		e.Log.Error("record job intent", "workflow", id, "err", err)
		return
	}
	handedOver = e.submit(ctx, wf, *j, r, unlock)
}

// finish puts a workflow into a terminal status. The caller holds its lock.
func (e *Engine) finish(ctx context.Context, id string, status store.WorkflowStatus, logs string) {
	t := now()
	wf, err := e.DB.UpdateWorkflow(ctx, id, func(w *store.Workflow) error {
		if terminal(w.Status) {
			return errAlreadyTerminal
		}
		w.Status = status
		w.Logs += logs
		w.FinishedAt = &t
		if status == store.StatusStopped {
			w.StoppedAt = &t
		}
		if w.StartedAt != nil {
			w.CPUMillis = t.Sub(*w.StartedAt).Milliseconds()
		}
		w.StatusMessage = ""
		return nil
	})
	if errors.Is(err, errAlreadyTerminal) {
		return
	}
	if err != nil {
		e.Log.Error("finish workflow", "workflow", id, "status", status, "err", err)
		return
	}
	if status == store.StatusFinished || status == store.StatusFailed {
		if err := activateRetentionRules(ctx, e.DB, id, t); err != nil {
			e.Log.Error("activate retention rules", "workflow", id, "err", err)
		}
	}
	e.forget(id)
	e.Log.Info("workflow ended", "workflow", id, "name", wf.FullName(), "status", status)
	if e.OnTerminal != nil {
		e.OnTerminal(ctx, wf)
	}
}

var errAlreadyTerminal = errors.New("workflow already ended")
