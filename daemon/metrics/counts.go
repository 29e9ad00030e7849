package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/reana-site/reana-site/daemon/store"
)

// countTimeout bounds the store queries of one scrape.
const countTimeout = 10 * time.Second

var (
	runsDesc = prometheus.NewDesc(namespace+"_runs",
		"Workflow runs in the store, by status.", []string{"status"}, nil)
	jobsDesc = prometheus.NewDesc(namespace+"_jobs",
		"Jobs (one try of one command) in the store, by backend and state.", []string{"backend", "state"}, nil)
)

// countCollector reads the counts of runs and jobs from the store at each
// scrape, so they are always what the store holds, across restarts and
// admin commands, with no counter of ours to keep in step.
type countCollector struct {
	db       *store.DB
	backends []string
}

func (c *countCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- runsDesc
	ch <- jobsDesc
}

func (c *countCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), countTimeout)
	defer cancel()
	n, err := c.db.Count(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(runsDesc, err)
		return
	}
	// Every status is sent, zero or not, so a query over one status does
	// not see a gap where nothing was in it.
	for _, s := range store.WorkflowStatuses() {
		ch <- prometheus.MustNewConstMetric(runsDesc, prometheus.GaugeValue, float64(n.Workflows[s]), string(s))
	}
	jobs := map[store.BackendStatus]int{}
	for _, b := range c.backends {
		for _, s := range store.JobStatuses() {
			jobs[store.BackendStatus{Backend: b, Status: s}] = 0
		}
	}
	// A backend the site no longer offers still has its old jobs counted.
	for k, v := range n.Jobs {
		jobs[k] = v
	}
	for k, v := range jobs {
		ch <- prometheus.MustNewConstMetric(jobsDesc, prometheus.GaugeValue, float64(v), k.Backend, string(k.Status))
	}
}
