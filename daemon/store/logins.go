package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

var (
	// ErrLoginBound means the issuer's subject is bound to another user.
	ErrLoginBound = errors.New("this sign-in is bound to another user")
	// ErrLoginTaken means the user is bound to another subject of the same
	// issuer: someone else now carries the user's name at the provider.
	ErrLoginTaken = errors.New("the user is bound to another account of this provider")
)

// BindLogin records that the OIDC account issuer+subject signed in as
// userID. The first sign-in binds them; later ones must agree both ways:
// the subject stays with its user (ErrLoginBound), and a user keeps the one
// subject per issuer it was first bound to (ErrLoginTaken), so a renamed or
// reassigned username claim does not hand over someone's account.
func (db *DB) BindLogin(ctx context.Context, issuer, subject, userID string) error {
	t := encTime(now())
	err := db.write(ctx, func(tx *sql.Tx) error {
		var bound string
		err := tx.QueryRowContext(ctx, `SELECT user_id FROM login_identities WHERE issuer = ? AND subject = ?`, issuer, subject).Scan(&bound)
		switch {
		case err == nil && bound != userID:
			return ErrLoginBound
		case err == nil:
			_, err = tx.ExecContext(ctx, `UPDATE login_identities SET last_login_at = ? WHERE issuer = ? AND subject = ?`, t, issuer, subject)
			return err
		case !errors.Is(err, sql.ErrNoRows):
			return err
		}
		var other string
		err = tx.QueryRowContext(ctx, `SELECT subject FROM login_identities WHERE issuer = ? AND user_id = ? LIMIT 1`, issuer, userID).Scan(&other)
		if err == nil {
			return ErrLoginTaken
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO login_identities (issuer, subject, user_id, created_at, last_login_at) VALUES (?, ?, ?, ?, ?)`,
			issuer, subject, userID, t, t)
		return err
	})
	if err != nil {
		return fmt.Errorf("bind sign-in %s %s to user %s: %w", issuer, subject, userID, err)
	}
	return nil
}

// LoginBinding is one OIDC account bound to a user by BindLogin.
type LoginBinding struct {
	Issuer, Subject string
	UserID, User    string // the user's id and name
	CreatedAt       time.Time
	LastLoginAt     time.Time
}

// LoginBindings lists the bindings of userID, or of every user when userID
// is empty, by user name and issuer.
func (db *DB) LoginBindings(ctx context.Context, userID string) ([]LoginBinding, error) {
	q := `SELECT l.issuer, l.subject, l.user_id, u.name, l.created_at, l.last_login_at
FROM login_identities l JOIN users u ON u.id = l.user_id`
	var args []any
	if userID != "" {
		q += ` WHERE l.user_id = ?`
		args = append(args, userID)
	}
	rows, err := db.r.QueryContext(ctx, q+` ORDER BY u.name, l.issuer, l.subject`, args...)
	if err != nil {
		return nil, fmt.Errorf("list sign-in bindings: %w", err)
	}
	defer rows.Close()
	out := []LoginBinding{}
	for rows.Next() {
		var b LoginBinding
		if err := rows.Scan(&b.Issuer, &b.Subject, &b.UserID, &b.User, timeCol{&b.CreatedAt}, timeCol{&b.LastLoginAt}); err != nil {
			return nil, fmt.Errorf("list sign-in bindings: %w", err)
		}
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list sign-in bindings: %w", err)
	}
	return out, nil
}

// UnbindLogins forgets every OIDC account bound to userID and says how
// many there were: the user's next OIDC sign-in binds anew, whichever
// account of the provider it comes from.
func (db *DB) UnbindLogins(ctx context.Context, userID string) (int, error) {
	var n int64
	err := db.write(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM login_identities WHERE user_id = ?`, userID)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("forget the sign-in bindings of user %s: %w", userID, err)
	}
	return int(n), nil
}
