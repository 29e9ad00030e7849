package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// Secret is one entry of a user's secret catalogue. The value is never in
// the store: the user's helper keeps it in their own secret directory.
type Secret struct {
	Name      string
	Type      string // "env" or "file"
	CreatedAt time.Time
	UpdatedAt time.Time
}

// PutSecrets records secrets as added or overwritten now; a name that
// changed type takes the new one.
func (db *DB) PutSecrets(ctx context.Context, userID string, secrets []Secret) error {
	t := encTime(now())
	err := db.write(ctx, func(tx *sql.Tx) error {
		for _, s := range secrets {
			_, err := tx.ExecContext(ctx, `INSERT INTO secrets (user_id, name, type, created_at, updated_at) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (user_id, name) DO UPDATE SET type = excluded.type, updated_at = excluded.updated_at`,
				userID, s.Name, s.Type, t, t)
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("record secrets of user %s: %w", userID, err)
	}
	return nil
}

// DeleteSecrets forgets the named secrets (all of them when names is nil).
func (db *DB) DeleteSecrets(ctx context.Context, userID string, names []string) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		if names == nil {
			_, err := tx.ExecContext(ctx, `DELETE FROM secrets WHERE user_id = ?`, userID)
			return err
		}
		for _, n := range names {
			if _, err := tx.ExecContext(ctx, `DELETE FROM secrets WHERE user_id = ? AND name = ?`, userID, n); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("forget secrets of user %s: %w", userID, err)
	}
	return nil
}

// Secrets lists a user's secrets by name.
func (db *DB) Secrets(ctx context.Context, userID string) ([]Secret, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT name, type, created_at, updated_at FROM secrets WHERE user_id = ? ORDER BY name`, userID)
	if err != nil {
		return nil, fmt.Errorf("list secrets of user %s: %w", userID, err)
	}
	defer rows.Close()
	out := []Secret{}
	for rows.Next() {
		var s Secret
		if err := rows.Scan(&s.Name, &s.Type, timeCol{&s.CreatedAt}, timeCol{&s.UpdatedAt}); err != nil {
			return nil, fmt.Errorf("list secrets of user %s: %w", userID, err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list secrets of user %s: %w", userID, err)
	}
	return out, nil
}
