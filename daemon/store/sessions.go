package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Web sessions and one-time login links are keyed by the SHA-256 hash of
// their secret, as tokens are: a copy of the store signs nobody in. The
// caller hashes; the store never sees a secret.

// Session is a signed-in browser.
type Session struct {
	UserID     string
	Method     string // how the user signed in: token, link, kerberos or oidc
	CreatedAt  time.Time
	LastSeenAt time.Time
	ExpiresAt  time.Time
}

// CreateSession records a session that ends at expires.
func (db *DB) CreateSession(ctx context.Context, hash []byte, userID, method string, expires time.Time) error {
	t := encTime(now())
	err := db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO web_sessions (hash, user_id, method, created_at, last_seen_at, expires_at)
			VALUES (?, ?, ?, ?, ?, ?)`, hash, userID, method, t, t, encTime(expires))
		return err
	})
	if isConflict(err) {
		return fmt.Errorf("create web session: %w", ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create web session: %w", err)
	}
	return nil
}

// SessionUser returns the user of the session with this hash. An unknown
// or expired session, or one of a removed user, is ErrNotFound.
func (db *DB) SessionUser(ctx context.Context, hash []byte) (User, Session, error) {
	var (
		u User
		s Session
	)
	err := db.read(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT user_id, method, created_at, last_seen_at, expires_at FROM web_sessions WHERE hash = ?`, hash).
			Scan(&s.UserID, &s.Method, timeCol{&s.CreatedAt}, timeCol{&s.LastSeenAt}, timeCol{&s.ExpiresAt})
		if err != nil {
			return err
		}
		u, err = scanUser(tx.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id = ?`, s.UserID))
		return err
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return User{}, Session{}, fmt.Errorf("web session: %w", ErrNotFound)
	case err != nil:
		return User{}, Session{}, fmt.Errorf("read web session: %w", err)
	case !now().Before(s.ExpiresAt):
		return User{}, Session{}, fmt.Errorf("web session expired at %s: %w", s.ExpiresAt.Format(time.RFC3339), ErrNotFound)
	case u.RemovedAt != nil:
		return User{}, Session{}, fmt.Errorf("web session: user %s was removed: %w", u.Name, ErrNotFound)
	}
	return u, s, nil
}

// TouchSession records that the session was used now.
func (db *DB) TouchSession(ctx context.Context, hash []byte) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE web_sessions SET last_seen_at = ? WHERE hash = ?`, encTime(now()), hash)
		return err
	})
	if err != nil {
		return fmt.Errorf("touch web session: %w", err)
	}
	return nil
}

// DeleteSession ends a session (logout). An unknown one is no error.
func (db *DB) DeleteSession(ctx context.Context, hash []byte) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `DELETE FROM web_sessions WHERE hash = ?`, hash)
		return err
	})
	if err != nil {
		return fmt.Errorf("delete web session: %w", err)
	}
	return nil
}

// DeleteUserSessions ends every session of a user and says how many.
func (db *DB) DeleteUserSessions(ctx context.Context, userID string) (int, error) {
	var n int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM web_sessions WHERE user_id = ?`, userID)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("delete web sessions of user %s: %w", userID, err)
	}
	return int(n), nil
}

// CreateLoginLink records a one-time login link that ends at expires.
func (db *DB) CreateLoginLink(ctx context.Context, hash []byte, userID string, expires time.Time) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO login_links (hash, user_id, created_at, expires_at, used_at) VALUES (?, ?, ?, ?, NULL)`,
			hash, userID, encTime(now()), encTime(expires))
		return err
	})
	if isConflict(err) {
		return fmt.Errorf("create login link: %w", ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create login link: %w", err)
	}
	return nil
}

// UseLoginLink spends the link with this hash and returns its user. The
// check and the spending are one write, so two requests racing with the
// same link cannot both sign in. A used, expired or unknown link, or one
// of a removed user, is ErrNotFound.
func (db *DB) UseLoginLink(ctx context.Context, hash []byte) (User, error) {
	// A key that matches no link costs a read, not the single writer:
	// guesses must not hold up the engine's writes.
	var n int
	if err := db.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM login_links WHERE hash = ?`, hash).Scan(&n); err != nil {
		return User{}, fmt.Errorf("use login link: %w", err)
	}
	if n == 0 {
		return User{}, fmt.Errorf("login link unknown: %w", ErrNotFound)
	}
	var u User
	err := db.write(ctx, func(tx *sql.Tx) error {
		t := encTime(now())
		var userID string
		err := tx.QueryRowContext(ctx, `UPDATE login_links SET used_at = ? WHERE hash = ? AND used_at IS NULL AND expires_at > ?
			RETURNING user_id`, t, hash, t).Scan(&userID)
		if err != nil {
			return err
		}
		u, err = scanUser(tx.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id = ?`, userID))
		return err
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return User{}, fmt.Errorf("login link unknown, used or expired: %w", ErrNotFound)
	case err != nil:
		return User{}, fmt.Errorf("use login link: %w", err)
	case u.RemovedAt != nil:
		return User{}, fmt.Errorf("login link: user %s was removed: %w", u.Name, ErrNotFound)
	}
	return u, nil
}

// DeleteExpiredSessions removes the sessions and login links that ended
// before now (used links too, once expired: their row only proves they
// were spent, which expiry proves as well), and says how many rows went.
func (db *DB) DeleteExpiredSessions(ctx context.Context) (int, error) {
	var n int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		t := encTime(now())
		for _, q := range []string{`DELETE FROM web_sessions WHERE expires_at <= ?`, `DELETE FROM login_links WHERE expires_at <= ?`} {
			res, err := tx.ExecContext(ctx, q, t)
			if err != nil {
				return err
			}
			k, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += k
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("delete expired web sessions: %w", err)
	}
	return int(n), nil
}
