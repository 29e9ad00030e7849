//go:build bench

package bench

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/test/harness"
)

// TestBenchMetricsScrape: one Prometheus scrape of /metrics with 10,000
// runs (and 20,000 jobs) in the store, which counts both at every scrape.
func TestBenchMetricsScrape(t *testing.T) {
	d := harness.StartDaemon(t, env)
	d.AddUser(t, "alice")
	seedRuns(t, d, "alice", 10000, 2)

	var lat []time.Duration
	for i := 0; i < 100; i++ {
		start := time.Now()
		code, body, err := d.Do(http.MethodGet, "/metrics", "", nil)
		lat = append(lat, time.Since(start))
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code, "%s", body)
		if i == 0 {
			m, err := harness.ParseMetrics(body)
			require.NoError(t, err)
			require.Equal(t, 10000.0, m.Value("reana_site_runs", map[string]string{"status": "finished"}))
			require.Equal(t, 20000.0, m.Value("reana_site_jobs", map[string]string{"backend": "local", "state": "finished"}))
		}
	}
	report("metrics_scrape_ms", float64(p99(lat).Microseconds())/1000, "ms", "< 50")
}
