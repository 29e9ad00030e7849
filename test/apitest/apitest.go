// Package apitest builds an api.Server for handler tests: a fresh store,
// a fake batch backend, a real engine and the real helper (the test
// binary's TestMain must call helpertest.MaybeRunHelper).
package apitest

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/api"
	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/daemon/config"
	"github.com/reana-site/reana-site/daemon/engine"
	"github.com/reana-site/reana-site/daemon/identity"
	"github.com/reana-site/reana-site/daemon/store"
	"github.com/reana-site/reana-site/test/fakebackend"
	"github.com/reana-site/reana-site/test/helpertest"
)

// Env is the server and its parts.
type Env struct {
	API     *api.Server
	DB      *store.DB
	Backend *fakebackend.Backend
	Engine  *engine.Engine
	// Acct is the helper's account, the one every request acts as; Dir a
	// directory it owns, the workspace root.
	Acct asuser.Account
	Dir  string
}

// New builds the server; others are the names, besides Acct's, whose
// POSIX accounts the site knows (with uid Acct.UID+1). cfg's workspace
// and secrets roots default to Dir.
func New(t *testing.T, cfg config.Config, log *slog.Logger, others ...string) *Env {
	t.Helper()
	ctx := context.Background()
	runner, acct, dir := helpertest.Runner(t)
	db, err := store.Open(ctx, filepath.Join(t.TempDir(), "reana-site.db"))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	e := &Env{DB: db, Backend: fakebackend.New(), Acct: acct, Dir: dir}
	accountOf := func(name string) (asuser.Account, error) {
		switch {
		case name == acct.Name:
			return acct, nil
		case slices.Contains(others, name):
			return asuser.Account{Name: name, UID: acct.UID + 1, GID: acct.GID, Home: dir}, nil
		}
		return asuser.Account{}, fmt.Errorf("%w: %s", identity.ErrUnknownUser, name)
	}
	e.Engine = &engine.Engine{
		DB: db, Backends: map[string]batch.Backend{"local": e.Backend}, DefaultBackend: "local",
		Account: func(context.Context, string) (asuser.Account, error) { return acct, nil },
		Log:     slog.New(slog.DiscardHandler),
	}
	if cfg.WorkspaceRoot == "" {
		cfg.WorkspaceRoot = dir
	}
	if cfg.SecretsRoot == "" {
		cfg.SecretsRoot = filepath.Join(dir, ".secrets-{user}")
	}
	if cfg.MaxSecretBytes == 0 {
		cfg.MaxSecretBytes = 1 << 20
	}
	e.API = &api.Server{
		DB: db, Engine: e.Engine, Runner: runner, Config: cfg, Version: "test", Log: log,
		Accounts: identity.Resolver{Policy: identity.Policy{MinUID: 1}, Lookup: accountOf},
	}
	t.Cleanup(e.API.Wait)
	return e
}

// AddUser stores a user with a token and returns both.
func (e *Env) AddUser(t *testing.T, name string, uid uint32) (store.User, string) {
	t.Helper()
	ctx := context.Background()
	u, err := e.DB.CreateUser(ctx, store.User{Name: name, UID: uid, Email: name + "@example.org"})
	require.NoError(t, err)
	token, _, err := identity.IssueToken(ctx, e.DB, u.ID, store.TokenFirst)
	require.NoError(t, err)
	return u, token
}

// Tick lets the engine take a few rounds.
func (e *Env) Tick() {
	for range 5 {
		e.Engine.Tick(context.Background())
	}
}
