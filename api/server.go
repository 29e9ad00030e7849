// Package api serves REANA's REST API (reana-server's OpenAPI 2.0
// contract, as shipped in reana-commons) so the unmodified reana-client
// works against reana-site.
//
// The client validates every response against that contract, so each
// handler sends the full documented shape with Content-Type
// application/json, and errors only with a status code the contract lists
// for the operation, as {"message": "..."}.
package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/daemon/config"
	"github.com/reana-site/reana-site/daemon/engine"
	"github.com/reana-site/reana-site/daemon/identity"
	"github.com/reana-site/reana-site/daemon/metrics"
	"github.com/reana-site/reana-site/daemon/store"
	"github.com/reana-site/reana-site/daemon/workflowengine"
)

// Server holds what the handlers need.
type Server struct {
	DB     *store.DB
	Engine *engine.Engine
	// Engines says which of cwl, snakemake and yadage this site runs;
	// nil runs none.
	Engines *workflowengine.Launcher
	Runner  asuser.Opener
	Config  config.Config
	// Accounts says whether a token's user may still be served.
	Accounts identity.Resolver
	Version  string
	Log      *slog.Logger
	// AuthFailures limits how fast wrong tokens are answered; nil means
	// DefaultAuthLimits.
	AuthFailures *AuthLimiter
	// Metrics, when set, counts and times every request by route pattern.
	Metrics *metrics.Metrics
	// MetricsHandler, when set, is served at /metrics without a token;
	// nil leaves /metrics unknown (404), as a site that turned it off
	// wants.
	MetricsHandler http.Handler

	reserved reservations // of uploads in flight
	upkeep   upkeep       // background re-measurements
	once     sync.Once    // fills in the defaults
}

// ServerVersion is what /api/you reports as reana_server_version: the
// REANA API version this server implements.
const ServerVersion = "0.9.4"

// defaults fills in what was left nil, once: Handler and the exported
// methods that need them call it.
func (s *Server) defaults() {
	s.once.Do(func() {
		if s.Log == nil {
			s.Log = slog.Default()
		}
		if s.AuthFailures == nil {
			s.AuthFailures = NewAuthLimiter(DefaultAuthLimits())
		}
	})
}

// Handler returns the HTTP handler for the whole API.
func (s *Server) Handler() http.Handler {
	s.defaults()
	r := chi.NewRouter()
	r.Use(s.recoverer, s.LogRequests)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "The requested URL was not found on this server.")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusMethodNotAllowed, "The method is not allowed for the requested URL.")
	})
	r.Route("/api", func(r chi.Router) {
		r.Get("/ping", s.ping)
		r.Get("/status", s.clusterStatus)
		r.Group(func(r chi.Router) {
			r.Use(s.authenticate)
			r.Get("/you", s.you)
			r.Get("/info", s.info)
			r.Get("/config", s.siteConfig)
			r.Put("/token", s.requestToken)
			r.Get("/secrets", s.listSecrets)
			r.Get("/secrets/", s.listSecrets)
			r.Post("/secrets/", s.addSecrets)
			r.Delete("/secrets/", s.deleteSecrets)
			r.Post("/launch", s.launchUnsupported)
			r.Get("/workflows", s.listWorkflows)
			r.Post("/workflows", s.createWorkflow)
			r.Put("/workflows/move_files/{w}", s.moveFiles)
			r.Route("/workflows/{w}", func(r chi.Router) {
				r.Get("/diff/{b}", s.diff)
				r.Post("/close/", s.interactiveUnsupported)
				r.Post("/open/{type}", s.interactiveUnsupported)
				r.Get("/disk_usage", s.diskUsage)
				r.Get("/logs", s.logs)
				r.Get("/parameters", s.parameters)
				r.Post("/prune", s.prune)
				r.Get("/retention_rules", s.retentionRules)
				r.Get("/specification", s.specification)
				r.Post("/start", s.start)
				r.Get("/status", s.status)
				r.Put("/status", s.setStatus)
				r.Get("/workspace", s.listFiles)
				r.Post("/workspace", s.upload)
				r.Get("/workspace/*", s.download)
				r.Delete("/workspace/*", s.deleteFiles)
			})
		})
	})
	if s.MetricsHandler != nil {
		r.Method(http.MethodGet, "/metrics", s.MetricsHandler)
	}
	r.Get("/gitlab*", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusForbidden, "GitLab integration is not available on reana-site.")
	})
	return r
}

type ctxKey int

const callerKey ctxKey = 0

// caller is the authenticated user of a request.
type caller struct {
	User    store.User
	Account asuser.Account
	Token   string
}

func callerOf(r *http.Request) caller {
	c, _ := r.Context().Value(callerKey).(caller)
	return c
}

// opsWith401 lists the operations whose contract has a 401 response; the
// others answer an unauthenticated call with 403.
var opsWith401 = map[string]bool{"/api/you": true, "/api/token": true}

func authStatus(r *http.Request) int {
	if opsWith401[r.URL.Path] || strings.HasSuffix(r.URL.Path, "/retention_rules") {
		return http.StatusUnauthorized
	}
	return http.StatusForbidden
}

// authenticate maps the access_token query parameter (the only way
// reana-client 0.9 sends it) to a user, and checks that the POSIX account
// still exists and is allowed, on every request.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		token := r.URL.Query().Get("access_token")
		if token == "" {
			writeError(w, authStatus(r), "User not signed in. Please provide your access token (REANA_ACCESS_TOKEN).")
			return
		}
		u, acct, err := s.Authenticate(r.Context(), r.RemoteAddr, token)
		if err != nil {
			var ref *Refusal
			if !errors.As(err, &ref) {
				s.internal(w, r, "authenticate", err)
				return
			}
			if ref.RetryAfter > 0 {
				tooManyFailures(w, ref)
				return
			}
			writeError(w, ref.Status, ref.Message)
			return
		}
		ctx := context.WithValue(r.Context(), callerKey, caller{User: u, Account: acct, Token: token})
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// Authenticate checks an access token sent from remoteAddr, as every API
// call is checked: through the failed-token rate limit, then the store,
// then the site's policy for the POSIX account. A token that does not
// sign in is a *Refusal (with RetryAfter set when the limit is reached);
// any other error is the site failing.
func (s *Server) Authenticate(ctx context.Context, remoteAddr, token string) (store.User, asuser.Account, error) {
	var (
		u       store.User
		refusal error
	)
	err := s.LimitFailures(remoteAddr, func() (bool, error) {
		var err error
		u, _, err = s.DB.UserByTokenHash(ctx, identity.HashToken(token))
		switch {
		case errors.Is(err, store.ErrNotFound):
			refusal = refuse(http.StatusForbidden, "Token not valid.")
			return false, nil
		case errors.Is(err, store.ErrRevoked):
			refusal = refuse(http.StatusForbidden, "User access token revoked.")
			return false, nil
		case err != nil:
			return false, fmt.Errorf("authenticate: %w", err)
		}
		return true, nil
	})
	if err == nil {
		err = refusal
	}
	if err != nil {
		return store.User{}, asuser.Account{}, err
	}
	acct, err := s.Account(u)
	return u, acct, err
}

// LimitFailures runs check of a secret sent from remoteAddr (a login
// link's key) under the limit of wrong tokens: check says whether the
// secret was right; one that was not is charged to the address, and
// while the address (or everyone) is over the limit, check is not run and
// the answer is a *Refusal with status 429. An error of check is no
// guess, so it is not charged.
func (s *Server) LimitFailures(remoteAddr string, check func() (bool, error)) error {
	s.defaults()
	attempt, wait, ok := s.AuthFailures.begin(remoteAddr, time.Now())
	if !ok {
		return tooManyFailuresRefusal(wait)
	}
	right, err := check()
	if right || err != nil {
		attempt.succeeded()
	}
	return err
}

// Account is u's POSIX account if the site may still serve u; if not, a
// *Refusal that says why.
func (s *Server) Account(u store.User) (asuser.Account, error) {
	s.defaults()
	acct, err := s.Accounts.Serve(u)
	if err != nil {
		status, msg := accountRefusal(u, err)
		if status == http.StatusInternalServerError {
			return acct, fmt.Errorf("look up the POSIX account: %w", err)
		}
		s.Log.Warn("a user who may no longer be served", "user", u.Name, "err", err)
		return acct, &Refusal{Status: status, Message: msg}
	}
	return acct, nil
}

// accountRefusal is the answer to a token whose user may no longer be
// served (see identity.Resolver).
func accountRefusal(u store.User, err error) (int, string) {
	var changed *identity.UIDChangedError
	switch {
	case errors.Is(err, identity.ErrUnknownUser):
		return http.StatusForbidden, fmt.Sprintf("User %s no longer exists on this site.", u.Name)
	case errors.As(err, &changed):
		return http.StatusForbidden, fmt.Sprintf("The POSIX account %s changed (uid %d, was %d); ask an admin to re-add the user.", u.Name, changed.UID, changed.Recorded)
	case errors.Is(err, identity.ErrRefused):
		return http.StatusForbidden, "Access refused: " + strings.TrimPrefix(err.Error(), identity.ErrRefused.Error()+": ") + "."
	case errors.Is(err, identity.ErrRemoved):
		return http.StatusForbidden, fmt.Sprintf("User %s was removed from this service by its admins.", u.Name)
	}
	return http.StatusInternalServerError, ""
}

func (s *Server) recoverer(next http.Handler) http.Handler {
	return Recoverer(s.Log, func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusInternalServerError, "Internal server error.")
	})(next)
}

// Recoverer logs a handler's panic and answers with fail instead of
// dropping the connection; http.ErrAbortHandler still aborts.
func Recoverer(log *slog.Logger, fail func(w http.ResponseWriter, r *http.Request)) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					log.Error("panic in handler", "path", r.URL.Path, "panic", v)
					fail(w, r)
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}

type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (s *statusRecorder) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusRecorder) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// LogRequests logs each request at debug level (never its query, which
// may carry a token) and counts and times it in the metrics by its route
// pattern; the web pages use it too.
func (s *Server) LogRequests(next http.Handler) http.Handler {
	s.defaults()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(rec, r)
		d := time.Since(start)
		// Never log the query: it carries the access token.
		s.Log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", rec.status, "duration", d)
		// The pattern, not the path: paths hold workflow names. chi fills
		// it in while routing, which is done by now.
		pattern := ""
		if rc := chi.RouteContext(r.Context()); rc != nil {
			pattern = rc.RoutePattern()
		}
		s.Metrics.Request(r.Method, pattern, rec.status, d)
	})
}

// writeJSON sends v with the given status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status = http.StatusInternalServerError
		b = []byte(`{"message": "Internal server error."}`)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	w.Write(b)
	w.Write([]byte("\n"))
}

// messageResponse is REANA's error shape, and the whole body of the calls
// that answer with a message only.
type messageResponse struct {
	Message string `json:"message"`
}

// writeError sends REANA's error shape.
func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, messageResponse{Message: msg})
}

func (s *Server) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	if tooBusy(w, err) {
		return
	}
	s.Log.Error(what, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, fmt.Sprintf("Internal server error while trying to %s.", what))
}

// PathParam returns a decoded path parameter. chi routes on the escaped
// path when the request has one (RawPath), so %2F inside a parameter
// arrives encoded; otherwise it is decoded already.
func PathParam(r *http.Request, name string) (string, error) {
	v := chi.URLParam(r, name)
	if r.URL.RawPath == "" {
		// chi routed on the decoded path: decoding again would turn a
		// file named "a%41" into "aA".
		return v, nil
	}
	return url.PathUnescape(v)
}

// readJSONBody decodes an optional JSON body (reana-client sends JSON
// bodies even on GET for logs and disk_usage). An empty body leaves v as is.
func readJSONBody(r *http.Request, v any) error {
	if r.Body == nil {
		return nil
	}
	dec := json.NewDecoder(http.MaxBytesReader(nil, r.Body, 1<<20))
	if err := dec.Decode(v); err != nil {
		if errors.Is(err, errEOF) {
			return nil
		}
		return err
	}
	return nil
}
