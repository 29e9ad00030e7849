package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// User is a POSIX account allowed to use the API. ID is a UUID, as REANA's
// user ids are, and is what the API shows as "user".
type User struct {
	ID        string
	Name      string // the POSIX login name
	UID       uint32 // the uid when added; a different uid later means another person
	Email     string
	CreatedAt time.Time
	// RemovedAt is set once an admin removed the user. The row stays, so
	// the user's workflows keep an owner and the name cannot be reused
	// for someone else's account.
	RemovedAt *time.Time
}

// Token is an access token. Only its SHA-256 hash is stored; Hint is its
// last characters, so an admin can tell tokens apart.
type Token struct {
	ID        int64
	UserID    string
	Hint      string
	CreatedAt time.Time
	RevokedAt *time.Time
}

const userCols = `id, name, uid, email, created_at, removed_at`

func scanUser(sc scanner) (User, error) {
	var u User
	var uid int64
	err := sc.Scan(&u.ID, &u.Name, &uid, &u.Email, timeCol{&u.CreatedAt}, nullTimeCol{&u.RemovedAt})
	u.UID = uint32(uid)
	return u, err
}

// CreateUser adds u and returns it as stored, with its new ID. A user of
// the same name, even a removed one, is ErrExists.
func (db *DB) CreateUser(ctx context.Context, u User) (User, error) {
	u.ID = uuid.NewString()
	u.CreatedAt = now()
	u.RemovedAt = nil
	err := db.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO users (`+userCols+`) VALUES (?, ?, ?, ?, ?, NULL)`,
			u.ID, u.Name, int64(u.UID), u.Email, encTime(u.CreatedAt))
		return err
	})
	if isConflict(err) {
		return User{}, fmt.Errorf("add user %s: %w", u.Name, ErrExists)
	}
	if err != nil {
		return User{}, fmt.Errorf("add user %s: %w", u.Name, err)
	}
	return u, nil
}

// UserByName returns the user called name, removed or not.
func (db *DB) UserByName(ctx context.Context, name string) (User, error) {
	u, err := scanUser(db.r.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("user %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("read user %s: %w", name, err)
	}
	return u, nil
}

// UserByID returns the user with the given id, removed or not.
func (db *DB) UserByID(ctx context.Context, id string) (User, error) {
	u, err := scanUser(db.r.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return User{}, fmt.Errorf("user %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return User{}, fmt.Errorf("read user %s: %w", id, err)
	}
	return u, nil
}

// ListUsers returns every user, removed ones included, by name.
func (db *DB) ListUsers(ctx context.Context) ([]User, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+userCols+` FROM users ORDER BY name`)
	users, err := collect(rows, err, scanUser)
	if err != nil {
		return nil, fmt.Errorf("list users: %w", err)
	}
	return users, nil
}

// RemoveUser marks the user called name removed and revokes their tokens.
// Removing a removed user changes nothing and is not an error.
func (db *DB) RemoveUser(ctx context.Context, name string) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		var id string
		err := tx.QueryRowContext(ctx, `SELECT id FROM users WHERE name = ?`, name).Scan(&id)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		t := encTime(now())
		if _, err := tx.ExecContext(ctx, `UPDATE users SET removed_at = ? WHERE id = ? AND removed_at IS NULL`, t, id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL`, t, id)
		return err
	})
	if err != nil {
		return fmt.Errorf("remove user %s: %w", name, err)
	}
	return nil
}

const tokenCols = `id, user_id, hint, created_at, revoked_at`

func scanToken(sc scanner) (Token, error) {
	var t Token
	err := sc.Scan(&t.ID, &t.UserID, &t.Hint, timeCol{&t.CreatedAt}, nullTimeCol{&t.RevokedAt})
	return t, err
}

// TokenMode says what issuing a token does to the user's other tokens.
type TokenMode int

const (
	// TokenFirst issues a token only if the user has no valid one:
	// tokens are shown once, so a second "first" token would leave the
	// user with one they can no longer see. It fails with ErrExists.
	TokenFirst TokenMode = iota
	// TokenRotate revokes every valid token of the user and issues a new
	// one, in one transaction, so no moment exists with both or neither.
	TokenRotate
	// TokenAdd issues another token beside the valid ones (an admin's
	// choice, for a second machine).
	TokenAdd
)

// IssueToken records a new token of the user by its hash, treating the
// user's other tokens as mode says. With TokenFirst and a valid token
// already there, it returns that token (hint and time, for the message)
// with ErrExists.
func (db *DB) IssueToken(ctx context.Context, userID string, hash []byte, hint string, mode TokenMode) (Token, error) {
	t := Token{UserID: userID, Hint: hint, CreatedAt: now()}
	var existing Token
	err := db.write(ctx, func(tx *sql.Tx) error {
		switch mode {
		case TokenFirst:
			old, err := scanToken(tx.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM tokens WHERE user_id = ? AND revoked_at IS NULL ORDER BY id DESC LIMIT 1`, userID))
			if err == nil {
				existing = old
				return ErrExists
			}
			if !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		case TokenRotate:
			if _, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL`, encTime(t.CreatedAt), userID); err != nil {
				return err
			}
		case TokenAdd:
		default:
			return fmt.Errorf("unknown token mode %d", mode)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO tokens (user_id, hash, hint, created_at) VALUES (?, ?, ?, ?)`,
			userID, hash, hint, encTime(t.CreatedAt))
		if err != nil {
			return err
		}
		t.ID, err = res.LastInsertId()
		return err
	})
	switch {
	case errors.Is(err, ErrExists):
		return existing, fmt.Errorf("issue token of user %s: a valid token exists: %w", userID, ErrExists)
	case isConflict(err):
		return Token{}, fmt.Errorf("issue token of user %s: %w", userID, ErrExists)
	case err != nil:
		return Token{}, fmt.Errorf("issue token of user %s: %w", userID, err)
	}
	return t, nil
}

// UserByTokenHash authenticates: it returns the user owning the token with
// this hash, and the token. An unknown token, or one of a removed user, is
// ErrNotFound; a revoked token of a current user is ErrRevoked.
func (db *DB) UserByTokenHash(ctx context.Context, hash []byte) (User, Token, error) {
	var (
		u User
		t Token
	)
	err := db.read(ctx, func(tx *sql.Tx) error {
		var err error
		t, err = scanToken(tx.QueryRowContext(ctx, `SELECT `+tokenCols+` FROM tokens WHERE hash = ?`, hash))
		if err != nil {
			return err
		}
		u, err = scanUser(tx.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id = ?`, t.UserID))
		return err
	})
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return User{}, Token{}, fmt.Errorf("authenticate: %w", ErrNotFound)
	case err != nil:
		return User{}, Token{}, fmt.Errorf("authenticate: %w", err)
	case u.RemovedAt != nil:
		return User{}, Token{}, fmt.Errorf("authenticate: user %s was removed: %w", u.Name, ErrNotFound)
	case t.RevokedAt != nil:
		return User{}, Token{}, fmt.Errorf("authenticate: %w", ErrRevoked)
	}
	return u, t, nil
}

// RevokeTokens revokes every token of the user and reports how many were
// still valid.
func (db *DB) RevokeTokens(ctx context.Context, userID string) (int, error) {
	var n int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL`, encTime(now()), userID)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("revoke tokens of user %s: %w", userID, err)
	}
	return int(n), nil
}

// ListTokens returns the user's tokens, revoked ones included, oldest
// first.
func (db *DB) ListTokens(ctx context.Context, userID string) ([]Token, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+tokenCols+` FROM tokens WHERE user_id = ? ORDER BY id`, userID)
	tokens, err := collect(rows, err, scanToken)
	if err != nil {
		return nil, fmt.Errorf("list tokens of user %s: %w", userID, err)
	}
	return tokens, nil
}
