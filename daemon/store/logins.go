package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
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
