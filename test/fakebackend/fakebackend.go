// Package fakebackend is a batch backend for handler tests: it runs
// nothing, and reports what the test decides.
package fakebackend

import (
	"context"
	"sync"

	"github.com/reana-site/reana-site/batch"
)

// Backend runs nothing: Submit records the job, Status reports what
// the test set for it (running until then), Logs what the test wrote.
type Backend struct {
	mu        sync.Mutex
	submitted []batch.Spec
	states    map[string]batch.Status // by job id
	output    map[string]string       // by job id
	cancelled map[string]bool
}

// New makes a Backend with no jobs.
func New() *Backend {
	return &Backend{states: map[string]batch.Status{}, output: map[string]string{}, cancelled: map[string]bool{}}
}

func (f *Backend) Name() string { return "local" }

func (f *Backend) Submit(_ context.Context, s batch.Spec) (batch.Handle, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.submitted = append(f.submitted, s)
	return batch.Handle{Backend: "local", ID: "fake-" + s.JobID}, nil
}

func (f *Backend) Status(_ context.Context, jobs []batch.Job) (map[string]batch.Status, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]batch.Status{}
	for _, j := range jobs {
		st, ok := f.states[j.Spec.JobID]
		switch {
		case f.cancelled[j.Spec.JobID]:
			st = batch.Status{State: batch.Stopped}
		case !ok:
			st = batch.Status{State: batch.Running}
		}
		out[j.Spec.JobID] = st
	}
	return out, nil
}

func (f *Backend) Cancel(_ context.Context, j batch.Job) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancelled[j.Spec.JobID] = true
	return nil
}

func (f *Backend) Logs(_ context.Context, j batch.Job) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.output[j.Spec.JobID], nil
}

// Jobs returns what was submitted so far.
func (f *Backend) Jobs() []batch.Spec {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]batch.Spec(nil), f.submitted...)
}

// Set decides how a job is reported from now on, and its output.
func (f *Backend) Set(jobID string, st batch.Status, output string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.states[jobID] = st
	f.output[jobID] = output
}
