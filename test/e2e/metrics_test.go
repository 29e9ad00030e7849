//go:build e2e

package e2e

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestMetricsMoveAsAWorkflowRuns scrapes /metrics without a token before
// and after a two-step workflow and checks that what it did shows, under
// labels that never name the user or the workflow.
func TestMetricsMoveAsAWorkflowRuns(t *testing.T) {
	d := StartDaemon(t)
	alice := d.AddUser(t, "alice")
	dir := alice.WorkDir(t, "root6-fit")
	before := d.Scrape(t)

	alice.MustClient(t, dir, "run", "-w", "root6-fit", "-p", "events=200")
	alice.WaitStatus(t, "root6-fit.1", 3*time.Minute, "finished")
	after := d.Scrape(t)

	moved := []struct {
		name   string
		labels map[string]string
		min    float64 // the least it must have grown by
	}{
		{"reana_site_runs", map[string]string{"status": "finished"}, 1},
		{"reana_site_jobs", map[string]string{"backend": "local", "state": "finished"}, 2},
		{"reana_site_submissions_total", map[string]string{"backend": "local", "result": "ok"}, 2},
		{"reana_site_submission_duration_seconds", map[string]string{"backend": "local"}, 2},
		{"reana_site_scheduler_queries_total", map[string]string{"backend": "local"}, 1},
		{"reana_site_scheduler_query_duration_seconds", map[string]string{"backend": "local"}, 1},
		{"reana_site_helper_calls_total", map[string]string{"op": "job.start"}, 2},
		{"reana_site_helper_calls_total", map[string]string{"op": "fs.upload"}, 1},
		{"reana_site_helper_duration_seconds", map[string]string{"op": "fs.create"}, 1},
		{"reana_site_http_requests_total", map[string]string{"method": "GET", "route": "/api/workflows/{w}/status", "code": "200"}, 1},
		{"reana_site_http_requests_total", map[string]string{"method": "POST", "route": "/api/workflows/{w}/start"}, 1},
		{"reana_site_http_request_duration_seconds", map[string]string{"route": "/api/workflows"}, 1},
		{"reana_site_engine_round_duration_seconds", nil, 1},
		{"reana_site_store_transaction_duration_seconds", map[string]string{"kind": "write"}, 1},
	}
	for _, m := range moved {
		assert.GreaterOrEqual(t, after.Value(m.name, m.labels)-before.Value(m.name, m.labels), m.min, "%s%v", m.name, m.labels)
	}
	assert.Equal(t, 0.0, after.Value("reana_site_runs", map[string]string{"status": "running"}))
	assert.Equal(t, 1.0, after.Value("reana_site_scheduler_up", map[string]string{"backend": "local"}))
	for _, name := range []string{"go_goroutines", "process_resident_memory_bytes", "process_open_fds"} {
		assert.Contains(t, after, name)
	}
	for _, v := range after.LabelValues() {
		assert.NotContains(t, v, "alice")
		assert.NotContains(t, v, "root6-fit")
	}
}

// TestMetricsRefusedBySite: a site can turn /metrics off (404, like any
// unknown path) or serve it only to some networks (403 elsewhere).
func TestMetricsRefusedBySite(t *testing.T) {
	for _, tc := range []struct {
		env  string
		code int
	}{
		{"REANA_SITE_METRICS=false", http.StatusNotFound},
		{"REANA_SITE_METRICS_ALLOW=192.0.2.0/24", http.StatusForbidden},
		{"REANA_SITE_METRICS_ALLOW=192.0.2.0/24,127.0.0.1", http.StatusOK},
	} {
		t.Run(tc.env, func(t *testing.T) {
			d := StartDaemon(t, tc.env)
			code, body, err := d.Do(http.MethodGet, "/metrics", "", nil)
			require.NoError(t, err)
			assert.Equal(t, tc.code, code, string(body))
			if tc.code == http.StatusOK {
				assert.True(t, strings.Contains(string(body), "reana_site_runs"), "no runs in the scrape")
			}
		})
	}
}
