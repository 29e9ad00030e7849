package main

import (
	"bytes"
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/daemon/store"
)

// TestAdminLogin: an admin sees which OIDC account each user is bound to
// and clears a user's bindings, after which another account of the
// provider may sign in as them.
func TestAdminLogin(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "reana-site.db"))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	alice, err := db.CreateUser(ctx, store.User{Name: "alice", UID: 4101})
	require.NoError(t, err)
	bob, err := db.CreateUser(ctx, store.User{Name: "bob", UID: 4102})
	require.NoError(t, err)
	_, err = db.CreateUser(ctx, store.User{Name: "carol", UID: 4103})
	require.NoError(t, err)
	require.NoError(t, db.BindLogin(ctx, "https://sso.example.org", "s-alice", alice.ID))
	require.NoError(t, db.BindLogin(ctx, "https://sso.example.org", "s-bob", bob.ID))
	d := adminDeps{db: db}
	admin := func(verb string, args ...string) (string, error) {
		var out bytes.Buffer
		err := adminCmd(ctx, &out, d, "login", verb, args)
		return out.String(), err
	}
	// lines is the output without its header, each line's fields.
	lines := func(out string) [][]string {
		rows := strings.Split(strings.TrimSpace(out), "\n")
		require.Equal(t, []string{"NAME", "ISSUER", "SUBJECT", "BOUND", "LAST", "SIGN-IN"}, strings.Fields(rows[0]))
		var fields [][]string
		for _, r := range rows[1:] {
			f := strings.Fields(r)
			require.Len(t, f, 7, r) // the two times are a date and a time each
			fields = append(fields, f[:3])
		}
		return fields
	}

	for _, tc := range []struct {
		name string
		verb string
		args []string
		want [][]string // rows of list; nil for none
		out  string     // what another verb prints
		err  string
	}{
		{name: "every binding", verb: "list", want: [][]string{{"alice", "https://sso.example.org", "s-alice"}, {"bob", "https://sso.example.org", "s-bob"}}},
		{name: "one user's", verb: "list", args: []string{"bob"}, want: [][]string{{"bob", "https://sso.example.org", "s-bob"}}},
		{name: "a user without any", verb: "list", args: []string{"carol"}},
		{name: "no such user", verb: "list", args: []string{"mallory"}, err: "no user mallory"},
		{name: "two names", verb: "list", args: []string{"alice", "bob"}, err: "usage: reana-site admin login list [NAME]"},
		{name: "remove needs a name", verb: "remove", err: "usage: reana-site admin login remove NAME"},
		{name: "remove an unknown user", verb: "remove", args: []string{"mallory"}, err: "no user mallory"},
		{name: "remove alice's", verb: "remove", args: []string{"alice"}, out: "1 sign-in binding(s) of alice removed"},
		{name: "alice has none left", verb: "list", args: []string{"alice"}},
		{name: "bob keeps his", verb: "list", want: [][]string{{"bob", "https://sso.example.org", "s-bob"}}},
		{name: "removing again removes nothing", verb: "remove", args: []string{"alice"}, out: "0 sign-in binding(s) of alice removed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := admin(tc.verb, tc.args...)
			if tc.err != "" {
				assert.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			if tc.verb == "list" {
				assert.Equal(t, tc.want, lines(out))
				return
			}
			assert.Contains(t, out, tc.out)
		})
	}
	require.NoError(t, db.BindLogin(ctx, "https://sso.example.org", "s-new-alice", alice.ID),
		"with the binding cleared, another account of the provider may sign in as alice")
}
