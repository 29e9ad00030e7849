//go:build e2e

package e2e

import (
	"archive/zip"
	"fmt"
	"html/template"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/test/browser"
)

// ui is a daemon, alice registered with it, and a browser that trusts the
// daemon's own certificate (and no other) and browses it as
// https://localhost:PORT, the way a user on the node would.
type ui struct {
	d     *Daemon
	alice *User
	sock  string
	b     *browser.Browser
	base  string
}

func startUI(t *testing.T, opts ...browser.Option) *ui {
	t.Helper()
	d, sock := tokenDaemon(t, false)
	alice := d.AddUser(t, "alice")
	_, port, err := net.SplitHostPort(d.Addr)
	require.NoError(t, err)
	b := browser.Start(t, append([]browser.Option{browser.TrustCertFile(d.StateDir + "/tls.crt"), browser.Timeout(45 * time.Second)}, opts...)...)
	return &ui{d: d, alice: alice, sock: sock, b: b, base: "https://localhost:" + port}
}

// loginLink runs `reana-site login-link` as alice and returns the link,
// on this test's origin (the path and key as printed).
func (s *ui) loginLink(t *testing.T) string {
	t.Helper()
	out, code := s.alice.Run(t, "/", []string{"REANA_SITE_TOKEN_SOCKET=" + s.sock}, s.d.Env().Bin, "login-link")
	require.Zero(t, code, "reana-site login-link as alice: %s", out)
	var link string
	for _, f := range strings.Fields(out) {
		if strings.HasPrefix(f, "https://") {
			link = f
		}
	}
	require.NotEmpty(t, link, "login-link printed no link: %s", out)
	u, err := url.Parse(link)
	require.NoError(t, err)
	return s.base + u.RequestURI()
}

// signIn signs alice in with a fresh login link and lands on the runs page.
func (s *ui) signIn(t *testing.T) {
	t.Helper()
	assert.EqualValues(t, http.StatusOK, s.b.Navigate(t, s.loginLink(t)))
	s.b.WaitTrue(t, `location.pathname === "/runs"`, 10*time.Second)
}

// submit runs a workflow with the real reana-client as alice and returns
// the run's API id.
func (s *ui) submit(t *testing.T, testdata, name string, args ...string) (dir, id string) {
	t.Helper()
	dir = s.alice.WorkDir(t, testdata)
	s.alice.MustClient(t, dir, append([]string{"run", "-w", name}, args...)...)
	w, st := s.alice.Status(t, name+".1")
	require.Equal(t, http.StatusOK, st)
	return dir, w.ID
}

// assertClean fails the test when a page reported a problem since the last
// check (see browser.Problems).
func assertClean(t *testing.T, b *browser.Browser) {
	t.Helper()
	for _, p := range b.Problems() {
		t.Errorf("the page did not load clean: %s", p)
	}
	// The next check looks at what came after this one.
	b.ClearProblems()
}

// js quotes a Go string for a JavaScript expression.
func js(s string) string { return fmt.Sprintf("%q", s) }

func TestUISignInWithLoginLink(t *testing.T) {
	s := startUI(t)
	link := s.loginLink(t)
	assert.EqualValues(t, http.StatusOK, s.b.Navigate(t, link))
	s.b.WaitTrue(t, `location.pathname === "/runs"`, 10*time.Second)
	assert.NotContains(t, browser.Run(t, s.b, chromedp.Location()), "k=", "the key leaves the address bar")
	assert.Equal(t, "alice", browser.Run(t, s.b, chromedp.Text(chromedp.ID("who"))))
	s.b.Screenshot(t, "runs-empty")
	assertClean(t, s.b)

	// The link is spent: a second browser cannot use it.
	other := browser.Start(t, browser.TrustCertFile(filepath.Join(s.d.StateDir, "tls.crt")))
	assert.EqualValues(t, http.StatusForbidden, other.Navigate(t, link))
	other.Screenshot(t, "link-spent")
}

// TestUISignInWithTokenAndSignOut signs in by typing the token into the
// sign-in form (only with the keyboard), lands where the first page
// asked, finds the token nowhere in the page or its address, and signs
// out.
func TestUISignInWithTokenAndSignOut(t *testing.T) {
	s := startUI(t)
	assert.EqualValues(t, http.StatusOK, s.b.Navigate(t, s.base+"/profile"))
	s.b.WaitTrue(t, `location.pathname === "/signin"`, 10*time.Second)
	s.b.Screenshot(t, "signin")

	// A wrong token is refused, and says what to do.
	s.b.Do(t, chromedp.SendKeys(chromedp.ID("token"), "not-a-token\r"))
	s.b.WaitTrue(t, `document.getElementById("signin-error")`, 10*time.Second)
	assert.Contains(t, browser.Run(t, s.b, chromedp.Text(chromedp.ID("signin-error"))), "login-link")
	s.b.ClearProblems() // the refusal's 403, which was the point

	s.b.Do(t, chromedp.SendKeys(chromedp.ID("token"), s.alice.Token+"\r"))
	s.b.WaitTrue(t, `location.pathname === "/profile"`, 10*time.Second)
	assert.Equal(t, "alice", browser.Run(t, s.b, chromedp.Text(chromedp.ID("profile-user"))))
	html := browser.Run(t, s.b, chromedp.OuterHTML(chromedp.CSS("html")))
	assert.NotContains(t, html, s.alice.Token, "the token is not shown again")
	assert.NotContains(t, browser.Run(t, s.b, chromedp.Location()), s.alice.Token)
	s.b.Screenshot(t, "profile")
	assertClean(t, s.b)

	s.b.Do(t, chromedp.Click(chromedp.ID("logout-button")))
	s.b.WaitTrue(t, `location.pathname === "/signin"`, 10*time.Second)
	s.b.Navigate(t, s.base+"/runs")
	assert.Equal(t, "/signin", browser.Eval[string](t, s.b, `location.pathname`), "signed out")
}

// TestUIRoot6Fit follows root6-fit, submitted with the real reana-client,
// on the pages: it appears on the open runs page and finishes there
// without a reload, its plot's preview decodes, and its results directory
// downloads as a zip with the run's files.
func TestUIRoot6Fit(t *testing.T) {
	s := startUI(t)
	s.signIn(t)
	// A mark in the page's window: a reload would lose it.
	browser.Eval[int](t, s.b, `window.__uiTestMark = 42`)

	_, id := s.submit(t, "root6-fit", "root6-fit", "-p", "events=2000")
	row := `document.querySelector(` + js(`tr.run[data-run-id="`+id+`"]`) + `)`
	s.b.WaitTrue(t, row, 30*time.Second)
	s.b.WaitTrue(t, row+`.dataset.status === "finished"`, 3*time.Minute)
	assert.Equal(t, "2/2", browser.Eval[string](t, s.b, row+`.querySelector("td.run-steps").textContent.trim()`))
	assert.Equal(t, 42, browser.Eval[int](t, s.b, `window.__uiTestMark`), "the runs page updated without a reload")
	assert.Equal(t, "1 run", browser.Eval[string](t, s.b, `document.getElementById("runs-total").textContent`), "the count follows the rows")
	s.b.Screenshot(t, "runs-finished")
	assertClean(t, s.b)

	ws := s.d.WorkspaceOf(s.alice, id)
	plot, err := os.ReadFile(filepath.Join(ws, "results", "plot.png"))
	require.NoError(t, err)

	t.Run("search kept in the URL", func(t *testing.T) {
		rows := `document.querySelectorAll("tr.run").length`
		for _, tt := range []struct {
			q    string
			want int
		}{{"root6", 1}, {"no-such-run", 0}} {
			s.b.Navigate(t, s.base+"/runs")
			s.b.Do(t, chromedp.SendKeys(chromedp.ID("search"), tt.q+"\r"))
			s.b.WaitTrue(t, `new URLSearchParams(location.search).get("q") === `+js(tt.q), 10*time.Second)
			assert.Equal(t, tt.want, browser.Eval[int](t, s.b, rows), "runs matching %q", tt.q)
			// The address alone gives the same page.
			s.b.Navigate(t, browser.Run(t, s.b, chromedp.Location()))
			assert.Equal(t, tt.q, browser.Run(t, s.b, chromedp.Value(chromedp.ID("search"))))
			assert.Equal(t, tt.want, browser.Eval[int](t, s.b, rows))
		}
		s.b.Screenshot(t, "runs-search")
		assertClean(t, s.b)
	})

	t.Run("details and a step log", func(t *testing.T) {
		s.b.Navigate(t, s.base+"/runs/"+id)
		assert.Equal(t, "finished", browser.Run(t, s.b, chromedp.Text(chromedp.CSS("#run-status .status"))))
		assert.Equal(t, 2, browser.Eval[int](t, s.b, `document.querySelectorAll("table#steps tr.job").length`))
		job := browser.Eval[string](t, s.b, `document.querySelector('tr.job[data-step="fitdata"]').dataset.jobId`)
		// A finished step's log is fetched when its section is opened.
		s.b.Do(t, chromedp.Click(chromedp.CSS("#log-"+job+" > summary")))
		s.b.WaitTrue(t, `document.querySelector("#log-`+job+` pre.log-tail").textContent.includes("fit result:")`, 15*time.Second)
		s.b.Screenshot(t, "details")
		assertClean(t, s.b)
	})

	t.Run("plot preview", func(t *testing.T) {
		s.b.Navigate(t, s.base+"/runs/"+id+"/files/results")
		s.b.Do(t, chromedp.Click(chromedp.CSS(`tr.file[data-path$="plot.png"] a.file-link`)))
		img := `document.querySelector("img#preview-image")`
		s.b.WaitTrue(t, img+` && `+img+`.complete`, 15*time.Second)
		assert.Positive(t, browser.Eval[int](t, s.b, img+`.naturalWidth`), "the plot decodes")
		s.b.Screenshot(t, "plot-preview")
		assertClean(t, s.b)
	})

	t.Run("directory as zip", func(t *testing.T) {
		s.b.Navigate(t, s.base+"/runs/"+id+"/files/results")
		path := s.b.Download(t, chromedp.Click(chromedp.ID("zip-download")))
		s.b.Screenshot(t, "files-results")
		zr, err := zip.OpenReader(path)
		require.NoError(t, err)
		defer zr.Close()
		got := map[string][]byte{}
		for _, f := range zr.File {
			rc, err := f.Open()
			require.NoError(t, err)
			b, err := io.ReadAll(rc)
			rc.Close()
			require.NoError(t, err)
			got[f.Name] = b
		}
		var png []byte
		for name, b := range got {
			if strings.HasSuffix(name, "plot.png") {
				png = b
			}
		}
		assert.Equal(t, plot, png, "the zip holds the run's plot: %v", keys(got))
	})
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestUILiveLogTail watches a running step's log grow on its page, over
// the page's live tail, without a reload; the page is opened as soon as
// the run is submitted, so its step may start after the page loaded.
func TestUILiveLogTail(t *testing.T) {
	s := startUI(t)
	s.signIn(t)
	_, id := s.submit(t, "ticker", "ticker", "-p", "ticks=12")
	s.b.Navigate(t, s.base+"/runs/"+id)
	browser.Eval[int](t, s.b, `window.__uiTestMark = 42`)
	live := `document.querySelector("#job-logs pre.log-tail")`
	tail := `(` + live + ` || {textContent: ""}).textContent`
	s.b.WaitTrue(t, tail+`.includes("tick 2")`, time.Minute)
	s.b.Screenshot(t, "tail-early")

	// Pause stops following the end, not the log.
	s.b.Do(t, chromedp.Click(chromedp.CSS(`#job-logs button.log-follow`)))
	assert.Equal(t, "false", browser.Eval[string](t, s.b, `document.querySelector("#job-logs button.log-follow").getAttribute("aria-pressed")`))
	s.b.WaitTrue(t, tail+`.includes("tick 6")`, 30*time.Second)
	assert.Equal(t, 42, browser.Eval[int](t, s.b, `window.__uiTestMark`), "the log grew without a reload")
	s.b.Screenshot(t, "tail-later")

	// When the step ends, the stream says so, and the log is whole.
	s.b.WaitTrue(t, live+`.dataset.ended === "finished"`, 30*time.Second)
	got := browser.Eval[string](t, s.b, tail)
	for i := 1; i <= 12; i++ {
		assert.Contains(t, got, fmt.Sprintf("tick %d\n", i))
	}
	assertClean(t, s.b)
}

// TestUIUserFilesRunNoScript: a run's evil.html and evil.svg, which try to
// write to the site's localStorage, are shown and downloaded without ever
// running in the site's origin.
func TestUIUserFilesRunNoScript(t *testing.T) {
	s := startUI(t)
	s.signIn(t)
	dir, id := s.submit(t, "evil-files", "evil")
	s.alice.WaitStatus(t, "evil.1", 2*time.Minute, "finished")
	pwned := `localStorage.getItem("pwned")`

	// The preview of evil.html is its text, with line numbers.
	s.b.Navigate(t, s.base+"/runs/"+id+"/files/evil.html")
	assert.Contains(t, browser.Run(t, s.b, chromedp.Text(chromedp.ID("preview"))), `<script>localStorage.setItem("pwned"`)
	s.b.Screenshot(t, "evil-html-preview")

	// evil.svg shows in an <img>, where it runs nothing.
	s.b.Navigate(t, s.base+"/runs/"+id+"/files/evil.svg")
	img := `document.getElementById("preview-image")`
	s.b.WaitTrue(t, img+` && `+img+`.complete`, 15*time.Second)
	assert.Positive(t, browser.Eval[int](t, s.b, img+`.naturalWidth`), "the SVG decodes")
	s.b.Screenshot(t, "evil-svg-preview")

	// A PDF's preview links it for a new tab, where Chromium's own viewer
	// shows it, under the sandbox of every user file.
	s.b.Navigate(t, s.base+"/runs/"+id+"/files/report.pdf")
	open := `document.getElementById("open-pdf")`
	assert.Equal(t, "_blank", browser.Eval[string](t, s.b, open+`.target`))
	assert.EqualValues(t, http.StatusOK, s.b.Navigate(t, browser.Eval[string](t, s.b, open+`.href`)))
	// The viewer runs in a frame of its own and names the tab after the
	// file once it has read it.
	viewer := func() bool {
		targets, err := chromedp.Targets(s.b.Context())
		require.NoError(t, err)
		frame, named := false, false
		for _, tg := range targets {
			frame = frame || strings.HasPrefix(tg.URL, pdfViewer)
			named = named || (tg.Type == "page" && strings.HasSuffix(tg.URL, "/raw/report.pdf") && tg.Title == "report.pdf")
		}
		return frame && named
	}
	assert.Eventually(t, viewer, 15*time.Second, 100*time.Millisecond, "Chromium's PDF viewer shows the file")
	s.b.Screenshot(t, "pdf-viewer")

	// Opened on their own, as a lure in a mail would, both are downloaded,
	// not shown.
	for _, name := range []string{"evil.html", "evil.svg"} {
		path := s.b.Download(t, chromedp.Navigate(s.base+"/runs/"+id+"/raw/"+name))
		got, err := os.ReadFile(path)
		require.NoError(t, err)
		want, err := os.ReadFile(filepath.Join(dir, name))
		require.NoError(t, err)
		assert.Equal(t, string(want), string(got), name)
	}

	s.b.Navigate(t, s.base+"/runs")
	assert.Nil(t, browser.Eval[*string](t, s.b, pwned), "a user's file ran script in the site's origin")
	// The check means something: the site's origin has a working
	// localStorage that a script there could have written.
	assert.Equal(t, "ok", browser.Eval[string](t, s.b, `localStorage.setItem("probe", "ok"), localStorage.getItem("probe")`))
	assert.NotEqual(t, "pwned", browser.Run(t, s.b, chromedp.Title()))
	assertClean(t, s.b)
}

// pdfViewer is where Chromium's PDF viewer (a built-in extension) runs.
const pdfViewer = "chrome-extension://mhjfbmdgcfjbbpaeojofohoefgiehjai/"

var crossSitePage = template.Must(template.New("").Parse(`<!doctype html><title>another site</title>` +
	`<form method="post" action="{{.}}"><button id="go">win a prize</button></form>`))

// TestUIStopRunAndCrossSitePOST stops a running workflow from its page,
// after a cross-site form that posts the same stop was refused, and then
// deletes it, which asks first.
func TestUIStopRunAndCrossSitePOST(t *testing.T) {
	// Another site (127.0.0.1 is not localhost's site) with a form that
	// posts to the address in its query, for the signed-in browser.
	evil := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		crossSitePage.Execute(w, r.URL.Query().Get("action"))
	}))
	t.Cleanup(evil.Close)
	s := startUI(t, browser.TrustCert(evil.Certificate()))
	s.signIn(t)
	_, id := s.submit(t, "ticker", "stoppable", "-p", "ticks=600")
	s.alice.WaitStatus(t, "stoppable.1", time.Minute, "running")

	s.b.Navigate(t, evil.URL+"/?action="+url.QueryEscape(s.base+"/runs/"+id+"/stop"))
	resp, err := chromedp.RunResponse(s.b.Context(), chromedp.Click(chromedp.ID("go")))
	require.NoError(t, err)
	assert.EqualValues(t, http.StatusForbidden, resp.Status, "a cross-site POST is refused")
	s.b.Screenshot(t, "cross-site-refused")
	w, _ := s.alice.Status(t, "stoppable.1")
	assert.Equal(t, "running", w.Status, "the refused POST stopped nothing")

	s.b.Navigate(t, s.base+"/runs/"+id)
	s.b.ClearProblems()
	s.b.Do(t, chromedp.Click(chromedp.CSS(`#summary form.action-stop button.stop`)))
	s.b.WaitTrue(t, `(document.querySelector("#run-status .status") || {}).textContent === "stopped"`, time.Minute)
	s.b.Screenshot(t, "stopped")
	s.alice.WaitStatus(t, "stoppable.1", 30*time.Second, "stopped")

	// Delete asks first: dismissed, nothing happens; accepted, the run
	// goes, and the runs page no longer lists it.
	del := chromedp.Click(chromedp.CSS(`#summary form.action-delete button.delete`))
	s.b.AnswerDialogs(false)
	s.b.Do(t, del)
	s.b.WaitTrue(t, `document.querySelector("#summary form.action-delete")`, 5*time.Second)
	w, _ = s.alice.Status(t, "stoppable.1")
	assert.Equal(t, "stopped", w.Status, "a dismissed delete deletes nothing")
	s.b.AnswerDialogs(true)
	s.b.Do(t, del)
	// WaitStatus gives up at a final state such as stopped: poll instead.
	require.Eventually(t, func() bool {
		w, _ := s.alice.Status(t, "stoppable.1")
		return w.Status == "deleted"
	}, 30*time.Second, 200*time.Millisecond, "the accepted delete deletes the run")
	require.Len(t, s.b.Dialogs(), 2)
	assert.Contains(t, s.b.Dialogs()[0], "stoppable")
	s.b.Navigate(t, s.base+"/runs")
	assert.Zero(t, browser.Eval[int](t, s.b, `document.querySelectorAll("tr.run").length`), "a deleted run is not listed by default")
	s.b.Screenshot(t, "deleted")
	assertClean(t, s.b)
}
