package store

import (
	"context"
	"database/sql"
	"fmt"
)

// WorkflowStatuses lists every workflow status, so that a count can name
// the ones no workflow has.
func WorkflowStatuses() []WorkflowStatus {
	return []WorkflowStatus{StatusCreated, StatusQueued, StatusPending, StatusRunning,
		StatusFinished, StatusFailed, StatusStopped, StatusDeleted}
}

// JobStatuses lists every job status.
func JobStatuses() []JobStatus {
	return []JobStatus{JobCreated, JobSubmitting, JobRunning, JobFinished, JobFailed, JobStopped, JobRetried}
}

// BackendStatus keys a count of jobs.
type BackendStatus struct {
	Backend string
	Status  JobStatus
}

// Counts is how many workflows are in each status and how many jobs in
// each backend and status, from one snapshot.
type Counts struct {
	Workflows map[WorkflowStatus]int
	Jobs      map[BackendStatus]int
}

// Count counts workflows by status and jobs by backend and status. Both
// are aggregate queries (the workflow one reads only the status index),
// so this stays cheap with many thousands of runs.
func (db *DB) Count(ctx context.Context) (Counts, error) {
	c := Counts{Workflows: map[WorkflowStatus]int{}, Jobs: map[BackendStatus]int{}}
	err := db.read(ctx, func(tx *sql.Tx) error {
		type wfRow struct {
			s WorkflowStatus
			n int
		}
		rows, err := tx.QueryContext(ctx, `SELECT status, COUNT(*) FROM workflows GROUP BY status`)
		wfs, err := collect(rows, err, func(sc scanner) (r wfRow, err error) { return r, sc.Scan(&r.s, &r.n) })
		if err != nil {
			return err
		}
		for _, r := range wfs {
			c.Workflows[r.s] = r.n
		}
		type jobRow struct {
			k BackendStatus
			n int
		}
		rows, err = tx.QueryContext(ctx, `SELECT backend, status, COUNT(*) FROM jobs GROUP BY backend, status`)
		jobs, err := collect(rows, err, func(sc scanner) (r jobRow, err error) { return r, sc.Scan(&r.k.Backend, &r.k.Status, &r.n) })
		for _, r := range jobs {
			c.Jobs[r.k] = r.n
		}
		return err
	})
	if err != nil {
		return Counts{}, fmt.Errorf("count workflows and jobs: %w", err)
	}
	return c, nil
}
