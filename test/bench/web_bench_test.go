//go:build bench

package bench

import (
	"crypto/tls"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/test/harness"
)

// TestBenchWeb: the web pages with 10,000 runs in the store: the first
// page of the runs list, the details of a run with 200 jobs, and what a
// browser downloads for the runs page (HTML, CSS and script).
func TestBenchWeb(t *testing.T) {
	d := harness.StartDaemon(t, env)
	alice := d.AddUser(t, "alice")
	seedRuns(t, d, "alice", 10000, 0)
	seedRuns(t, d, "alice", 1, 200) // the newest run: 200 jobs

	_, body, err := d.Do(http.MethodGet, "/api/workflows?type=batch&size=1", alice.Token, nil)
	require.NoError(t, err)
	var list struct {
		Items []struct{ ID string } `json:"items"`
	}
	require.NoError(t, json.Unmarshal(body, &list))
	require.Len(t, list.Items, 1)
	big := list.Items[0].ID

	jar, err := cookiejar.New(nil)
	require.NoError(t, err)
	c := &http.Client{Jar: jar, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, err := http.NewRequest(http.MethodPost, d.URL()+"/signin", strings.NewReader(url.Values{"token": {alice.Token}}.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	res, err := c.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	require.Equal(t, http.StatusSeeOther, res.StatusCode, "sign in")

	get := func(path string) []byte {
		res, err := c.Get(d.URL() + path)
		require.NoError(t, err)
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, res.StatusCode, "%s: %s", path, b)
		return b
	}
	measure := func(name, path string, n int) {
		var lat []time.Duration
		for range n {
			start := time.Now()
			get(path)
			lat = append(lat, time.Since(start))
		}
		report(name, float64(p99(lat).Microseconds())/1000, "ms", "< 50")
	}
	require.Equal(t, 200, strings.Count(string(get("/runs/"+big)), `<tr class="job"`))
	measure("ui_list_p99_ms", "/runs", 300)
	measure("ui_details_p99_ms", "/runs/"+big, 300)

	weight := len(get("/runs")) + len(get("/static/app.css")) + len(get("/static/app.js"))
	report("ui_page_weight_kb", float64(weight)/1024, "KB", "< 150")
}
