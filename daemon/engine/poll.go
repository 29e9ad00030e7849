package engine

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/daemon/store"
)

// poll asks each backend, once, about every running job of the given
// workflows, and settles the jobs that ended.
func (e *Engine) poll(ctx context.Context, wfs []store.Workflow) {
	byBackend := map[string][]batch.Job{}
	rows := map[string]store.Job{}
	owners := map[string]store.Workflow{}
	for _, wf := range wfs {
		jobs, err := e.DB.JobStates(ctx, wf.ID)
		if err != nil {
			e.Log.Error("load jobs", "workflow", wf.ID, "err", err)
			continue
		}
		for _, j := range jobs {
			if j.Status != store.JobRunning || len(j.Handle) == 0 {
				continue
			}
			bj, err := e.BatchJob(ctx, wf, j)
			if errors.Is(err, ErrAccountRefused) {
				// Nobody may act for this owner any more, not even to cancel.
				unlock := e.lock(wf.ID)
				e.failJob(ctx, wf, j, "the workflow's owner may no longer use this service ("+err.Error()+"); the step was left to end on its own")
				unlock()
				continue
			}
			if err != nil {
				e.Log.Warn("rebuild job", "workflow", wf.ID, "job", j.ID, "err", err)
				continue
			}
			byBackend[j.Backend] = append(byBackend[j.Backend], bj)
			rows[j.ID] = j
			owners[j.ID] = wf
		}
	}
	for name, jobs := range byBackend {
		be := e.Backends[name]
		if be == nil {
			continue
		}
		sctx, cancel := context.WithTimeout(ctx, statusTimeout)
		start := time.Now()
		states, err := be.Status(sctx, jobs)
		cancel()
		e.Metrics.Queried(name, time.Since(start), err)
		// An outage is logged when it begins, not on every poll it lasts;
		// the owners are told in status -v all along.
		if ongoing := e.noteOutage(ctx, name, jobs, owners, err); err != nil && !ongoing {
			e.Log.Warn("job status", "backend", name, "jobs", len(jobs), "err", err)
		}
		e.saveProgress(ctx, name, states)
		if err == nil {
			e.noteWaits(ctx, jobs, owners, states)
			e.noteScheduler(ctx, name, rows, states)
		}
		for _, bj := range jobs {
			st, ok := states[bj.Spec.JobID]
			if !ok || !st.State.Terminal() {
				continue
			}
			e.settle(ctx, owners[bj.Spec.JobID], rows[bj.Spec.JobID], bj, st)
		}
	}
}

// saveProgress stores the handles a backend updated (how far it has read
// an event log), in one transaction per poll.
func (e *Engine) saveProgress(ctx context.Context, backend string, states map[string]batch.Status) {
	handles := map[string]json.RawMessage{}
	for id, st := range states {
		if st.Handle == nil {
			continue
		}
		raw, err := json.Marshal(st.Handle)
		if err != nil {
			e.Log.Error("encode job handle", "backend", backend, "job", id, "err", err)
			continue
		}
		handles[id] = raw
	}
	if err := e.DB.SetJobHandles(ctx, handles); err != nil {
		e.Log.Error("record job progress", "backend", backend, "jobs", len(handles), "err", err)
	}
}

// noteScheduler keeps in each running job's row the scheduler's latest
// word on it (why it is pending or held, "pending (Priority)", "running"),
// so the details page shows it per step. Only what changed since the row
// was read is written: a poll that learns nothing new writes nothing.
func (e *Engine) noteScheduler(ctx context.Context, backend string, rows map[string]store.Job, states map[string]batch.Status) {
	changed := map[string]string{}
	for id, st := range states {
		j, ok := rows[id]
		if !ok || st.State == batch.Unknown || st.State.Terminal() {
			continue // unknown: the backend could not tell; an end is settle's
		}
		s := st.Reason
		if s == "" {
			s = st.State.String()
			if st.Note != "" {
				s += " (" + st.Note + ")"
			}
		}
		if s != j.Reason {
			changed[id] = s
		}
	}
	if err := e.DB.SetJobReasons(ctx, changed); err != nil {
		e.Log.Error("record scheduler state", "backend", backend, "jobs", len(changed), "err", err)
	}
}

// waitPrefix marks the status messages noteWaits writes, so it clears its
// own and leaves others (an outage) alone.
const waitPrefix = "waiting: step "

// noteWaits shows users why a submitted step does not run (an HTCondor
// hold with its reason) in `reana-client status -v`, and clears the
// message once no step waits for a reason.
func (e *Engine) noteWaits(ctx context.Context, jobs []batch.Job, owners map[string]store.Workflow, states map[string]batch.Status) {
	msgs := map[string]string{} // workflow id -> its message ("" for none)
	wfs := map[string]store.Workflow{}
	for _, bj := range jobs {
		wf := owners[bj.Spec.JobID]
		wfs[wf.ID] = wf
		if st, ok := states[bj.Spec.JobID]; ok && !st.State.Terminal() && st.Reason != "" && msgs[wf.ID] == "" {
			msgs[wf.ID] = waitPrefix + bj.Spec.StepName + ": " + st.Reason
		}
	}
	for id, wf := range wfs {
		msg := msgs[id]
		if msg == wf.StatusMessage || (msg == "" && !strings.HasPrefix(wf.StatusMessage, waitPrefix)) {
			continue
		}
		e.setStatusMessage(ctx, id, msg)
	}
}

// noteOutage tells the owners of running jobs that their batch system is
// unreachable (running steps go on; nothing fails for it), and clears the
// message once it answers again. It reports whether err continues an
// outage already noted.
func (e *Engine) noteOutage(ctx context.Context, backend string, jobs []batch.Job, owners map[string]store.Workflow, err error) bool {
	e.mu.Lock()
	since, was := e.outage[backend]
	switch {
	case errors.Is(err, batch.ErrUnavailable) && !was:
		since = now()
		e.outage[backend] = since
	case !errors.Is(err, batch.ErrUnavailable):
		delete(e.outage, backend)
	}
	e.mu.Unlock()
	msg := ""
	if errors.Is(err, batch.ErrUnavailable) {
		msg = fmt.Sprintf("waiting: the %s batch system is unreachable since %s; running steps go on and are checked when it is back",
			backend, since.Format("15:04:05 MST"))
	} else if !was {
		return false
	}
	seen := map[string]bool{}
	for _, bj := range jobs {
		wf := owners[bj.Spec.JobID]
		if seen[wf.ID] || (msg == "" && wf.StatusMessage == "") {
			continue
		}
		seen[wf.ID] = true
		e.setStatusMessage(ctx, wf.ID, msg)
	}
	return was && errors.Is(err, batch.ErrUnavailable)
}

// BatchJob rebuilds the backend's view of a stored, submitted job.
func (e *Engine) BatchJob(ctx context.Context, wf store.Workflow, j store.Job) (batch.Job, error) {
	s, err := e.JobSpec(ctx, wf, j)
	if err != nil {
		return batch.Job{}, err
	}
	var h batch.Handle
	if err := json.Unmarshal(j.Handle, &h); err != nil {
		return batch.Job{}, fmt.Errorf("decode handle of job %s: %w", j.ID, err)
	}
	return batch.Job{Spec: s, Handle: h}, nil
}

// settle records a job's end and moves its workflow on at once, so the
// next step is submitted without waiting for another poll.
func (e *Engine) settle(ctx context.Context, wf store.Workflow, j store.Job, bj batch.Job, st batch.Status) {
	unlock := e.lock(wf.ID)
	cur, err := e.DB.GetJob(ctx, j.ID)
	if err != nil || cur.Status != store.JobRunning {
		unlock()
		return // settled meanwhile (e.g. stopped)
	}
	lctx, cancel := context.WithTimeout(ctx, statusTimeout)
	logs, lerr := e.Backends[j.Backend].Logs(lctx, bj)
	cancel()
	if lerr != nil {
		logs += fmt.Sprintf("\nreana-site: could not read the step's output: %v\n", lerr)
	}
	status := store.JobFinished
	switch st.State {
	case batch.Failed:
		status = store.JobFailed
		if st.Retry && j.Attempt < e.Retries {
			// The next round submits the command again as a new attempt.
			status = store.JobRetried
			st.Reason += fmt.Sprintf("; submitting it again (attempt %d of %d)", j.Attempt+2, e.Retries+1)
		}
	case batch.Stopped:
		status = store.JobStopped
	}
	if st.Reason != "" {
		if logs != "" && !strings.HasSuffix(logs, "\n") {
			logs += "\n"
		}
		logs += "reana-site: " + st.Reason + "\n"
	}
	t := now()
	_, err = e.DB.UpdateJob(ctx, j.ID, func(x *store.Job) error {
		x.Status = status
		x.ExitCode = st.ExitCode
		x.Reason = st.Reason
		x.Logs = logs
		x.FinishedAt = &t
		return nil
	})
	unlock()
	if err != nil {
		e.Log.Error("record job end", "workflow", wf.ID, "job", j.ID, "err", err)
		return
	}
	e.Log.Info("job ended", "workflow", wf.ID, "job", j.ID, "step", j.StepName, "status", status, "reason", st.Reason)
	e.advance(ctx, wf.ID, nil)
}

// Stop ends a workflow that is queued, pending or running: its running
// jobs are cancelled and marked stopped, and nothing further is submitted.
func (e *Engine) Stop(ctx context.Context, id string) (store.Workflow, error) {
	e.init()
	unlock := e.lock(id)
	defer unlock()
	wf, err := e.DB.GetWorkflow(ctx, id)
	if err != nil {
		return wf, err
	}
	switch wf.Status {
	case store.StatusQueued, store.StatusPending, store.StatusRunning:
	default:
		return wf, ErrNotRunning
	}
	jobs, err := e.DB.JobsForWorkflow(ctx, id)
	if err != nil {
		return wf, err
	}
	// A driven workflow's engine process is stopped after its jobs, so
	// it submits nothing meanwhile that would be left running.
	slices.SortStableFunc(jobs, func(a, b store.Job) int {
		return cmp.Compare(b2i(a.StepIndex == store.EngineStepIndex), b2i(b.StepIndex == store.EngineStepIndex))
	})
	for _, j := range jobs {
		if !active(j.Status) {
			continue
		}
		if err := e.stopJob(ctx, wf, j, "stopped by the user"); err != nil {
			return wf, err
		}
	}
	e.finish(ctx, id, store.StatusStopped, "Workflow stopped by the user.\n")
	return e.DB.GetWorkflow(ctx, id)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// stopJob cancels an active job, keeps its output and marks it stopped
// with reason.
func (e *Engine) stopJob(ctx context.Context, wf store.Workflow, j store.Job, reason string) error {
	logs := j.Logs
	be := e.Backends[j.Backend]
	switch {
	case len(j.Handle) > 0 && be != nil:
		bj, err := e.BatchJob(ctx, wf, j)
		if err == nil {
			if cerr := be.Cancel(ctx, bj); cerr != nil {
				return fmt.Errorf("stop job %s: %w", j.ID, cerr)
			}
			if out, lerr := be.Logs(ctx, bj); lerr == nil {
				logs = out
			}
		}
	case j.Status == store.JobSubmitting:
		// The submission began but its handle was never recorded: the
		// job may exist all the same, and must not run on.
		if c, ok := be.(batch.UnrecordedCanceller); ok {
			if s, err := e.JobSpec(ctx, wf, j); err == nil {
				if cerr := c.CancelUnrecorded(ctx, s); cerr != nil {
					return fmt.Errorf("stop job %s: %w", j.ID, cerr)
				}
			}
		}
	}
	t := now()
	_, err := e.DB.UpdateJob(ctx, j.ID, func(x *store.Job) error {
		x.Status = store.JobStopped
		x.Logs = logs + "reana-site: " + reason + "\n"
		x.Reason = reason
		x.FinishedAt = &t
		return nil
	})
	return err
}

// ErrNotRunning means the workflow is in no state that can be stopped.
var ErrNotRunning = fmt.Errorf("workflow is not running")
