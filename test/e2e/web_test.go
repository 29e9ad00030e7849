//go:build e2e

package e2e

import (
	"crypto/tls"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// webClient is a browser-like client of the daemon: its own cookies, no
// redirects followed.
func webClient(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	return &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func webGet(t *testing.T, c *http.Client, target string) (*http.Response, string) {
	t.Helper()
	res, err := c.Get(target)
	require.NoError(t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	require.NoError(t, err)
	return res, string(b)
}

// TestLoginLinkSignsIn: `reana-site login-link` on the node prints a link
// that signs the user in once, through the real daemon's wiring.
func TestLoginLinkSignsIn(t *testing.T) {
	d, sock := tokenDaemon(t, true)
	alice := posixUser(t, d, "alice")
	out, code := alice.Run(t, "/", []string{"REANA_SITE_TOKEN_SOCKET=" + sock}, d.Env().Bin, "login-link")
	require.Zero(t, code, out)
	var link string
	for _, line := range strings.Split(out, "\n") {
		if strings.HasPrefix(line, "https://") {
			link = line
		}
	}
	require.NotEmpty(t, link, out)
	assert.Contains(t, out, "it works once")
	u, err := url.Parse(link)
	require.NoError(t, err)
	assert.Equal(t, "/signin/link", u.Path)
	target := d.URL() + u.RequestURI() // the daemon's address, whatever name the link uses

	c := webClient(t)
	res, _ := webGet(t, c, target)
	require.Equal(t, http.StatusSeeOther, res.StatusCode)
	assert.Equal(t, "/runs", res.Header.Get("Location"))
	res, body := webGet(t, c, d.URL()+"/runs")
	require.Equal(t, http.StatusOK, res.StatusCode, body)
	assert.Contains(t, body, `<span id="who"`)
	assert.Contains(t, body, ">alice</span>")
	assert.Contains(t, res.Header.Get("Content-Security-Policy"), "default-src 'self'")

	res, _ = webGet(t, webClient(t), target)
	assert.Equal(t, http.StatusForbidden, res.StatusCode, "a link works once")

	// A cross-site POST is refused by the daemon as wired.
	req, err := http.NewRequest(http.MethodPost, d.URL()+"/logout", nil)
	require.NoError(t, err)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	res, err = c.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusForbidden, res.StatusCode)

	// The API keeps its paths.
	var ping struct{ Message string }
	require.Equal(t, http.StatusOK, d.JSON(t, "GET", "/api/ping", "", nil, &ping))
	assert.Equal(t, "OK", ping.Message)
}
