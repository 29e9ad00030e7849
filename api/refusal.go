package api

import (
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/reana-site/reana-site/api/authlimit"
)

// Refusal is an action refused for a reason the user can act on: Status
// is the HTTP status that says which kind, Message what to do. The API
// answers it as REANA's error shape; the web pages show it.
type Refusal struct {
	Status  int
	Message string
	// RetryAfter, when not 0, is how many seconds to wait before trying again.
	RetryAfter int
}

func (e *Refusal) Error() string { return e.Message }

func refuse(status int, format string, args ...any) error {
	return &Refusal{Status: status, Message: fmt.Sprintf(format, args...)}
}

// actionError answers an error of an action: a refusal with its own
// status and message, too many helpers with 429, anything else with 500.
func (s *Server) actionError(w http.ResponseWriter, r *http.Request, what string, err error) {
	var ref *Refusal
	if errors.As(err, &ref) {
		writeError(w, ref.Status, ref.Message)
		return
	}
	s.internal(w, r, what, err)
}

// tooManyFailuresRefusal is the answer to a token check refused by the
// AuthFailures limiter, wait being how long until one would be allowed.
func tooManyFailuresRefusal(wait time.Duration) *Refusal {
	secs := authlimit.RetryAfter(wait)
	return &Refusal{Status: http.StatusTooManyRequests, RetryAfter: secs, Message: authlimit.Message(secs)}
}

// tooManyFailures answers a token check refused by the limiter.
func tooManyFailures(w http.ResponseWriter, ref *Refusal) {
	authlimit.SetHeaders(w, ref.RetryAfter)
	writeError(w, ref.Status, ref.Message)
}
