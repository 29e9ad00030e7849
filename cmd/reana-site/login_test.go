package main

import (
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/api/authlimit"
	"github.com/reana-site/reana-site/api/login"
	"github.com/reana-site/reana-site/daemon/config"
	"github.com/reana-site/reana-site/daemon/identity"
	"github.com/reana-site/reana-site/test/harness"
)

func TestSiteLogin(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	none, err := siteLogin(config.Config{}, nil, identity.Resolver{}, nil, log)
	require.NoError(t, err)
	assert.Nil(t, none, "no Kerberos and no OIDC: no /site routes")

	secret := filepath.Join(t.TempDir(), "secret")
	require.NoError(t, os.WriteFile(secret, []byte("s3cret\n"), 0o600))
	oidc := config.Config{OIDCIssuer: "https://idp.example", OIDCClientID: "reana", OIDCClientSecretFile: secret,
		OIDCRedirectURL: "https://login01:8443/site/oidc/callback", OIDCUsernameClaim: "preferred_username", OIDCLabel: "Sign in with Example"}
	failures := authlimit.New(authlimit.Default())
	s, err := siteLogin(oidc, nil, identity.Resolver{}, failures, log)
	require.NoError(t, err)
	assert.Same(t, failures, s.Failures, "failed sign-ins count with the API's failed token checks")
	assert.Equal(t, []login.Option{{Label: "Sign in with Example", URL: "/site/login/oidc"}}, s.Options())

	oidc.OIDCClientSecretFile = filepath.Join(t.TempDir(), "missing")
	_, err = siteLogin(oidc, nil, identity.Resolver{}, nil, log)
	assert.ErrorContains(t, err, "read the OIDC client secret")

	k := harness.StartKDC(t)
	krb := config.Config{Krb5Keytab: k.ServiceKeytab, Krb5SPN: k.ServicePrincipal, Krb5MaxClockSkew: 5 * time.Minute}
	s, err = siteLogin(krb, nil, identity.Resolver{}, nil, log)
	require.NoError(t, err)
	assert.Equal(t, []string{k.Realm}, s.Mapper.Realms, "the realm of the SPN's key")
	assert.Positive(t, s.Kerberos.KVNO)

	// As systemd's LoadCredential= hands it over: a relative name in
	// $CREDENTIALS_DIRECTORY, mode 0400.
	creds := t.TempDir()
	kt, err := os.ReadFile(k.ServiceKeytab)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(creds, "krb5.keytab"), kt, 0o400))
	t.Setenv("CREDENTIALS_DIRECTORY", creds)
	cred := krb
	cred.Krb5Keytab = "krb5.keytab"
	s, err = siteLogin(cred, nil, identity.Resolver{}, nil, log)
	require.NoError(t, err)
	assert.Equal(t, k.Realm, s.Kerberos.Realm)

	krb.Krb5SPN = "HTTP/not-in-the-keytab"
	_, err = siteLogin(krb, nil, identity.Resolver{}, nil, log)
	assert.ErrorContains(t, err, "has no key for HTTP/not-in-the-keytab")

	open := filepath.Join(t.TempDir(), "open.keytab")
	require.NoError(t, os.WriteFile(open, kt, 0o644))
	krb.Krb5Keytab, krb.Krb5SPN = open, k.ServicePrincipal
	_, err = siteLogin(krb, nil, identity.Resolver{}, nil, log)
	assert.ErrorContains(t, err, "mode 0644: it must be readable by its owner only")
}
