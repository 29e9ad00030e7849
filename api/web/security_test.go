package web_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/api/web"
)

func httptestRecorder(h http.Handler, path string) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
	return rec
}

func TestSecurityHeaders(t *testing.T) {
	e := newEnv(t, web.Config{})
	b := e.signedIn(e.token)
	for _, path := range []string{"/signin", "/runs", "/profile", "/nothing-here", "/static/app.css"} {
		t.Run(path, func(t *testing.T) {
			res := b.get(path)
			csp := res.Header.Get("Content-Security-Policy")
			assert.Contains(t, csp, "default-src 'self'")
			assert.NotContains(t, csp, "unsafe-inline", "no inline script or style on pages")
			assert.Contains(t, csp, "frame-ancestors 'none'")
			assert.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
			assert.Equal(t, "no-referrer", res.Header.Get("Referrer-Policy"))
			assert.NotContains(t, res.Body, "<script>", "no inline script")
		})
	}
	res := b.get("/nothing-here")
	assert.Equal(t, http.StatusNotFound, res.Status)
	assert.Contains(t, res.Body, "Start again from the list of your runs", "an error page says what to do")
}

func TestCrossOriginPostRefused(t *testing.T) {
	e := newEnv(t, web.Config{})
	b := e.signedIn(e.token)
	r := e.create("xsite", nil)
	j := e.start(r)
	_ = j
	tests := []struct {
		name    string
		headers []string
		status  int
	}{
		{"cross-site fetch", []string{"Sec-Fetch-Site", "cross-site"}, http.StatusForbidden},
		{"other origin", []string{"Sec-Fetch-Site", "", "Origin", "https://evil.example"}, http.StatusForbidden},
		{"same origin", []string{"Sec-Fetch-Site", "same-origin"}, http.StatusSeeOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := b.post("/runs/"+r.ID+"/stop", url.Values{"back": {"/runs"}}, tt.headers...)
			require.Equal(t, tt.status, res.Status, res.Body)
			if tt.status == http.StatusForbidden {
				assert.Contains(t, res.Body, "came from another site")
			}
		})
	}
	res := b.post("/logout", nil, "Sec-Fetch-Site", "cross-site")
	assert.Equal(t, http.StatusForbidden, res.Status, "not even logout")
	res = b.post("/signin", url.Values{"token": {e.token}}, "Sec-Fetch-Site", "cross-site")
	assert.Equal(t, http.StatusForbidden, res.Status, "no login CSRF")
}

func TestStaticAssets(t *testing.T) {
	e := newEnv(t, web.Config{})
	b := e.browser()
	for _, p := range []string{"/static/app.css", "/static/app.js"} {
		res := b.get(p)
		require.Equal(t, http.StatusOK, res.Status, p)
		assert.NotContains(t, res.Body, "http://", "nothing from outside the site")
		assert.NotContains(t, res.Body, "https://")
	}
	assert.Equal(t, http.StatusNotFound, b.get("/static/nope.js").Status)
}
