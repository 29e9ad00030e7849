// Package metrics is the daemon's Prometheus instrumentation: one registry
// per daemon (no global state, so tests and several daemons in one process
// do not share counters), the seams the other parts report through, and
// the /metrics handler.
//
// Label values are only ever bounded sets: backend names, helper
// operations, error kinds, route patterns, status codes and stored
// statuses. User names, workflow names and ids never become labels; they
// would make a series per user or per run.
package metrics

import (
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/daemon/store"
)

// namespace prefixes every metric of ours.
const namespace = "reana_site"

// Metrics holds the daemon's registry and its instruments. A nil *Metrics
// is valid and records nothing, so parts built without metrics (tests,
// the admin commands) need no stand-in.
type Metrics struct {
	reg *prometheus.Registry

	submissions    *prometheus.CounterVec
	submitDuration *prometheus.HistogramVec
	queries        *prometheus.CounterVec
	queryErrors    *prometheus.CounterVec
	queryDuration  *prometheus.HistogramVec
	schedulerUp    *prometheus.GaugeVec
	helperCalls    *prometheus.CounterVec
	helperFailures *prometheus.CounterVec
	helperDuration *prometheus.HistogramVec
	requests       *prometheus.CounterVec
	reqDuration    *prometheus.HistogramVec
	round          prometheus.Histogram
	storeTx        *prometheus.HistogramVec
}

// Buckets, in seconds. Submissions and helper calls start a process (and
// sbatch or condor_submit may wait on the scheduler), so theirs reach a
// minute; store transactions are usually well below a millisecond.
var (
	slowBuckets  = []float64{.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
	storeBuckets = prometheus.ExponentialBuckets(0.0001, 2.5, 12) // 0.1 ms … ~2.4 s
)

// New makes the registry with every instrument, the Go runtime and process
// collectors, and the counts of runs and jobs read from db at each scrape.
// backends are the site's backends, counted even before they have jobs.
func New(db *store.DB, backends []string) *Metrics {
	m := &Metrics{
		reg:            prometheus.NewRegistry(),
		submissions:    counter("submissions_total", "Job submissions attempted, by backend and result (ok; unavailable: the batch system could not be reached and the job waits; failed: the job failed).", "backend", "result"),
		submitDuration: histogram("submission_duration_seconds", "Time one job submission took, as the engine waited for it, by backend.", slowBuckets, "backend"),
		queries:        counter("scheduler_queries_total", "Status queries of running jobs (one per backend and engine round), by backend.", "backend"),
		queryErrors:    counter("scheduler_query_errors_total", "Status queries that failed, by backend.", "backend"),
		queryDuration:  histogram("scheduler_query_duration_seconds", "Time one status query took, by backend.", slowBuckets, "backend"),
		schedulerUp:    gauge("scheduler_up", "1 when the backend's last status query or submission reached the batch system, 0 when it was unavailable.", "backend"),
		helperCalls:    counter("helper_calls_total", "Helper processes run as a user, by operation.", "op"),
		helperFailures: counter("helper_failures_total", "Helper operations that returned an error, by operation and kind (the protocol's error kind, or \"helper\" when the process itself failed).", "op", "kind"),
		helperDuration: histogram("helper_duration_seconds", "Time a helper operation took, by operation (for uploads and downloads, until the file was handed over).", slowBuckets, "op"),
		requests:       counter("http_requests_total", "API requests answered, by method, route pattern and status code.", "method", "route", "code"),
		reqDuration:    histogram("http_request_duration_seconds", "Time to answer an API request, by method and route pattern.", prometheus.DefBuckets, "method", "route"),
		round: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "engine_round_duration_seconds",
			Help: "Time one engine round took: advancing every active workflow and polling running jobs.", Buckets: slowBuckets}),
		storeTx: histogram("store_transaction_duration_seconds", "Time a store transaction took, by kind (read or write; a write's includes its wait for the single writer).", storeBuckets, "kind"),
	}
	m.reg.MustRegister(m.submissions, m.submitDuration, m.queries, m.queryErrors, m.queryDuration,
		m.schedulerUp, m.helperCalls, m.helperFailures, m.helperDuration, m.requests, m.reqDuration,
		m.round, m.storeTx,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		&countCollector{db: db, backends: backends})
	return m
}

func counter(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: name, Help: help}, labels)
}

func gauge(name, help string, labels ...string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: namespace, Name: name, Help: help}, labels)
}

func histogram(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: name, Help: help, Buckets: buckets}, labels)
}

// Registry is the daemon's registry (for tests and the handler).
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Submitted records one submission to backend that took d and ended with
// err.
func (m *Metrics) Submitted(backend string, d time.Duration, err error) {
	if m == nil {
		return
	}
	result := "ok"
	switch {
	case errors.Is(err, batch.ErrUnavailable):
		result = "unavailable"
	case err != nil:
		result = "failed"
	}
	m.submissions.WithLabelValues(backend, result).Inc()
	m.submitDuration.WithLabelValues(backend).Observe(d.Seconds())
	m.reached(backend, err)
}

// Queried records one status query of backend that took d and ended with
// err.
func (m *Metrics) Queried(backend string, d time.Duration, err error) {
	if m == nil {
		return
	}
	m.queries.WithLabelValues(backend).Inc()
	if err != nil {
		m.queryErrors.WithLabelValues(backend).Inc()
	}
	m.queryDuration.WithLabelValues(backend).Observe(d.Seconds())
	m.reached(backend, err)
}

// reached sets scheduler_up from the outcome of a call to the batch
// system; an error that is not an outage (a job the scheduler refused)
// still shows it answered.
func (m *Metrics) reached(backend string, err error) {
	up := 1.0
	if errors.Is(err, batch.ErrUnavailable) {
		up = 0
	}
	m.schedulerUp.WithLabelValues(backend).Set(up)
}

// Round records one engine round that took d.
func (m *Metrics) Round(d time.Duration) {
	if m == nil {
		return
	}
	m.round.Observe(d.Seconds())
}

// Transaction is a store.TxObserver.
func (m *Metrics) Transaction(kind string, d time.Duration) {
	if m == nil {
		return
	}
	m.storeTx.WithLabelValues(kind).Observe(d.Seconds())
}

// Request records one API request. route is chi's route pattern (for
// example /api/workflows/{w}/status), never the path, which holds workflow
// names; an empty one (nothing matched) is recorded as "unmatched".
func (m *Metrics) Request(method, route string, code int, d time.Duration) {
	if m == nil {
		return
	}
	if route == "" {
		route = "unmatched"
	}
	method = boundedMethod(method)
	m.requests.WithLabelValues(method, route, strconv.Itoa(code)).Inc()
	m.reqDuration.WithLabelValues(method, route).Observe(d.Seconds())
}

// boundedMethod keeps the method label to the standard methods: a client
// may send any token as a method.
func boundedMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "other"
}
