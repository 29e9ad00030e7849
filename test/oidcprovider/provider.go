// Package oidcprovider is a small OIDC provider for tests: discovery,
// JWKS, an authorize endpoint with a real HTML login form, and a token
// endpoint that checks the client, the redirect URL and the PKCE
// verifier. It signs RS256 ID tokens. Knobs make it misbehave the ways a
// relying party must notice (another audience, another nonce, an expired
// token).
package oidcprovider

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"html/template"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"time"
)

// User is an account at the provider.
type User struct {
	Password string
	// Claims go into the ID token as they are (sub, preferred_username,
	// email, email_verified...). sub defaults to the login name.
	Claims map[string]any
}

// Provider is a running test provider.
type Provider struct {
	URL          string // the issuer
	ClientID     string
	ClientSecret string

	mu    sync.Mutex
	users map[string]User
	codes map[string]grant
	// Knobs, for the next tokens issued.
	audience string
	nonce    *string
	lifetime time.Duration

	key    *rsa.PrivateKey
	server *httptest.Server
}

type grant struct {
	login, redirect, nonce, challenge string
}

// Start runs a provider over HTTPS (its certificate is the test server's;
// use Client). It stops when the test ends.
func Start(t interface{ Cleanup(func()) }, clientID, secret string) *Provider {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	p := &Provider{ClientID: clientID, ClientSecret: secret, users: map[string]User{}, codes: map[string]grant{},
		key: key, lifetime: 5 * time.Minute}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /jwks", p.jwks)
	mux.HandleFunc("GET /authorize", p.authorizeForm)
	mux.HandleFunc("POST /authorize", p.authorize)
	mux.HandleFunc("POST /token", p.token)
	p.server = httptest.NewTLSServer(mux)
	p.URL = p.server.URL
	t.Cleanup(p.server.Close)
	return p
}

// Client trusts the provider's certificate.
func (p *Provider) Client() *http.Client { return p.server.Client() }

// Certificate is the provider's TLS certificate, for clients in other
// processes (a daemon's SSL_CERT_FILE, a browser's TrustCert).
func (p *Provider) Certificate() *x509.Certificate { return p.server.Certificate() }

// AddUser adds (or replaces) an account.
func (p *Provider) AddUser(login string, u User) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.users[login] = u
}

// SetAudience makes the next ID tokens name another audience ("" is the
// client's own).
func (p *Provider) SetAudience(aud string) { p.mu.Lock(); p.audience = aud; p.mu.Unlock() }

// SetNonce makes the next ID tokens carry this nonce instead of the one
// asked for; nil restores that.
func (p *Provider) SetNonce(n *string) { p.mu.Lock(); p.nonce = n; p.mu.Unlock() }

// SetLifetime sets how long the next ID tokens are valid; negative gives
// tokens that expired already.
func (p *Provider) SetLifetime(d time.Duration) { p.mu.Lock(); p.lifetime = d; p.mu.Unlock() }

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (p *Provider) discovery(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                p.URL,
		"authorization_endpoint":                p.URL + "/authorize",
		"token_endpoint":                        p.URL + "/token",
		"jwks_uri":                              p.URL + "/jwks",
		"response_types_supported":              []string{"code"},
		"subject_types_supported":               []string{"public"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"code_challenge_methods_supported":      []string{"S256"},
		"scopes_supported":                      []string{"openid", "profile", "email"},
	})
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func (p *Provider) jwks(w http.ResponseWriter, _ *http.Request) {
	pub := p.key.PublicKey
	writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "alg": "RS256", "use": "sig", "kid": "test",
		"n": b64(pub.N.Bytes()), "e": b64(big.NewInt(int64(pub.E)).Bytes()),
	}}})
}

var loginForm = template.Must(template.New("login").Parse(`<!doctype html>
<html><head><title>Test provider sign-in</title></head><body>
<h1>Sign in to the test provider</h1>
{{if .Error}}<p id="error">{{.Error}}</p>{{end}}
<form method="post" action="/authorize">
{{range $k, $v := .Hidden}}<input type="hidden" name="{{$k}}" value="{{$v}}">
{{end}}<label>User <input id="username" name="username" autocomplete="username"></label>
<label>Password <input id="password" name="password" type="password"></label>
<button id="submit" type="submit">Sign in</button>
</form></body></html>
`))

// authorizeParams are the request's parameters the form carries along.
var authorizeParams = []string{"client_id", "redirect_uri", "response_type", "scope", "state", "nonce", "code_challenge", "code_challenge_method"}

func (p *Provider) authorizeForm(w http.ResponseWriter, r *http.Request) {
	p.showForm(w, r.URL.Query(), "")
}

func (p *Provider) showForm(w http.ResponseWriter, q url.Values, msg string) {
	hidden := map[string]string{}
	for _, k := range authorizeParams {
		hidden[k] = q.Get(k)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if msg != "" {
		w.WriteHeader(http.StatusUnauthorized)
	}
	_ = loginForm.Execute(w, map[string]any{"Hidden": hidden, "Error": msg})
}

func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	f := r.PostForm
	if f.Get("client_id") != p.ClientID || f.Get("response_type") != "code" || f.Get("redirect_uri") == "" {
		http.Error(w, "bad authorization request", http.StatusBadRequest)
		return
	}
	if f.Get("code_challenge_method") != "S256" || f.Get("code_challenge") == "" {
		http.Error(w, "PKCE with S256 is required", http.StatusBadRequest)
		return
	}
	p.mu.Lock()
	u, ok := p.users[f.Get("username")]
	p.mu.Unlock()
	if !ok || subtle.ConstantTimeCompare([]byte(u.Password), []byte(f.Get("password"))) != 1 {
		p.showForm(w, f, "Wrong user name or password.")
		return
	}
	code := random()
	p.mu.Lock()
	p.codes[code] = grant{login: f.Get("username"), redirect: f.Get("redirect_uri"), nonce: f.Get("nonce"), challenge: f.Get("code_challenge")}
	p.mu.Unlock()
	to, err := url.Parse(f.Get("redirect_uri"))
	if err != nil {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	q := to.Query()
	q.Set("code", code)
	q.Set("state", f.Get("state"))
	to.RawQuery = q.Encode()
	http.Redirect(w, r, to.String(), http.StatusFound)
}

func random() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return b64(b)
}

func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	id, secret, ok := r.BasicAuth()
	if !ok {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	if id != p.ClientID || secret != p.ClientSecret {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid_client"})
		return
	}
	p.mu.Lock()
	g, ok := p.codes[r.PostForm.Get("code")]
	delete(p.codes, r.PostForm.Get("code"))
	u := p.users[g.login]
	aud, nonce, life := p.audience, g.nonce, p.lifetime
	if p.nonce != nil {
		nonce = *p.nonce
	}
	p.mu.Unlock()
	sum := sha256.Sum256([]byte(r.PostForm.Get("code_verifier")))
	switch {
	case !ok || r.PostForm.Get("grant_type") != "authorization_code":
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant"})
		return
	case r.PostForm.Get("redirect_uri") != g.redirect:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": "redirect_uri differs"})
		return
	case b64(sum[:]) != g.challenge:
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "invalid_grant", "error_description": "PKCE verifier does not match"})
		return
	}
	if aud == "" {
		aud = p.ClientID
	}
	now := time.Now()
	claims := map[string]any{"iss": p.URL, "sub": g.login, "aud": aud, "iat": now.Unix(), "exp": now.Add(life).Unix()}
	if nonce != "" {
		claims["nonce"] = nonce
	}
	for k, v := range u.Claims {
		claims[k] = v
	}
	idt, err := p.sign(claims)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"access_token": random(), "token_type": "Bearer", "expires_in": 300, "id_token": idt})
}

// sign makes a compact JWS, RS256.
func (p *Provider) sign(claims map[string]any) (string, error) {
	h, err := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": "test"})
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	input := b64(h) + "." + b64(c)
	sum := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, p.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return input + "." + b64(sig), nil
}
