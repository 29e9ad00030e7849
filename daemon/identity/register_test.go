package identity

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/daemon/store"
)

func TestRegister(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "reana-site.db"))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	_, err = db.CreateUser(ctx, store.User{Name: "alice", UID: 4101})
	require.NoError(t, err)
	_, err = db.CreateUser(ctx, store.User{Name: "gone", UID: 4200})
	require.NoError(t, err)
	require.NoError(t, db.RemoveUser(ctx, "gone"))
	_, err = db.CreateUser(ctx, store.User{Name: "reused", UID: 4300})
	require.NoError(t, err)

	for _, tc := range []struct {
		name        string
		acct        asuser.Account
		selfService bool
		created     bool
		err         error
		msg         string
	}{
		{"registered", asuser.Account{Name: "alice", UID: 4101}, false, false, nil, ""},
		{"unregistered, self-service off", asuser.Account{Name: "bob", UID: 4102}, false, false, ErrNotRegistered, "ask the site's admins to add you"},
		{"unregistered, self-service on", asuser.Account{Name: "bob", UID: 4102}, true, true, nil, ""},
		{"now registered", asuser.Account{Name: "bob", UID: 4102}, false, false, nil, ""},
		{"removed", asuser.Account{Name: "gone", UID: 4200}, true, false, ErrRemoved, "was removed"},
		{"uid changed", asuser.Account{Name: "reused", UID: 4301}, true, false, ErrUIDChanged, "changed from 4300 to 4301"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, created, err := Register(ctx, db, tc.acct, tc.selfService)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				assert.True(t, Refused(err))
				assert.Contains(t, err.Error(), tc.msg)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.created, created)
			assert.Equal(t, tc.acct.Name, u.Name)
			assert.Equal(t, tc.acct.UID, u.UID)
		})
	}
}
