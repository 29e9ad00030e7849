package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/reana-site/reana-site/daemon/store"
)

// cookieName has the __Host- prefix: browsers keep such a cookie only if
// it is Secure, has Path=/ and no Domain, so no other host can set it.
const cookieName = "__Host-reana-site-session"

// Sign-in methods a session records.
const (
	MethodToken    = "token"
	MethodLink     = "link"
	MethodKerberos = "kerberos"
	MethodOIDC     = "oidc"
)

// touchEvery is how stale a session's last-seen time may get before a
// request records it again: not a store write per page.
const touchEvery = 5 * time.Minute

// Sessions are the signed-in browsers, kept in the store by the hash of
// their cookie's secret. Package api/login starts sessions through these
// two methods too.
type Sessions struct {
	DB       *store.DB
	Lifetime time.Duration
	Log      *slog.Logger
}

// Start signs u in: it records a new session and sets its cookie. method
// says how the user proved who they are ("token", "link", "kerberos" or
// "oidc").
func (s *Sessions) Start(w http.ResponseWriter, r *http.Request, u store.User, method string) error {
	switch method {
	case MethodToken, MethodLink, MethodKerberos, MethodOIDC:
	default:
		return fmt.Errorf("start a web session: unknown sign-in method %q", method)
	}
	secret, hash, err := newSecret()
	if err != nil {
		return fmt.Errorf("start a web session: %w", err)
	}
	expires := time.Now().Add(s.Lifetime)
	if err := s.DB.CreateSession(r.Context(), hash, u.ID, method, expires); err != nil {
		return fmt.Errorf("start a web session for %s: %w", u.Name, err)
	}
	// Max-Age, not Expires: it does not depend on the browser's clock.
	// The store's expiry is what counts either way.
	http.SetCookie(w, &http.Cookie{
		Name: cookieName, Value: secret, Path: "/", MaxAge: int(s.Lifetime.Seconds()),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode,
	})
	s.Log.Info("signed in", "user", u.Name, "method", method)
	return nil
}

// User is the user of the request's session, if it has a valid one.
func (s *Sessions) User(r *http.Request) (store.User, bool) {
	c, err := r.Cookie(cookieName)
	if err != nil || c.Value == "" {
		return store.User{}, false
	}
	hash := hashSecret(c.Value)
	u, sess, err := s.DB.SessionUser(r.Context(), hash)
	if err != nil {
		return store.User{}, false
	}
	if time.Since(sess.LastSeenAt) > touchEvery {
		if err := s.DB.TouchSession(r.Context(), hash); err != nil {
			s.Log.Warn("record a session's use", "user", u.Name, "err", err)
		}
	}
	return u, true
}

// endSession deletes the request's session and its cookie.
func endSession(db *store.DB, w http.ResponseWriter, r *http.Request) error {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	c, err := r.Cookie(cookieName)
	if err != nil || c.Value == "" {
		return nil
	}
	return db.DeleteSession(r.Context(), hashSecret(c.Value))
}

// newSecret is 256 random bits as URL-safe text, and its hash.
func newSecret() (string, []byte, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, err
	}
	secret := base64.RawURLEncoding.EncodeToString(b)
	return secret, hashSecret(secret), nil
}

func hashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

// cleanupEvery is how often expired sessions and links are removed.
const cleanupEvery = time.Hour

// Cleanup removes expired sessions and login links now and then every
// hour, until ctx ends.
func (s *Server) Cleanup(ctx context.Context) {
	t := time.NewTicker(cleanupEvery)
	defer t.Stop()
	for {
		if n, err := s.API.DB.DeleteExpiredSessions(ctx); err != nil {
			s.Log.Warn("remove expired web sessions", "err", err)
		} else if n > 0 {
			s.Log.Debug("removed expired web sessions and login links", "rows", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// NewLoginLink makes a one-time login link for u, valid for the
// configured lifetime (the token socket's POST /login-link hands it out).
func (s *Server) NewLoginLink(ctx context.Context, u store.User) (string, time.Time, error) {
	secret, hash, err := newSecret()
	if err != nil {
		return "", time.Time{}, fmt.Errorf("make a login link: %w", err)
	}
	expires := time.Now().Add(s.Config.LoginLinkLifetime)
	if err := s.API.DB.CreateLoginLink(ctx, hash, u.ID, expires); err != nil {
		return "", time.Time{}, fmt.Errorf("make a login link for %s: %w", u.Name, err)
	}
	return s.Config.PublicURL + "/signin/link?k=" + secret, expires, nil
}
