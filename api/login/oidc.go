package login

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/reana-site/reana-site/api/authlimit"
	"github.com/reana-site/reana-site/daemon/identity"
	"github.com/reana-site/reana-site/daemon/store"
)

// OIDCConfig is the site's OIDC client registration.
type OIDCConfig struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	// RedirectURL is https://<host>/site/oidc/callback as registered.
	RedirectURL string
	// Scopes are asked for besides openid; empty means profile and email.
	Scopes []string
	// UsernameClaim names the claim that names the user; empty means
	// preferred_username. With "email", email_verified must be true.
	UsernameClaim string
	// Label is the sign-in button's text.
	Label string
	// HTTPClient talks to the provider; nil means http.DefaultClient.
	HTTPClient *http.Client
}

// Pending sign-ins are bounded in number and age: each costs memory until
// its browser comes back, and many never do.
const (
	maxPending = 10000
	pendingTTL = 10 * time.Minute
	// stateCookie ties the callback to the browser that started the
	// sign-in, so nobody can make a victim's browser finish theirs.
	stateCookie = "reana_site_oidc_state"
)

// OIDC runs the authorization code flow with PKCE, state and nonce.
type OIDC struct {
	cfg OIDCConfig

	discoverMu sync.Mutex
	provider   *oidc.Provider // found on first use, so a provider down at start delays nothing

	mu      sync.Mutex
	pending map[string]pendingLogin
}

type pendingLogin struct {
	nonce, verifier string
	expires         time.Time
}

// NewOIDC checks the configuration; the provider is asked for its
// discovery document on the first sign-in.
func NewOIDC(cfg OIDCConfig) (*OIDC, error) {
	if cfg.Issuer == "" || cfg.ClientID == "" || cfg.RedirectURL == "" {
		return nil, errors.New("OIDC needs the issuer, the client id and the redirect URL")
	}
	if cfg.UsernameClaim == "" {
		cfg.UsernameClaim = "preferred_username"
	}
	if len(cfg.Scopes) == 0 {
		cfg.Scopes = []string{"profile", "email"}
	}
	return &OIDC{cfg: cfg, pending: map[string]pendingLogin{}}, nil
}

func (o *OIDC) label() string {
	if o.cfg.Label != "" {
		return o.cfg.Label
	}
	return "Sign in with single sign-on"
}

func (o *OIDC) clientContext(ctx context.Context) context.Context {
	if o.cfg.HTTPClient == nil {
		return ctx
	}
	return oidc.ClientContext(ctx, o.cfg.HTTPClient)
}

// discoveryTimeout bounds fetching the discovery document.
const discoveryTimeout = 15 * time.Second

// Discover loads the provider's discovery document (and keeps it).
func (o *OIDC) Discover(ctx context.Context) (*oidc.Provider, error) {
	o.discoverMu.Lock()
	defer o.discoverMu.Unlock()
	if o.provider != nil {
		return o.provider, nil
	}
	// go-oidc keeps only the HTTP client of this context for fetching the
	// keys later, so the timeout ends with this call.
	ctx, cancel := context.WithTimeout(o.clientContext(ctx), discoveryTimeout)
	defer cancel()
	p, err := oidc.NewProvider(ctx, o.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("OIDC discovery at %s: %w", o.cfg.Issuer, err)
	}
	o.provider = p
	return p, nil
}

func (o *OIDC) oauth2(p *oidc.Provider) *oauth2.Config {
	return &oauth2.Config{ClientID: o.cfg.ClientID, ClientSecret: o.cfg.ClientSecret, RedirectURL: o.cfg.RedirectURL,
		Endpoint: p.Endpoint(), Scopes: append([]string{oidc.ScopeOpenID}, o.cfg.Scopes...)}
}

// begin records a new pending sign-in and returns its state.
func (o *OIDC) begin(now time.Time) (state string, p pendingLogin, err error) {
	state, p.nonce, p.verifier = random(), random(), oauth2.GenerateVerifier()
	p.expires = now.Add(pendingTTL)
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.pending) >= maxPending {
		for k, v := range o.pending {
			if now.After(v.expires) {
				delete(o.pending, k)
			}
		}
	}
	if len(o.pending) >= maxPending {
		return "", p, refuse(http.StatusServiceUnavailable, "Too many sign-ins are under way; try again in a few minutes.")
	}
	o.pending[state] = p
	return state, p, nil
}

// take ends the pending sign-in of state.
func (o *OIDC) take(state string, now time.Time) (pendingLogin, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	p, ok := o.pending[state]
	delete(o.pending, state)
	return p, ok && now.Before(p.expires)
}

func random() string {
	b := make([]byte, 32)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return base64.RawURLEncoding.EncodeToString(b)
}

// oidcReady answers the OIDC routes when the web interface or OIDC is off.
func (s *Service) oidcReady(w http.ResponseWriter) bool {
	switch {
	case s.Sessions == nil:
		webOff(w)
	case s.OIDC == nil:
		reply(w, http.StatusNotFound, Answer{Message: "OIDC sign-in is not configured on this site (REANA_SITE_OIDC_ISSUER)."})
	default:
		return true
	}
	return false
}

func (s *Service) oidcLogin(w http.ResponseWriter, r *http.Request) {
	if !s.oidcReady(w) {
		return
	}
	p, err := s.OIDC.Discover(r.Context())
	if err != nil {
		s.Log.Error("OIDC provider", "err", err)
		reply(w, http.StatusBadGateway, Answer{Message: "The site's sign-in provider does not answer; try again later, or tell the admins."})
		return
	}
	state, pl, err := s.OIDC.begin(time.Now())
	if err != nil {
		s.fail(w, r, "start the sign-in", err)
		return
	}
	http.SetCookie(w, &http.Cookie{Name: stateCookie, Value: state, Path: "/site/oidc/", MaxAge: int(pendingTTL / time.Second),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, s.OIDC.oauth2(p).AuthCodeURL(state, oidc.Nonce(pl.nonce), oauth2.S256ChallengeOption(pl.verifier)), http.StatusFound)
}

func (s *Service) oidcCallback(w http.ResponseWriter, r *http.Request) {
	if !s.oidcReady(w) {
		return
	}
	http.SetCookie(w, &http.Cookie{Name: stateCookie, Path: "/site/oidc/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteLaxMode})
	u, err := s.oidcUser(r)
	if err != nil {
		s.fail(w, r, "finish the OIDC sign-in", err)
		return
	}
	s.startSession(w, r, u, identity.MethodOIDC)
}

// oidcUser checks the provider's answer and returns the user it signs in.
func (s *Service) oidcUser(r *http.Request) (store.User, error) {
	ctx := r.Context()
	q := r.URL.Query()
	if e := q.Get("error"); e != "" {
		return store.User{}, refuse(http.StatusUnauthorized, "The sign-in provider refused: %s %s.", e, q.Get("error_description"))
	}
	// Every callback is charged until its ID token is verified: a wrong
	// state or code is a guess, and a code costs a round trip to the
	// provider.
	attempt, err := s.attempt(r)
	if err != nil {
		return store.User{}, err
	}
	idt, err := s.oidcToken(r, attempt)
	if err != nil {
		return store.User{}, err
	}
	attempt.Succeeded()
	id, err := s.OIDC.identity(idt)
	if err != nil {
		return store.User{}, err
	}
	u, err := s.user(ctx, id)
	if err != nil {
		return u, err
	}
	if err := s.DB.BindLogin(ctx, id.Issuer, id.Subject, u.ID); err != nil {
		if errors.Is(err, store.ErrLoginBound) || errors.Is(err, store.ErrLoginTaken) {
			return u, refuse(http.StatusForbidden, "%s is already signed in from another account of %s, not this one (%s); ask the site's admins.", u.Name, id.Issuer, err)
		}
		return u, err
	}
	return u, nil
}

// oidcToken checks the callback's state against the browser's, trades its
// code for an ID token and verifies that and its nonce. A failure of the
// provider itself is no guess and gives attempt's charge back.
func (s *Service) oidcToken(r *http.Request, attempt authlimit.Attempt) (*oidc.IDToken, error) {
	ctx := r.Context()
	q := r.URL.Query()
	state := q.Get("state")
	c, err := r.Cookie(stateCookie)
	if state == "" || err != nil || subtle.ConstantTimeCompare([]byte(c.Value), []byte(state)) != 1 {
		return nil, refuse(http.StatusUnauthorized, "This sign-in was not started by this browser (the state does not match); start again from the sign-in page.")
	}
	pl, ok := s.OIDC.take(state, time.Now())
	if !ok {
		return nil, refuse(http.StatusUnauthorized, "This sign-in expired or was already used; start again from the sign-in page.")
	}
	p, err := s.OIDC.Discover(ctx)
	if err != nil {
		attempt.Succeeded()
		return nil, err
	}
	tok, err := s.OIDC.oauth2(p).Exchange(s.OIDC.clientContext(ctx), q.Get("code"), oauth2.VerifierOption(pl.verifier))
	if err != nil {
		var answered *oauth2.RetrieveError
		if !errors.As(err, &answered) {
			attempt.Succeeded() // the provider did not answer: not the caller's fault
		}
		return nil, refuse(http.StatusUnauthorized, "The sign-in provider did not accept the code: %v.", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, refuse(http.StatusUnauthorized, "The sign-in provider sent no ID token.")
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: s.OIDC.cfg.ClientID}).Verify(s.OIDC.clientContext(ctx), raw)
	if err != nil {
		return nil, refuse(http.StatusUnauthorized, "The ID token is not valid: %v.", err)
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(pl.nonce)) != 1 {
		return nil, refuse(http.StatusUnauthorized, "The ID token's nonce is not this sign-in's; start again from the sign-in page.")
	}
	return idt, nil
}

// identity reads the verified token's claims.
func (o *OIDC) identity(idt *oidc.IDToken) (identity.LoginIdentity, error) {
	var claims map[string]any
	if err := idt.Claims(&claims); err != nil {
		return identity.LoginIdentity{}, fmt.Errorf("read the ID token's claims: %w", err)
	}
	id := identity.LoginIdentity{Method: identity.MethodOIDC, Issuer: idt.Issuer, Subject: idt.Subject}
	id.Email, _ = claims["email"].(string)
	name, _ := claims[o.cfg.UsernameClaim].(string)
	if name == "" {
		return id, refuse(http.StatusForbidden, "The ID token has no %s claim, which this site names users by.", o.cfg.UsernameClaim)
	}
	if o.cfg.UsernameClaim == "email" && !verified(claims["email_verified"]) {
		return id, refuse(http.StatusForbidden, "The provider has not verified the email address %s, which this site names users by.", name)
	}
	id.Name = name
	return id, nil
}

// verified reads email_verified, which some providers send as a string.
func verified(v any) bool {
	switch v := v.(type) {
	case bool:
		return v
	case string:
		return v == "true"
	}
	return false
}
