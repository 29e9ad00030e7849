package store

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// aliceAndBob are two users of db.
func aliceAndBob(t *testing.T, db *DB) (User, User) {
	t.Helper()
	alice, err := db.CreateUser(context.Background(), User{Name: "alice", UID: 4101})
	require.NoError(t, err)
	bob, err := db.CreateUser(context.Background(), User{Name: "bob", UID: 4102})
	require.NoError(t, err)
	return alice, bob
}

func TestBindLogin(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	alice, bob := aliceAndBob(t, db)
	for _, tc := range []struct {
		name, issuer, subject, user string
		err                         error
	}{
		{"first sign-in binds", "https://idp", "s-alice", alice.ID, nil},
		{"same again", "https://idp", "s-alice", alice.ID, nil},
		{"another user binds", "https://idp", "s-bob", bob.ID, nil},
		{"subject of another user", "https://idp", "s-alice", bob.ID, ErrLoginBound},
		{"username takeover", "https://idp", "s-mallory", alice.ID, ErrLoginTaken},
		{"another issuer is its own", "https://other", "s-x", alice.ID, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := db.BindLogin(ctx, tc.issuer, tc.subject, tc.user)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
		})
	}
	var n int
	require.NoError(t, db.r.QueryRowContext(ctx, `SELECT count(*) FROM login_identities`).Scan(&n))
	assert.Equal(t, 3, n)
}

func TestLoginBindingsAndUnbind(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	alice, bob := aliceAndBob(t, db)
	require.NoError(t, db.BindLogin(ctx, "https://other", "s-x", alice.ID))
	require.NoError(t, db.BindLogin(ctx, "https://idp", "s-bob", bob.ID))
	require.NoError(t, db.BindLogin(ctx, "https://idp", "s-alice", alice.ID))

	type row struct{ user, issuer, subject string }
	rows := func(userID string) []row {
		t.Helper()
		list, err := db.LoginBindings(ctx, userID)
		require.NoError(t, err)
		out := []row{}
		for _, b := range list {
			assert.False(t, b.CreatedAt.IsZero())
			assert.False(t, b.LastLoginAt.Before(b.CreatedAt))
			out = append(out, row{b.User, b.Issuer, b.Subject})
		}
		return out
	}
	for _, tc := range []struct {
		name   string
		userID string
		want   []row
	}{
		{"every user's, by name and issuer", "", []row{{"alice", "https://idp", "s-alice"}, {"alice", "https://other", "s-x"}, {"bob", "https://idp", "s-bob"}}},
		{"one user's", bob.ID, []row{{"bob", "https://idp", "s-bob"}}},
		{"a user without any", "no-such-id", []row{}},
	} {
		t.Run(tc.name, func(t *testing.T) { assert.Equal(t, tc.want, rows(tc.userID)) })
	}

	require.ErrorIs(t, db.BindLogin(ctx, "https://idp", "s-new", alice.ID), ErrLoginTaken)
	n, err := db.UnbindLogins(ctx, alice.ID)
	require.NoError(t, err)
	assert.Equal(t, 2, n)
	assert.Equal(t, []row{}, rows(alice.ID))
	assert.Len(t, rows(""), 1, "bob keeps his")
	require.NoError(t, db.BindLogin(ctx, "https://idp", "s-new", alice.ID), "after unbinding, another account of the provider may bind")
	n, err = db.UnbindLogins(ctx, "no-such-id")
	require.NoError(t, err)
	assert.Zero(t, n)
}
