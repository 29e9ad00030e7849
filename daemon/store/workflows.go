package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
)

// WorkflowStatus is REANA's workflow status, spelt as the API shows it.
type WorkflowStatus string

// The workflow statuses. queued, pending and running are the active ones,
// which the engine drives.
const (
	StatusCreated  WorkflowStatus = "created"
	StatusQueued   WorkflowStatus = "queued"
	StatusPending  WorkflowStatus = "pending"
	StatusRunning  WorkflowStatus = "running"
	StatusFinished WorkflowStatus = "finished"
	StatusFailed   WorkflowStatus = "failed"
	StatusStopped  WorkflowStatus = "stopped"
	StatusDeleted  WorkflowStatus = "deleted"
)

// Workflow is one run of a named workflow. Deleted runs keep their row:
// their run numbers must never be given out again.
type Workflow struct {
	ID      string // a UUID, chosen by the caller
	OwnerID string // User.ID
	Name    string
	// RunMajor and RunMinor are REANA's run number; CreateWorkflow
	// assigns them.
	RunMajor, RunMinor int
	// Restart marks a run made by restarting run RunMajor; it shares that
	// run's workspace.
	Restart            bool
	Status             WorkflowStatus
	Spec               json.RawMessage // reana.yaml as JSON
	InputParameters    json.RawMessage
	OperationalOptions json.RawMessage
	WorkspacePath      string
	JobsPath           string
	CreatedAt          time.Time
	StartedAt          *time.Time
	FinishedAt         *time.Time
	StoppedAt          *time.Time
	Logs               string // REANA's workflow_logs
	ProgressTotal      int    // commands in the selected steps, set when the run starts
	StopRequested      bool
	// StatusMessage explains a wait the user cannot otherwise see (e.g. a
	// batch system that is down); empty when there is nothing to say.
	StatusMessage string
	DiskUsage     int64 // bytes, as last measured
	CPUMillis     int64 // wall-clock run time, as REANA counts CPU quota
}

// RunNumber is REANA's run number: "N", or "N.M" for a restart.
func (w Workflow) RunNumber() string {
	if w.RunMinor == 0 {
		return strconv.Itoa(w.RunMajor)
	}
	return strconv.Itoa(w.RunMajor) + "." + strconv.Itoa(w.RunMinor)
}

// FullName is the name the API shows, e.g. "analysis.2" or "analysis.2.1".
func (w Workflow) FullName() string { return w.Name + "." + w.RunNumber() }

const wfCols = `id, owner_id, name, run_major, run_minor, restart, status,
	spec, input_parameters, operational_options, workspace_path, jobs_path,
	created_at, started_at, finished_at, stopped_at, logs, progress_total,
	stop_requested, status_message, disk_usage, cpu_millis`

// wfListCols leaves out the large columns, which listings do not show: a
// user with thousands of runs would otherwise read every specification
// and log to list them.
const wfListCols = `id, owner_id, name, run_major, run_minor, restart, status,
	'', '', '', workspace_path, jobs_path,
	created_at, started_at, finished_at, stopped_at, '', progress_total,
	stop_requested, status_message, disk_usage, cpu_millis`

func scanWorkflow(sc scanner) (Workflow, error) {
	var w Workflow
	err := sc.Scan(&w.ID, &w.OwnerID, &w.Name, &w.RunMajor, &w.RunMinor, &w.Restart, &w.Status,
		rawCol{(*[]byte)(&w.Spec)}, rawCol{(*[]byte)(&w.InputParameters)}, rawCol{(*[]byte)(&w.OperationalOptions)},
		&w.WorkspacePath, &w.JobsPath,
		timeCol{&w.CreatedAt}, nullTimeCol{&w.StartedAt}, nullTimeCol{&w.FinishedAt}, nullTimeCol{&w.StoppedAt},
		&w.Logs, &w.ProgressTotal, &w.StopRequested, &w.StatusMessage, &w.DiskUsage, &w.CPUMillis)
	return w, err
}

// CreateWorkflow stores w under its ID (a new UUID if empty) and assigns
// its run number in the same transaction, so concurrent creations never
// share one. A new run is numbered after every earlier run of its name,
// deleted ones included, as REANA never reuses a number. A restart
// (w.Restart) keeps w.RunMajor and takes the next minor number of that
// run. CreatedAt is set to now.
func (db *DB) CreateWorkflow(ctx context.Context, w *Workflow) error {
	v := *w
	if v.ID == "" {
		v.ID = uuid.NewString()
	}
	if v.Status == "" {
		v.Status = StatusCreated
	}
	v.CreatedAt = now()
	err := db.write(ctx, func(tx *sql.Tx) error {
		if v.Restart {
			var runs, minor int
			err := tx.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(MAX(run_minor), 0) FROM workflows
				WHERE owner_id = ? AND name = ? AND run_major = ?`, v.OwnerID, v.Name, v.RunMajor).Scan(&runs, &minor)
			if err != nil {
				return err
			}
			if runs == 0 {
				return fmt.Errorf("cannot restart %s.%d: it has not been run before: %w", v.Name, v.RunMajor, ErrNotFound)
			}
			v.RunMinor = minor + 1
		} else {
			var major int
			err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(run_major), 0) FROM workflows
				WHERE owner_id = ? AND name = ?`, v.OwnerID, v.Name).Scan(&major)
			if err != nil {
				return err
			}
			v.RunMajor, v.RunMinor = major+1, 0
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO workflows (`+wfCols+`)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			v.ID, v.OwnerID, v.Name, v.RunMajor, v.RunMinor, v.Restart, string(v.Status),
			string(v.Spec), string(v.InputParameters), string(v.OperationalOptions), v.WorkspacePath, v.JobsPath,
			encTime(v.CreatedAt), encTimePtr(v.StartedAt), encTimePtr(v.FinishedAt), encTimePtr(v.StoppedAt),
			v.Logs, v.ProgressTotal, v.StopRequested, v.StatusMessage, v.DiskUsage, v.CPUMillis)
		return err
	})
	if isConflict(err) {
		return fmt.Errorf("create workflow %s: %w", v.ID, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create workflow %s: %w", v.Name, err)
	}
	*w = v
	return nil
}

// GetWorkflow returns the workflow with the given id, whoever owns it.
func (db *DB) GetWorkflow(ctx context.Context, id string) (Workflow, error) {
	return getWorkflow(ctx, db.r, id)
}

func getWorkflow(ctx context.Context, q querier, id string) (Workflow, error) {
	w, err := scanWorkflow(q.QueryRowContext(ctx, `SELECT `+wfCols+` FROM workflows WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return Workflow{}, fmt.Errorf("workflow %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return Workflow{}, fmt.Errorf("read workflow %s: %w", id, err)
	}
	return w, nil
}

// ResolveWorkflow finds the owner's workflow named by s as REANA does: a
// UUID is an id; "name.N" and "name.N.M" are that exact run ("name.3" is
// 3.0, not the latest restart of 3); any other s (including "name." and a
// non-numeric suffix) is a name, meaning its latest run by run number,
// even a deleted one. Other owners' workflows are ErrNotFound.
func (db *DB) ResolveWorkflow(ctx context.Context, ownerID, s string) (Workflow, error) {
	var row *sql.Row
	if id, ok := uuidV4(s); ok {
		row = db.r.QueryRowContext(ctx, `SELECT `+wfCols+` FROM workflows WHERE id = ? AND owner_id = ?`, id, ownerID)
	} else if name, major, minor, ok := splitRun(s); ok {
		row = db.r.QueryRowContext(ctx, `SELECT `+wfCols+` FROM workflows
			WHERE owner_id = ? AND name = ? AND run_major = ? AND run_minor = ?`, ownerID, name, major, minor)
	} else {
		row = db.r.QueryRowContext(ctx, `SELECT `+wfCols+` FROM workflows
			WHERE owner_id = ? AND name = ? ORDER BY run_major DESC, run_minor DESC LIMIT 1`, ownerID, strings.TrimSuffix(s, "."))
	}
	w, err := scanWorkflow(row)
	if errors.Is(err, sql.ErrNoRows) {
		return Workflow{}, fmt.Errorf("workflow %s: %w", s, ErrNotFound)
	}
	if err != nil {
		return Workflow{}, fmt.Errorf("resolve workflow %s: %w", s, err)
	}
	return w, nil
}

// splitRun splits "name.N" and "name.N.M" into the name and run number.
// Names cannot hold ".", so the name ends at the first one.
func splitRun(s string) (name string, major, minor int, ok bool) {
	name, run, found := strings.Cut(s, ".")
	if !found || run == "" {
		return "", 0, 0, false
	}
	ma, mi, hasMinor := strings.Cut(run, ".")
	major, err := strconv.Atoi(ma)
	if err != nil {
		return "", 0, 0, false
	}
	if hasMinor {
		if minor, err = strconv.Atoi(mi); err != nil {
			return "", 0, 0, false
		}
	}
	return name, major, minor, true
}

// uuidV4 mirrors REANA's is_uuid_v4 (see spec.ValidateWorkflowName):
// hyphens anywhere, 32 lower-case hex digits, version 4 and the RFC 4122
// variant. It returns the id in its stored, canonical form.
func uuidV4(s string) (string, bool) {
	h := strings.ReplaceAll(s, "-", "")
	if len(h) != 32 {
		return "", false
	}
	for i := 0; i < len(h); i++ {
		if c := h[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return "", false
		}
	}
	if h[12] != '4' || !strings.ContainsRune("89ab", rune(h[16])) {
		return "", false
	}
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], true
}

// SortKey is what a listing is ordered by besides creation time.
type SortKey string

// The orders of a listing besides creation time.
const (
	SortDisk     SortKey = "disk"
	SortDuration SortKey = "duration"
)

// ListQuery selects one owner's workflows for a listing.
type ListQuery struct {
	OwnerID string
	// Statuses keeps only these statuses. Empty means all but deleted.
	Statuses []WorkflowStatus
	// Search keeps names containing it, ignoring ASCII case.
	Search string
	// NameOrID keeps the workflow with this id, the runs with this name,
	// or the run with this full name ("name.N" or "name.N.M").
	NameOrID string
	// SortAsc lists oldest first; the default is newest first.
	SortAsc bool
	// SortBy, when set, orders by disk use or by duration instead,
	// largest first (SortAsc: smallest first); ties go newest first.
	SortBy SortKey
	// Offset and Limit select a page; Limit 0 means no limit.
	Offset, Limit int
}

// ListWorkflows returns a page of workflows and how many match in all.
// To keep listings cheap, Spec, InputParameters, OperationalOptions and
// Logs are left empty: use GetWorkflow for those.
func (db *DB) ListWorkflows(ctx context.Context, q ListQuery) ([]Workflow, int, error) {
	where := []string{"owner_id = ?"}
	args := []any{q.OwnerID}
	if len(q.Statuses) > 0 {
		where = append(where, "status IN ("+placeholders(len(q.Statuses))+")")
		for _, s := range q.Statuses {
			args = append(args, string(s))
		}
	} else {
		where = append(where, "status != ?")
		args = append(args, string(StatusDeleted))
	}
	if q.Search != "" {
		where = append(where, `name LIKE ? ESCAPE '\'`)
		args = append(args, "%"+escapeLike(q.Search)+"%")
	}
	if q.NameOrID != "" {
		cond := "(id = ? OR name = ?"
		args = append(args, strings.ToLower(q.NameOrID), q.NameOrID)
		if name, major, minor, ok := splitRun(q.NameOrID); ok {
			cond += " OR (name = ? AND run_major = ? AND run_minor = ?)"
			args = append(args, name, major, minor)
		}
		where = append(where, cond+")")
	}
	cond := strings.Join(where, " AND ")
	order := "DESC"
	if q.SortAsc {
		order = "ASC"
	}
	orderBy := `created_at ` + order + `, rowid ` + order
	switch q.SortBy {
	case SortDisk:
		orderBy = `disk_usage ` + order + `, created_at DESC, rowid DESC`
	case SortDuration:
		// A run that never started has no duration: it sorts as 0. One
		// still going has lasted until now.
		orderBy = `COALESCE(julianday(COALESCE(finished_at, stopped_at, ?)) - julianday(started_at), 0) ` + order + `, created_at DESC, rowid DESC`
	}
	limit := -1 // SQLite: no limit
	if q.Limit > 0 {
		limit = q.Limit
	}
	var (
		wfs   []Workflow
		total int
	)
	err := db.read(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM workflows WHERE `+cond, args...).Scan(&total); err != nil {
			return err
		}
		// rowid breaks ties between runs created in the same instant.
		page := append([]any{}, args...)
		if q.SortBy == SortDuration {
			page = append(page, encTime(now()))
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+wfListCols+` FROM workflows WHERE `+cond+
			` ORDER BY `+orderBy+` LIMIT ? OFFSET ?`,
			append(page, limit, max(q.Offset, 0))...)
		wfs, err = collect(rows, err, scanWorkflow)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("list workflows: %w", err)
	}
	return wfs, total, nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

func escapeLike(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

// UpdateWorkflow reads the workflow, lets fn change it and writes it back,
// all in one transaction, so no other change is lost in between. fn must
// not use the store. If fn returns an error nothing is written, and the
// workflow as it was is returned with that error, unwrapped. ID, OwnerID,
// Name, run number, Restart and CreatedAt cannot be changed.
func (db *DB) UpdateWorkflow(ctx context.Context, id string, fn func(*Workflow) error) (Workflow, error) {
	var before, after Workflow
	var fnErr error
	err := db.write(ctx, func(tx *sql.Tx) error {
		var err error
		before, err = getWorkflow(ctx, tx, id)
		if err != nil {
			return err
		}
		after = before
		// fn gets its own copies of the JSON so that a failed update
		// leaves before as it was read.
		after.Spec = clone(before.Spec)
		after.InputParameters = clone(before.InputParameters)
		after.OperationalOptions = clone(before.OperationalOptions)
		if fnErr = fn(&after); fnErr != nil {
			return fnErr
		}
		_, err = tx.ExecContext(ctx, `UPDATE workflows SET status = ?, spec = ?, input_parameters = ?,
			operational_options = ?, workspace_path = ?, jobs_path = ?, started_at = ?, finished_at = ?,
			stopped_at = ?, logs = ?, progress_total = ?, stop_requested = ?, status_message = ?,
			disk_usage = ?, cpu_millis = ? WHERE id = ?`,
			string(after.Status), string(after.Spec), string(after.InputParameters),
			string(after.OperationalOptions), after.WorkspacePath, after.JobsPath, encTimePtr(after.StartedAt),
			encTimePtr(after.FinishedAt), encTimePtr(after.StoppedAt), after.Logs, after.ProgressTotal,
			after.StopRequested, after.StatusMessage, after.DiskUsage, after.CPUMillis, id)
		if err != nil {
			return fmt.Errorf("update workflow %s: %w", id, err)
		}
		// Return what is stored (UTC times, the fields fn may not change),
		// not what fn set.
		after, err = getWorkflow(ctx, tx, id)
		return err
	})
	if fnErr != nil {
		return before, fnErr
	}
	if err != nil {
		return Workflow{}, err
	}
	return after, nil
}

func clone(b json.RawMessage) json.RawMessage {
	if b == nil {
		return nil
	}
	return append(json.RawMessage(nil), b...)
}

// ActiveWorkflows returns every queued, pending and running workflow of
// all owners, oldest first.
func (db *DB) ActiveWorkflows(ctx context.Context) ([]Workflow, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+wfCols+` FROM workflows WHERE status IN (?, ?, ?)
		ORDER BY created_at, rowid`, string(StatusQueued), string(StatusPending), string(StatusRunning))
	wfs, err := collect(rows, err, scanWorkflow)
	if err != nil {
		return nil, fmt.Errorf("list active workflows: %w", err)
	}
	return wfs, nil
}

// WorkflowsByName returns every run of the owner's workflow name, deleted
// ones included, by run number.
func (db *DB) WorkflowsByName(ctx context.Context, ownerID, name string) ([]Workflow, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+wfCols+` FROM workflows WHERE owner_id = ? AND name = ?
		ORDER BY run_major, run_minor`, ownerID, name)
	wfs, err := collect(rows, err, scanWorkflow)
	if err != nil {
		return nil, fmt.Errorf("list runs of workflow %s: %w", name, err)
	}
	return wfs, nil
}

// UserDiskUsage is the owner's disk usage in bytes, as REANA counts it:
// restarts share a workspace, so each workspace counts once, at the
// largest size any of its runs measured. Deleted runs count nothing.
func (db *DB) UserDiskUsage(ctx context.Context, ownerID string) (int64, error) {
	var n int64
	err := db.r.QueryRowContext(ctx, `SELECT COALESCE(SUM(used), 0) FROM (
		SELECT MAX(disk_usage) AS used FROM workflows WHERE owner_id = ? AND status != ?
		GROUP BY workspace_path)`, ownerID, string(StatusDeleted)).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("sum disk usage of user %s: %w", ownerID, err)
	}
	return n, nil
}

// UserCPUMillis is the owner's CPU quota usage: the run time of all their
// workflows, deleted ones included, in milliseconds.
func (db *DB) UserCPUMillis(ctx context.Context, ownerID string) (int64, error) {
	var n int64
	err := db.r.QueryRowContext(ctx, `SELECT COALESCE(SUM(cpu_millis), 0) FROM workflows WHERE owner_id = ?`, ownerID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("sum CPU usage of user %s: %w", ownerID, err)
	}
	return n, nil
}

// LiveWorkspaces returns the workspaces of every run not deleted, by
// owner, each once (restarts share theirs).
func (db *DB) LiveWorkspaces(ctx context.Context) (map[string][]string, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT DISTINCT owner_id, workspace_path FROM workflows
		WHERE status != ? ORDER BY owner_id, workspace_path`, string(StatusDeleted))
	if err != nil {
		return nil, fmt.Errorf("list live workspaces: %w", err)
	}
	defer rows.Close()
	out := map[string][]string{}
	for rows.Next() {
		var owner, ws string
		if err := rows.Scan(&owner, &ws); err != nil {
			return nil, fmt.Errorf("list live workspaces: %w", err)
		}
		out[owner] = append(out[owner], ws)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list live workspaces: %w", err)
	}
	return out, nil
}
