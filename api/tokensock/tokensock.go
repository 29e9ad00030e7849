// Package tokensock hands users their REANA access token on the login
// node, without a web page: the caller connects to a local Unix socket and
// the kernel says who they are (SO_PEERCRED). Nothing the caller sends is
// taken as their identity.
package tokensock

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"time"

	"github.com/reana-site/reana-site/api/localsock"
	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/daemon/identity"
	"github.com/reana-site/reana-site/daemon/store"
)

// Actions a caller may ask for.
const (
	ActionIssue  = "issue"  // a token, if the caller has none yet
	ActionRotate = "rotate" // a new token; the old ones stop working
	ActionRevoke = "revoke" // no token any more
)

// Server answers on the token socket.
type Server struct {
	DB *store.DB
	// Accounts applies the site policy to callers.
	Accounts identity.Resolver
	// Enabled turns self-service on; off, every caller gets a clear refusal.
	Enabled bool
	// Groups, when not empty, limits self-service to members of these groups.
	Groups []string
	Log    *slog.Logger
	// LookupUID resolves the peer's uid; nil means identity.LookupUID.
	LookupUID func(uid uint32) (asuser.Account, error)
	// LoginLink makes a one-time link that signs the user in to the web
	// pages, and says until when it works; nil when the pages are off.
	LoginLink func(ctx context.Context, u store.User) (string, time.Time, error)
}

// Answer is the reply body.
type Answer struct {
	User    string `json:"user,omitempty"`
	Token   string `json:"token,omitempty"`
	Link    string `json:"link,omitempty"`
	Message string `json:"message"`
}

// Serve answers on ln until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	if s.Log == nil {
		s.Log = slog.Default()
	}
	if s.LookupUID == nil {
		s.LookupUID = identity.LookupUID
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /token", s.token)
	mux.HandleFunc("POST /login-link", s.loginLink)
	if err := localsock.Serve(ctx, ln, mux); err != nil {
		return fmt.Errorf("token socket: %w", err)
	}
	return nil
}

func reply(w http.ResponseWriter, status int, a Answer) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(a)
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	cred, ok := localsock.Peer(r)
	if !ok {
		reply(w, http.StatusForbidden, Answer{Message: noPeer})
		return
	}
	action := r.URL.Query().Get("action")
	if !slices.Contains([]string{ActionIssue, ActionRotate, ActionRevoke}, action) {
		reply(w, http.StatusBadRequest, Answer{Message: fmt.Sprintf("Unknown action %q: use issue, rotate or revoke.", action)})
		return
	}
	if cred.Uid == 0 {
		reply(w, http.StatusForbidden, Answer{Message: "root has no REANA token; as an admin, use: reana-site admin token issue <user>."})
		return
	}
	if !s.Enabled {
		reply(w, http.StatusForbidden, Answer{Message: "Self-service tokens are turned off on this site (REANA_SITE_SELF_SERVICE); ask the site's admins for a token."})
		return
	}
	acct, ok := s.account(w, cred.Uid)
	if !ok {
		return
	}
	if !s.inGroups(acct) {
		reply(w, http.StatusForbidden, Answer{Message: fmt.Sprintf("Self-service tokens are for members of %v only; ask the site's admins.", s.Groups)})
		return
	}
	u, status, msg := s.user(r.Context(), acct, true)
	if status != 0 {
		reply(w, status, Answer{User: acct.Name, Message: msg})
		return
	}
	s.act(w, r, action, u)
}

const noPeer = "The kernel did not say who you are; connect through the local socket."

// account is the caller's POSIX account, if the site's policy allows it.
func (s *Server) account(w http.ResponseWriter, uid uint32) (asuser.Account, bool) {
	acct, err := s.LookupUID(uid)
	if err != nil {
		reply(w, http.StatusForbidden, Answer{Message: fmt.Sprintf("uid %d is not known to this site: %v.", uid, err)})
		return acct, false
	}
	if err := s.Accounts.Policy.Check(acct); err != nil {
		reply(w, http.StatusForbidden, Answer{Message: fmt.Sprintf("Access refused: %v.", err)})
		return acct, false
	}
	return acct, true
}

// inGroups says whether acct may use self-service.
func (s *Server) inGroups(acct asuser.Account) bool {
	return len(s.Groups) == 0 || (identity.Policy{MinUID: 1, AllowedGroups: s.Groups}).Check(acct) == nil
}

// loginLink hands the caller a one-time link that signs them in to the
// web pages. A user the site has not added gets one only where
// self-service would add them.
func (s *Server) loginLink(w http.ResponseWriter, r *http.Request) {
	if s.LoginLink == nil {
		reply(w, http.StatusNotFound, Answer{Message: "The web interface is turned off on this site (REANA_SITE_WEB)."})
		return
	}
	cred, ok := localsock.Peer(r)
	if !ok {
		reply(w, http.StatusForbidden, Answer{Message: noPeer})
		return
	}
	if cred.Uid == 0 {
		reply(w, http.StatusForbidden, Answer{Message: "root cannot sign in to the web pages; sign in as a user of the service."})
		return
	}
	acct, ok := s.account(w, cred.Uid)
	if !ok {
		return
	}
	u, status, msg := s.user(r.Context(), acct, s.Enabled && s.inGroups(acct))
	if status != 0 {
		reply(w, status, Answer{User: acct.Name, Message: msg})
		return
	}
	link, expires, err := s.LoginLink(r.Context(), u)
	if err != nil {
		s.Log.Error("token socket: login link", "user", u.Name, "err", err)
		reply(w, http.StatusInternalServerError, Answer{Message: "Internal error; the admins will find it in the log."})
		return
	}
	s.Log.Info("login link issued", "user", u.Name)
	reply(w, http.StatusOK, Answer{User: u.Name, Link: link, Message: fmt.Sprintf(
		"Open this link in your browser before %s; it works once.", expires.Format("15:04 MST"))})
}

// user finds the caller's service account, making it on first use if
// create is set: with self-service on, the site's login is the sign-up.
func (s *Server) user(ctx context.Context, acct asuser.Account, create bool) (store.User, int, string) {
	u, created, err := identity.Register(ctx, s.DB, acct, create)
	switch {
	case errors.Is(err, identity.ErrNotRegistered):
		return u, http.StatusForbidden, fmt.Sprintf("%s is not a user of this service yet; ask the site's admins to add you.", acct.Name)
	case errors.Is(err, identity.ErrRemoved):
		return u, http.StatusForbidden, fmt.Sprintf("%s was removed from this service by its admins.", acct.Name)
	case errors.Is(err, identity.ErrUIDChanged):
		return u, http.StatusForbidden, fmt.Sprintf("The account %s changed (uid %d, was %d); ask the admins.", acct.Name, acct.UID, u.UID)
	case err != nil:
		s.Log.Error("token socket: user record", "user", acct.Name, "err", err)
		return u, http.StatusInternalServerError, "Internal error; the admins will find it in the log."
	}
	if created {
		s.Log.Info("user added through self-service", "user", acct.Name, "uid", acct.UID)
	}
	return u, 0, ""
}

func (s *Server) act(w http.ResponseWriter, r *http.Request, action string, u store.User) {
	ctx := r.Context()
	if action == ActionRevoke {
		if _, err := s.DB.RevokeTokens(ctx, u.ID); err != nil {
			s.Log.Error("token socket: revoke", "user", u.Name, "err", err)
			reply(w, http.StatusInternalServerError, Answer{Message: "Internal error; the admins will find it in the log."})
			return
		}
		s.Log.Info("tokens revoked through self-service", "user", u.Name)
		reply(w, http.StatusOK, Answer{User: u.Name, Message: "Your tokens are revoked."})
		return
	}
	mode := store.TokenFirst
	if action == ActionRotate {
		mode = store.TokenRotate
	}
	token, t, err := identity.IssueToken(ctx, s.DB, u.ID, mode)
	if errors.Is(err, store.ErrExists) && mode == store.TokenFirst {
		// Only a hash is kept, so the token cannot be shown again.
		reply(w, http.StatusConflict, Answer{User: u.Name, Message: fmt.Sprintf(
			"You already have a token (ending in %s, issued %s). Tokens are shown once; `reana-site token --rotate` gives you a new one and ends the old.",
			t.Hint, t.CreatedAt.Format("2006-01-02 15:04 MST"))})
		return
	}
	if err != nil {
		s.Log.Error("token socket: issue", "user", u.Name, "err", err)
		reply(w, http.StatusInternalServerError, Answer{Message: "Internal error; the admins will find it in the log."})
		return
	}
	s.Log.Info("token issued through self-service", "user", u.Name, "action", action)
	reply(w, http.StatusOK, Answer{User: u.Name, Token: token, Message: "Your REANA access token."})
}
