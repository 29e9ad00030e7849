// Package web serves reana-site's web pages: server-rendered HTML
// (html/template), embedded assets and a little of our own script, on the
// same origin as the API. It gets every path that is neither /api/* nor
// /site/*.
//
// The pages reuse package api for everything the API does too (signing in
// with a token, stopping, deleting and restarting runs, live logs, zips),
// and every file they show is read by the user's own helper process.
package web

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/reana-site/reana-site/api"
	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/daemon/identity"
	"github.com/reana-site/reana-site/daemon/store"
)

// SignInOption is a further way to sign in, shown as a link on the
// sign-in page (Kerberos, OIDC: package api/login serves them).
type SignInOption struct {
	Label string
	URL   string
}

// Config is what the site decides about its pages.
type Config struct {
	// PublicURL is the site's address as users reach it, for login links
	// and the export lines on the profile page ("https://host:8443").
	PublicURL string
	// AdminGroups are the POSIX groups whose members see the admin page.
	AdminGroups []string
	// SessionLifetime is how long a sign-in lasts; 0 means 12h.
	SessionLifetime time.Duration
	// LoginLinkLifetime is how long a login link may be used; 0 means 10m.
	LoginLinkLifetime time.Duration
	// SignInOptions are shown on the sign-in page besides the token form.
	SignInOptions []SignInOption
	// Checks, when set, are the site's health checks (those of `reana-site
	// doctor` the daemon may run itself), listed on the admin page. It is
	// called on every view of the page, so it keeps its own results for a
	// while if they are slow to make.
	Checks func(ctx context.Context) []Check
}

// Check is one result of the site's health checks.
type Check struct {
	Name   string // what was looked at: "apptainer", "tls"
	Status string // CheckOK, CheckWarning or CheckProblem
	Detail string
}

// A Check's Status: only a problem keeps something from working.
const (
	CheckOK      = "ok"
	CheckWarning = "warning"
	CheckProblem = "problem"
)

// Server serves the pages.
type Server struct {
	API      *api.Server
	Config   Config
	Sessions *Sessions
	Log      *slog.Logger
	// TailEvery is how often a live log tail looks for new output; 0
	// means every second.
	TailEvery time.Duration

	pages    *renderer
	stopping chan struct{} // closed by Shutdown
	stopOnce sync.Once
}

// Shutdown ends the live streams (log tails), which would otherwise hold
// a graceful stop of the HTTP server until its timeout; register it with
// http.Server.RegisterOnShutdown.
func (s *Server) Shutdown() {
	s.stopOnce.Do(func() { close(s.stopping) })
}

// New makes the pages' server over the API's.
func New(a *api.Server, cfg Config, log *slog.Logger) (*Server, error) {
	if cfg.SessionLifetime <= 0 {
		cfg.SessionLifetime = 12 * time.Hour
	}
	if cfg.LoginLinkLifetime <= 0 {
		cfg.LoginLinkLifetime = 10 * time.Minute
	}
	if log == nil {
		log = slog.Default()
	}
	pages, err := newRenderer()
	if err != nil {
		return nil, err
	}
	return &Server{API: a, Config: cfg, Log: log, pages: pages, stopping: make(chan struct{}),
		Sessions: &Sessions{DB: a.DB, Lifetime: cfg.SessionLifetime, Log: log}}, nil
}

// Handler serves every page and the assets.
func (s *Server) Handler() http.Handler {
	r := chi.NewRouter()
	r.Use(s.recoverer, s.API.LogRequests, securityHeaders, s.crossOrigin)
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		s.errorPage(w, r, http.StatusNotFound, "Page not found", "There is no page at this address. Start again from the list of your runs.")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		s.errorPage(w, r, http.StatusMethodNotAllowed, "Not allowed", "This page does not take that kind of request. Use the buttons on the pages.")
	})
	static := staticHandler()
	r.Handle("/static/*", static)
	// Browsers ask for /favicon.ico whatever the page links; without an
	// answer every page logs a failed load.
	r.Get("/favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		r.URL.Path = "/static/favicon.svg"
		static.ServeHTTP(w, r)
	})
	r.Get("/signin", s.signinPage)
	r.Post("/signin", s.signinToken)
	r.Get("/signin/link", s.signinLink)
	r.Post("/logout", s.logout)
	r.Group(func(r chi.Router) {
		r.Use(s.requireUser)
		r.Get("/", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/runs", http.StatusSeeOther) })
		r.Get("/runs", s.runsPage)
		r.Get("/runs/rows", s.runRows)
		r.Route("/runs/{id}", func(r chi.Router) {
			r.Get("/", s.detailsPage)
			r.Get("/summary", s.detailsSummary)
			r.Get("/jobs/{job}/tail", s.tail)
			r.Get("/jobs/{job}/log", s.logDownload)
			r.Post("/stop", s.stopAction)
			r.Post("/delete", s.deleteAction)
			r.Post("/restart", s.restartAction)
			r.Post("/prune", s.pruneAction)
			r.Get("/files", s.filesPage)
			r.Get("/files/*", s.filesPage)
			r.Get("/raw/*", s.raw)
			r.Get("/zip", s.zip)
			r.Get("/zip/*", s.zip)
			r.Get("/gallery", s.galleryPage)
			r.Get("/diff", s.diffPage)
		})
		r.Get("/profile", s.profilePage)
		r.Post("/profile/token", s.rotateToken)
		r.Get("/admin", s.adminPage)
	})
	return r
}

// securityHeaders go on every answer: no script but our own files, no
// framing, no sniffing, no referrer (a login link's key must not leak).
func securityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", pageCSP)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// pageCSP allows only this origin: no inline script, no outside fonts.
const pageCSP = "default-src 'self'; img-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// crossOrigin refuses every state-changing request a browser sends from
// another origin (net/http's check of Sec-Fetch-Site and Origin).
func (s *Server) crossOrigin(next http.Handler) http.Handler {
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.Log.Warn("cross-origin request refused", "method", r.Method, "path", r.URL.Path, "origin", r.Header.Get("Origin"))
		s.errorPage(w, r, http.StatusForbidden, "Request refused", "This request came from another site, so it was not carried out. Use the buttons on reana-site's own pages.")
	}))
	return cop.Handler(next)
}

func (s *Server) recoverer(next http.Handler) http.Handler {
	return api.Recoverer(s.Log, func(w http.ResponseWriter, r *http.Request) {
		s.errorPage(w, r, http.StatusInternalServerError, "Internal error", "Something went wrong on the site. Try again; if it keeps failing, tell the site's admins the time it happened.")
	})(next)
}

// viewer is the signed-in user of a request and their POSIX account. It
// is the request context's value of type viewerKey. Admin, whether they
// see the admin page, is set only for a whole page (see page).
type viewer struct {
	User    store.User
	Account asuser.Account
	Admin   bool
}

type viewerKey struct{}

func viewerOf(r *http.Request) viewer {
	v, _ := r.Context().Value(viewerKey{}).(viewer)
	return v
}

// requireUser lets through requests of a valid session whose user the
// site may still serve; others go to the sign-in page (or get a 401, for
// what a script fetches).
func (s *Server) requireUser(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, ok := s.Sessions.User(r)
		if !ok {
			if r.Method == http.MethodGet && !isFragment(r) {
				http.Redirect(w, r, "/signin?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
				return
			}
			s.errorPage(w, r, http.StatusUnauthorized, "Signed out", "Your session ended. Sign in again.")
			return
		}
		acct, ok := s.account(w, r, u)
		if !ok {
			return
		}
		v := viewer{User: u, Account: acct}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), viewerKey{}, v)))
	})
}

// account is u's POSIX account if the site may still serve u; if not, it
// answers with a page that says why.
func (s *Server) account(w http.ResponseWriter, r *http.Request, u store.User) (asuser.Account, bool) {
	acct, err := s.API.Account(u)
	if err != nil {
		var ref *api.Refusal
		if errors.As(err, &ref) {
			s.errorPage(w, r, ref.Status, "Access refused", ref.Message)
			return acct, false
		}
		s.internal(w, r, "look up your POSIX account", err)
		return acct, false
	}
	return acct, true
}

// isFragment says whether a script asked (a part of a page, a stream).
func isFragment(r *http.Request) bool {
	return strings.HasSuffix(r.URL.Path, "/rows") || strings.HasSuffix(r.URL.Path, "/summary") || strings.HasSuffix(r.URL.Path, "/tail")
}

// isAdmin: root, or a member of one of the admin groups.
func (s *Server) isAdmin(a asuser.Account) bool {
	if a.UID == 0 {
		return true
	}
	if len(s.Config.AdminGroups) == 0 {
		return false
	}
	return identity.Policy{MinUID: 1, AllowedGroups: s.Config.AdminGroups}.Check(a) == nil
}

// internal logs err and shows a page that says what failed.
func (s *Server) internal(w http.ResponseWriter, r *http.Request, what string, err error) {
	var ref *api.Refusal
	if errors.As(err, &ref) {
		s.errorPage(w, r, ref.Status, "Could not "+what, ref.Message)
		return
	}
	var busy *asuser.BusyError
	if errors.As(err, &busy) {
		w.Header().Set("Retry-After", "5")
		s.errorPage(w, r, http.StatusTooManyRequests, "Busy", "You have too many operations in flight (such as downloads); try again in a few seconds.")
		return
	}
	s.Log.Error(what, "path", r.URL.Path, "err", err)
	s.errorPage(w, r, http.StatusInternalServerError, "Could not "+what, "The site failed while trying to "+what+". Try again; if it keeps failing, tell the site's admins the time it happened.")
}
