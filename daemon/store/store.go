// Package store keeps reana-site's state in one SQLite file: users and
// their tokens, workflows, the jobs of their steps and their retention
// rules. Everything the daemon decides is decided from here, so a restart
// loses nothing that was committed.
//
// SQLite has a single writer. Writes go through one connection, so they
// queue in Go (honouring each caller's context) instead of failing with
// SQLITE_BUSY; reads use a separate pool and, in WAL mode, never wait for
// the writer. Another process (reana-site admin) may write at the same
// time; the busy timeout covers that.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/mattn/go-sqlite3"
)

var (
	// ErrNotFound means no such row, or a row the caller may not see.
	ErrNotFound = errors.New("not found")
	// ErrExists means a row with the same key is already stored.
	ErrExists = errors.New("already exists")
	// ErrRevoked means the token was valid once and has been revoked.
	ErrRevoked = errors.New("token revoked")
)

// busyTimeout is how long a write waits for another process's write (the
// admin command) before giving up.
const busyTimeout = 5 * time.Second

// maxReaders bounds the read pool; WAL readers do not block each other, so
// this only limits file descriptors and memory.
const maxReaders = 8

// DB is an open store. It is safe for concurrent use.
type DB struct {
	w *sql.DB // exactly one connection: the single writer
	r *sql.DB // query-only connections
	// observe, when set, is told how long each transaction took.
	observe atomic.Pointer[TxObserver]
}

// TxObserver is told the kind ("read" or "write") and the duration of each
// transaction, from asking for it to its end: a write's includes its wait
// for the single writer, which is what its caller waited too.
type TxObserver func(kind string, d time.Duration)

// ObserveTransactions makes fn see every transaction from now on (the
// daemon's metrics); nil stops it.
func (db *DB) ObserveTransactions(fn TxObserver) {
	if fn == nil {
		db.observe.Store(nil)
		return
	}
	db.observe.Store(&fn)
}

func (db *DB) observed(kind string, start time.Time) {
	if fn := db.observe.Load(); fn != nil {
		(*fn)(kind, time.Since(start))
	}
}

// Open opens the store at path, creating it with mode 0600 if needed (it
// holds token hashes), and brings its schema up to date.
func Open(ctx context.Context, path string) (*DB, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	// SQLite would create the file with 0644; create it first so it never
	// exists with a wider mode. The -wal and -shm files copy its mode.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	if err := f.Close(); err != nil {
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}

	// A file: URI so that a path holding '?' or '#' is not taken for
	// parameters; SQLite decodes the escapes.
	base := "file:" + (&url.URL{Path: abs}).EscapedPath() +
		fmt.Sprintf("?_foreign_keys=on&_busy_timeout=%d", busyTimeout.Milliseconds())
	w, err := sql.Open("sqlite3", base+"&_journal_mode=WAL&_txlock=immediate")
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxLifetime(0)
	w.SetConnMaxIdleTime(0)
	// Migrations run before the read pool exists: the first connection
	// switches the file to WAL, which readers then inherit.
	if err := connect(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	if err := migrate(ctx, w); err != nil {
		w.Close()
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	r, err := sql.Open("sqlite3", base+"&_txlock=deferred&_query_only=1")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	r.SetMaxOpenConns(maxReaders)
	r.SetMaxIdleConns(maxReaders)
	db := &DB{w: w, r: r}
	if err := db.Ping(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open store %s: %w", abs, err)
	}
	return db, nil
}

// Close closes the store.
func (db *DB) Close() error {
	return errors.Join(db.r.Close(), db.w.Close())
}

// Ping checks that both the writer and a reader can reach the file.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.w.PingContext(ctx); err != nil {
		return fmt.Errorf("ping store: %w", err)
	}
	if err := db.r.PingContext(ctx); err != nil {
		return fmt.Errorf("ping store: %w", err)
	}
	return nil
}

// connect makes the writer's connection. Two processes opening a new file
// at once race to switch it to WAL, and SQLite answers the loser with
// SQLITE_BUSY at once rather than after the busy timeout; so retry here.
func connect(ctx context.Context, w *sql.DB) error {
	deadline := time.Now().Add(busyTimeout)
	for {
		err := w.PingContext(ctx)
		var se sqlite3.Error
		if err == nil || !errors.As(err, &se) || se.Code != sqlite3.ErrBusy || time.Now().After(deadline) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// write runs fn in an immediate transaction on the writer. fn must not use
// db itself: the writer has one connection and would wait for itself.
// fn's error is returned as it is, so callers can match their own errors.
func (db *DB) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	defer db.observed("write", time.Now())
	return inTx(ctx, db.w, fn)
}

// inTx runs fn in a transaction of h, committing if fn succeeds.
func inTx(ctx context.Context, h *sql.DB, fn func(tx *sql.Tx) error) error {
	tx, err := h.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	if err := fn(tx); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	return nil
}

// read runs fn in a read transaction, so that several queries see one
// snapshot.
func (db *DB) read(ctx context.Context, fn func(tx *sql.Tx) error) error {
	defer db.observed("read", time.Now())
	tx, err := db.r.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	defer tx.Rollback()
	return fn(tx)
}

// isConflict tells whether err is a unique or primary key violation.
func isConflict(err error) bool {
	var se sqlite3.Error
	if !errors.As(err, &se) {
		return false
	}
	return se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey
}

// querier is what both *sql.DB and *sql.Tx offer.
type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// scanner is a *sql.Row or *sql.Rows.
type scanner interface {
	Scan(dest ...any) error
}

// Times are stored as UTC text with a fixed number of fraction digits, so
// that they keep nanoseconds, read well in the sqlite3 shell and sort as
// text in the order they sort as times.
const timeLayout = "2006-01-02T15:04:05.000000000Z"

func now() time.Time { return time.Now().UTC() }

func encTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func encTimePtr(t *time.Time) any {
	if t == nil {
		return nil
	}
	return encTime(*t)
}

// timeCol scans a NOT NULL time column into a time.Time.
type timeCol struct{ p *time.Time }

func (c timeCol) Scan(v any) error {
	s, ok := textOf(v)
	if !ok {
		return fmt.Errorf("time column holds %T", v)
	}
	t, err := time.Parse(timeLayout, s)
	if err != nil {
		return fmt.Errorf("time column: %w", err)
	}
	*c.p = t
	return nil
}

// nullTimeCol scans a nullable time column into a *time.Time.
type nullTimeCol struct{ p **time.Time }

func (c nullTimeCol) Scan(v any) error {
	if v == nil {
		*c.p = nil
		return nil
	}
	var t time.Time
	if err := (timeCol{&t}).Scan(v); err != nil {
		return err
	}
	*c.p = &t
	return nil
}

// rawCol scans a JSON text column; the empty text is a nil message, so
// callers can test len() == 0 as they do for a missing value.
type rawCol struct{ p *[]byte }

func (c rawCol) Scan(v any) error {
	if v == nil {
		*c.p = nil
		return nil
	}
	s, ok := textOf(v)
	if !ok {
		return fmt.Errorf("text column holds %T", v)
	}
	if s == "" {
		*c.p = nil
		return nil
	}
	*c.p = []byte(s)
	return nil
}

func textOf(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case []byte:
		return string(x), true
	}
	return "", false
}

// collect scans every row of a query.
func collect[T any](rows *sql.Rows, err error, scan func(scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
