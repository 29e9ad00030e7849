package store

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBindLogin(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	alice, err := db.CreateUser(ctx, User{Name: "alice", UID: 4101})
	require.NoError(t, err)
	bob, err := db.CreateUser(ctx, User{Name: "bob", UID: 4102})
	require.NoError(t, err)
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
