package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/daemon/spec"
)

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
