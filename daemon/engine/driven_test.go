package engine

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/daemon/store"
)

// queueDriven stores a queued snakemake workflow whose engine process
// runs procCommand (the fake backend's "hang", "ok" or "fail").
func (f *fixture) queueDriven(t *testing.T, procCommand string) string {
	t.Helper()
	f.eng.EngineProcess = func(context.Context, store.Workflow) (store.Job, error) {
		req, _ := json.Marshal(JobRequest{Host: true, Env: map[string]string{"SECRET": "s"}})
		return store.Job{StepName: "snakemake engine", Command: procCommand, Backend: "local", Request: req}, nil
	}
	id := uuid.NewString()
	wf := &store.Workflow{
		ID: id, OwnerID: f.owner, Name: "wf", Status: store.StatusQueued,
		Spec:          []byte(`{"workflow": {"type": "snakemake", "file": "Snakefile"}}`),
		WorkspacePath: "/ws/" + id, JobsPath: "/jobs/" + id,
	}
	require.NoError(t, f.db.CreateWorkflow(context.Background(), wf))
	return id
}

// engineRow is the workflow's engine process row.
func (f *fixture) engineRow(t *testing.T, id string) store.Job {
	t.Helper()
	jobs, err := f.db.JobsForWorkflow(context.Background(), id)
	require.NoError(t, err)
	for _, j := range jobs {
		if j.StepIndex == store.EngineStepIndex {
			return j
		}
	}
	t.Fatalf("no engine process row")
	return store.Job{}
}

// endProcess makes the fake backend report the engine process ended.
func (f *fixture) endProcess(t *testing.T, id, fate string) {
	f.be.mu.Lock()
	f.be.byJob[f.engineRow(t, id).ID] = fate
	f.be.mu.Unlock()
}

func TestDrivenWorkflowEnds(t *testing.T) {
	tests := []struct {
		name     string
		jobs     []string // commands the engine asks for
		fate     string   // how the engine process ends
		status   store.WorkflowStatus
		jobState map[string]store.JobStatus
	}{
		{"engine decides, not a failed job", []string{"ok a", "fail b"}, "ok", store.StatusFinished,
			map[string]store.JobStatus{"ok a": store.JobFinished, "fail b": store.JobFailed}},
		{"engine fails", []string{"ok a"}, "fail", store.StatusFailed,
			map[string]store.JobStatus{"ok a": store.JobFinished}},
		{"jobs left by the engine are stopped", []string{"hang a"}, "fail", store.StatusFailed,
			map[string]store.JobStatus{"hang a": store.JobStopped}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			f := newFixture(t)
			id := f.queueDriven(t, "hang engine")
			wf := f.run(t, id)
			require.Equal(t, store.StatusRunning, wf.Status)
			assert.Equal(t, "hang engine", f.be.byJob[f.engineRow(t, id).ID])
			for i, cmd := range tt.jobs {
				_, err := f.eng.AddJob(ctx, id, store.Job{ID: uuid.NewSHA1(uuid.MustParse(id), []byte{byte(i)}).String(), StepName: "rule", Command: cmd})
				require.NoError(t, err)
			}
			wf = f.run(t, id)
			require.Equal(t, store.StatusRunning, wf.Status, "a job's end does not end the run")
			f.endProcess(t, id, tt.fate)
			wf = f.run(t, id)
			assert.Equal(t, tt.status, wf.Status)
			jobs, err := f.db.JobsForWorkflow(ctx, id)
			require.NoError(t, err)
			for _, j := range jobs {
				if j.StepIndex != store.EngineStepIndex {
					assert.Equal(t, tt.jobState[j.Command], j.Status, j.Command)
				}
			}
			// A round submits a run's jobs as one group, side by side on
			// the local backend, so only the engine process comes first.
			cmds := f.be.commands()
			require.NotEmpty(t, cmds)
			assert.Equal(t, "hang engine", cmds[0], "the engine process first")
			assert.ElementsMatch(t, tt.jobs, cmds[1:], "the engine process once, each job once")
			counts, err := f.db.JobCounts(ctx, []string{id})
			require.NoError(t, err)
			assert.Equal(t, len(tt.jobs), counts[id].Total, "progress leaves the engine process out")
		})
	}
}

func TestAddJob(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	f.eng.MaxEngineJobs = 2
	id := f.queueDriven(t, "hang engine")
	other := f.queueDriven(t, "hang engine")
	f.run(t, id)
	f.run(t, other)
	key := uuid.NewSHA1(uuid.MustParse(id), []byte("1:1")).String()

	first, err := f.eng.AddJob(ctx, id, store.Job{ID: key, StepName: "gendata", Command: "hang a"})
	require.NoError(t, err)
	again, err := f.eng.AddJob(ctx, id, store.Job{ID: key, StepName: "gendata", Command: "hang a"})
	require.NoError(t, err)
	assert.Equal(t, first.ID, again.ID, "the same key is the same job")
	_, err = f.eng.AddJob(ctx, other, store.Job{ID: key, StepName: "x", Command: "hang"})
	assert.ErrorIs(t, err, ErrJobConflict)
	_, err = f.eng.AddJob(ctx, id, store.Job{ID: uuid.NewString(), StepName: "x", Command: "hang", Backend: "slurm"})
	assert.ErrorIs(t, err, ErrBadBackend)
	_, err = f.eng.AddJob(ctx, id, store.Job{ID: uuid.NewString(), StepName: "fitdata", Command: "hang b"})
	require.NoError(t, err)
	_, err = f.eng.AddJob(ctx, id, store.Job{ID: uuid.NewString(), StepName: "more", Command: "hang c"})
	assert.ErrorIs(t, err, ErrTooManyJobs)

	f.run(t, id)
	wf, err := f.eng.Stop(ctx, id)
	require.NoError(t, err)
	assert.Equal(t, store.StatusStopped, wf.Status)
	jobs, err := f.db.JobsForWorkflow(ctx, id)
	require.NoError(t, err)
	for _, j := range jobs {
		assert.Equal(t, store.JobStopped, j.Status, j.StepName)
		assert.True(t, f.be.cancelled[j.ID], j.StepName)
	}
	_, err = f.eng.AddJob(ctx, id, store.Job{ID: uuid.NewString(), StepName: "late", Command: "ok"})
	assert.ErrorIs(t, err, ErrNotRunning, "a stopped run takes no jobs")
}
