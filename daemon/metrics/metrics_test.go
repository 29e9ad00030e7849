package metrics

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/daemon/store"
	"github.com/reana-site/reana-site/test/harness"
)

func openStore(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "s.db"))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	return db
}

// value reads one figure from the registry the way a scrape sees it.
func value(t *testing.T, m *Metrics, name string, want map[string]string) float64 {
	t.Helper()
	fams, err := m.Registry().Gather()
	require.NoError(t, err)
	scraped := harness.Metrics{}
	for _, f := range fams {
		scraped[f.GetName()] = f
	}
	return scraped.Value(name, want)
}

func TestNilMetricsRecordNothing(t *testing.T) {
	var m *Metrics
	assert.NotPanics(t, func() {
		m.Submitted("slurm", time.Second, nil)
		m.Queried("slurm", time.Second, nil)
		m.Round(time.Second)
		m.Transaction("write", time.Second)
		m.Request("GET", "/api/ping", 200, time.Second)
	})
	next := &fakeOpener{}
	assert.Same(t, asuser.Opener(next), m.Helpers(next))
}

func TestSubmissionsAndQueries(t *testing.T) {
	unavailable := fmt.Errorf("sbatch: %w", batch.ErrUnavailable)
	for _, tc := range []struct {
		name   string
		err    error
		result string
		up     float64
	}{
		{"ok", nil, "ok", 1},
		{"outage", unavailable, "unavailable", 0},
		{"refused job", errors.New("sbatch: invalid partition"), "failed", 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := New(openStore(t), []string{"slurm"})
			m.Submitted("slurm", 20*time.Millisecond, tc.err)
			assert.Equal(t, 1.0, value(t, m, "reana_site_submissions_total", map[string]string{"backend": "slurm", "result": tc.result}))
			assert.Equal(t, 1.0, value(t, m, "reana_site_submission_duration_seconds", map[string]string{"backend": "slurm"}))
			assert.Equal(t, tc.up, value(t, m, "reana_site_scheduler_up", map[string]string{"backend": "slurm"}))

			m.Queried("slurm", time.Millisecond, tc.err)
			assert.Equal(t, 1.0, value(t, m, "reana_site_scheduler_queries_total", map[string]string{"backend": "slurm"}))
			wantErrs := 0.0
			if tc.err != nil {
				wantErrs = 1
			}
			assert.Equal(t, wantErrs, value(t, m, "reana_site_scheduler_query_errors_total", map[string]string{"backend": "slurm"}))
			assert.Equal(t, tc.up, value(t, m, "reana_site_scheduler_up", map[string]string{"backend": "slurm"}))
		})
	}
}

func TestRequestsAreLabelledByPatternAndBoundedMethod(t *testing.T) {
	m := New(openStore(t), nil)
	m.Request("GET", "/api/workflows/{w}/status", 200, time.Millisecond)
	m.Request("BREW", "", 404, time.Millisecond)
	assert.Equal(t, 1.0, value(t, m, "reana_site_http_requests_total", map[string]string{"method": "GET", "route": "/api/workflows/{w}/status", "code": "200"}))
	assert.Equal(t, 1.0, value(t, m, "reana_site_http_requests_total", map[string]string{"method": "other", "route": "unmatched", "code": "404"}))
	assert.Equal(t, 2.0, value(t, m, "reana_site_http_request_duration_seconds", nil))
}

type fakeOpener struct{ err error }

func (f *fakeOpener) Call(context.Context, asuser.Account, asuser.Op, any, any) error { return f.err }

func (f *fakeOpener) Open(context.Context, asuser.Account, asuser.Op, any) (*asuser.Session, error) {
	return nil, f.err
}

func TestHelperCallsAndFailures(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		kind string // "" for no failure
	}{
		{"ok", nil, ""},
		{"protocol error", asuser.Errorf(asuser.KindNotFound, "no such file"), asuser.KindNotFound},
		{"process died", errors.New("asuser: fs.list as alice: signal: killed"), "helper"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := New(openStore(t), nil)
			h := m.Helpers(&fakeOpener{err: tc.err})
			err := h.Call(context.Background(), asuser.Account{Name: "alice"}, asuser.OpFSList, nil, nil)
			assert.Equal(t, tc.err, err, "the error passes unchanged")
			_, _ = h.Open(context.Background(), asuser.Account{Name: "alice"}, asuser.OpFSUpload, nil)
			assert.Equal(t, 1.0, value(t, m, "reana_site_helper_calls_total", map[string]string{"op": "fs.list"}))
			assert.Equal(t, 1.0, value(t, m, "reana_site_helper_calls_total", map[string]string{"op": "fs.upload"}))
			assert.Equal(t, 2.0, value(t, m, "reana_site_helper_duration_seconds", nil))
			if tc.kind == "" {
				assert.Equal(t, 0.0, value(t, m, "reana_site_helper_failures_total", nil))
				return
			}
			assert.Equal(t, 1.0, value(t, m, "reana_site_helper_failures_total", map[string]string{"op": "fs.list", "kind": tc.kind}))
		})
	}
}

func TestCountsComeFromTheStore(t *testing.T) {
	ctx := context.Background()
	db := openStore(t)
	m := New(db, []string{"local", "slurm"})
	u, err := db.CreateUser(ctx, store.User{Name: "alice", UID: 1001})
	require.NoError(t, err)
	for i, st := range []store.WorkflowStatus{store.StatusRunning, store.StatusRunning, store.StatusFinished} {
		w := &store.Workflow{OwnerID: u.ID, Name: "wf", Status: st}
		require.NoError(t, db.CreateWorkflow(ctx, w))
		require.NoError(t, db.CreateJob(ctx, &store.Job{WorkflowID: w.ID, StepIndex: i, Backend: "slurm", Status: store.JobRunning}))
	}
	assert.Equal(t, 2.0, value(t, m, "reana_site_runs", map[string]string{"status": "running"}))
	assert.Equal(t, 1.0, value(t, m, "reana_site_runs", map[string]string{"status": "finished"}))
	assert.Equal(t, 3.0, value(t, m, "reana_site_jobs", map[string]string{"backend": "slurm", "state": "running"}))

	fams, err := m.Registry().Gather()
	require.NoError(t, err)
	series := map[string]int{}
	for _, f := range fams {
		series[f.GetName()] = len(f.GetMetric())
	}
	assert.Equal(t, len(store.WorkflowStatuses()), series["reana_site_runs"], "every status, zero or not")
	assert.Equal(t, 2*len(store.JobStatuses()), series["reana_site_jobs"], "every state of every backend of the site")
	assert.Positive(t, series["go_goroutines"])
	assert.Positive(t, series["process_open_fds"])

	// The store's transactions are seen once the daemon hooks them up.
	db.ObserveTransactions(m.Transaction)
	_, err = db.Count(ctx)
	require.NoError(t, err)
	// (The scrape's own count may be seen too, or not yet.)
	assert.GreaterOrEqual(t, value(t, m, "reana_site_store_transaction_duration_seconds", map[string]string{"kind": "read"}), 1.0)
}

func TestHandlerRefusesOtherNetworks(t *testing.T) {
	allow := []netip.Prefix{netip.MustParsePrefix("10.1.0.0/16"), netip.MustParsePrefix("::1/128")}
	for _, tc := range []struct {
		remote string
		allow  []netip.Prefix
		code   int
	}{
		{"192.0.2.7:5000", nil, http.StatusOK},
		{"10.1.2.3:5000", allow, http.StatusOK},
		{"[::ffff:10.1.2.3]:5000", allow, http.StatusOK},
		{"[::1]:5000", allow, http.StatusOK},
		{"10.2.0.1:5000", allow, http.StatusForbidden},
		{"garbage", allow, http.StatusForbidden},
	} {
		t.Run(tc.remote, func(t *testing.T) {
			h := New(openStore(t), nil).Handler(tc.allow, slog.New(slog.NewTextHandler(io.Discard, nil)))
			req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
			req.RemoteAddr = tc.remote
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			assert.Equal(t, tc.code, rec.Code)
			if tc.code == http.StatusOK {
				assert.Contains(t, rec.Body.String(), "reana_site_runs{status=\"queued\"} 0")
			}
		})
	}
}
