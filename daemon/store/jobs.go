package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
)

// JobStatus is a job's status, spelt as REANA's job logs show it, plus
// "submitting" for an intent whose submission may or may not have
// reached the backend.
type JobStatus string

// The job statuses. created and submitting mean the engine must (re)submit
// the job; running means it has a handle to poll.
const (
	JobCreated    JobStatus = "created"
	JobSubmitting JobStatus = "submitting"
	JobRunning    JobStatus = "running"
	JobFinished   JobStatus = "finished"
	JobFailed     JobStatus = "failed"
	JobStopped    JobStatus = "stopped"
	// JobRetried is a failed try the backend asked to run again; the
	// engine submits the command anew as the next attempt.
	JobRetried JobStatus = "retried"
)

// EngineStepIndex is the step index of the row that records the engine
// process of a cwl, snakemake or yadage run. It is not one of the run's
// jobs, so progress leaves it out; the jobs its engine asks for are
// numbered from 0 in the order they were asked for.
const EngineStepIndex = -1

// Job is one try of one command of one step.
type Job struct {
	ID           string // a UUID; CreateJob assigns it if empty
	WorkflowID   string
	StepIndex    int
	CommandIndex int
	Attempt      int // 0 for the first try of this command
	StepName     string
	Command      string
	Image        string
	Backend      string
	Status       JobStatus
	// Handle is the backend's own record of the submitted job, which it
	// needs to find the job again after a restart; empty until submitted.
	Handle       json.RawMessage
	BackendJobID string
	ExitCode     *int
	Reason       string // why the job ended, if not simply by exiting
	Logs         string
	// Request is what a workflow engine's adapter asked for the job
	// (daemon/engine.JobRequest); empty for serial steps.
	Request    json.RawMessage
	CreatedAt  time.Time
	StartedAt  *time.Time
	FinishedAt *time.Time
}

const jobCols = `id, workflow_id, step_index, command_index, attempt, step_name, command,
	image, backend, status, handle, backend_job_id, exit_code, reason, logs,
	created_at, started_at, finished_at, request`

var jobColsNoLogs = strings.Replace(jobCols, ", logs,", ", '' AS logs,", 1)

func scanJob(sc scanner) (Job, error) {
	var j Job
	var exit sql.NullInt64
	err := sc.Scan(&j.ID, &j.WorkflowID, &j.StepIndex, &j.CommandIndex, &j.Attempt, &j.StepName, &j.Command,
		&j.Image, &j.Backend, &j.Status, rawCol{(*[]byte)(&j.Handle)}, &j.BackendJobID, &exit, &j.Reason, &j.Logs,
		timeCol{&j.CreatedAt}, nullTimeCol{&j.StartedAt}, nullTimeCol{&j.FinishedAt}, rawCol{(*[]byte)(&j.Request)})
	if exit.Valid {
		c := int(exit.Int64)
		j.ExitCode = &c
	}
	return j, err
}

func exitArg(c *int) any {
	if c == nil {
		return nil
	}
	return int64(*c)
}

// CreateJob records a job, assigning its ID if empty and its CreatedAt.
// A second job for the same command and attempt is ErrExists.
func (db *DB) CreateJob(ctx context.Context, j *Job) error {
	return db.CreateJobs(ctx, []*Job{j})
}

// CreateJobs records several jobs in one transaction (the intents of a
// submission group): all of them, or none if one fails.
func (db *DB) CreateJobs(ctx context.Context, jobs []*Job) error {
	vs := make([]Job, len(jobs))
	t := now()
	for i, j := range jobs {
		vs[i] = *j
		if vs[i].ID == "" {
			vs[i].ID = uuid.NewString()
		}
		if vs[i].Status == "" {
			vs[i].Status = JobCreated
		}
		vs[i].CreatedAt = t
	}
	var bad Job
	err := db.write(ctx, func(tx *sql.Tx) error {
		for _, v := range vs {
			bad = v
			_, err := tx.ExecContext(ctx, `INSERT INTO jobs (`+jobCols+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
				v.ID, v.WorkflowID, v.StepIndex, v.CommandIndex, v.Attempt, v.StepName, v.Command,
				v.Image, v.Backend, string(v.Status), string(v.Handle), v.BackendJobID, exitArg(v.ExitCode), v.Reason, v.Logs,
				encTime(v.CreatedAt), encTimePtr(v.StartedAt), encTimePtr(v.FinishedAt), string(v.Request))
			if err != nil {
				return err
			}
		}
		return nil
	})
	if isConflict(err) {
		return fmt.Errorf("record job of workflow %s step %d command %d attempt %d: %w",
			bad.WorkflowID, bad.StepIndex, bad.CommandIndex, bad.Attempt, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("record job of workflow %s: %w", bad.WorkflowID, err)
	}
	for i, j := range jobs {
		*j = vs[i]
	}
	return nil
}

// GetJob returns the job with the given id.
func (db *DB) GetJob(ctx context.Context, id string) (Job, error) {
	return getJob(ctx, db.r, id)
}

func getJob(ctx context.Context, q querier, id string) (Job, error) {
	j, err := scanJob(q.QueryRowContext(ctx, `SELECT `+jobCols+` FROM jobs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Job{}, fmt.Errorf("job %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Job{}, fmt.Errorf("read job %s: %w", id, err)
	}
	return j, nil
}

// UpdateJob reads the job, lets fn change it and writes it back in one
// transaction; fn must not use the store. If fn returns an error nothing
// is written, and the job as it was is returned with that error,
// unwrapped. ID, WorkflowID, the step, command and attempt, and CreatedAt
// cannot be changed.
func (db *DB) UpdateJob(ctx context.Context, id string, fn func(*Job) error) (Job, error) {
	var before, after Job
	var fnErr error
	err := db.write(ctx, func(tx *sql.Tx) error {
		var err error
		before, err = getJob(ctx, tx, id)
		if err != nil {
			return err
		}
		after = before
		after.Handle = clone(before.Handle)
		if before.ExitCode != nil {
			c := *before.ExitCode
			after.ExitCode = &c
		}
		if fnErr = fn(&after); fnErr != nil {
			return fnErr
		}
		_, err = tx.ExecContext(ctx, `UPDATE jobs SET step_name = ?, command = ?, image = ?, backend = ?,
			status = ?, handle = ?, backend_job_id = ?, exit_code = ?, reason = ?, logs = ?,
			started_at = ?, finished_at = ? WHERE id = ?`,
			after.StepName, after.Command, after.Image, after.Backend, string(after.Status), string(after.Handle),
			after.BackendJobID, exitArg(after.ExitCode), after.Reason, after.Logs,
			encTimePtr(after.StartedAt), encTimePtr(after.FinishedAt), id)
		if err != nil {
			return fmt.Errorf("update job %s: %w", id, err)
		}
		after, err = getJob(ctx, tx, id)
		return err
	})
	if fnErr != nil {
		return before, fnErr
	}
	if err != nil {
		return Job{}, err
	}
	return after, nil
}

// SetJobHandles replaces the handles of running jobs, all in one
// transaction: backends that follow their jobs' progress (an HTCondor event
// log's offset) keep it in the handle, so a restart resumes where the last
// poll stopped. Jobs no longer running keep the handle they had.
func (db *DB) SetJobHandles(ctx context.Context, handles map[string]json.RawMessage) error {
	return setOfRunning(ctx, db, "handle", handles)
}

// SetJobReasons replaces the reasons of running jobs, all in one
// transaction: while a job waits or runs its reason is the scheduler's
// latest word on it (pending and why, held, running), which the web
// interface shows per step. Jobs no longer running keep the reason they
// ended with.
func (db *DB) SetJobReasons(ctx context.Context, reasons map[string]string) error {
	return setOfRunning(ctx, db, "reason", reasons)
}

// setOfRunning sets column (a constant) of the running jobs among vals'
// keys to their values, in one transaction, and writes nothing if vals is
// empty.
func setOfRunning[V ~string | ~[]byte](ctx context.Context, db *DB, column string, vals map[string]V) error {
	if len(vals) == 0 {
		return nil
	}
	return db.write(ctx, func(tx *sql.Tx) error {
		stmt, err := tx.PrepareContext(ctx, `UPDATE jobs SET `+column+` = ? WHERE id = ? AND status = ?`)
		if err != nil {
			return fmt.Errorf("update job %ss: %w", column, err)
		}
		defer stmt.Close()
		for id, v := range vals {
			if _, err := stmt.ExecContext(ctx, string(v), id, string(JobRunning)); err != nil {
				return fmt.Errorf("update %s of job %s: %w", column, id, err)
			}
		}
		return nil
	})
}

// JobsForWorkflow returns the workflow's jobs in the order they run: by
// step, command and attempt.
func (db *DB) JobsForWorkflow(ctx context.Context, workflowID string) ([]Job, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+jobCols+` FROM jobs WHERE workflow_id = ?
		ORDER BY step_index, command_index, attempt, created_at`, workflowID)
	jobs, err := collect(rows, err, scanJob)
	if err != nil {
		return nil, fmt.Errorf("list jobs of workflow %s: %w", workflowID, err)
	}
	return jobs, nil
}

// JobStates is JobsForWorkflow without the jobs' output (Logs is empty),
// for the engine, which looks at every active workflow several times a
// second and needs only states and handles.
func (db *DB) JobStates(ctx context.Context, workflowID string) ([]Job, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+jobColsNoLogs+` FROM jobs WHERE workflow_id = ?
		ORDER BY step_index, command_index, attempt, created_at`, workflowID)
	jobs, err := collect(rows, err, scanJob)
	if err != nil {
		return nil, fmt.Errorf("list job states of workflow %s: %w", workflowID, err)
	}
	return jobs, nil
}

// ActiveJobs returns every job that is created, submitting or running, of
// all workflows, oldest first.
func (db *DB) ActiveJobs(ctx context.Context) ([]Job, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+jobCols+` FROM jobs WHERE status IN (?, ?, ?)
		ORDER BY created_at, rowid`, string(JobCreated), string(JobSubmitting), string(JobRunning))
	jobs, err := collect(rows, err, scanJob)
	if err != nil {
		return nil, fmt.Errorf("list active jobs: %w", err)
	}
	return jobs, nil
}

// JobCounts is a workflow's progress as REANA reports it. Job ids are in
// creation order.
type JobCounts struct {
	Total int // jobs recorded
	// Running counts every job ever submitted, not only those running
	// now: REANA never takes a job out of "running", so after a
	// successful run it equals Finished.
	Running     int
	Finished    int
	Failed      int
	RunningIDs  []string
	FinishedIDs []string
	FailedIDs   []string
	// CurrentCommand and CurrentStep are those of the latest job, which
	// REANA keeps showing after the run ended; HasCurrent is false while
	// there is no job.
	CurrentCommand string
	CurrentStep    string
	HasCurrent     bool
}

// jobCountsBatch bounds the ids in one query, well below SQLite's limit
// on bound parameters.
const jobCountsBatch = 500

// JobCounts returns the progress of each of the given workflows, keyed by
// id; every id is present, with zero counts if it has no jobs.
func (db *DB) JobCounts(ctx context.Context, workflowIDs []string) (map[string]JobCounts, error) {
	out := make(map[string]JobCounts, len(workflowIDs))
	for _, id := range workflowIDs {
		out[id] = JobCounts{}
	}
	type row struct {
		wf, id, command, step string
		status                JobStatus
		submitted             bool
		created               string
		seq                   int64
	}
	var all []row
	err := db.read(ctx, func(tx *sql.Tx) error {
		for lo := 0; lo < len(workflowIDs); lo += jobCountsBatch {
			ids := workflowIDs[lo:min(lo+jobCountsBatch, len(workflowIDs))]
			args := make([]any, len(ids))
			for i, id := range ids {
				args[i] = id
			}
			rows, err := tx.QueryContext(ctx, `SELECT workflow_id, id, command, step_name, status,
				status = 'running' OR started_at IS NOT NULL, created_at, rowid
				FROM jobs WHERE workflow_id IN (`+placeholders(len(ids))+`) AND step_index != `+fmt.Sprint(EngineStepIndex), args...)
			got, err := collect(rows, err, func(sc scanner) (row, error) {
				var r row
				err := sc.Scan(&r.wf, &r.id, &r.command, &r.step, &r.status, &r.submitted, &r.created, &r.seq)
				return r, err
			})
			if err != nil {
				return err
			}
			all = append(all, got...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("count jobs: %w", err)
	}
	// The fixed-width time text sorts as time; rowid breaks ties.
	sort.Slice(all, func(i, k int) bool {
		if all[i].created != all[k].created {
			return all[i].created < all[k].created
		}
		return all[i].seq < all[k].seq
	})
	for _, r := range all {
		c := out[r.wf]
		c.Total++
		if r.submitted {
			c.Running++
			c.RunningIDs = append(c.RunningIDs, r.id)
		}
		switch r.status {
		case JobFinished:
			c.Finished++
			c.FinishedIDs = append(c.FinishedIDs, r.id)
		case JobFailed:
			c.Failed++
			c.FailedIDs = append(c.FailedIDs, r.id)
		}
		c.CurrentCommand, c.CurrentStep, c.HasCurrent = r.command, r.step, true
		out[r.wf] = c
	}
	return out, nil
}
