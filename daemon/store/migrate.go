package store

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations are applied in order, each once, each in its own
// transaction; migration i brings the schema to version i+1. Never edit
// one that has shipped: append a new one.
var migrations = []string{
	// 1: the initial schema.
	`
CREATE TABLE users (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL UNIQUE,
	uid        INTEGER NOT NULL,
	email      TEXT NOT NULL DEFAULT '',
	created_at TEXT NOT NULL,
	removed_at TEXT
);

CREATE TABLE tokens (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	user_id    TEXT NOT NULL REFERENCES users(id),
	hash       BLOB NOT NULL UNIQUE,
	hint       TEXT NOT NULL DEFAULT '',
	created_at TEXT NOT NULL,
	revoked_at TEXT
);
CREATE INDEX tokens_user ON tokens(user_id);

CREATE TABLE workflows (
	id                  TEXT PRIMARY KEY,
	owner_id            TEXT NOT NULL REFERENCES users(id),
	name                TEXT NOT NULL,
	run_major           INTEGER NOT NULL,
	run_minor           INTEGER NOT NULL,
	restart             INTEGER NOT NULL DEFAULT 0,
	status              TEXT NOT NULL,
	spec                TEXT NOT NULL DEFAULT '',
	input_parameters    TEXT NOT NULL DEFAULT '',
	operational_options TEXT NOT NULL DEFAULT '',
	workspace_path      TEXT NOT NULL DEFAULT '',
	jobs_path           TEXT NOT NULL DEFAULT '',
	created_at          TEXT NOT NULL,
	started_at          TEXT,
	finished_at         TEXT,
	stopped_at          TEXT,
	logs                TEXT NOT NULL DEFAULT '',
	progress_total      INTEGER NOT NULL DEFAULT 0,
	stop_requested      INTEGER NOT NULL DEFAULT 0,
	status_message      TEXT NOT NULL DEFAULT '',
	disk_usage          INTEGER NOT NULL DEFAULT 0,
	cpu_millis          INTEGER NOT NULL DEFAULT 0,
	UNIQUE (owner_id, name, run_major, run_minor)
);
-- Listings page through one owner's workflows by creation time.
CREATE INDEX workflows_owner_created ON workflows(owner_id, created_at);
-- The engine looks for the few active workflows among many ended ones.
CREATE INDEX workflows_status ON workflows(status);

CREATE TABLE jobs (
	id             TEXT PRIMARY KEY,
	workflow_id    TEXT NOT NULL REFERENCES workflows(id),
	step_index     INTEGER NOT NULL,
	command_index  INTEGER NOT NULL,
	attempt        INTEGER NOT NULL DEFAULT 0,
	step_name      TEXT NOT NULL DEFAULT '',
	command        TEXT NOT NULL DEFAULT '',
	image          TEXT NOT NULL DEFAULT '',
	backend        TEXT NOT NULL DEFAULT '',
	status         TEXT NOT NULL,
	handle         TEXT NOT NULL DEFAULT '',
	backend_job_id TEXT NOT NULL DEFAULT '',
	exit_code      INTEGER,
	reason         TEXT NOT NULL DEFAULT '',
	logs           TEXT NOT NULL DEFAULT '',
	created_at     TEXT NOT NULL,
	started_at     TEXT,
	finished_at    TEXT,
	-- One row per try of a command: recording the same intent twice is a bug.
	UNIQUE (workflow_id, step_index, command_index, attempt)
);
CREATE INDEX jobs_status ON jobs(status);

CREATE TABLE retention_rules (
	id          INTEGER PRIMARY KEY AUTOINCREMENT,
	workflow_id TEXT NOT NULL REFERENCES workflows(id),
	pattern     TEXT NOT NULL,
	days        INTEGER NOT NULL,
	status      TEXT NOT NULL,
	apply_on    TEXT
);
CREATE INDEX retention_rules_workflow ON retention_rules(workflow_id);
`,
	// 2: the catalogue of user secrets: names, types and times only. The
	// values are in the user's own secret directory, written by their helper.
	`
CREATE TABLE secrets (
	user_id    TEXT NOT NULL REFERENCES users(id),
	name       TEXT NOT NULL,
	type       TEXT NOT NULL,
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL,
	PRIMARY KEY (user_id, name)
);
`,
	// 3: the metrics count jobs by backend and status at every scrape; a
	// covering index keeps that from reading every job's logs.
	`
CREATE INDEX jobs_backend_status ON jobs(backend, status);
`,
	// 4: what a workflow engine's adapter asked for a job (its resource
	// hints and environment), for the jobs of cwl, snakemake and yadage runs.
	`ALTER TABLE jobs ADD COLUMN request TEXT NOT NULL DEFAULT '';`,
	// 5: sign-in for the web interface and the site's identity. Sessions
	// and one-time login links are kept by the SHA-256 of their secret,
	// as tokens are, so a copy of the store signs nobody in. An OIDC
	// account is bound to a user by its issuer and subject, which the
	// provider never reassigns (a username claim may be).
	`
CREATE TABLE web_sessions (
	hash         BLOB PRIMARY KEY,
	user_id      TEXT NOT NULL REFERENCES users(id),
	method       TEXT NOT NULL,
	created_at   TEXT NOT NULL,
	last_seen_at TEXT NOT NULL,
	expires_at   TEXT NOT NULL
);
CREATE INDEX web_sessions_user ON web_sessions(user_id);
CREATE INDEX web_sessions_expires ON web_sessions(expires_at);

CREATE TABLE login_links (
	hash       BLOB PRIMARY KEY,
	user_id    TEXT NOT NULL REFERENCES users(id),
	created_at TEXT NOT NULL,
	expires_at TEXT NOT NULL,
	used_at    TEXT
);

CREATE TABLE login_identities (
	issuer        TEXT NOT NULL,
	subject       TEXT NOT NULL,
	user_id       TEXT NOT NULL REFERENCES users(id),
	created_at    TEXT NOT NULL,
	last_login_at TEXT NOT NULL,
	PRIMARY KEY (issuer, subject)
);
CREATE INDEX login_identities_user ON login_identities(user_id);
`,
}

// migrate brings the schema up to date. Two processes may open the store
// at once (the daemon and an admin command); each step re-reads the
// version inside its write transaction, so a step is never applied twice.
func migrate(ctx context.Context, w *sql.DB) error {
	// Even this runs in an immediate transaction: a bare statement that
	// reads the schema and then writes may find another process committed
	// in between, and then fails at once instead of waiting.
	err := inTx(ctx, w, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    INTEGER PRIMARY KEY,
	applied_at TEXT NOT NULL
)`)
		return err
	})
	if err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	for i, m := range migrations {
		version := i + 1
		err := inTx(ctx, w, func(tx *sql.Tx) error { return applyMigration(ctx, tx, version, m) })
		if err != nil {
			return fmt.Errorf("migrate schema to version %d: %w", version, err)
		}
	}
	var newest int
	if err := w.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&newest); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if newest > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this reana-site knows (%d): it was written by a newer release", newest, len(migrations))
	}
	return nil
}

func applyMigration(ctx context.Context, tx *sql.Tx, version int, m string) error {
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE version = ?`, version).Scan(&n); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, m); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`, version, encTime(now())); err != nil {
		return fmt.Errorf("record schema version: %w", err)
	}
	return nil
}
