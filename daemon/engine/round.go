package engine

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/daemon/store"
)

// A round gathers the jobs that every workflow's advance made ready and
// submits them in groups of one owner and backend: one helper process (or
// one set of concurrent pod creates) per group instead of one per job,
// one store transaction for the intents of the round's new jobs, recorded
// before any is submitted, and one for each group's handles. Each job
// keeps its own claim in the helper, so a crash anywhere in a group
// submits no job twice.
//
// A job in a group keeps its workflow's lock until the group's handles
// are recorded: a stop waits for that, and then finds the job with its
// handle and cancels it, rather than marking an unsubmitted job stopped
// while the group submits it.

// pending is one job waiting in a round, with its workflow's lock held.
type pending struct {
	wf     store.Workflow
	j      store.Job
	spec   batch.Spec
	be     batch.Backend
	unlock func()
}

type groupKey struct{ owner, backend string }

// round is one engine round's gathering of ready jobs.
type round struct {
	limit  int // jobs per owner per round; 0 means no bound
	mu     sync.Mutex
	taken  map[string]int
	groups map[groupKey][]pending
	order  []groupKey
	drafts []pending
}

func newRound(limit int) *round {
	return &round{limit: limit, taken: map[string]int{}, groups: map[groupKey][]pending{}}
}

// full tells whether the owner has had their share of this round.
func (r *round) full(owner string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.limit > 0 && r.taken[owner] >= r.limit
}

// take adds a recorded job to its group, unless its owner's share of the
// round is used up; the job then waits for the next round.
func (r *round) take(p pending) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.count(p.wf.OwnerID) {
		return false
	}
	r.group(p)
	return true
}

// draft adds a job whose intent is not recorded yet (the next command of
// a workflow); flush records the intents of all drafts in one
// transaction before anything is submitted. A job beyond its owner's
// share is not drafted, and is made again in a later round.
func (r *round) draft(p pending) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.count(p.wf.OwnerID) {
		return false
	}
	r.drafts = append(r.drafts, p)
	return true
}

// count charges one job to the owner's share; r.mu is held.
func (r *round) count(owner string) bool {
	if r.limit > 0 && r.taken[owner] >= r.limit {
		return false
	}
	r.taken[owner]++
	return true
}

// group adds a job to the group of its owner and backend; r.mu is held,
// or flush is alone with the round.
func (r *round) group(p pending) {
	k := groupKey{owner: p.wf.OwnerID, backend: p.j.Backend}
	if _, ok := r.groups[k]; !ok {
		r.order = append(r.order, k)
	}
	r.groups[k] = append(r.groups[k], p)
}

// fairOrder interleaves the workflows of different owners (one of each in
// turn, each owner's in their own order), so that a user with thousands
// of ready workflows does not fill a round before another user's first.
func fairOrder(wfs []store.Workflow) []store.Workflow {
	byOwner := map[string][]store.Workflow{}
	var owners []string
	for _, wf := range wfs {
		if _, ok := byOwner[wf.OwnerID]; !ok {
			owners = append(owners, wf.OwnerID)
		}
		byOwner[wf.OwnerID] = append(byOwner[wf.OwnerID], wf)
	}
	out := make([]store.Workflow, 0, len(wfs))
	for len(out) < len(wfs) {
		for _, o := range owners {
			if q := byOwner[o]; len(q) > 0 {
				out = append(out, q[0])
				byOwner[o] = q[1:]
			}
		}
	}
	return out
}

// perJobTimeout extends a group's time limit beyond submitTimeout: a
// group of many jobs runs their submissions one after the other.
const perJobTimeout = 10 * time.Second

// groupMax bounds the jobs one helper submits: a group's workflows stay
// locked until its handles are stored, so a stop waits at most for one
// group of this size, and one user's many jobs go through several helpers
// side by side instead of one long queue.
const groupMax = 50

// flush submits every group of the round, cut into pieces of at most
// groupMax, several at once; the first piece of every owner's groups
// goes before the second of any.
func (e *Engine) flush(ctx context.Context, r *round) {
	e.recordIntents(ctx, r)
	type piece struct {
		backend string
		ps      []pending
	}
	var pieces []piece
	for i := 0; ; i++ {
		more := false
		for _, k := range r.order {
			if ps := r.groups[k]; i*groupMax < len(ps) {
				pieces = append(pieces, piece{k.backend, ps[i*groupMax : min((i+1)*groupMax, len(ps))]})
				more = true
			}
		}
		if !more {
			break
		}
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, advanceParallelism)
	for _, p := range pieces {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			e.submitGroup(ctx, p.backend, p.ps)
		}()
	}
	wg.Wait()
}

// recordIntents records the intents of the round's drafts in one
// transaction, then readies each for its group (its spec, its image): a
// job that cannot go now (it failed, or waits for an image or its
// batch system) leaves the round with its workflow unlocked.
func (e *Engine) recordIntents(ctx context.Context, r *round) {
	if len(r.drafts) == 0 {
		return
	}
	jobs := make([]*store.Job, len(r.drafts))
	for i := range r.drafts {
		jobs[i] = &r.drafts[i].j
	}
	if err := e.DB.CreateJobs(ctx, jobs); err != nil {
		// Nothing was recorded, so nothing is submitted: the next round
		// makes the same jobs again.
		e.Log.Error("record job intents", "jobs", len(jobs), "err", err)
		for _, d := range r.drafts {
			d.unlock()
		}
		return
	}
	for _, d := range r.drafts {
		s, be, ok := e.readyToSubmit(ctx, d.wf, d.j)
		if !ok {
			d.unlock()
			continue
		}
		d.spec, d.be = s, be
		r.group(d)
	}
}

// submitGroup submits one owner's ready jobs on one backend, records the
// handles of those the backend took in one transaction, deals with each
// failure on its own (an outage is waited out, anything else fails that
// job's step only), and releases the workflows' locks.
func (e *Engine) submitGroup(ctx context.Context, backend string, ps []pending) {
	defer func() {
		for _, p := range ps {
			p.unlock()
		}
	}()
	specs := make([]batch.Spec, len(ps))
	for i, p := range ps {
		specs[i] = p.spec
	}
	e.Log.Debug("submitting a group", "backend", backend, "jobs", len(ps))
	// As for one job: a group, once begun, finishes even if the daemon is
	// stopping.
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), max(submitTimeout, time.Duration(len(ps))*perJobTimeout))
	start := time.Now()
	var res []batch.Submitted
	if ms, ok := ps[0].be.(batch.ManySubmitter); ok && len(ps) > 1 {
		res = ms.SubmitMany(sctx, specs)
	} else {
		// A backend without groups (local) submits side by side, as the
		// workflows' own advances did.
		res = batch.SubmitConcurrently(sctx, specs, advanceParallelism, ps[0].be.Submit)
	}
	cancel()
	// Each job is charged its share of the group's time.
	share := time.Since(start) / time.Duration(len(ps))
	var took []pending
	var handles []batch.Handle
	for i, r := range res {
		e.Metrics.Submitted(backend, share, r.Err)
		if r.Err != nil {
			e.submitFailed(ctx, ps[i].wf, ps[i].j, r.Err)
			continue
		}
		took = append(took, ps[i])
		handles = append(handles, r.Handle)
	}
	e.recordStarted(ctx, took, handles)
}

// recordStarted stores the handles of submitted jobs, in one transaction,
// and moves their workflows to running.
func (e *Engine) recordStarted(ctx context.Context, ps []pending, handles []batch.Handle) {
	if len(ps) == 0 {
		return
	}
	t := now()
	rows := make([]store.Started, len(ps))
	e.mu.Lock()
	for i, p := range ps {
		raw, _ := json.Marshal(handles[i])
		rows[i] = store.Started{JobID: p.j.ID, Handle: raw, BackendJobID: handles[i].ID, At: t}
		delete(e.backoff, p.j.ID)
	}
	e.mu.Unlock()
	if err := e.DB.RecordStarted(ctx, rows); err != nil {
		e.Log.Error("record job handles", "jobs", len(rows), "err", err)
		return
	}
	for i, p := range ps {
		e.Log.Info("job submitted", "workflow", p.wf.ID, "job", p.j.ID, "step", p.j.StepName, "backend", p.j.Backend, "backend_job_id", handles[i].ID)
	}
}
