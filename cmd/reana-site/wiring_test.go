package main

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/daemon/config"
	"github.com/reana-site/reana-site/daemon/store"
)

// TestEveryKindHasABuilder: a backend added to batch.Kinds must be
// buildable by serve, and serve builds nothing that is not in the table.
func TestEveryKindHasABuilder(t *testing.T) {
	builders := backendBuilders()
	var names []string
	for _, k := range batch.Kinds() {
		names = append(names, k.Name)
		assert.Contains(t, builders, k.Name)
	}
	for name := range builders {
		assert.Contains(t, names, name)
	}
}

// TestHandlerRoutes: the API keeps its paths, /site/* is left to the
// identity package, and the web pages get the rest, unless turned off.
func TestHandlerRoutes(t *testing.T) {
	for _, on := range []bool{true, false} {
		cfg, err := config.Load()
		require.NoError(t, err)
		cfg.Web = on
		cfg.StateDir = t.TempDir()
		db, err := store.Open(context.Background(), filepath.Join(cfg.StateDir, "reana-site.db"))
		require.NoError(t, err)
		defer db.Close()
		d, err := wire(cfg, db, slog.New(slog.DiscardHandler))
		require.NoError(t, err)
		if on {
			// The admin page gets the doctor's daemon-safe checks, run
			// for real here.
			require.NotNil(t, d.web.Config.Checks)
			var names []string
			for _, c := range d.web.Config.Checks(context.Background()) {
				names = append(names, c.Name)
			}
			assert.Contains(t, names, "tls")
			assert.NotContains(t, names, "listen", "the daemon does not bind its own address")
		}
		h := d.handler()
		for path, want := range map[string]string{
			"/api/ping": "application/json",
			"/site/x":   "application/json",
			"/signin":   map[bool]string{true: "text/html; charset=utf-8", false: "application/json"}[on],
			"/":         map[bool]string{true: "text/html; charset=utf-8", false: "application/json"}[on], // a redirect to sign in, or the API's 404
		} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
			assert.Equal(t, want, rec.Header().Get("Content-Type"), "web %v, %s", on, path)
		}
	}
}

// TestWireSignIn: with OIDC set up and the web pages on, browser sign-ins
// start the pages' sessions, the sign-in page offers them, and failed
// sign-ins count in the API's limiter.
func TestWireSignIn(t *testing.T) {
	cfg, err := config.Load()
	require.NoError(t, err)
	cfg.Web, cfg.StateDir = true, t.TempDir()
	cfg.OIDCIssuer, cfg.OIDCClientID, cfg.OIDCRedirectURL, cfg.OIDCLabel = "https://sso.example.org", "reana", "https://reana.example.org:8443/site/oidc/callback", "Sign in with Example SSO"
	db, err := store.Open(context.Background(), filepath.Join(cfg.StateDir, "reana-site.db"))
	require.NoError(t, err)
	defer db.Close()
	d, err := wire(cfg, db, slog.New(slog.DiscardHandler))
	require.NoError(t, err)
	require.NotNil(t, d.login)
	assert.Same(t, d.web.Sessions, d.login.Sessions)
	assert.Same(t, d.api.AuthFailures, d.login.Failures)

	rec := httptest.NewRecorder()
	d.handler().ServeHTTP(rec, httptest.NewRequest("GET", "/signin", nil))
	assert.Contains(t, rec.Body.String(), `href="/site/login/oidc"`)
	assert.Contains(t, rec.Body.String(), "Sign in with Example SSO")
}
