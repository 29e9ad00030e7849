package metrics

import (
	"log/slog"
	"net"
	"net/http"
	"net/netip"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Handler serves the registry in the Prometheus exposition format. No
// token is asked for (a Prometheus server has none); when allow is not
// empty, only clients in those networks are answered, others get 403.
func (m *Metrics) Handler(allow []netip.Prefix, log *slog.Logger) http.Handler {
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		// A failing store query drops the counts of runs and jobs from one
		// scrape, not everything else with them.
		ErrorHandling: promhttp.ContinueOnError,
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	})
	if len(allow) == 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !allowed(r.RemoteAddr, allow) {
			http.Error(w, "metrics are not served to this address", http.StatusForbidden)
			return
		}
		h.ServeHTTP(w, r)
	})
}

func allowed(remote string, allow []netip.Prefix) bool {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range allow {
		if p.Contains(a) {
			return true
		}
	}
	return false
}
