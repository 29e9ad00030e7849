package api_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/reana-site/reana-site/api"
	"github.com/reana-site/reana-site/daemon/config"
)

// /site/* is the sign-in package's, mounted only when the site has one,
// and answered without an access token.
func TestSiteRoutesMounted(t *testing.T) {
	site := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusTeapot)
		_, _ = w.Write([]byte(`{"message": "` + r.URL.Path + `"}`))
	})
	with := newEnv(t, config.Config{}, func(s *api.Server) { s.Site = site })
	res := with.do(request{Method: http.MethodPost, Path: "/site/token", Token: "-"})
	assert.Equal(t, http.StatusTeapot, res.Status)
	assert.Equal(t, "/site/token", res.JSON["message"])

	without := newEnv(t, config.Config{})
	res = without.do(request{Method: http.MethodPost, Path: "/site/token", Token: "-"})
	assert.Equal(t, http.StatusNotFound, res.Status)
}
