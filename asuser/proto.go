// Package asuser is the protocol between the daemon, which runs as root,
// and the helper, which runs as one user: the request and reply envelope,
// the error kinds, one Op per operation with its argument and result
// types, and the Runner that starts helpers. It imports nothing of this
// module, so both sides can share it without either importing the other.
//
// The daemon never touches a workspace itself: each operation starts a short-lived helper,
// `reana-site worker`, with the user's uid, gid and supplementary groups.
// The kernel then checks every open against the user's own rights.
//
// The protocol is deliberately small: the request is one JSON document on
// the helper's stdin, the reply one JSON document on its stdout. Operations
// that move file contents (upload, download) pass an open file descriptor
// back over a Unix socket (SCM_RIGHTS), so data streams between the
// network and the user's file without a second copy, yet the open() was
// done by the user.
//
// A helper per operation (instead of one long-lived worker per user) keeps
// no user process alive between requests, picks up NSS and group changes at
// once, and has no worker state to recover after a daemon restart.
package asuser

import (
	"encoding/json"
	"errors"
	"fmt"
)

// Request is what the daemon sends to a helper.
type Request struct {
	Op   Op              `json:"op"`
	Args json.RawMessage `json:"args,omitempty"`
}

// Reply is what a helper answers.
type Reply struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  *Error          `json:"error,omitempty"`
}

// Error is an error that crossed the process boundary. Kind lets the daemon
// map it to an HTTP status without parsing messages.
type Error struct {
	Kind    string `json:"kind"`
	Message string `json:"message"`
}

func (e *Error) Error() string { return e.Message }

// Error kinds.
const (
	KindBadPath  = "bad_path"  // the path is malformed or leaves the workspace
	KindNotFound = "not_found" // no such file or workspace
	KindExists   = "exists"    // the target already exists
	KindDenied   = "denied"    // the kernel refused the user
	KindTooLarge = "too_large" // over a size limit or quota
	KindInternal = "internal"
)

// IsKind reports whether err is an *Error of the given kind.
func IsKind(err error, kind string) bool {
	var e *Error
	return errors.As(err, &e) && e.Kind == kind
}

// Errorf builds an *Error.
func Errorf(kind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// Control messages on the fd-passing socket after a file was handed over.
const (
	Commit = "commit"
	Abort  = "abort"
)

// SocketEnv tells a helper which descriptor is the daemon's socket; it is
// set only when one is passed, so a stray inherited descriptor is never
// mistaken for it.
const SocketEnv = "REANA_SITE_WORKER_SOCKET"

// WorkspaceTemplateEnv passes the site's REANA_SITE_WORKSPACE_ROOT template
// to helpers: the directories it names before its first placeholder are
// the site's, and from there down the helper checks that nobody but the
// user and root can change the way to a workspace (TrustedPrefix).
const WorkspaceTemplateEnv = "REANA_SITE_WORKSPACE_TEMPLATE"
