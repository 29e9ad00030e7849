package identity

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/asuser"
)

func mustRules(t *testing.T, s string) []MapRule {
	t.Helper()
	r, err := ParseMapRules(s)
	require.NoError(t, err)
	return r
}

func TestMapperName(t *testing.T) {
	t.Setenv("SECRET_OF_THE_DAEMON", "x")
	const realm = "SITE.TEST"
	krb := func(p string) LoginIdentity { return LoginIdentity{Method: MethodKerberos, Name: p} }
	oidc := func(n string) LoginIdentity {
		return LoginIdentity{Method: MethodOIDC, Name: n, Issuer: "https://idp", Subject: "s1"}
	}
	for _, tc := range []struct {
		name   string
		mapper Mapper
		id     LoginIdentity
		want   string // the name, or with err set a part of the error
		err    bool
	}{
		{"user principal of an accepted realm", Mapper{Realms: []string{realm}}, krb("alice@" + realm), "alice", false},
		{"second accepted realm", Mapper{Realms: []string{"A.TEST", realm}}, krb("bob@" + realm), "bob", false},
		{"untrusted realm", Mapper{Realms: []string{realm}}, krb("alice@EVIL.TEST"), "realm EVIL.TEST", true},
		{"no realms accepted", Mapper{}, krb("alice@" + realm), "not one this site trusts", true},
		{"two components", Mapper{Realms: []string{realm}}, krb("alice/admin@" + realm), "has an instance", true},
		{"no realm", Mapper{Realms: []string{realm}}, krb("alice"), "has no realm", true},
		{"empty name", Mapper{Realms: []string{realm}}, krb("@" + realm), "not a user principal", true},
		{"rule after the realm", Mapper{Realms: []string{realm}, Rules: mustRules(t, `a(.*) => x{1}`)}, krb("alice@" + realm), "xlice", false},
		{"rules are anchored", Mapper{Realms: []string{realm}, Rules: mustRules(t, `lic => bob`)}, krb("alice@" + realm), "alice", false},
		{"first rule wins", Mapper{Rules: mustRules(t, `(.*)@example\.org => {1}; (.*)@.* => other`)}, oidc("alice@example.org"), "alice", false},
		{"second rule", Mapper{Rules: mustRules(t, `(.*)@example\.org => {1}; (.*)@.* => other`)}, oidc("alice@elsewhere.org"), "other", false},
		{"whole match", Mapper{Rules: mustRules(t, `[a-z]+ => u-{0}`)}, oidc("alice"), "u-alice", false},
		{"oidc claim as is", Mapper{}, oidc("alice"), "alice", false},
		{"not a user name", Mapper{}, oidc("alice@example.org"), "not a user name", true},
		{"rule gives a bad name", Mapper{Rules: mustRules(t, `.* => ../x`)}, oidc("alice"), "not a user name", true},
		{"command", Mapper{Command: []string{"sh", "-c", `read -r in; case "$in" in *'"mapped":"alice"'*) echo bob;; esac`}}, oidc("alice"), "bob", false},
		{"command sees the realm-stripped name", Mapper{Realms: []string{realm}, Command: []string{"sh", "-c", `grep -q '"mapped":"alice"' && grep -q . /dev/null || echo carol`}}, krb("alice@" + realm), "carol", false},
		{"command has a clean environment", Mapper{Command: []string{"sh", "-c", `read -r _; test -z "$SECRET_OF_THE_DAEMON" && echo clean`}}, oidc("alice"), "clean", false},
		{"command hangs", Mapper{Command: []string{"sleep", "30"}, Timeout: 200 * time.Millisecond}, oidc("alice"), "did not answer within 200ms", true},
		{"command hangs with a child holding stdout", Mapper{Command: []string{"sh", "-c", "sleep 30 & sleep 30"}, Timeout: 200 * time.Millisecond}, oidc("alice"), "did not answer", true},
		{"command prints two names", Mapper{Command: []string{"printf", `alice\nbob\n`}}, oidc("alice"), "gave 2 names", true},
		{"command prints nothing", Mapper{Command: []string{"true"}}, oidc("alice"), "gave no name", true},
		{"command fails", Mapper{Command: []string{"sh", "-c", "echo alice; exit 3"}}, oidc("alice"), "exit status 3", true},
		{"command prints too much", Mapper{Command: []string{"sh", "-c", "head -c 10000 /dev/zero | tr '\\0' a"}}, oidc("alice"), "more than 4096 bytes", true},
		{"command not found", Mapper{Command: []string{"/no/such/mapper"}}, oidc("alice"), "failed", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			got, err := tc.mapper.Name(context.Background(), tc.id)
			assert.Less(t, time.Since(start), 5*time.Second)
			if tc.err {
				require.ErrorIs(t, err, ErrNotMapped)
				assert.True(t, Refused(err))
				assert.Contains(t, err.Error(), tc.want)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestParseMapRules(t *testing.T) {
	for _, tc := range []struct {
		in, err string
		n       int
	}{
		{"", "", 0},
		{" ; ", "", 0},
		{`(.*)@a\.org => {1}`, "", 1},
		{`(.*)@a\.org => {1}; x => y`, "", 2},
		{`a{1,3} => {0}`, "", 1},
		{`(.*)@a\.org`, `want "regex => output"`, 0},
		{`( => x`, "missing closing", 0},
		{`a =>`, "empty output", 0},
		{`(a) => {2}`, "names group {2}, the regex has 1", 0},
	} {
		t.Run(tc.in, func(t *testing.T) {
			r, err := ParseMapRules(tc.in)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			assert.Len(t, r, tc.n)
		})
	}
}

func TestMapperAccount(t *testing.T) {
	accounts := map[string]asuser.Account{
		"alice":  {Name: "alice", UID: 4101, GID: 4101},
		"root":   {Name: "root", UID: 0, GID: 0},
		"lowuid": {Name: "lowuid", UID: 900, GID: 4103},
	}
	lookup := func(name string) (asuser.Account, error) {
		a, ok := accounts[name]
		if !ok {
			return a, ErrUnknownUser
		}
		return a, nil
	}
	m := Mapper{Realms: []string{"R"}, Rules: mustRules(t, `admin => root; low => lowuid`),
		Accounts: Resolver{Policy: Policy{MinUID: 1000}, Lookup: lookup}}
	for _, tc := range []struct{ principal, want string }{
		{"alice@R", ""},
		{"admin@R", "is root (uid 0)"},
		{"low@R", "below the site minimum"},
		{"nobody-here@R", "no such POSIX user"},
	} {
		t.Run(tc.principal, func(t *testing.T) {
			a, err := m.Account(context.Background(), LoginIdentity{Method: MethodKerberos, Name: tc.principal})
			if tc.want == "" {
				require.NoError(t, err)
				assert.Equal(t, "alice", a.Name)
				return
			}
			require.Error(t, err)
			assert.True(t, Refused(err))
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
