package api

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"

	"github.com/reana-site/reana-site/asuser"
)

// busyRetryAfter is the Retry-After of a 429 for a user with too many
// helpers running: about as long as a small upload or listing takes.
const busyRetryAfter = 5

// tooBusy answers 429 if err says the user already has as many helpers
// running as the site allows (asuser.Limiter), and reports whether it did.
// REANA's contract lists no 429, but it is the status that tells a client
// to come back later rather than that the request was wrong.
func tooBusy(w http.ResponseWriter, err error) bool {
	var busy *asuser.BusyError
	if !errors.As(err, &busy) {
		return false
	}
	w.Header().Set("Retry-After", strconv.Itoa(busyRetryAfter))
	// Close rather than read the rest of the request: net/http would
	// otherwise drain an unread upload body before sending the status, and
	// a stalled upload would never see its 429.
	w.Header().Set("Connection", "close")
	writeError(w, http.StatusTooManyRequests, fmt.Sprintf(
		"Too many operations in flight for %s (at most %d at a time, such as uploads and downloads); try again in a few seconds.", busy.User, busy.Limit))
	return true
}
