package identity

import (
	"errors"
	"fmt"
	"os/user"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/daemon/store"
)

func TestPolicyCheck(t *testing.T) {
	root, err := user.LookupId("0")
	require.NoError(t, err)
	rootGroup, err := user.LookupGroupId("0")
	require.NoError(t, err)
	for _, tc := range []struct {
		name   string
		policy Policy
		acct   asuser.Account
		want   string // "" means allowed
	}{
		{"ordinary user", Policy{MinUID: 1000}, asuser.Account{Name: "alice", UID: 1001, GID: 1001}, ""},
		{"root", Policy{}, asuser.Account{Name: root.Username, UID: 0, GID: 0}, "is root (uid 0)"},
		{"primary group 0", Policy{}, asuser.Account{Name: "x", UID: 1001, GID: 0}, "primary group 0"},
		{"below minimum", Policy{MinUID: 1000}, asuser.Account{Name: "daemon", UID: 1, GID: 1}, "uid 1, below the site minimum 1000"},
		{"nobody", Policy{MinUID: 1000}, asuser.Account{Name: "nobody", UID: 65534, GID: 65534}, "overflow id"},
		{"nogroup", Policy{MinUID: 1000}, asuser.Account{Name: "x", UID: 1001, GID: 65534}, "overflow id"},
		{"uid -2", Policy{MinUID: 1000}, asuser.Account{Name: "x", UID: 4294967294, GID: 1001}, "overflow id"},
		{"uid -1", Policy{MinUID: 1000}, asuser.Account{Name: "x", UID: 4294967295, GID: 1001}, "overflow id"},
		{"above maximum", Policy{MinUID: 1000, MaxUID: 60000}, asuser.Account{Name: "x", UID: 60001, GID: 1001}, "uid 60001, above the site maximum 60000"},
		{"at maximum", Policy{MinUID: 1000, MaxUID: 60000}, asuser.Account{Name: "x", UID: 60000, GID: 1001}, ""},
		{"in an allowed group", Policy{AllowedGroups: []string{rootGroup.Name}}, asuser.Account{Name: "x", UID: 1001, GID: 1001, Groups: []uint32{0}}, ""},
		{"in none of the groups", Policy{AllowedGroups: []string{rootGroup.Name, "no-such-group-here"}}, asuser.Account{Name: "x", UID: 1001, GID: 1001, Groups: []uint32{1001}}, "in none of the allowed groups"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.policy.Check(tc.acct)
			if tc.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, ErrRefused)
			assert.Contains(t, err.Error(), tc.want)
			assert.True(t, Refused(err))
		})
	}
}

func TestResolverServe(t *testing.T) {
	alice := asuser.Account{Name: "alice", UID: 1001, GID: 1001, Groups: []uint32{1001}}
	nss := func(name string) (asuser.Account, error) {
		switch name {
		case "alice":
			return alice, nil
		case "flaky":
			return asuser.Account{}, errors.New("ldap: server down")
		}
		return asuser.Account{}, fmt.Errorf("%w: %q", ErrUnknownUser, name)
	}
	r := Resolver{Policy: Policy{MinUID: 1000}, Lookup: nss}
	removed := time.Now()
	for _, tc := range []struct {
		name    string
		user    store.User
		policy  Policy
		wantErr error // nil means served
		refused bool
		text    string
	}{
		{name: "served", user: store.User{Name: "alice", UID: 1001}},
		{name: "removed by the admins", user: store.User{Name: "alice", UID: 1001, RemovedAt: &removed}, wantErr: ErrRemoved, refused: true, text: "user alice was removed from the service"},
		{name: "gone from NSS", user: store.User{Name: "ghost", UID: 1002}, wantErr: ErrUnknownUser, refused: true},
		{name: "uid reused", user: store.User{Name: "alice", UID: 1500}, wantErr: ErrUIDChanged, refused: true, text: "the uid of alice changed from 1500 to 1001"},
		{name: "policy tightened", user: store.User{Name: "alice", UID: 1001}, policy: Policy{MinUID: 5000}, wantErr: ErrRefused, refused: true},
		{name: "NSS failing is not a refusal", user: store.User{Name: "flaky", UID: 1003}, refused: false, text: "ldap: server down"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rr := r
			if tc.policy.MinUID != 0 {
				rr.Policy = tc.policy
			}
			a, err := rr.Serve(tc.user)
			if tc.wantErr == nil && tc.text == "" {
				require.NoError(t, err)
				assert.Equal(t, alice, a)
				return
			}
			require.Error(t, err)
			if tc.wantErr != nil {
				require.ErrorIs(t, err, tc.wantErr)
			}
			assert.Equal(t, tc.refused, Refused(err))
			if tc.text != "" {
				assert.Contains(t, err.Error(), tc.text)
			}
		})
	}
	var changed *UIDChangedError
	_, err := r.Serve(store.User{Name: "alice", UID: 1500})
	require.ErrorAs(t, err, &changed)
	assert.Equal(t, UIDChangedError{Name: "alice", UID: 1001, Recorded: 1500}, *changed)
}

func TestResolverAccount(t *testing.T) {
	r := Resolver{Policy: Policy{MinUID: 1000}, Lookup: func(name string) (asuser.Account, error) {
		return asuser.Account{Name: name, UID: 10, GID: 10}, nil
	}}
	_, err := r.Account("lowuid")
	require.ErrorIs(t, err, ErrRefused)
}

func TestLookupCurrentUser(t *testing.T) {
	me, err := user.Current()
	require.NoError(t, err)
	a, err := Lookup(me.Username)
	require.NoError(t, err)
	assert.Equal(t, me.Uid, fmt.Sprint(a.UID))
	assert.Contains(t, append(a.Groups, a.GID), a.GID)
	b, err := LookupUID(a.UID)
	require.NoError(t, err)
	assert.Equal(t, a, b)
	_, err = Lookup("no-such-user-reana-site")
	require.ErrorIs(t, err, ErrUnknownUser)
}

func TestTokens(t *testing.T) {
	tok, hash, err := NewToken()
	require.NoError(t, err)
	assert.Len(t, tok, 43) // 256 bits, base64url without padding
	assert.Equal(t, hash, HashToken(tok))
	other, _, err := NewToken()
	require.NoError(t, err)
	assert.NotEqual(t, tok, other)
}
