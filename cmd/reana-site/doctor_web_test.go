package main

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/api/web"
	"github.com/reana-site/reana-site/daemon/config"
)

// TestDoctorInDaemon: the checks the admin page shows leave out running
// an image, the cluster's dry run, the engines' interpreter and binding
// the daemon's address; the doctor itself still does them.
func TestDoctorInDaemon(t *testing.T) {
	cfg, err := config.Load()
	require.NoError(t, err)
	cfg.Backends = append(cfg.Backends, "kubernetes")
	cfg.EnginePython = "/usr/bin/python3"
	for _, tc := range []struct {
		name     string
		inDaemon bool
	}{{"doctor", false}, {"daemon", true}} {
		t.Run(tc.name, func(t *testing.T) {
			env := fakeEnv(t, map[string]string{"apptainer": "/usr/bin/apptainer"})
			var left []string
			env.KubePreflight = func(context.Context, config.Config) error { left = append(left, "kubernetes"); return nil }
			env.Listen = func(string) (net.Listener, error) {
				left = append(left, "listen")
				return net.Listen("tcp", "127.0.0.1:0")
			}
			run := env.Run
			env.Run = func(ctx context.Context, argv ...string) (string, error) {
				if argv[0] == cfg.EnginePython {
					left = append(left, "engines")
				}
				return run(ctx, argv...)
			}
			found := strings_(env.checkAll(context.Background(), cfg, doctorOptions{InDaemon: tc.inDaemon}))
			joined := strings.Join(found, "\n")
			if tc.inDaemon {
				assert.Empty(t, left, "run in the daemon")
				for _, not := range []string{": kubernetes:", ": workflow engines:", ": listen:"} {
					assert.NotContains(t, joined, not)
				}
			} else {
				assert.ElementsMatch(t, []string{"kubernetes", "engines", "listen"}, left)
			}
			assert.Contains(t, joined, ": tls:", "the rest is looked at either way")
			assert.Contains(t, joined, ": uid policy:")
		})
	}
}

// TestSiteChecks: the admin page's checks run at most once a minute, with
// a deadline of their own that a viewer leaving does not cut short.
func TestSiteChecks(t *testing.T) {
	clock := time.Date(2026, 12, 2, 12, 0, 0, 0, time.UTC)
	runs := 0
	c := &siteChecks{
		now: func() time.Time { return clock }, timeout: 10 * time.Second, ttl: time.Minute,
		run: func(ctx context.Context) []finding {
			runs++
			deadline, ok := ctx.Deadline()
			assert.True(t, ok)
			assert.WithinDuration(t, time.Now().Add(10*time.Second), deadline, 5*time.Second)
			assert.NoError(t, ctx.Err(), "the viewer's cancellation does not reach the checks")
			return []finding{okf("tls: cert.pem is valid until 2027-01-01"), warnf("sif: gocryptfs is not installed: no encrypted images"), problemf("odd")}
		},
	}
	gone, cancel := context.WithCancel(context.Background())
	cancel()
	want := []web.Check{
		{Name: "tls", Status: web.CheckOK, Detail: "cert.pem is valid until 2027-01-01"},
		{Name: "sif", Status: web.CheckWarning, Detail: "gocryptfs is not installed: no encrypted images"},
		{Name: "", Status: web.CheckProblem, Detail: "odd"},
	}
	assert.Equal(t, want, c.Checks(gone))
	clock = clock.Add(59 * time.Second)
	assert.Equal(t, want, c.Checks(context.Background()))
	assert.Equal(t, 1, runs, "a reload within the minute shows the last result")
	clock = clock.Add(2 * time.Second)
	c.Checks(context.Background())
	assert.Equal(t, 2, runs, "then they run again")
}
