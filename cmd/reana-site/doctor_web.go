package main

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/reana-site/reana-site/api/web"
	"github.com/reana-site/reana-site/daemon/config"
)

// How long the admin page's checks may take, and how long their result is
// shown before they run again: reloading the page must not rerun them.
const (
	siteChecksTimeout = 10 * time.Second
	siteChecksTTL     = time.Minute
)

// siteChecks runs the doctor's checks that the daemon may run itself
// (doctorOptions.InDaemon) for the admin page, at most once a TTL.
type siteChecks struct {
	run     func(ctx context.Context) []finding
	now     func() time.Time
	timeout time.Duration
	ttl     time.Duration

	mu   sync.Mutex // held while they run: a second viewer waits for the same run
	at   time.Time
	last []web.Check
}

func newSiteChecks(cfg config.Config) *siteChecks {
	env := realDoctorEnv()
	return &siteChecks{
		run:     func(ctx context.Context) []finding { return env.checkAll(ctx, cfg, doctorOptions{InDaemon: true}) },
		now:     time.Now,
		timeout: siteChecksTimeout,
		ttl:     siteChecksTTL,
	}
}

// Checks is web.Config.Checks.
func (c *siteChecks) Checks(ctx context.Context) []web.Check {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.last != nil && c.now().Sub(c.at) < c.ttl {
		return c.last
	}
	// A viewer who leaves must not cut the run short for the next ones.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.timeout)
	defer cancel()
	found := c.run(ctx)
	out := make([]web.Check, 0, len(found))
	for _, f := range found {
		out = append(out, webCheck(f))
	}
	c.last, c.at = out, c.now()
	return out
}

// webCheck splits a finding's "what: detail" for the page.
func webCheck(f finding) web.Check {
	status := web.CheckOK
	switch f.Kind {
	case kindWarning:
		status = web.CheckWarning
	case kindProblem:
		status = web.CheckProblem
	}
	name, detail, ok := strings.Cut(f.Msg, ": ")
	if !ok {
		name, detail = "", f.Msg
	}
	return web.Check{Name: name, Status: status, Detail: detail}
}
