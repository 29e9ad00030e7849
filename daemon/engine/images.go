package engine

import (
	"context"
	"fmt"
	"strings"

	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/containers"
	"github.com/reana-site/reana-site/daemon/store"
)

// imageNative tells whether the backend runs steps in their images itself.
func imageNative(be batch.Backend) bool {
	n, ok := be.(batch.ImageNative)
	return ok && n.ImageNative()
}

// imagePrep is one job's image resolution: what to run the step with, or
// why it cannot run, once done.
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
