package metrics

import (
	"context"
	"errors"
	"time"

	"github.com/reana-site/reana-site/asuser"
)

// helpers is an asuser.Opener that counts and times every helper process
// it starts, by operation.
type helpers struct {
	next asuser.Opener
	m    *Metrics
}

// Helpers wraps the helper runner so that every operation is counted; a
// nil *Metrics returns next as it is.
func (m *Metrics) Helpers(next asuser.Opener) asuser.Opener {
	if m == nil {
		return next
	}
	return &helpers{next: next, m: m}
}

func (h *helpers) Call(ctx context.Context, acct asuser.Account, op asuser.Op, args, result any) error {
	start := time.Now()
	err := h.next.Call(ctx, acct, op, args, result)
	h.m.helperCall(op, time.Since(start), err)
	return err
}

func (h *helpers) Open(ctx context.Context, acct asuser.Account, op asuser.Op, args any) (*asuser.Session, error) {
	start := time.Now()
	s, err := h.next.Open(ctx, acct, op, args)
	h.m.helperCall(op, time.Since(start), err)
	return s, err
}

func (m *Metrics) helperCall(op asuser.Op, d time.Duration, err error) {
	m.helperCalls.WithLabelValues(string(op)).Inc()
	m.helperDuration.WithLabelValues(string(op)).Observe(d.Seconds())
	if err == nil {
		return
	}
	// The kind is one of the protocol's few; anything else (the process
	// could not start, died, or answered garbage) is the helper's own.
	kind := "helper"
	var e *asuser.Error
	if errors.As(err, &e) && e.Kind != "" {
		kind = e.Kind
	}
	m.helperFailures.WithLabelValues(string(op), kind).Inc()
}
