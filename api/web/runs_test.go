package web_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/api/web"
	"github.com/reana-site/reana-site/daemon/store"
)

var rowName = regexp.MustCompile(`data-run-name="([^"]+)"`)

// names are the runs a page lists, in order.
func names(body string) []string {
	var out []string
	for _, m := range rowName.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}

// storedRuns makes n runs of alice's straight in the store: name-i, with
// disk use and duration growing with i except where noted.
func (e *env) storedRuns(n int, mod func(i int, w *store.Workflow)) {
	e.t.Helper()
	ctx := context.Background()
	for i := range n {
		w := store.Workflow{OwnerID: e.user.ID, Name: fmt.Sprintf("name-%d", i), Spec: []byte(specJSON),
			InputParameters: []byte("{}"), OperationalOptions: []byte("{}"), WorkspacePath: "/nonexistent/w", JobsPath: "/nonexistent/j"}
		require.NoError(e.t, e.db.CreateWorkflow(ctx, &w))
		_, err := e.db.UpdateWorkflow(ctx, w.ID, func(x *store.Workflow) error {
			s, f := time.Now().Add(-time.Hour), time.Now().Add(-time.Hour+time.Duration(i+1)*time.Minute)
			x.Status, x.StartedAt, x.FinishedAt, x.DiskUsage = store.StatusFinished, &s, &f, int64(i)*1000
			if mod != nil {
				mod(i, x)
			}
			return nil
		})
		require.NoError(e.t, err)
	}
}

func TestRunsListing(t *testing.T) {
	e := newEnv(t, web.Config{})
	e.storedRuns(25, func(i int, w *store.Workflow) {
		switch i {
		case 3:
			w.Status = store.StatusFailed
		case 4:
			w.Status = store.StatusDeleted
		case 5:
			w.DiskUsage = 1 << 40 // the most disk
		}
	})
	e.othersRun()
	b := e.signedIn(e.token)
	tests := []struct {
		name, query string
		status      int
		want        []string // the first names, in order
		count       int
		contains    string
	}{
		{"newest first, first page", "", 200, []string{"name-24.1", "name-23.1"}, 20, `page 1 of 2`},
		{"second page", "?page=2", 200, []string{"name-3.1", "name-2.1"}, 4, `class="page-prev" href="/runs"`},
		{"oldest", "?sort=oldest", 200, []string{"name-0.1", "name-1.1", "name-2.1", "name-3.1", "name-5.1"}, 20, ""},
		{"disk", "?sort=disk", 200, []string{"name-5.1", "name-24.1"}, 20, ""},
		{"duration", "?sort=duration&size=50", 200, []string{"name-24.1", "name-23.1"}, 24, ""},
		{"search", "?q=name-1", 200, []string{"name-19.1"}, 11, ""},
		{"status", "?status=failed", 200, []string{"name-3.1"}, 1, `<option value="failed" selected>`},
		{"show deleted", "?deleted=1&size=50", 200, nil, 25, `id="show-deleted" name="deleted" type="checkbox" value="1" checked`},
		{"deleted only", "?status=deleted", 200, []string{"name-4.1"}, 1, `status-deleted`},
		{"nothing matches", "?q=zzz", 200, nil, 0, "No run matches."},
		{"bad status", "?status=paused", 400, nil, 0, "Unknown status"},
		{"bad sort", "?sort=cpu", 400, nil, 0, "Unknown sort"},
		{"bad page", "?page=0", 400, nil, 0, "must be a number from 1"},
		{"bad size", "?size=7", 400, nil, 0, "page size must be one of"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := b.get("/runs" + tt.query)
			require.Equal(t, tt.status, res.Status, res.Body)
			got := names(res.Body)
			assert.Len(t, got, tt.count)
			if len(tt.want) > 0 {
				require.GreaterOrEqual(t, len(got), len(tt.want))
				assert.Equal(t, tt.want, got[:len(tt.want)])
			}
			assert.Contains(t, res.Body, tt.contains)
			assert.NotContains(t, res.Body, "secret.1", "another user's run never shows")
			if tt.status == 200 {
				rows := b.get("/runs/rows" + tt.query)
				require.Equal(t, 200, rows.Status)
				assert.Equal(t, got, names(rows.Body), "the refreshed rows are the page's")
				assert.NotContains(t, rows.Body, "<html", "a fragment only")
				total := regexp.MustCompile(`id="runs-total">(\d+) runs?<`).FindStringSubmatch(res.Body)
				require.Len(t, total, 2, "the page counts the runs")
				assert.Equal(t, total[1], rows.Header.Get("X-Runs-Total"), "the refresh carries the count the script puts above the table")
			}
		})
	}
	res := b.get("/runs?status=failed&q=name&sort=disk")
	assert.Contains(t, res.Body, `data-refresh-url="/runs/rows?q=name&amp;sort=disk&amp;status=failed"`, "the refresh keeps the page's state")
	assert.Equal(t, http.StatusBadRequest, b.get("/runs/rows?sort=x").Status)
}

func TestRunsRow(t *testing.T) {
	e := newEnv(t, web.Config{})
	b := e.signedIn(e.token)
	res := b.get("/runs")
	assert.Contains(t, res.Body, "No runs yet.", "a useful empty state")
	assert.Contains(t, res.Body, "export REANA_SERVER_URL="+e.srv.URL+"\n")

	r := e.create("fit", nil)
	j := e.start(r)
	res = b.get("/runs")
	row := rowOf(t, res.Body, r.ID)
	assert.Contains(t, row, `data-status="running"`)
	assert.Contains(t, row, `<td class="run-steps">0/1</td>`)
	assert.Contains(t, row, `class="action-stop"`)
	assert.NotContains(t, row, `class="action-delete"`, "a running run cannot be deleted")
	assert.NotContains(t, row, `class="action-restart"`)

	e.finish(j, 0, "done\n")
	row = rowOf(t, b.get("/runs").Body, r.ID)
	assert.Contains(t, row, `data-status="finished"`)
	assert.Contains(t, row, `<td class="run-steps">1/1</td>`)
	assert.Contains(t, row, `class="action-delete"`)
	assert.Contains(t, row, `class="action-restart"`)
	assert.NotContains(t, row, `class="action-stop"`)
	assert.Regexp(t, `<td class="run-disk">\d`, row)
}

func rowOf(t *testing.T, body, id string) string {
	t.Helper()
	i := strings.Index(body, `data-run-id="`+id+`"`)
	require.GreaterOrEqual(t, i, 0, "no row for %s", id)
	end := strings.Index(body[i:], "</tr>")
	return body[i : i+end]
}

func TestRunActions(t *testing.T) {
	e := newEnv(t, web.Config{})
	b := e.signedIn(e.token)
	r := e.create("act", nil)
	j := e.start(r)

	res := b.post("/runs/"+r.ID+"/delete", url.Values{"back": {"/runs"}})
	assert.Equal(t, http.StatusConflict, res.Status, "a running run is not deleted")
	assert.Contains(t, res.Body, "Stop it first.")
	res = b.post("/runs/"+r.ID+"/restart", url.Values{"back": {"/runs"}})
	assert.Equal(t, http.StatusForbidden, res.Status)
	assert.Contains(t, res.Body, "Only finished or failed workflows can be restarted.")

	res = b.post("/runs/"+r.ID+"/stop", url.Values{"back": {"/runs?sort=oldest"}})
	require.Equal(t, http.StatusSeeOther, res.Status, res.Body)
	assert.Equal(t, "/runs?sort=oldest", res.Header.Get("Location"), "back where it was asked")
	e.tick()
	wf, err := e.db.GetWorkflow(context.Background(), r.ID)
	require.NoError(t, err)
	assert.Equal(t, store.StatusStopped, wf.Status)
	res = b.post("/runs/"+r.ID+"/stop", url.Values{"back": {"/runs"}})
	assert.Equal(t, http.StatusConflict, res.Status)
	assert.Contains(t, res.Body, "is not running")

	r2 := e.create("again", nil)
	j2 := e.start(r2)
	e.finish(j2, 0, "ok\n")
	res = b.post("/runs/"+r2.ID+"/restart", url.Values{"back": {"/runs"}})
	require.Equal(t, http.StatusSeeOther, res.Status, res.Body)
	assert.Regexp(t, `^/runs/[0-9a-f-]{36}$`, res.Header.Get("Location"), "to the new run")
	assert.NotEqual(t, "/runs/"+r2.ID, res.Header.Get("Location"))
	e.tick()

	res = b.post("/runs/"+r.ID+"/delete", url.Values{"back": {"https://evil.example/"}})
	require.Equal(t, http.StatusSeeOther, res.Status, res.Body)
	assert.Equal(t, "/runs", res.Header.Get("Location"), "never back to another site")
	wf, err = e.db.GetWorkflow(context.Background(), r.ID)
	require.NoError(t, err)
	assert.Equal(t, store.StatusDeleted, wf.Status)
	_ = j
}

func TestOthersRunIsNotFound(t *testing.T) {
	e := newEnv(t, web.Config{})
	other := e.othersRun()
	b := e.signedIn(e.token)
	for _, p := range []string{"", "/summary", "/files", "/files/x", "/raw/x", "/zip", "/gallery", "/jobs/x/log", "/jobs/x/tail"} {
		res := b.get("/runs/" + other + p)
		assert.Equal(t, http.StatusNotFound, res.Status, p)
		assert.Contains(t, res.Body, "You have no run with this name or id", p)
		assert.NotContains(t, res.Body, "secret", p)
	}
	for _, action := range []string{"stop", "delete", "restart"} {
		res := b.post("/runs/"+other+"/"+action, url.Values{"back": {"/runs"}})
		assert.Equal(t, http.StatusNotFound, res.Status, action)
	}
	wf, err := e.db.GetWorkflow(context.Background(), other)
	require.NoError(t, err)
	assert.Equal(t, store.StatusFinished, wf.Status, "nothing happened to bob's run")
	// By name too: alice has no run called secret.1.
	assert.Equal(t, http.StatusNotFound, b.get("/runs/secret.1").Status)
}

func TestFavicon(t *testing.T) {
	e := newEnv(t, web.Config{})
	res := e.browser().get("/favicon.ico")
	require.Equal(t, http.StatusOK, res.Status)
	assert.Equal(t, "image/svg+xml", res.Header.Get("Content-Type"))
	assert.Contains(t, res.Body, "<svg")
}
