package web_test

import (
	"context"
	"net/http"
	"net/url"
	"os/user"
	"regexp"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/api"
	"github.com/reana-site/reana-site/api/web"
	"github.com/reana-site/reana-site/daemon/identity"
	"github.com/reana-site/reana-site/daemon/store"
)

var exportToken = regexp.MustCompile(`export REANA_ACCESS_TOKEN=(\S+)</pre>`)

func TestProfileAndTokenRotate(t *testing.T) {
	e := newEnv(t, web.Config{PublicURL: "https://reana.example.org:8443"}, func(s *api.Server) { s.Config.DiskQuotaBytes = 1000 })
	b := e.signedIn(e.token)
	ctx := context.Background()
	r := e.create("q", nil)
	_, err := e.db.UpdateWorkflow(ctx, r.ID, func(w *store.Workflow) error { w.DiskUsage = 900; return nil })
	require.NoError(t, err)

	res := b.get("/profile")
	require.Equal(t, http.StatusOK, res.Status)
	for _, want := range []string{
		`<dd id="profile-user">` + e.acct.Name + `</dd>`,
		`<dd id="profile-uid">` + strconv.Itoa(int(e.acct.UID)) + ` / ` + strconv.Itoa(int(e.acct.GID)) + `</dd>`,
		`<span id="disk-used">900 Bytes</span> of <span id="disk-quota">1000 Bytes</span>`,
		`class="health-warning"`, "nearly used up",
		"export REANA_SERVER_URL=https://reana.example.org:8443\nexport REANA_ACCESS_TOKEN=&lt;your token&gt;",
		"You have a token ending in <code>" + e.token[len(e.token)-4:] + "</code>",
	} {
		assert.Contains(t, res.Body, want)
	}
	if g, err := user.LookupGroupId(strconv.Itoa(int(e.acct.GID))); err == nil {
		assert.Contains(t, res.Body, g.Name+" (")
	}
	assert.NotContains(t, res.Body, e.token, "the token is never shown again")

	res = b.post("/profile/token", nil)
	require.Equal(t, http.StatusOK, res.Status)
	m := exportToken.FindStringSubmatch(res.Body)
	require.Len(t, m, 2, res.Body)
	fresh := m[1]
	assert.Contains(t, res.Body, "export REANA_SERVER_URL=https://reana.example.org:8443\nexport REANA_ACCESS_TOKEN="+fresh)
	assert.Equal(t, "no-store", res.Header.Get("Cache-Control"))
	_, _, err = e.db.UserByTokenHash(ctx, identity.HashToken(e.token))
	assert.ErrorIs(t, err, store.ErrRevoked, "the old token ends")
	u, _, err := e.db.UserByTokenHash(ctx, identity.HashToken(fresh))
	require.NoError(t, err)
	assert.Equal(t, e.user.ID, u.ID)

	res = b.get("/profile")
	assert.NotContains(t, res.Body, fresh, "shown once")
	assert.NotContains(t, e.logs.String(), fresh, "never logged")
	assert.Equal(t, http.StatusOK, b.get("/runs").Status, "the session outlives the token it began with")

	_, err = e.db.UpdateWorkflow(ctx, r.ID, func(w *store.Workflow) error { w.DiskUsage = 2000; return nil })
	require.NoError(t, err)
	assert.Contains(t, b.get("/profile").Body, "Your disk quota is used up")
}

func TestProfileWithoutToken(t *testing.T) {
	e := newEnv(t, web.Config{})
	b := e.signedIn(e.token)
	_, err := e.db.RevokeTokens(context.Background(), e.user.ID)
	require.NoError(t, err)
	res := b.get("/profile")
	assert.Contains(t, res.Body, "You have no token yet.")
	assert.Contains(t, res.Body, "(no quota on this site)")
	assert.Contains(t, res.Body, "Make me a token")
}

func TestAdminPage(t *testing.T) {
	e := newEnv(t, web.Config{})
	b := e.signedIn(e.token)
	res := b.get("/admin")
	assert.Equal(t, http.StatusForbidden, res.Status, "not an admin")
	assert.Contains(t, res.Body, "REANA_SITE_ADMIN_GROUPS")
	assert.NotContains(t, b.get("/runs").Body, `id="nav-admin"`)

	g, err := user.LookupGroupId(strconv.Itoa(int(e.acct.GID)))
	require.NoError(t, err)
	e.web.Config.AdminGroups = []string{g.Name}
	r := e.create("busy", nil)
	e.start(r)
	res = b.get("/admin")
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	for _, want := range []string{
		`<tr class="user" data-user="` + e.acct.Name + `">`, `<tr class="user" data-user="bob">`,
		`<td class="backend-running">1</td>`, `status-running`, `class="token-age"`,
	} {
		assert.Contains(t, res.Body, want)
	}
	assert.Contains(t, b.get("/runs").Body, `id="nav-admin"`)
	res = b.post("/admin", url.Values{})
	assert.Equal(t, http.StatusMethodNotAllowed, res.Status, "read-only")
}

func TestAdminEmpty(t *testing.T) {
	e := newEnv(t, web.Config{})
	g, err := user.LookupGroupId(strconv.Itoa(int(e.acct.GID)))
	require.NoError(t, err)
	e.web.Config.AdminGroups = []string{g.Name}
	res := e.signedIn(e.token).get("/admin")
	assert.Contains(t, res.Body, "No run is active.")
	assert.Contains(t, res.Body, "No jobs yet.")
}

// TestAdminChecks: the admin page lists the site's health checks, escaped,
// asking the site's function with the request's context; without one,
// the section is not there.
func TestAdminChecks(t *testing.T) {
	e := newEnv(t, web.Config{})
	g, err := user.LookupGroupId(strconv.Itoa(int(e.acct.GID)))
	require.NoError(t, err)
	e.web.Config.AdminGroups = []string{g.Name}
	b := e.signedIn(e.token)
	assert.NotContains(t, b.get("/admin").Body, `id="admin-checks"`, "no checks given")

	calls := 0
	e.web.Config.Checks = func(ctx context.Context) []web.Check {
		calls++
		assert.NoError(t, ctx.Err())
		return []web.Check{
			{Name: "apptainer", Status: web.CheckOK, Detail: "/usr/bin/apptainer is apptainer version 1.4.5"},
			{Name: "sif", Status: web.CheckWarning, Detail: "gocryptfs is not installed"},
			{Name: "tls", Status: web.CheckProblem, Detail: "<cert> expired"},
		}
	}
	res := b.get("/admin")
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	assert.Equal(t, 1, calls)
	for _, want := range []string{
		`<table id="admin-checks">`,
		`<tr class="check" data-status="ok"><td class="check-name">apptainer</td><td class="check-status"><span class="status status-ok">ok</span></td><td class="check-detail">/usr/bin/apptainer is apptainer version 1.4.5</td></tr>`,
		`<tr class="check" data-status="warning"><td class="check-name">sif</td>`,
		`<span class="status status-problem">problem</span></td><td class="check-detail">&lt;cert&gt; expired</td>`,
	} {
		assert.Contains(t, res.Body, want)
	}

	e.web.Config.Checks = func(context.Context) []web.Check { return nil }
	assert.Contains(t, b.get("/admin").Body, "No check answered.")

	e.web.Config.AdminGroups = nil
	e.web.Config.Checks = func(context.Context) []web.Check { t.Error("checks run for a non-admin"); return nil }
	assert.Equal(t, http.StatusForbidden, b.get("/admin").Status)
}
