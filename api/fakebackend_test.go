package api_test

import (
	"context"
	"sync"

	"github.com/reana-site/reana-site/batch"
)

// fakeBackend runs nothing: Submit records the job, Status reports what
// the test set for it (running until then), Logs what the test wrote.
type fakeBackend struct {
	mu        sync.Mutex
	submitted []batch.Spec
	states    map[string]batch.Status // by job id
	output    map[string]string       // by job id
	cancelled map[string]bool
}

func newFakeBackend() *fakeBackend {
	return &fakeBackend{states: map[string]batch.Status{}, output: map[string]string{}, cancelled: map[string]bool{}}
}

func (f *fakeBackend) Name() string { return "local" }

func (f *fakeBackend) Submit(_ context.Context, s batch.Spec) (batch.Handle, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.submitted = append(f.submitted, s)
	return batch.Handle{Backend: "local", ID: "fake-" + s.JobID}, nil
}

func (f *fakeBackend) Status(_ context.Context, jobs []batch.Job) (map[string]batch.Status, error) {
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

func (f *fakeBackend) Cancel(_ context.Context, j batch.Job) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cancelled[j.Spec.JobID] = true
	return nil
}

func (f *fakeBackend) Logs(_ context.Context, j batch.Job) (string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.output[j.Spec.JobID], nil
}

// jobs returns what was submitted so far.
func (f *fakeBackend) jobs() []batch.Spec {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]batch.Spec(nil), f.submitted...)
}

// set decides how a job is reported from now on, and its output.
func (f *fakeBackend) set(jobID string, st batch.Status, output string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.states[jobID] = st
	f.output[jobID] = output
}
