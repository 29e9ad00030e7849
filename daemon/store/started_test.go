package store

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRecordStartedOneTransactionPerGroup(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	alice := addUser(t, db, "alice")
	var jobs []Job
	var started []Started
	statuses := []WorkflowStatus{StatusPending, StatusRunning, StatusPending}
	for i, st := range statuses {
		w := addWorkflow(t, db, alice, "wf"+string(rune('a'+i)))
		_, err := db.UpdateWorkflow(ctx, w.ID, func(x *Workflow) error { x.Status = st; x.StatusMessage = "waiting"; return nil })
		require.NoError(t, err)
		j := Job{WorkflowID: w.ID, Backend: "slurm"}
		require.NoError(t, db.CreateJob(ctx, &j))
		jobs = append(jobs, j)
		started = append(started, Started{JobID: j.ID, Handle: json.RawMessage(`{"id":"` + j.ID + `"}`), BackendJobID: "10" + string(rune('0'+i)), At: time.Now()})
	}
	// The third was stopped while its group was being submitted.
	_, err := db.UpdateJob(ctx, jobs[2].ID, func(x *Job) error { x.Status = JobStopped; return nil })
	require.NoError(t, err)

	var writes int
	db.ObserveTransactions(func(kind string, _ time.Duration) {
		if kind == "write" {
			writes++
		}
	})
	require.NoError(t, db.RecordStarted(ctx, started))
	db.ObserveTransactions(nil)
	assert.Equal(t, 1, writes)

	for i, want := range []JobStatus{JobRunning, JobRunning, JobStopped} {
		j, err := db.GetJob(ctx, jobs[i].ID)
		require.NoError(t, err)
		assert.Equal(t, want, j.Status, "job %d", i)
		w, err := db.GetWorkflow(ctx, jobs[i].WorkflowID)
		require.NoError(t, err)
		if want == JobRunning {
			assert.Equal(t, started[i].BackendJobID, j.BackendJobID)
			assert.JSONEq(t, string(started[i].Handle), string(j.Handle))
			assert.NotNil(t, j.StartedAt)
			assert.Equal(t, StatusRunning, w.Status)
			assert.Equal(t, statuses[i] == StatusPending, w.StartedAt != nil, "a run's start is set when it leaves pending")
			assert.Empty(t, w.StatusMessage)
		} else {
			assert.Equal(t, StatusPending, w.Status, "a stopped job's workflow is not touched")
		}
	}
}
