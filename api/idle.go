package api

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"
)

// idleReader renews the connection's read deadline before every read of a
// request body, so a client that stops sending is cut off after idle
// rather than holding its helper process and temporary file for ever,
// while a slow but steady upload of any length goes through.
type idleReader struct {
	r    io.Reader
	rc   *http.ResponseController
	idle time.Duration
	// stalled records that a read ran into the deadline.
	stalled bool
}

// newIdleReader wraps r's body; idle 0 means no deadline.
func newIdleReader(w http.ResponseWriter, r *http.Request, idle time.Duration) *idleReader {
	return &idleReader{r: r.Body, rc: http.NewResponseController(w), idle: idle}
}

func (ir *idleReader) Read(p []byte) (int, error) {
	if ir.idle > 0 {
		// A writer that cannot set deadlines (none of net/http's) leaves
		// the body without one; the error says so and nothing else can.
		_ = ir.rc.SetReadDeadline(time.Now().Add(ir.idle))
	}
	n, err := ir.r.Read(p)
	if err != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		ir.stalled = true
	}
	return n, err
}

// done lifts the deadline once the whole body has been read, so the
// connection's next request is not cut short by what was left of this
// one's. After a failed read it must stay: net/http drains the rest of the
// body before answering, and that must not wait for a stalled client.
func (ir *idleReader) done() {
	if ir.idle > 0 {
		_ = ir.rc.SetReadDeadline(time.Time{})
	}
}
