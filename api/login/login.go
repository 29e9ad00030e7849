// Package login signs people in with the site's own identity, Kerberos
// (HTTP Negotiate) and OIDC, and gives them a REANA access token:
// reana-client 0.9 speaks tokens only, so every path ends in one. Browser
// sign-ins start a session of the web interface through Sessions; the
// package keeps none of its own.
package login

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/reana-site/reana-site/api/authlimit"
	"github.com/reana-site/reana-site/daemon/identity"
	"github.com/reana-site/reana-site/daemon/store"
)

// Sessions are the web interface's sessions, the one thing this package
// needs from it.
type Sessions interface {
	// Start signs u in on this browser; method is identity.MethodKerberos
	// or identity.MethodOIDC.
	Start(w http.ResponseWriter, r *http.Request, u store.User, method string) error
	// User is the signed-in user of the request, if any.
	User(r *http.Request) (store.User, bool)
}

// Service answers the /site routes.
type Service struct {
	DB *store.DB
	// Mapper maps an identity to its POSIX account (and the site policy).
	Mapper identity.Mapper
	// SelfService registers a mapped account that is not yet a user.
	SelfService bool
	// Kerberos, when set, accepts HTTP Negotiate.
	Kerberos *Kerberos
	// OIDC, when set, offers sign-in at the site's OIDC provider.
	OIDC *OIDC
	// Sessions, when set, are the web interface's; nil means it is off,
	// and the browser sign-ins answer 503.
	Sessions Sessions
	// ServerURL is what users export as REANA_SERVER_URL; empty means
	// https://<the request's host>.
	ServerURL string
	// Failures limits how fast failed sign-ins (a Kerberos ticket that is
	// not accepted, an OIDC callback that does not end in a verified ID
	// token) are answered; nil means one of its own with
	// authlimit.Default. The daemon passes the API's, so that guesses on
	// /api and /site are counted together.
	Failures *authlimit.Limiter
	Log      *slog.Logger
}

// Option is one way to sign in, for the web interface's sign-in page.
type Option struct {
	Label string
	URL   string
}

// Options lists the sign-in methods the site configured.
func (s *Service) Options() []Option {
	var o []Option
	if s.Kerberos != nil {
		o = append(o, Option{Label: "Sign in with Kerberos", URL: "/site/login/kerberos"})
	}
	if s.OIDC != nil {
		o = append(o, Option{Label: s.OIDC.label(), URL: "/site/login/oidc"})
	}
	return o
}

// Handler serves the routes below /site; mount it there.
func (s *Service) Handler() http.Handler {
	if s.Log == nil {
		s.Log = slog.Default()
	}
	if s.Failures == nil {
		s.Failures = authlimit.New(authlimit.Default())
	}
	r := chi.NewRouter()
	r.Post("/token", s.token)
	r.Get("/login/kerberos", s.kerberosLogin)
	r.Get("/login/oidc", s.oidcLogin)
	r.Get("/oidc/callback", s.oidcCallback)
	return r
}

// Answer is the body of every /site reply.
type Answer struct {
	User    string `json:"user,omitempty"`
	Token   string `json:"token,omitempty"`
	Export  string `json:"export,omitempty"` // the lines to paste into a shell
	Message string `json:"message"`
}

func reply(w http.ResponseWriter, status int, a Answer) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(a)
}

// refusal is an answer that ends a sign-in. challenge adds the Negotiate
// challenge to a 401, so that a client with a ticket tries again with it.
// limited is a 429 from the Failures limiter, to come back after wait.
type refusal struct {
	status    int
	msg       string
	challenge bool
	limited   bool
	wait      time.Duration
}

func (e *refusal) Error() string { return e.msg }

func refuse(status int, format string, args ...any) error {
	return &refusal{status: status, msg: fmt.Sprintf(format, args...)}
}

// fail answers err: a refusal as it says, anything else as a 500 whose
// cause goes to the log only.
func (s *Service) fail(w http.ResponseWriter, r *http.Request, what string, err error) {
	var ref *refusal
	if errors.As(err, &ref) && ref.limited {
		// At Debug only: a guessing loop must not fill the log either.
		s.Log.Debug("sign-in refused without a check", "path", r.URL.Path, "remote", r.RemoteAddr)
		reply(w, http.StatusTooManyRequests, Answer{Message: authlimit.Refuse(w, ref.wait)})
		return
	}
	if errors.As(err, &ref) {
		s.Log.Info("sign-in refused", "path", r.URL.Path, "status", ref.status, "why", ref.msg)
		if ref.challenge && s.Kerberos != nil {
			w.Header().Set("WWW-Authenticate", "Negotiate")
		}
		reply(w, ref.status, Answer{Message: ref.msg})
		return
	}
	s.Log.Error(what, "path", r.URL.Path, "err", err)
	reply(w, http.StatusInternalServerError, Answer{Message: "Internal error while trying to " + what + "; the admins will find it in the log."})
}

// user maps a proven identity to the service's user, registering it when
// self-service is on.
func (s *Service) user(ctx context.Context, id identity.LoginIdentity) (store.User, error) {
	acct, err := s.Mapper.Account(ctx, id)
	if err != nil {
		if identity.Refused(err) {
			return store.User{}, refuse(http.StatusForbidden, "%s may not use this service: %v.", id.Name, err)
		}
		return store.User{}, fmt.Errorf("map %s to an account: %w", id.Name, err)
	}
	u, created, err := identity.Register(ctx, s.DB, acct, s.SelfService)
	if err != nil {
		if identity.Refused(err) {
			return u, refuse(http.StatusForbidden, "%s (signed in as %s): %v.", acct.Name, id.Name, err)
		}
		return u, err
	}
	if created {
		s.Log.Info("user added through self-service sign-in", "user", acct.Name, "uid", acct.UID, "method", id.Method, "identity", id.Name)
	}
	return u, nil
}

// challenge is a 401 refusal with the Negotiate challenge.
func challenge(format string, args ...any) error {
	return &refusal{status: http.StatusUnauthorized, msg: fmt.Sprintf(format, args...), challenge: true}
}

// attempt charges a sign-in to the Failures limiter up front (see
// authlimit.Limiter); the caller gives the charge back with Succeeded
// once the credential is proven. While the client's bucket is empty it
// refuses the sign-in unchecked.
func (s *Service) attempt(r *http.Request) (authlimit.Attempt, error) {
	a, wait, ok := s.Failures.Begin(r.RemoteAddr, time.Now())
	if !ok {
		return a, &refusal{status: http.StatusTooManyRequests, limited: true, wait: wait}
	}
	return a, nil
}

// negotiate signs the request's Kerberos principal in. Only a ticket that
// is not accepted is charged as a failure: asking without one is the
// first step of every Negotiate exchange, and a principal the site
// refuses has proven who it is.
func (s *Service) negotiate(w http.ResponseWriter, r *http.Request) (store.User, error) {
	if s.Kerberos == nil {
		return store.User{}, refuse(http.StatusUnauthorized, "Kerberos sign-in is not configured on this site (REANA_SITE_KRB5_KEYTAB).")
	}
	if !hasTicket(r) {
		return store.User{}, challenge(
			"No Kerberos ticket was sent. Get one with kinit, then: curl --negotiate -u : -X POST %s/site/token (the service principal is %s).",
			s.serverURL(r), s.Kerberos.SPN)
	}
	attempt, err := s.attempt(r)
	if err != nil {
		return store.User{}, err
	}
	principal, err := s.Kerberos.Authenticate(r)
	if err != nil {
		return store.User{}, challenge("Kerberos sign-in failed: %v.", err)
	}
	attempt.Succeeded()
	u, err := s.user(r.Context(), identity.LoginIdentity{Method: identity.MethodKerberos, Name: principal})
	if err != nil {
		return u, err
	}
	w.Header().Set("WWW-Authenticate", acceptCompleted)
	return u, nil
}

// token gives the caller a new token, ending the old ones: behind
// Negotiate, or for the signed-in user of a web session.
func (s *Service) token(w http.ResponseWriter, r *http.Request) {
	// A browser sends Negotiate, like a cookie, with another site's form
	// too: nobody else's page may make it rotate the user's token. curl and
	// reana-site token send neither Sec-Fetch-Site nor Origin and pass.
	if err := http.NewCrossOriginProtection().Check(r); err != nil {
		s.fail(w, r, "sign in", refuse(http.StatusForbidden, "A token is only given to this site's own pages and to command-line clients (%v).", err))
		return
	}
	var (
		u   store.User
		err error
	)
	switch {
	case r.Header.Get("Authorization") != "" || s.Sessions == nil:
		u, err = s.negotiate(w, r)
	default:
		u, err = s.sessionUser(r)
	}
	if err != nil {
		s.fail(w, r, "sign in", err)
		return
	}
	token, _, err := identity.IssueToken(r.Context(), s.DB, u.ID, store.TokenRotate)
	if err != nil {
		s.fail(w, r, "issue a token", err)
		return
	}
	s.Log.Info("token issued at sign-in", "user", u.Name)
	url := s.serverURL(r)
	reply(w, http.StatusOK, Answer{User: u.Name, Token: token,
		Export:  fmt.Sprintf("export REANA_SERVER_URL=%s\nexport REANA_ACCESS_TOKEN=%s\n", url, token),
		Message: "Your new REANA access token; it is shown once, and your earlier tokens no longer work."})
}

// sessionUser is the web session's user (token has refused cross-site
// requests already).
func (s *Service) sessionUser(r *http.Request) (store.User, error) {
	u, ok := s.Sessions.User(r)
	if !ok {
		if s.Kerberos != nil {
			return u, challenge("Not signed in: sign in on the web page, or get a Kerberos ticket with kinit and send it: curl --negotiate -u : -X POST %s/site/token (the service principal is %s).",
				s.serverURL(r), s.Kerberos.SPN)
		}
		return u, refuse(http.StatusUnauthorized, "Not signed in: sign in on the web page first.")
	}
	if _, err := s.Mapper.Accounts.Serve(u); err != nil {
		return u, refuse(http.StatusForbidden, "%s may not use this service: %v.", u.Name, err)
	}
	return u, nil
}

func (s *Service) serverURL(r *http.Request) string {
	if s.ServerURL != "" {
		return strings.TrimSuffix(s.ServerURL, "/")
	}
	return "https://" + r.Host
}

// webOff answers the browser sign-ins when the web interface is off.
func webOff(w http.ResponseWriter) {
	reply(w, http.StatusServiceUnavailable, Answer{Message: "The web interface is off on this site, so there is no browser sign-in; get a token with curl --negotiate -u : -X POST <server>/site/token or reana-site token --server <server>."})
}

// kerberosLogin signs a browser in with Negotiate and starts a web session.
func (s *Service) kerberosLogin(w http.ResponseWriter, r *http.Request) {
	if s.Sessions == nil {
		webOff(w)
		return
	}
	u, err := s.negotiate(w, r)
	if err != nil {
		s.fail(w, r, "sign in", err)
		return
	}
	s.startSession(w, r, u, identity.MethodKerberos)
}

func (s *Service) startSession(w http.ResponseWriter, r *http.Request, u store.User, method string) {
	if err := s.Sessions.Start(w, r, u, method); err != nil {
		s.fail(w, r, "start a web session", err)
		return
	}
	s.Log.Info("signed in", "user", u.Name, "method", method)
	http.Redirect(w, r, "/", http.StatusSeeOther)
}
