package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"
)

// Started is one job the backend took: its handle and when.
type Started struct {
	JobID        string
	Handle       json.RawMessage
	BackendJobID string
	At           time.Time
}

// RecordStarted records the handles of a group of submitted jobs and moves
// their workflows to running, all in one transaction: a group of fifty
// costs one commit, not a hundred. A job no longer waiting for its
// submission (stopped meanwhile) is left as it is.
func (db *DB) RecordStarted(ctx context.Context, jobs []Started) error {
	if len(jobs) == 0 {
		return nil
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		for _, j := range jobs {
			at := encTime(j.At)
			res, err := tx.ExecContext(ctx, `UPDATE jobs SET status = ?, handle = ?, backend_job_id = ?, started_at = ?
				WHERE id = ? AND status IN (?, ?)`, string(JobRunning), string(j.Handle), j.BackendJobID, at,
				j.JobID, string(JobCreated), string(JobSubmitting))
			if err != nil {
				return fmt.Errorf("record handle of job %s: %w", j.JobID, err)
			}
			if n, _ := res.RowsAffected(); n == 0 {
				continue
			}
			_, err = tx.ExecContext(ctx, `UPDATE workflows SET
				started_at = CASE WHEN status IN (?, ?) THEN ? ELSE started_at END,
				status = CASE WHEN status IN (?, ?) THEN ? ELSE status END,
				status_message = ''
				WHERE id = (SELECT workflow_id FROM jobs WHERE id = ?)`,
				string(StatusPending), string(StatusQueued), at,
				string(StatusPending), string(StatusQueued), string(StatusRunning), j.JobID)
			if err != nil {
				return fmt.Errorf("mark the workflow of job %s running: %w", j.JobID, err)
			}
		}
		return nil
	})
}
