package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/daemon/store"
)

// retry paces the submissions of one job while its batch system is
// unreachable: since is when the outage was first met, next when to try
// again.
type retry struct {
	since, next time.Time
	delay       time.Duration
}

// The pause between submissions during an outage doubles from minBackoff
// up to maxBackoff.
const (
	minBackoff = time.Second
	maxBackoff = 30 * time.Second
)

// submit hands a recorded job to its backend and records the handle; an
// unreachable batch system is waited out, anything else fails the step.
// With a round, the job joins the round's group for its owner and backend
// instead, taking the workflow's lock (unlock) with it: submit reports
// whether it did. A job the round has no room for waits for the next.
func (e *Engine) submit(ctx context.Context, wf store.Workflow, j store.Job, r *round, unlock func()) bool {
	s, be, ok := e.readyToSubmit(ctx, wf, j)
	if !ok {
		return false
	}
	if r != nil {
		return r.take(pending{wf: wf, j: j, spec: s, be: be, unlock: unlock})
	}
	// A submission, once begun, finishes even if the daemon is stopping: a
	// helper killed between starting a step and answering would leave the
	// step claimed but not started.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), submitTimeout)
	start := time.Now()
	h, err := be.Submit(sctx, s)
	cancel()
	e.Metrics.Submitted(j.Backend, time.Since(start), err)
	if err != nil {
		e.submitFailed(ctx, wf, j, err)
		return false
	}
	e.recordStarted(ctx, []pending{{wf: wf, j: j}}, []batch.Handle{h})
	return false
}

// readyToSubmit makes a recorded job's spec, with its image when steps run
// in containers. It reports false when the job cannot be submitted now:
// it failed, or waits (for its batch system, its owner's account, its
// image).
func (e *Engine) readyToSubmit(ctx context.Context, wf store.Workflow, j store.Job) (batch.Spec, batch.Backend, bool) {
	s, err := e.JobSpec(ctx, wf, j)
	if err != nil && !errors.Is(err, ErrAccountRefused) {
		e.submitLater(ctx, wf, j, err)
		return s, nil, false
	}
	if err != nil {
		e.failJob(ctx, wf, j, "cannot run as the workflow's owner: "+err.Error())
		return s, nil, false
	}
	be := e.Backends[j.Backend]
	if be == nil {
		e.failJob(ctx, wf, j, fmt.Sprintf("compute backend %q is not available on this site", j.Backend))
		return s, nil, false
	}
	e.mu.Lock()
	r := e.backoff[j.ID]
	e.mu.Unlock()
	if r != nil && now().Before(r.next) {
		return s, nil, false
	}
	if e.Images != nil && !imageNative(be) && !requestOf(j).Host {
		ready, err := e.prepareImage(ctx, j, &s)
		if !ready {
			return s, nil, false
		}
		if err != nil {
			e.failJob(ctx, wf, j, "cannot run in the step's image: "+err.Error())
			return s, nil, false
		}
	}
	return s, be, true
}

// submitFailed deals with a submission the backend did not take: an
// unreachable batch system is waited out, anything else fails the step.
func (e *Engine) submitFailed(ctx context.Context, wf store.Workflow, j store.Job, err error) {
	if errors.Is(err, batch.ErrUnavailable) {
		e.submitLater(ctx, wf, j, err)
		return
	}
	e.failJob(ctx, wf, j, "submission failed: "+err.Error())
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

// failJob ends a job that never ran, with the reason in its log, and fails
// its workflow.
func (e *Engine) failJob(ctx context.Context, wf store.Workflow, j store.Job, reason string) {
	t := now()
	_, _ = e.DB.UpdateJob(ctx, j.ID, func(x *store.Job) error {
		x.Status = store.JobFailed
		x.Reason = reason
		x.Logs += "reana-site: " + reason + "\n"
		x.FinishedAt = &t
		return nil
	})
	if p, err := e.planFor(wf); err == nil && p.driven && j.StepIndex != store.EngineStepIndex {
		return // the engine process hears of it and decides
	}
	e.finish(ctx, wf.ID, store.StatusFailed, "")
}
