package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/reana-site/reana-site/api"
	"github.com/reana-site/reana-site/daemon/store"
)

// signinData is the sign-in page. There is no sign-up: accounts are the
// site's POSIX accounts, added by its admins or by `reana-site token`.
type signinData struct {
	Next    string
	Error   string
	Options []SignInOption
}

func (s *Server) signinPage(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.Sessions.User(r); ok {
		http.Redirect(w, r, safeNext(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	s.signinForm(w, r, http.StatusOK, "")
}

func (s *Server) signinForm(w http.ResponseWriter, r *http.Request, status int, msg string) {
	s.page(w, r, status, "signin", "Sign in", signinData{Next: safeNext(r.FormValue("next")), Error: msg, Options: s.Config.SignInOptions})
}

// signinToken signs in with a pasted REANA token, checked exactly as the
// API checks one (rate limit of wrong tokens included). The token is
// never shown back, logged or put in a URL.
func (s *Server) signinToken(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 1<<16)
	token := strings.TrimSpace(r.PostFormValue("token"))
	if token == "" {
		s.signinForm(w, r, http.StatusBadRequest, "Paste your REANA access token (the value of REANA_ACCESS_TOKEN).")
		return
	}
	u, _, err := s.API.Authenticate(r.Context(), r.RemoteAddr, token)
	if err != nil {
		var ref *api.Refusal
		if !errors.As(err, &ref) {
			s.internal(w, r, "check your token", err)
			return
		}
		if ref.RetryAfter > 0 {
			w.Header().Set("Retry-After", strconv.Itoa(ref.RetryAfter))
		}
		msg := ref.Message
		if ref.Status == http.StatusForbidden && strings.HasPrefix(msg, "Token not valid") {
			msg = "That token is not valid. On the login node, `reana-site token` gives you yours (or `reana-site login-link` a link to sign in)."
		}
		s.signinForm(w, r, ref.Status, msg)
		return
	}
	if err := s.Sessions.Start(w, r, u, MethodToken); err != nil {
		s.internal(w, r, "sign you in", err)
		return
	}
	http.Redirect(w, r, safeNext(r.PostFormValue("next")), http.StatusSeeOther)
}

// signinLink spends a one-time login link and redirects at once, so the
// key leaves the address bar (and, with no-referrer, went nowhere else).
func (s *Server) signinLink(w http.ResponseWriter, r *http.Request) {
	k := r.URL.Query().Get("k")
	if k == "" {
		s.errorPage(w, r, http.StatusBadRequest, "Login link incomplete", "The link has no key. Copy the whole line that `reana-site login-link` printed.")
		return
	}
	var u store.User
	valid := false
	err := s.API.LimitFailures(r.RemoteAddr, func() (bool, error) {
		var err error
		u, err = s.API.DB.UseLoginLink(r.Context(), hashSecret(k))
		if errors.Is(err, store.ErrNotFound) {
			return false, nil
		}
		valid = err == nil
		return true, err
	})
	var ref *api.Refusal
	if errors.As(err, &ref) {
		w.Header().Set("Retry-After", strconv.Itoa(ref.RetryAfter))
		s.errorPage(w, r, ref.Status, "Too many attempts", ref.Message)
		return
	}
	if err != nil {
		s.internal(w, r, "check the login link", err)
		return
	}
	if !valid {
		s.errorPage(w, r, http.StatusForbidden, "Login link not valid", "This login link was used already, or it expired. Run `reana-site login-link` on the login node for a new one.")
		return
	}
	if _, ok := s.account(w, r, u); !ok {
		return
	}
	if err := s.Sessions.Start(w, r, u, MethodLink); err != nil {
		s.internal(w, r, "sign you in", err)
		return
	}
	http.Redirect(w, r, "/runs", http.StatusSeeOther)
}

func (s *Server) logout(w http.ResponseWriter, r *http.Request) {
	if err := endSession(s.API.DB, w, r); err != nil {
		s.internal(w, r, "sign you out", err)
		return
	}
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

// safeNext is where to go after signing in: a path on this site only.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n\t") || strings.HasPrefix(next, "/signin") {
		return "/runs"
	}
	return next
}
