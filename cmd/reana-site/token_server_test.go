package main

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/api/login"
	"github.com/reana-site/reana-site/daemon/identity"
	"github.com/reana-site/reana-site/daemon/store"
	"github.com/reana-site/reana-site/test/harness"
)

// The real KDC, a real ticket in a FILE cache, and the sign-in service
// behind a certificate for localhost that only --cacert makes trusted.
func TestServerToken(t *testing.T) {
	k := harness.StartKDC(t)
	ctx := context.Background()
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "reana-site.db"))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	_, err = db.CreateUser(ctx, store.User{Name: "alice", UID: 4101})
	require.NoError(t, err)
	krb, err := login.NewKerberos(k.ServiceKeytab, k.ServicePrincipal, 5*time.Minute)
	require.NoError(t, err)
	svc := &login.Service{DB: db, Kerberos: krb, Log: slog.New(slog.DiscardHandler),
		Mapper: identity.Mapper{Realms: []string{k.Realm}, Accounts: identity.Resolver{Policy: identity.Policy{MinUID: 1000}}}}
	r := chi.NewRouter()
	r.Mount("/site", svc.Handler())
	certPath, keyPath, err := ensureSelfSigned(t.TempDir())
	require.NoError(t, err)
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	require.NoError(t, err)
	srv := httptest.NewUnstartedServer(r)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	url := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	otherCA, _, err := ensureSelfSigned(t.TempDir())
	require.NoError(t, err)
	t.Setenv("KRB5_CONFIG", k.Config)

	t.Run("alice", func(t *testing.T) {
		t.Setenv("KRB5CCNAME", "FILE:"+k.Kinit(t, "alice", ""))
		a, err := serverToken(ctx, url, "", certPath)
		require.NoError(t, err)
		assert.Equal(t, "alice", a.User)
		u, _, err := db.UserByTokenHash(ctx, identity.HashToken(a.Token))
		require.NoError(t, err)
		assert.Equal(t, "alice", u.Name)
		assert.Contains(t, a.Export, "export REANA_ACCESS_TOKEN="+a.Token)
	})
	for _, tc := range []struct {
		name, ccache, cacert, server, want string
	}{
		{"two-component principal", "alice/admin", certPath, url, "403 Forbidden: alice/admin@" + k.Realm + " may not use this service"},
		{"untrusted certificate", "alice", otherCA, url, "certificate"},
		{"no ticket", "", certPath, url, "run kinit first"},
		{"keyring cache", "KEYRING:persistent:4101", certPath, url, "is not a file"},
		{"http", "alice", certPath, strings.Replace(url, "https", "http", 1), "must be an https URL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			switch {
			case tc.ccache == "":
				t.Setenv("KRB5CCNAME", filepath.Join(t.TempDir(), "none"))
			case strings.Contains(tc.ccache, ":"):
				t.Setenv("KRB5CCNAME", tc.ccache)
			default:
				t.Setenv("KRB5CCNAME", k.Kinit(t, tc.ccache, ""))
			}
			_, err := serverToken(ctx, tc.server, "", tc.cacert)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
}
