package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func openTest(t *testing.T) *DB {
	t.Helper()
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "reana-site.db"))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

func dbPath(t *testing.T, db *DB) string {
	t.Helper()
	var seq int
	var name, file string
	require.NoError(t, db.r.QueryRow(`PRAGMA database_list`).Scan(&seq, &name, &file))
	return file
}

func addUser(t *testing.T, db *DB, name string) User {
	t.Helper()
	u, err := db.CreateUser(context.Background(), User{Name: name, UID: 1000, Email: name + "@example.org"})
	require.NoError(t, err)
	return u
}

func addWorkflow(t *testing.T, db *DB, owner User, name string) Workflow {
	t.Helper()
	w := Workflow{OwnerID: owner.ID, Name: name, Spec: json.RawMessage(`{"version":"0.9.0"}`), WorkspacePath: "/ws/" + name}
	require.NoError(t, db.CreateWorkflow(context.Background(), &w))
	return w
}

func restart(t *testing.T, db *DB, of Workflow) Workflow {
	t.Helper()
	w := of
	w.ID = ""
	w.Restart = true
	w.Status = StatusCreated
	require.NoError(t, db.CreateWorkflow(context.Background(), &w))
	return w
}

func setStatus(t *testing.T, db *DB, id string, s WorkflowStatus) {
	t.Helper()
	_, err := db.UpdateWorkflow(context.Background(), id, func(w *Workflow) error { w.Status = s; return nil })
	require.NoError(t, err)
}

func TestOpen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state", "reana-site.db")
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o700))

	db, err := Open(ctx, path)
	require.NoError(t, err)
	u := addUser(t, db, "alice")
	require.NoError(t, db.Close())

	for _, f := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(f)
		if errors.Is(err, os.ErrNotExist) && f != path {
			continue // checkpointed away on close
		}
		require.NoError(t, err)
		assert.Zero(t, fi.Mode().Perm()&0o077, "%s is mode %v", f, fi.Mode().Perm())
	}

	// Opening again applies nothing twice and keeps the data.
	db, err = Open(ctx, path)
	require.NoError(t, err)
	got, err := db.UserByName(ctx, "alice")
	require.NoError(t, err)
	assert.Equal(t, u.ID, got.ID)
	var n int
	require.NoError(t, db.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n))
	assert.Equal(t, len(migrations), n)
	var mode string
	require.NoError(t, db.r.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode))
	assert.Equal(t, "wal", mode)
	require.NoError(t, db.Ping(ctx))

	// A schema from a newer release is refused, not half-used.
	_, err = db.w.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (999, '')`)
	require.NoError(t, err)
	require.NoError(t, db.Close())
	_, err = Open(ctx, path)
	require.ErrorContains(t, err, "newer")
}

func TestOpenConcurrently(t *testing.T) {
	// The daemon and an admin command may migrate a new file at once.
	path := filepath.Join(t.TempDir(), "reana-site.db")
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			db, err := Open(context.Background(), path)
			if err == nil {
				err = db.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	for _, err := range errs {
		require.NoError(t, err)
	}
}

func TestUsers(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	alice := addUser(t, db, "alice")
	addUser(t, db, "bob")

	_, err := db.CreateUser(ctx, User{Name: "alice", UID: 1001})
	require.ErrorIs(t, err, ErrExists)

	got, err := db.UserByID(ctx, alice.ID)
	require.NoError(t, err)
	assert.Equal(t, alice, got)
	assert.Equal(t, uint32(1000), got.UID)
	_, err = db.UserByName(ctx, "carol")
	require.ErrorIs(t, err, ErrNotFound)
	_, err = db.UserByID(ctx, "nope")
	require.ErrorIs(t, err, ErrNotFound)

	require.ErrorIs(t, db.RemoveUser(ctx, "carol"), ErrNotFound)
	require.NoError(t, db.RemoveUser(ctx, "bob"))
	require.NoError(t, db.RemoveUser(ctx, "bob"), "removing twice is harmless")
	users, err := db.ListUsers(ctx)
	require.NoError(t, err)
	require.Len(t, users, 2)
	assert.Equal(t, "alice", users[0].Name)
	assert.Nil(t, users[0].RemovedAt)
	assert.Equal(t, "bob", users[1].Name)
	assert.NotNil(t, users[1].RemovedAt)
}

func TestTokens(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	alice := addUser(t, db, "alice")
	bob := addUser(t, db, "bob")
	carol := addUser(t, db, "carol")

	issue := func(u User, secret string) {
		_, err := db.IssueToken(ctx, u.ID, []byte(secret), secret[len(secret)-2:], TokenAdd)
		require.NoError(t, err)
	}
	issue(alice, "alice-1")
	issue(alice, "alice-2")
	issue(bob, "bob-1")
	issue(carol, "carol-1")
	_, err := db.IssueToken(ctx, alice.ID, []byte("alice-1"), "-1", TokenAdd)
	require.ErrorIs(t, err, ErrExists)

	n, err := db.RevokeTokens(ctx, bob.ID)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	n, err = db.RevokeTokens(ctx, bob.ID)
	require.NoError(t, err)
	assert.Equal(t, 0, n, "only still-valid tokens count")
	require.NoError(t, db.RemoveUser(ctx, "carol"))

	tests := []struct {
		hash string
		user string
		err  error
	}{
		{"alice-1", "alice", nil},
		{"alice-2", "alice", nil},
		{"unknown", "", ErrNotFound},
		{"bob-1", "", ErrRevoked},
		{"carol-1", "", ErrNotFound}, // a removed user is no user
	}
	for _, tt := range tests {
		t.Run(tt.hash, func(t *testing.T) {
			u, tok, err := db.UserByTokenHash(ctx, []byte(tt.hash))
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.user, u.Name)
			assert.Equal(t, u.ID, tok.UserID)
			assert.Equal(t, tt.hash[len(tt.hash)-2:], tok.Hint)
		})
	}

	toks, err := db.ListTokens(ctx, carol.ID)
	require.NoError(t, err)
	require.Len(t, toks, 1)
	assert.NotNil(t, toks[0].RevokedAt, "removing a user revokes their tokens")
}

func TestRunNumbers(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	alice := addUser(t, db, "alice")
	bob := addUser(t, db, "bob")

	a1 := addWorkflow(t, db, alice, "a")
	a2 := addWorkflow(t, db, alice, "a")
	setStatus(t, db, a2.ID, StatusDeleted)
	a3 := addWorkflow(t, db, alice, "a") // numbers are never reused
	a11 := restart(t, db, a1)
	a12 := restart(t, db, a11) // restarting a restart stays under its major
	b1 := addWorkflow(t, db, bob, "a")
	other := addWorkflow(t, db, alice, "other")

	tests := []struct {
		got  Workflow
		want string
	}{
		{a1, "a.1"},
		{a2, "a.2"},
		{a3, "a.3"},
		{a11, "a.1.1"},
		{a12, "a.1.2"},
		{b1, "a.1"},
		{other, "other.1"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.got.FullName())
		stored, err := db.GetWorkflow(ctx, tt.got.ID)
		require.NoError(t, err)
		assert.Equal(t, tt.want, stored.FullName())
	}
	assert.Equal(t, "1.2", a12.RunNumber())
	assert.True(t, a12.Restart)
	assert.Equal(t, a1.WorkspacePath, a12.WorkspacePath)

	never := Workflow{OwnerID: alice.ID, Name: "never", RunMajor: 1, Restart: true}
	require.ErrorIs(t, db.CreateWorkflow(ctx, &never), ErrNotFound)

	dup := Workflow{ID: a1.ID, OwnerID: alice.ID, Name: "fresh"}
	require.ErrorIs(t, db.CreateWorkflow(ctx, &dup), ErrExists)
	assert.Zero(t, dup.RunMajor, "a failed create leaves its argument alone")
}

func TestCreateWorkflowConcurrently(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	// A second handle stands for another process (reana-site admin):
	// its writes must wait for the first's, not fail or interleave.
	other, err := Open(ctx, filepath.Join(filepath.Dir(dbPath(t, db)), "reana-site.db"))
	require.NoError(t, err)
	t.Cleanup(func() { other.Close() })
	alice := addUser(t, db, "alice")
	first := addWorkflow(t, db, alice, "a")

	const goroutines, each = 8, 5
	var mu sync.Mutex
	seen := map[string]bool{}
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				w := Workflow{OwnerID: alice.ID, Name: "a"}
				if (g+i)%2 == 1 {
					w = first
					w.ID, w.Restart = "", true
				}
				h := db
				if g%2 == 1 {
					h = other
				}
				if !assert.NoError(t, h.CreateWorkflow(ctx, &w)) {
					return
				}
				mu.Lock()
				assert.False(t, seen[w.FullName()], "%s given twice", w.FullName())
				seen[w.FullName()] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	runs, err := db.WorkflowsByName(ctx, alice.ID, "a")
	require.NoError(t, err)
	assert.Len(t, runs, goroutines*each+1)
	assert.Len(t, seen, goroutines*each)
	var majors, minors int
	for _, w := range runs {
		if w.Restart {
			minors = max(minors, w.RunMinor)
		} else {
			majors = max(majors, w.RunMajor)
		}
	}
	assert.Equal(t, goroutines*each/2+1, majors, "majors are dense")
	assert.Equal(t, goroutines*each/2, minors, "minors are dense")
}

func TestResolveWorkflow(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	alice := addUser(t, db, "alice")
	bob := addUser(t, db, "bob")

	a1 := addWorkflow(t, db, alice, "a")
	a11 := restart(t, db, a1)
	a2 := addWorkflow(t, db, alice, "a")
	d1 := addWorkflow(t, db, alice, "d")
	d2 := addWorkflow(t, db, alice, "d")
	setStatus(t, db, d2.ID, StatusDeleted)
	r1 := addWorkflow(t, db, alice, "r")
	r11 := restart(t, db, r1)
	b1 := addWorkflow(t, db, bob, "b")
	dotted := addWorkflow(t, db, alice, "x.y") // not creatable by the API, but resolvable as REANA does

	tests := []struct {
		name string
		in   string
		want string // workflow id; "" means ErrNotFound
	}{
		{"id", a11.ID, a11.ID},
		{"upper-case id is a name, as in REANA", strings.ToUpper(a11.ID), ""},
		{"id without hyphens", strings.ReplaceAll(a1.ID, "-", ""), a1.ID},
		{"name is the latest run", "a", a2.ID},
		{"name with empty suffix", "a.", a2.ID},
		{"name.N", "a.1", a1.ID},
		{"name.N.0", "a.1.0", a1.ID},
		{"name.N.M", "a.1.1", a11.ID},
		{"name.N is not its latest restart", "r.1", r1.ID},
		{"latest run is a restart", "r", r11.ID},
		{"deleted latest run is still the latest", "d", d2.ID},
		{"deleted run by number", "d.1", d1.ID},
		{"non-numeric suffix is part of the name", "x.y", dotted.ID},
		{"unknown run", "a.9", ""},
		{"unknown name", "zzz", ""},
		{"other owner's id", b1.ID, ""},
		{"other owner's name", "b", ""},
		{"other owner's run", "b.1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := db.ResolveWorkflow(ctx, alice.ID, tt.in)
			if tt.want == "" {
				require.ErrorIs(t, err, ErrNotFound)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got.ID)
		})
	}
}

func TestUpdateWorkflow(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	alice := addUser(t, db, "alice")
	w := addWorkflow(t, db, alice, "a")

	t.Run("fn error writes nothing", func(t *testing.T) {
		errNo := errors.New("no")
		got, err := db.UpdateWorkflow(ctx, w.ID, func(x *Workflow) error {
			x.Status = StatusQueued
			x.Spec[0] = 'X'
			return errNo
		})
		require.ErrorIs(t, err, errNo)
		assert.Equal(t, StatusCreated, got.Status, "the workflow as it was is returned")
		stored, err := db.GetWorkflow(ctx, w.ID)
		require.NoError(t, err)
		assert.Equal(t, StatusCreated, stored.Status)
		assert.JSONEq(t, `{"version":"0.9.0"}`, string(stored.Spec))
	})

	t.Run("every field round-trips", func(t *testing.T) {
		started := time.Date(2026, 3, 4, 5, 6, 7, 123456789, time.FixedZone("CET", 3600))
		got, err := db.UpdateWorkflow(ctx, w.ID, func(x *Workflow) error {
			x.Status = StatusRunning
			x.InputParameters = json.RawMessage(`{"n":1}`)
			x.OperationalOptions = json.RawMessage(`{"TARGET":"s"}`)
			x.StartedAt = &started
			x.Logs = "log\n"
			x.ProgressTotal = 3
			x.StopRequested = true
			x.StatusMessage = "waiting"
			x.DiskUsage = 42
			x.CPUMillis = 7
			x.Name, x.RunMajor, x.OwnerID = "renamed", 99, "someone" // kept
			return nil
		})
		require.NoError(t, err)
		stored, err := db.GetWorkflow(ctx, w.ID)
		require.NoError(t, err)
		assert.Equal(t, got, stored)
		assert.Equal(t, "a.1", stored.FullName())
		assert.Equal(t, alice.ID, stored.OwnerID)
		assert.True(t, started.Equal(*stored.StartedAt), "nanoseconds are kept")
		assert.Equal(t, time.UTC, stored.StartedAt.Location())
		assert.Equal(t, w.CreatedAt, stored.CreatedAt)
		assert.Nil(t, stored.FinishedAt)
		assert.Equal(t, "log\n", stored.Logs)
		assert.True(t, stored.StopRequested)
		assert.JSONEq(t, `{"n":1}`, string(stored.InputParameters))
	})

	t.Run("concurrent updates lose nothing", func(t *testing.T) {
		var wg sync.WaitGroup
		for range 20 {
			wg.Go(func() {
				_, err := db.UpdateWorkflow(ctx, w.ID, func(x *Workflow) error { x.DiskUsage++; return nil })
				assert.NoError(t, err)
			})
		}
		wg.Wait()
		stored, err := db.GetWorkflow(ctx, w.ID)
		require.NoError(t, err)
		assert.Equal(t, int64(42+20), stored.DiskUsage)
	})

	t.Run("unknown workflow", func(t *testing.T) {
		_, err := db.UpdateWorkflow(ctx, "nope", func(*Workflow) error { return nil })
		require.ErrorIs(t, err, ErrNotFound)
	})
}

func TestListWorkflows(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	alice := addUser(t, db, "alice")
	bob := addUser(t, db, "bob")

	// Created in this order: analysis.1, analysis.2 (deleted), fit.1,
	// analysis.1.1 (finished), Analysis_x.1.
	an1 := addWorkflow(t, db, alice, "analysis")
	an2 := addWorkflow(t, db, alice, "analysis")
	setStatus(t, db, an2.ID, StatusDeleted)
	addWorkflow(t, db, alice, "fit")
	an11 := restart(t, db, an1)
	setStatus(t, db, an11.ID, StatusFinished)
	addWorkflow(t, db, alice, "Analysis_x")
	addWorkflow(t, db, bob, "analysis")

	tests := []struct {
		name  string
		q     ListQuery
		want  []string
		total int
	}{
		{"newest first, deleted hidden", ListQuery{}, []string{"Analysis_x.1", "analysis.1.1", "fit.1", "analysis.1"}, 4},
		{"oldest first", ListQuery{SortAsc: true}, []string{"analysis.1", "fit.1", "analysis.1.1", "Analysis_x.1"}, 4},
		{"page", ListQuery{Offset: 1, Limit: 2}, []string{"analysis.1.1", "fit.1"}, 4},
		{"page past the end", ListQuery{Offset: 10, Limit: 2}, nil, 4},
		{"status filter", ListQuery{Statuses: []WorkflowStatus{StatusFinished, StatusCreated}, Limit: 1}, []string{"Analysis_x.1"}, 4},
		{"deleted on request", ListQuery{Statuses: []WorkflowStatus{StatusDeleted}}, []string{"analysis.2"}, 1},
		{"search ignores case", ListQuery{Search: "ANALYSIS"}, []string{"Analysis_x.1", "analysis.1.1", "analysis.1"}, 3},
		{"search is literal", ListQuery{Search: "s_x"}, []string{"Analysis_x.1"}, 1},
		{"search _ is literal", ListQuery{Search: "i_"}, nil, 0},
		{"search % is literal", ListQuery{Search: "%"}, nil, 0},
		{"by name", ListQuery{NameOrID: "analysis"}, []string{"analysis.1.1", "analysis.1"}, 2},
		{"by full name", ListQuery{NameOrID: "analysis.1.1"}, []string{"analysis.1.1"}, 1},
		{"by id", ListQuery{NameOrID: an1.ID}, []string{"analysis.1"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.q.OwnerID = alice.ID
			wfs, total, err := db.ListWorkflows(ctx, tt.q)
			require.NoError(t, err)
			var names []string
			for _, w := range wfs {
				names = append(names, w.FullName())
				assert.Nil(t, w.Spec, "listings leave the specification out")
			}
			assert.Equal(t, tt.want, names)
			assert.Equal(t, tt.total, total)
		})
	}
}

func TestListWorkflowsMany(t *testing.T) {
	if testing.Short() {
		t.Skip("inserts 10,000 workflows")
	}
	ctx := context.Background()
	db := openTest(t)
	alice := addUser(t, db, "alice")
	bob := addUser(t, db, "bob")
	// One transaction: 10,000 CreateWorkflow calls would test fsync.
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	err := db.write(ctx, func(tx *sql.Tx) error {
		for i := range 10000 {
			owner := alice.ID
			if i%10 == 0 {
				owner = bob.ID
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO workflows (id, owner_id, name, run_major, run_minor, status, spec, logs, created_at)
				VALUES (?, ?, 'w', ?, 0, 'finished', ?, ?, ?)`, fmt.Sprintf("id-%05d", i), owner, i+1,
				strings.Repeat("s", 4096), strings.Repeat("l", 4096), encTime(base.Add(time.Duration(i)*time.Second)))
			if err != nil {
				return err
			}
		}
		return nil
	})
	require.NoError(t, err)

	start := time.Now()
	wfs, total, err := db.ListWorkflows(ctx, ListQuery{OwnerID: alice.ID, Limit: 20})
	elapsed := time.Since(start)
	require.NoError(t, err)
	assert.Equal(t, 9000, total)
	require.Len(t, wfs, 20)
	assert.Equal(t, "id-09999", wfs[0].ID)
	assert.Less(t, elapsed, time.Second)

	var plan []string
	rows, err := db.r.QueryContext(ctx, `EXPLAIN QUERY PLAN SELECT id FROM workflows WHERE owner_id = ? AND status != ?
		ORDER BY created_at DESC, rowid DESC LIMIT 20`, alice.ID, "deleted")
	require.NoError(t, err)
	defer rows.Close()
	for rows.Next() {
		var id, parent, notused int
		var detail string
		require.NoError(t, rows.Scan(&id, &parent, &notused, &detail))
		plan = append(plan, detail)
	}
	assert.Contains(t, strings.Join(plan, "\n"), "workflows_owner_created")
	assert.NotContains(t, strings.Join(plan, "\n"), "TEMP B-TREE", "the index gives the order")
}

func TestJobs(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	alice := addUser(t, db, "alice")
	w := addWorkflow(t, db, alice, "a")

	mk := func(step, cmd, attempt int) Job {
		j := Job{WorkflowID: w.ID, StepIndex: step, CommandIndex: cmd, Attempt: attempt, StepName: fmt.Sprint("s", step),
			Command: fmt.Sprint("echo ", step, cmd), Backend: "local", Status: JobCreated}
		require.NoError(t, db.CreateJob(ctx, &j))
		require.NotEmpty(t, j.ID)
		return j
	}
	j10 := mk(1, 0, 0)
	j00 := mk(0, 0, 0)
	j01 := mk(0, 1, 0)
	j01b := mk(0, 1, 1)

	dup := Job{WorkflowID: w.ID, StepIndex: 0, CommandIndex: 1, Attempt: 1, Status: JobCreated}
	require.ErrorIs(t, db.CreateJob(ctx, &dup), ErrExists)

	jobs, err := db.JobsForWorkflow(ctx, w.ID)
	require.NoError(t, err)
	var ids []string
	for _, j := range jobs {
		ids = append(ids, j.ID)
	}
	assert.Equal(t, []string{j00.ID, j01.ID, j01b.ID, j10.ID}, ids, "in running order")

	code := 3
	started := time.Now()
	got, err := db.UpdateJob(ctx, j00.ID, func(x *Job) error {
		x.Status = JobFailed
		x.Handle = []byte(`{"id":"123"}`)
		x.BackendJobID = "123"
		x.ExitCode = &code
		x.Reason = "exit 3"
		x.Logs = "out\n"
		x.StartedAt = &started
		x.StepIndex = 9 // kept
		return nil
	})
	require.NoError(t, err)
	stored, err := db.GetJob(ctx, j00.ID)
	require.NoError(t, err)
	assert.Equal(t, got, stored)
	require.NotNil(t, stored.ExitCode)
	assert.Equal(t, 3, *stored.ExitCode)
	assert.JSONEq(t, `{"id":"123"}`, string(stored.Handle))
	assert.Equal(t, 0, stored.StepIndex)
	assert.Nil(t, j01.Handle)

	errNo := errors.New("no")
	_, err = db.UpdateJob(ctx, j01.ID, func(x *Job) error { x.Status = JobRunning; return errNo })
	require.ErrorIs(t, err, errNo)
	_, err = db.GetJob(ctx, "nope")
	require.ErrorIs(t, err, ErrNotFound)

	active, err := db.ActiveJobs(ctx)
	require.NoError(t, err)
	assert.Len(t, active, 3)

	states, err := db.JobStates(ctx, w.ID)
	require.NoError(t, err)
	require.Len(t, states, 4)
	assert.Equal(t, j00.ID, states[0].ID)
	assert.Equal(t, JobFailed, states[0].Status)
	assert.Equal(t, "123", states[0].BackendJobID)
	assert.Empty(t, states[0].Logs, "the engine's view leaves the output out")
}

func TestJobCounts(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	alice := addUser(t, db, "alice")
	done := addWorkflow(t, db, alice, "done")
	busy := addWorkflow(t, db, alice, "busy")
	idle := addWorkflow(t, db, alice, "idle")

	run := func(w Workflow, step int, status JobStatus, submitted bool) string {
		j := Job{WorkflowID: w.ID, StepIndex: step, StepName: fmt.Sprint("step", step), Command: fmt.Sprint("cmd", step), Status: JobCreated}
		require.NoError(t, db.CreateJob(ctx, &j))
		_, err := db.UpdateJob(ctx, j.ID, func(x *Job) error {
			x.Status = status
			if submitted {
				ts := time.Now()
				x.StartedAt = &ts
			}
			return nil
		})
		require.NoError(t, err)
		return j.ID
	}
	d0 := run(done, 0, JobFinished, true)
	d1 := run(done, 1, JobFinished, true)
	b0 := run(busy, 0, JobFinished, true)
	b1 := run(busy, 1, JobRunning, true)
	b2 := run(busy, 2, JobFailed, false) // failed before it was submitted

	counts, err := db.JobCounts(ctx, []string{done.ID, busy.ID, idle.ID})
	require.NoError(t, err)
	require.Len(t, counts, 3)
	tests := []struct {
		name string
		got  JobCounts
		want JobCounts
	}{
		{"finished run: running is cumulative", counts[done.ID], JobCounts{
			Total: 2, Running: 2, Finished: 2, RunningIDs: []string{d0, d1}, FinishedIDs: []string{d0, d1},
			CurrentCommand: "cmd1", CurrentStep: "step1", HasCurrent: true}},
		{"busy run", counts[busy.ID], JobCounts{
			Total: 3, Running: 2, Finished: 1, Failed: 1,
			RunningIDs: []string{b0, b1}, FinishedIDs: []string{b0}, FailedIDs: []string{b2},
			CurrentCommand: "cmd2", CurrentStep: "step2", HasCurrent: true}},
		{"no jobs", counts[idle.ID], JobCounts{}},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, tt.got, tt.name)
	}

	none, err := db.JobCounts(ctx, nil)
	require.NoError(t, err)
	assert.Empty(t, none)
}

func TestActiveWorkflows(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	alice := addUser(t, db, "alice")
	var want []string
	for _, s := range []WorkflowStatus{StatusCreated, StatusQueued, StatusPending, StatusRunning, StatusFinished, StatusFailed, StatusStopped, StatusDeleted} {
		w := addWorkflow(t, db, alice, string(s))
		setStatus(t, db, w.ID, s)
		if s == StatusQueued || s == StatusPending || s == StatusRunning {
			want = append(want, w.ID)
		}
	}
	wfs, err := db.ActiveWorkflows(ctx)
	require.NoError(t, err)
	var got []string
	for _, w := range wfs {
		got = append(got, w.ID)
		assert.NotEmpty(t, w.Spec, "the engine plans from the specification")
	}
	assert.Equal(t, want, got)
}

func TestUsage(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	alice := addUser(t, db, "alice")
	bob := addUser(t, db, "bob")
	set := func(w Workflow, disk, cpu int64, s WorkflowStatus) {
		_, err := db.UpdateWorkflow(ctx, w.ID, func(x *Workflow) error {
			x.DiskUsage, x.CPUMillis, x.Status = disk, cpu, s
			return nil
		})
		require.NoError(t, err)
	}
	a1 := addWorkflow(t, db, alice, "a")
	a11 := restart(t, db, a1) // shares a1's workspace
	b1 := addWorkflow(t, db, alice, "b")
	c1 := addWorkflow(t, db, alice, "c")
	set(a1, 100, 1000, StatusFinished)
	set(a11, 150, 2000, StatusFinished)
	set(b1, 10, 30, StatusFailed)
	set(c1, 5000, 4, StatusDeleted)
	set(addWorkflow(t, db, bob, "a"), 7, 7, StatusFinished)

	disk, err := db.UserDiskUsage(ctx, alice.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(150+10), disk, "a shared workspace counts once, deleted runs not at all")
	cpu, err := db.UserCPUMillis(ctx, alice.ID)
	require.NoError(t, err)
	assert.Equal(t, int64(1000+2000+30+4), cpu)
	disk, err = db.UserDiskUsage(ctx, "nobody")
	require.NoError(t, err)
	assert.Zero(t, disk)
}

func TestRetentionRules(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	alice := addUser(t, db, "alice")
	w := addWorkflow(t, db, alice, "a")
	other := addWorkflow(t, db, alice, "b")

	require.NoError(t, db.CreateRetentionRules(ctx, w.ID, []RetentionRule{
		{Pattern: "*.root", Days: 1, Status: "created"},
		{Pattern: "tmp/**", Days: 5, Status: "created"},
	}))
	require.NoError(t, db.CreateRetentionRules(ctx, other.ID, []RetentionRule{{Pattern: "x", Days: 2, Status: "created"}}))

	at := time.Date(2026, 5, 6, 23, 59, 59, 0, time.UTC)
	require.NoError(t, db.UpdateRetentionRules(ctx, w.ID, func(rules []RetentionRule) []RetentionRule {
		require.Len(t, rules, 2)
		rules[0].Status, rules[0].ApplyOn = "active", &at
		// Drop the second, add a third.
		return []RetentionRule{rules[0], {Pattern: "new", Days: 3, Status: "created"}}
	}))

	rules, err := db.RetentionRules(ctx, w.ID)
	require.NoError(t, err)
	require.Len(t, rules, 2)
	assert.Equal(t, "*.root", rules[0].Pattern)
	assert.Equal(t, "active", rules[0].Status)
	require.NotNil(t, rules[0].ApplyOn)
	assert.True(t, at.Equal(*rules[0].ApplyOn))
	assert.Equal(t, "new", rules[1].Pattern)
	assert.Equal(t, w.ID, rules[1].WorkflowID)
	assert.Nil(t, rules[1].ApplyOn)

	rules, err = db.RetentionRules(ctx, other.ID)
	require.NoError(t, err)
	require.Len(t, rules, 1)
	assert.Equal(t, "created", rules[0].Status, "other workflows' rules are untouched")
}

func TestRunNumber(t *testing.T) {
	tests := []struct {
		major, minor int
		want         string
	}{
		{1, 0, "1"},
		{12, 0, "12"},
		{1, 1, "1.1"},
		{3, 10, "3.10"},
	}
	for _, tt := range tests {
		w := Workflow{Name: "w", RunMajor: tt.major, RunMinor: tt.minor}
		assert.Equal(t, tt.want, w.RunNumber())
		assert.Equal(t, "w."+tt.want, w.FullName())
	}
}

func TestIssueToken(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	alice := addUser(t, db, "alice")

	valid := func() []string {
		toks, err := db.ListTokens(ctx, alice.ID)
		require.NoError(t, err)
		var hints []string
		for _, tok := range toks {
			if tok.RevokedAt == nil {
				hints = append(hints, tok.Hint)
			}
		}
		return hints
	}
	steps := []struct {
		hash  string
		mode  TokenMode
		err   error
		valid []string
	}{
		{"t1", TokenFirst, nil, []string{"t1"}},
		{"t2", TokenFirst, ErrExists, []string{"t1"}}, // shown once: no second first token
		{"t3", TokenAdd, nil, []string{"t1", "t3"}},
		{"t4", TokenRotate, nil, []string{"t4"}},
		{"t4", TokenAdd, ErrExists, []string{"t4"}}, // same hash twice
	}
	for _, st := range steps {
		tok, err := db.IssueToken(ctx, alice.ID, []byte(st.hash), st.hash, st.mode)
		if st.err != nil {
			require.ErrorIs(t, err, st.err, st.hash)
			if st.mode == TokenFirst {
				assert.Equal(t, "t1", tok.Hint, "the valid token is named for the message")
			}
		} else {
			require.NoError(t, err, st.hash)
			assert.Equal(t, st.hash, tok.Hint)
		}
		assert.Equal(t, st.valid, valid(), "after %s", st.hash)
	}
}
