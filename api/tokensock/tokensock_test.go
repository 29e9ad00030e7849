package tokensock_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/api/localsock"
	"github.com/reana-site/reana-site/api/tokensock"
	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/daemon/identity"
	"github.com/reana-site/reana-site/daemon/store"
	"github.com/reana-site/reana-site/test/helpertest"
)

// clientEnv makes the test binary a token-socket client: it asks the
// socket in $clientEnv for $clientAction and prints the status and body.
// Under root the tests run it as the test user, since the socket refuses
// root and the kernel, not the test, says who calls.
const (
	clientEnv    = "REANA_SITE_TEST_TOKEN_CLIENT"
	clientAction = "REANA_SITE_TEST_TOKEN_ACTION"
)

// loginLinkAction makes the client ask for a login link instead.
const loginLinkAction = "login-link"

func TestMain(m *testing.M) {
	helpertest.MaybeRunHelper()
	if sock := os.Getenv(clientEnv); sock != "" {
		os.Exit(runClient(sock, os.Getenv(clientAction)))
	}
	os.Exit(m.Run())
}

func runClient(sock, action string) int {
	target := "http://token/token?action=" + action
	if action == loginLinkAction {
		target = "http://token/login-link"
	}
	res, err := localsock.Client(sock, 10*time.Second).Post(target, "", nil)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	fmt.Printf("%d %s", res.StatusCode, b)
	return 0
}

type fixture struct {
	db   *store.DB
	srv  *tokensock.Server
	sock string
	acct asuser.Account
	exe  string
}

// newFixture serves a token socket for the account the test binary's
// client runs as; adjust changes the server before it starts.
func newFixture(t *testing.T, adjust func(f *fixture)) *fixture {
	t.Helper()
	runner, acct, dir := helpertest.Runner(t)
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "reana-site.db"))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	f := &fixture{db: db, acct: acct, exe: runner.Exe, sock: filepath.Join(dir, "token.sock")}
	f.srv = &tokensock.Server{
		DB:       db,
		Accounts: identity.Resolver{Policy: identity.Policy{MinUID: 1}},
		Enabled:  true,
		Log:      slog.New(slog.DiscardHandler),
		LookupUID: func(uid uint32) (asuser.Account, error) {
			if uid == acct.UID {
				return acct, nil
			}
			return asuser.Account{}, errors.New("no such uid")
		},
	}
	if adjust != nil {
		adjust(f)
	}
	ln, err := localsock.Listen(f.sock, 0o666)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = f.srv.Serve(ctx, ln)
	}()
	t.Cleanup(func() { cancel(); <-done })
	return f
}

// ask calls the socket as the fixture's account, from another process
// when that account is not this process's.
func (f *fixture) ask(t *testing.T, action string) (int, tokensock.Answer) {
	t.Helper()
	cmd := exec.Command(f.exe)
	cmd.Env = append(os.Environ(), clientEnv+"="+f.sock, clientAction+"="+action)
	if uint32(os.Geteuid()) != f.acct.UID {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: f.acct.UID, Gid: f.acct.GID}}
	}
	out, err := cmd.Output()
	require.NoError(t, err, "client: %s", out)
	var status int
	var body string
	_, err = fmt.Sscanf(string(out), "%d", &status)
	require.NoError(t, err, "client: %s", out)
	body = string(out[len(fmt.Sprint(status))+1:])
	var a tokensock.Answer
	require.NoError(t, json.Unmarshal([]byte(body), &a), "%s", body)
	return status, a
}

// tokenWorks tells whether the token authenticates its user.
func (f *fixture) tokenWorks(t *testing.T, token string) bool {
	t.Helper()
	u, _, err := f.db.UserByTokenHash(context.Background(), identity.HashToken(token))
	if err != nil {
		return false
	}
	assert.Equal(t, f.acct.Name, u.Name)
	return true
}

func TestIssueRotateRevoke(t *testing.T) {
	f := newFixture(t, nil)
	status, a := f.ask(t, tokensock.ActionIssue)
	require.Equal(t, http.StatusOK, status, a.Message)
	assert.Equal(t, f.acct.Name, a.User)
	assert.Equal(t, "Your REANA access token.", a.Message)
	first := a.Token
	assert.True(t, f.tokenWorks(t, first))

	status, a = f.ask(t, tokensock.ActionIssue)
	assert.Equal(t, http.StatusConflict, status)
	assert.Contains(t, a.Message, "You already have a token (ending in "+first[len(first)-4:])
	assert.Empty(t, a.Token)

	status, a = f.ask(t, tokensock.ActionRotate)
	require.Equal(t, http.StatusOK, status, a.Message)
	second := a.Token
	assert.NotEqual(t, first, second)
	assert.False(t, f.tokenWorks(t, first), "rotating ends the old token")
	assert.True(t, f.tokenWorks(t, second))

	status, a = f.ask(t, tokensock.ActionRevoke)
	require.Equal(t, http.StatusOK, status, a.Message)
	assert.Equal(t, "Your tokens are revoked.", a.Message)
	assert.Empty(t, a.Token)
	assert.False(t, f.tokenWorks(t, second))

	status, a = f.ask(t, tokensock.ActionIssue)
	assert.Equal(t, http.StatusOK, status, "after a revoke, issue gives a token again: %s", a.Message)
}

func TestRefusals(t *testing.T) {
	tests := []struct {
		name   string
		adjust func(f *fixture)
		action string
		status int
		msg    string
	}{
		{"unknown action", nil, "steal", http.StatusBadRequest, `Unknown action "steal": use issue, rotate or revoke.`},
		{"self-service off", func(f *fixture) { f.srv.Enabled = false }, tokensock.ActionIssue, http.StatusForbidden, "Self-service tokens are turned off on this site"},
		{"unknown uid", func(f *fixture) {
			f.srv.LookupUID = func(uint32) (asuser.Account, error) { return asuser.Account{}, errors.New("no such uid") }
		}, tokensock.ActionIssue, http.StatusForbidden, "is not known to this site: no such uid."},
		{"site policy", func(f *fixture) { f.srv.Accounts.Policy.MinUID = f.acct.UID + 1 }, tokensock.ActionIssue, http.StatusForbidden, "Access refused: "},
		{"not in the self-service groups", func(f *fixture) { f.srv.Groups = []string{"reana-site-test-no-such-group"} }, tokensock.ActionIssue, http.StatusForbidden, "Self-service tokens are for members of"},
		{"removed by the admins", func(f *fixture) {
			ctx := context.Background()
			_, err := f.db.CreateUser(ctx, store.User{Name: f.acct.Name, UID: f.acct.UID})
			require.NoError(t, err)
			require.NoError(t, f.db.RemoveUser(ctx, f.acct.Name))
		}, tokensock.ActionIssue, http.StatusForbidden, "was removed from this service by its admins."},
		{"account changed", func(f *fixture) {
			_, err := f.db.CreateUser(context.Background(), store.User{Name: f.acct.Name, UID: f.acct.UID + 1})
			require.NoError(t, err)
		}, tokensock.ActionIssue, http.StatusForbidden, "changed (uid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.adjust)
			status, a := f.ask(t, tt.action)
			assert.Equal(t, tt.status, status, a.Message)
			assert.Contains(t, a.Message, tt.msg)
			assert.Empty(t, a.Token)
		})
	}
}

// TestRootIsRefused calls from this process, which must be root.
func TestRootIsRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("only root can call the socket as root")
	}
	f := newFixture(t, nil)
	res, err := localsock.Client(f.sock, 5*time.Second).Post("http://token/token?action=issue", "", nil)
	require.NoError(t, err)
	defer res.Body.Close()
	var a tokensock.Answer
	require.NoError(t, json.NewDecoder(res.Body).Decode(&a))
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
	assert.Contains(t, a.Message, "root has no REANA token")
}

func TestLoginLink(t *testing.T) {
	link := func(f *fixture) {
		f.srv.LoginLink = func(_ context.Context, u store.User) (string, time.Time, error) {
			return "https://site.example/signin/link?k=for-" + u.Name, time.Now().Add(10 * time.Minute), nil
		}
	}
	addUser := func(f *fixture) {
		_, err := f.db.CreateUser(context.Background(), store.User{Name: f.acct.Name, UID: f.acct.UID})
		require.NoError(t, err)
	}
	tests := []struct {
		name   string
		adjust func(f *fixture)
		status int
		msg    string
	}{
		{"a link, the user made on first use", link, http.StatusOK, "it works once"},
		{"web pages off", nil, http.StatusNotFound, "REANA_SITE_WEB"},
		{"self-service off, user unknown", func(f *fixture) { link(f); f.srv.Enabled = false }, http.StatusForbidden, "is not a user of this service yet"},
		{"self-service off, user added by the admins", func(f *fixture) { link(f); f.srv.Enabled = false; addUser(f) }, http.StatusOK, "it works once"},
		{"not in the self-service groups", func(f *fixture) { link(f); f.srv.Groups = []string{"reana-site-test-no-such-group"} }, http.StatusForbidden, "is not a user of this service yet"},
		{"removed by the admins", func(f *fixture) {
			link(f)
			addUser(f)
			require.NoError(t, f.db.RemoveUser(context.Background(), f.acct.Name))
		}, http.StatusForbidden, "was removed from this service"},
		{"site policy", func(f *fixture) { link(f); f.srv.Accounts.Policy.MinUID = f.acct.UID + 1 }, http.StatusForbidden, "Access refused: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.adjust)
			status, a := f.ask(t, loginLinkAction)
			assert.Equal(t, tt.status, status, a.Message)
			assert.Contains(t, a.Message, tt.msg)
			assert.Empty(t, a.Token)
			if status == http.StatusOK {
				assert.Equal(t, "https://site.example/signin/link?k=for-"+f.acct.Name, a.Link)
			} else {
				assert.Empty(t, a.Link)
			}
		})
	}
}
