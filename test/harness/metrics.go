package harness

import (
	"bytes"
	"fmt"
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/stretchr/testify/require"
)

// Metrics is one scrape of a daemon's /metrics, parsed.
type Metrics map[string]*dto.MetricFamily

// Scrape reads the daemon's /metrics, without a token, and parses it as
// Prometheus does.
func (d *Daemon) Scrape(t testing.TB) Metrics {
	t.Helper()
	code, body, err := d.Do(http.MethodGet, "/metrics", "", nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, code, string(body))
	m, err := ParseMetrics(body)
	require.NoError(t, err)
	return m
}

// ParseMetrics parses the Prometheus text format.
func ParseMetrics(body []byte) (Metrics, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("parse metrics: %w", err)
	}
	return fams, nil
}

// Value sums the series of family name whose labels include labels: a
// counter's or gauge's value, a histogram's count of observations.
func (m Metrics) Value(name string, labels map[string]string) float64 {
	f := m[name]
	if f == nil {
		return 0
	}
	var sum float64
	for _, s := range f.GetMetric() {
		if !hasLabels(s, labels) {
			continue
		}
		switch {
		case s.Counter != nil:
			sum += s.Counter.GetValue()
		case s.Gauge != nil:
			sum += s.Gauge.GetValue()
		case s.Histogram != nil:
			sum += float64(s.Histogram.GetSampleCount())
		case s.Untyped != nil:
			sum += s.Untyped.GetValue()
		}
	}
	return sum
}

// LabelValues lists every label value of every series, to check that no
// user or workflow name became one.
func (m Metrics) LabelValues() []string {
	var out []string
	for _, f := range m {
		for _, s := range f.GetMetric() {
			for _, l := range s.GetLabel() {
				out = append(out, l.GetValue())
			}
		}
	}
	return out
}

func hasLabels(s *dto.Metric, want map[string]string) bool {
	have := map[string]string{}
	for _, l := range s.GetLabel() {
		have[l.GetName()] = l.GetValue()
	}
	for k, v := range want {
		if have[k] != v {
			return false
		}
	}
	return true
}
