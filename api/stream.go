package api

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"

	"github.com/reana-site/reana-site/asuser"
)

// abortStream ends a response whose status line is already sent but whose
// body could not be completed. Returning normally would end the chunked
// encoding cleanly, and the client would take a truncated archive for a
// whole one (reana-client prints SUCCESS); http.ErrAbortHandler makes the
// server cut the connection (HTTP/1.1) or reset the stream (HTTP/2)
// instead, so the client sees a failed transfer.
func abortStream(log *slog.Logger, msg string, args ...any) {
	log.Warn(msg, args...)
	panic(http.ErrAbortHandler)
}

// zipError answers a zip download that the helper refused before
// streaming. An entry the user cannot read is named, so they know what to
// fix: the helper checks every file before it hands the stream over (see
// wsfs.CheckZip).
func (s *Server) zipError(w http.ResponseWriter, r *http.Request, rel string, err error) {
	var ue *asuser.Error
	if errors.As(err, &ue) && ue.Kind == asuser.KindDenied {
		writeError(w, http.StatusForbidden, fmt.Sprintf("Download %s: %s; nothing was sent.", rel, ue.Message))
		return
	}
	s.fileError(w, r, "Download "+rel, err)
}
