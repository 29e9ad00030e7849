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
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/containers"
	"github.com/reana-site/reana-site/daemon/spec"
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
	once  sync.Once
}

type retry struct {
	since, next time.Time
	delay       time.Duration
}

// advanceParallelism bounds how many workflows one round moves at once.
const advanceParallelism = 8

const (
	minBackoff = time.Second
	maxBackoff = 30 * time.Second
)

type plan struct {
	steps    []spec.Step // expanded
	from, to int
	total    int
	warning  string
}

func (e *Engine) init() {
	e.once.Do(func() {
		e.wake = make(chan struct{}, 1)
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
	wfs, err := e.DB.ActiveWorkflows(ctx)
	if err != nil {
		e.Log.Error("list active workflows", "err", err)
		return
	}
	// Workflows advance side by side: a submission waits on a helper and
	// the batch system, and one user's slow sbatch must not hold up the
	// others. Each workflow's own steps stay serial under its lock.
	var wg sync.WaitGroup
	sem := make(chan struct{}, advanceParallelism)
	for _, wf := range wfs {
		wg.Add(1)
		sem <- struct{}{}
		go func(id string) {
			defer wg.Done()
			defer func() { <-sem }()
			e.advance(ctx, id)
		}(wf.ID)
	}
	wg.Wait()
	e.poll(ctx, wfs)
}

func (e *Engine) planFor(wf store.Workflow) (*plan, error) {
	e.mu.Lock()
	p, ok := e.plans[wf.ID]
	e.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := BuildPlan(wf)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.plans[wf.ID] = p
	e.mu.Unlock()
	return p, nil
}

// BuildPlan expands a workflow's specification with its parameters and
// applies its operational options. Errors are user errors: the workflow
// fails with their message, as REANA's engine does.
func BuildPlan(wf store.Workflow) (*plan, error) {
	s, _, err := spec.Parse(wf.Spec)
	if err != nil {
		return nil, err
	}
	steps, err := s.SerialSteps()
	if err != nil {
		return nil, err
	}
	var params, opts map[string]any
	if len(wf.InputParameters) > 0 {
		if err := json.Unmarshal(wf.InputParameters, &params); err != nil {
			return nil, fmt.Errorf("input parameters: %w", err)
		}
	}
	if len(wf.OperationalOptions) > 0 {
		if err := json.Unmarshal(wf.OperationalOptions, &opts); err != nil {
			return nil, fmt.Errorf("operational options: %w", err)
		}
	}
	expanded, err := spec.Expand(steps, spec.MergeParameters(s.Inputs.Parameters, params))
	if err != nil {
		return nil, err
	}
	from, to, warning, err := spec.SelectSteps(expanded, opts)
	if err != nil {
		return nil, err
	}
	return &plan{steps: expanded, from: from, to: to, total: spec.TotalCommands(steps), warning: warning}, nil
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
func (e *Engine) advance(ctx context.Context, id string) {
	unlock := e.lock(id)
	defer unlock()
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
		case store.JobStatus("created"), store.JobStatus("submitting"):
			// Intent recorded, handle not (a crash, or a batch system that
			// was down): submit again; backends make this idempotent.
			e.submit(ctx, wf, p, j)
			return
		case store.JobStatus("running"):
			return
		case store.JobStatus("failed"), store.JobStatus("stopped"):
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
		Status:       store.JobStatus("created"),
		Attempt:      next.attempt,
	}
	if err := e.DB.CreateJob(ctx, j); err != nil {
		e.Log.Error("record job intent", "workflow", id, "err", err)
		return
	}
	e.submit(ctx, wf, p, *j)
}

type position struct{ step, cmd, attempt int }

// nextCommand is the first command in the selected steps that has no
// finished job yet.
func nextCommand(p *plan, jobs []store.Job) (position, bool) {
	done := map[[2]int]bool{}
	attempts := map[[2]int]int{}
	for _, j := range jobs {
		k := [2]int{j.StepIndex, j.CommandIndex}
		if j.Status == store.JobStatus("finished") {
			done[k] = true
		}
		attempts[k] = max(attempts[k], j.Attempt+1)
	}
	for s := p.from; s < p.to; s++ {
		for c := range p.steps[s].Commands {
			k := [2]int{s, c}
			if !done[k] {
				return position{step: s, cmd: c, attempt: attempts[k]}, true
			}
		}
	}
	return position{}, false
}

func (e *Engine) backendFor(st spec.Step) (string, error) {
	name, err := spec.CanonicalBackend(st.ComputeBackend)
	if err != nil {
		return "", err
	}
	if name == "" {
		name = e.DefaultBackend
	}
	if _, ok := e.Backends[name]; !ok {
		return "", fmt.Errorf("compute backend %q is not available on this site", st.ComputeBackend)
	}
	return name, nil
}

// CheckBackends tells whether every step of the plan can run here; the API
// calls it at start so a workflow that cannot run is refused up front.
func (e *Engine) CheckBackends(steps []spec.Step) error {
	for _, st := range steps {
		if _, err := e.backendFor(st); err != nil {
			return err
		}
	}
	return nil
}

// CheckPreflight tells whether the backends of the steps would take them
// now, as far as they can tell without a job: the backend's own preflight
// (Kubernetes admission of a canonical pod) and each step as this user
// would submit it in this workspace. The API calls it at start, so a
// workflow that would be refused is refused up front with the precise
// reason.
func (e *Engine) CheckPreflight(steps []spec.Step, acct asuser.Account, workspace string) error {
	for _, st := range steps {
		name, err := e.backendFor(st)
		if err != nil {
			return err
		}
		be := e.Backends[name]
		if p, ok := be.(batch.Preflighter); ok {
			// An unreachable cluster is an outage, which submissions wait
			// out like any other; only a refusal is final.
			if err := p.Preflight(); err != nil && !onlyUnavailable(err) {
				return fmt.Errorf("step %s cannot run on %s now: %w", st.Name, name, err)
			}
		}
		if c, ok := be.(batch.SpecChecker); ok {
			s := batch.Spec{JobID: "start-check", WorkflowID: "start-check", WorkflowName: "start-check.1",
				StepName: st.Name, Command: "true", Image: st.Environment, Workspace: workspace,
				JobDir: filepath.Join(workspace, "start-check"), Hints: hintsOf(st), User: acct}
			if err := c.CheckSpec(s); err != nil {
				return fmt.Errorf("step %s cannot run on %s: %w", st.Name, name, err)
			}
		}
	}
	return nil
}

// onlyUnavailable tells whether err, possibly several joined, is nothing
// but outages: one real refusal among them makes it a refusal.
func onlyUnavailable(err error) bool {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if e != nil && !onlyUnavailable(e) {
				return false
			}
		}
		return true
	}
	return errors.Is(err, batch.ErrUnavailable)
}

// CheckImages tells whether every step's image can be used by acct: found
// now, or missing but pullable. The API calls it at start, so that with
// pulls off a missing image is refused before any job is submitted. It
// does nothing when containers are off.
func (e *Engine) CheckImages(ctx context.Context, steps []spec.Step, acct asuser.Account) error {
	if e.Images == nil {
		return nil
	}
	seen := map[string]bool{}
	for _, st := range steps {
		if name, err := e.backendFor(st); err == nil && imageNative(e.Backends[name]) {
			continue // the backend pulls the image itself
		}
		if seen[st.Environment] {
			continue
		}
		seen[st.Environment] = true
		if err := e.Images.Check(ctx, st.Environment, acct); err != nil {
			return fmt.Errorf("step %s: %w", st.Name, err)
		}
	}
	return nil
}

// imageNative tells whether the backend runs steps in their images itself.
func imageNative(be batch.Backend) bool {
	n, ok := be.(batch.ImageNative)
	return ok && n.ImageNative()
}

type imagePrep struct {
	done     bool
	runner   []string
	preamble string
	err      error
}

// prepareImage makes the step's image ready without holding up the
// engine: the first call starts the resolution (a pull may take many
// minutes, and a round waits for every workflow's advance) and reports
// not ready; the resolution wakes the engine when done, and a later call
// fills in the spec or returns why the image cannot be used.
func (e *Engine) prepareImage(ctx context.Context, j store.Job, s *batch.Spec) (ready bool, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.preps[j.ID]
	if p == nil {
		p = &imagePrep{}
		e.preps[j.ID] = p
		spec := *s
		go func() {
			rctx, cancel := context.WithTimeout(ctx, pullTimeout)
			err := e.resolveImage(rctx, j, &spec)
			cancel()
			e.mu.Lock()
			if err != nil && ctx.Err() != nil {
				// Stopping: the job, still unsubmitted, resolves its image
				// again after a restart.
				delete(e.preps, j.ID)
			} else {
				p.done, p.runner, p.preamble, p.err = true, spec.Runner, spec.Preamble, err
			}
			e.mu.Unlock()
			e.Wake()
		}()
		return false, nil
	}
	if !p.done {
		return false, nil
	}
	delete(e.preps, j.ID)
	s.Runner, s.Preamble = p.runner, p.preamble
	return true, p.err
}

// resolveImage finds the step's image, pulling it if needed, and sets the
// job to run in it. While a pull runs, the job's stored log says so, and
// the job's output starts with the image used and what the pull printed.
func (e *Engine) resolveImage(ctx context.Context, j store.Job, s *batch.Spec) error {
	log := &jobLog{ctx: ctx, db: e.DB, jobID: j.ID}
	res, err := e.Images.Resolve(ctx, s.Image, s.User, log)
	if err != nil {
		return err
	}
	if s.Runner, err = containers.ExecArgs(e.Images.Config, res, *s); err != nil {
		return err
	}
	s.Preamble = log.buf.String() + fmt.Sprintf("reana-site: running in image %s (%s, from %s)\n", s.Image, res.Path, res.Source)
	return nil
}

// jobLog keeps what an image pull prints and shows it in the job's
// stored log at once, for `reana-client logs` during a long pull.
type jobLog struct {
	ctx   context.Context
	db    *store.DB
	jobID string
	buf   strings.Builder
}

func (l *jobLog) Write(p []byte) (int, error) {
	l.buf.Write(p)
	// The job's output file replaces this text once the job has run; a
	// failure to show progress early must not fail the step.
	_, _ = l.db.UpdateJob(l.ctx, l.jobID, func(x *store.Job) error { x.Logs = l.buf.String(); return nil })
	return len(p), nil
}

// JobSpec rebuilds the backend's view of a stored job.
func (e *Engine) JobSpec(ctx context.Context, wf store.Workflow, j store.Job) (batch.Spec, error) {
	acct, err := e.Account(ctx, wf.OwnerID)
	if err != nil {
		return batch.Spec{}, err
	}
	var hints batch.Hints
	if p, err := e.planFor(wf); err == nil && j.StepIndex < len(p.steps) {
		hints = hintsOf(p.steps[j.StepIndex])
	}
	return batch.Spec{
		JobID:        j.ID,
		WorkflowID:   wf.ID,
		WorkflowName: wf.FullName(),
		StepName:     j.StepName,
		Command:      j.Command,
		Image:        j.Image,
		Workspace:    wf.WorkspacePath,
		JobDir:       filepath.Join(wf.JobsPath, j.ID),
		Env: map[string]string{
			"REANA_WORKSPACE":     wf.WorkspacePath,
			"REANA_WORKFLOW_UUID": wf.ID,
		},
		Hints: hints,
		User:  acct,
	}, nil
}

// hintsOf is REANA's optional resource fields of a step.
func hintsOf(st spec.Step) batch.Hints {
	return batch.Hints{
		SlurmPartition: st.SlurmPartition, SlurmTime: st.SlurmTime,
		MemoryLimit: st.KubernetesMemoryLimit, MemoryRequest: st.KubernetesMemoryRequest,
		CPULimit: st.KubernetesCPULimit, CPURequest: st.KubernetesCPURequest,
		JobTimeoutSeconds:  st.KubernetesJobTimeout,
		HTCondorMaxRuntime: st.HTCondorMaxRuntime, HTCondorAccountingGroup: st.HTCondorAccountingGroup,
	}
}

func (e *Engine) submit(ctx context.Context, wf store.Workflow, p *plan, j store.Job) {
	s, err := e.JobSpec(ctx, wf, j)
	if err != nil && !errors.Is(err, ErrAccountRefused) {
		e.submitLater(ctx, wf, j, err)
		return
	}
	if err != nil {
		e.failJob(ctx, wf, j, "cannot run as the workflow's owner: "+err.Error())
		return
	}
	be := e.Backends[j.Backend]
	if be == nil {
		e.failJob(ctx, wf, j, fmt.Sprintf("compute backend %q is not available on this site", j.Backend))
		return
	}
	e.mu.Lock()
	r := e.backoff[j.ID]
	e.mu.Unlock()
	if r != nil && now().Before(r.next) {
		return
	}
	if e.Images != nil && !imageNative(be) {
		ready, err := e.prepareImage(ctx, j, &s)
		if !ready {
			return
		}
		if err != nil {
			e.failJob(ctx, wf, j, "cannot run in the step's image: "+err.Error())
			return
		}
	}
	// A submission, once begun, finishes even if the daemon is stopping: a
	// helper killed between starting a step and answering would leave the
	// step claimed but not started.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), submitTimeout)
	h, err := be.Submit(sctx, s)
	cancel()
	if err != nil {
		if errors.Is(err, batch.ErrUnavailable) {
			e.submitLater(ctx, wf, j, err)
			return
		}
		e.failJob(ctx, wf, j, "submission failed: "+err.Error())
		return
	}
	e.mu.Lock()
	delete(e.backoff, j.ID)
	e.mu.Unlock()
	raw, _ := json.Marshal(h)
	t := now()
	_, err = e.DB.UpdateJob(ctx, j.ID, func(x *store.Job) error {
		x.Status = store.JobStatus("running")
		x.Handle = raw
		x.BackendJobID = h.ID
		x.StartedAt = &t
		return nil
	})
	if err != nil {
		e.Log.Error("record job handle", "workflow", wf.ID, "job", j.ID, "err", err)
		return
	}
	_, err = e.DB.UpdateWorkflow(ctx, wf.ID, func(w *store.Workflow) error {
		if w.Status == store.StatusPending || w.Status == store.StatusQueued {
			w.Status = store.StatusRunning
			w.StartedAt = &t
		}
		w.StatusMessage = ""
		return nil
	})
	if err != nil {
		e.Log.Error("mark workflow running", "workflow", wf.ID, "err", err)
	}
	e.Log.Info("job submitted", "workflow", wf.ID, "job", j.ID, "step", j.StepName, "backend", j.Backend, "backend_job_id", h.ID)
}

// submitLater keeps a job whose batch system is unreachable waiting, with
// growing pauses between attempts, until the outage grace period is over.
func (e *Engine) submitLater(ctx context.Context, wf store.Workflow, j store.Job, cause error) {
	t := now()
	e.mu.Lock()
	r := e.backoff[j.ID]
	if r == nil {
		r = &retry{since: t, delay: minBackoff / 2}
		e.backoff[j.ID] = r
	}
	r.delay = min(2*r.delay, maxBackoff)
	r.next = t.Add(r.delay)
	waited := t.Sub(r.since)
	e.mu.Unlock()
	if waited > e.OutageGrace {
		e.mu.Lock()
		delete(e.backoff, j.ID)
		e.mu.Unlock()
		e.failJob(ctx, wf, j, fmt.Sprintf("the %s batch system could not take the step for more than %s: %v", j.Backend, e.OutageGrace, cause))
		return
	}
	e.Log.Warn("batch system unavailable; will retry", "workflow", wf.ID, "job", j.ID, "backend", j.Backend, "retry_in", r.delay, "err", cause)
	e.setStatusMessage(ctx, wf.ID, fmt.Sprintf("waiting: the %s batch system is unreachable since %s; the step will be submitted when it is back",
		j.Backend, r.since.Format("15:04:05 MST")))
}

// setStatusMessage records what a workflow waits for, writing only changes.
func (e *Engine) setStatusMessage(ctx context.Context, id, msg string) {
	_, err := e.DB.UpdateWorkflow(ctx, id, func(w *store.Workflow) error {
		if w.StatusMessage == msg {
			return errUnchanged
		}
		w.StatusMessage = msg
		return nil
	})
	if err != nil && !errors.Is(err, errUnchanged) {
		e.Log.Error("record workflow status message", "workflow", id, "err", err)
	}
}

var errUnchanged = errors.New("unchanged")

func (e *Engine) failJob(ctx context.Context, wf store.Workflow, j store.Job, reason string) {
	t := now()
	_, _ = e.DB.UpdateJob(ctx, j.ID, func(x *store.Job) error {
		x.Status = store.JobStatus("failed")
		x.Reason = reason
		x.Logs += "reana-site: " + reason + "\n"
		x.FinishedAt = &t
		return nil
	})
	e.finish(ctx, wf.ID, store.StatusFailed, "")
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
