package main

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/daemon/config"
	"github.com/reana-site/reana-site/test/harness"
	"github.com/reana-site/reana-site/test/oidcprovider"
)

func TestDoctorLogin(t *testing.T) {
	k := harness.StartKDC(t)
	p := oidcprovider.Start(t, "reana-site", "secret")
	open := filepath.Join(t.TempDir(), "open.keytab")
	b, err := os.ReadFile(k.ServiceKeytab)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(open, b, 0o644))
	redirect := "https://localhost:8443/site/oidc/callback"
	for _, tc := range []struct {
		name string
		cfg  config.Config
		want []string // one per finding, "ok: ..." or "problem: ..." prefixes
	}{
		{"off", config.Config{}, []string{"ok: Kerberos sign-in: off", "ok: OIDC sign-in: off"}},
		{"keytab", config.Config{Krb5Keytab: k.ServiceKeytab, Krb5SPN: k.ServicePrincipal},
			[]string{"ok: Kerberos sign-in: keytab " + k.ServiceKeytab + " holds " + k.ServicePrincipal + "@" + k.Realm + ", key version", "ok: OIDC sign-in: off"}},
		{"keytab without the SPN", config.Config{Krb5Keytab: k.ServiceKeytab, Krb5SPN: "HTTP/login01.example.org"},
			[]string{"problem: Kerberos sign-in: keytab " + k.ServiceKeytab + " has no key for HTTP/login01.example.org", "ok: OIDC"}},
		{"keytab readable by all", config.Config{Krb5Keytab: open, Krb5SPN: k.ServicePrincipal},
			[]string{"problem: Kerberos sign-in: keytab " + open + " has mode 0644", "ok: OIDC"}},
		{"keytab missing", config.Config{Krb5Keytab: "/nonexistent/http.keytab", Krb5SPN: k.ServicePrincipal},
			[]string{"problem: Kerberos sign-in: keytab: stat /nonexistent/http.keytab: no such file", "ok: OIDC"}},
		{"issuer", config.Config{OIDCIssuer: p.URL, OIDCClientID: "reana-site", OIDCRedirectURL: redirect},
			[]string{"ok: Kerberos sign-in: off", "ok: OIDC sign-in: " + p.URL + " answers (authorization at " + p.URL + "/authorize); register " + redirect}},
		{"issuer down", config.Config{OIDCIssuer: "https://127.0.0.1:1", OIDCClientID: "reana-site", OIDCRedirectURL: redirect},
			[]string{"ok: Kerberos", "problem: OIDC sign-in: OIDC discovery at https://127.0.0.1:1"}},
		{"secret missing", config.Config{OIDCIssuer: p.URL, OIDCClientID: "reana-site", OIDCRedirectURL: redirect, OIDCClientSecretFile: "/nonexistent/secret"},
			[]string{"ok: Kerberos", "problem: OIDC sign-in: read the OIDC client secret", "ok: OIDC sign-in: " + p.URL + " answers"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := checkLogin(context.Background(), tc.cfg, p.Client())
			require.Len(t, got, len(tc.want), "%v", got)
			for i, w := range tc.want {
				assert.Contains(t, got[i].String(), w)
			}
		})
	}
}
