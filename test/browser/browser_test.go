package browser

import (
	"archive/zip"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// icon is a small PNG: a page without a favicon logs a failed load of
// /favicon.ico, which a clean page must not.
func icon(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 16, 16))
	draw.Draw(img, img.Bounds(), &image.Uniform{color.RGBA{0x20, 0x60, 0xc0, 0xff}}, image.Point{}, draw.Src)
	var buf bytes.Buffer
	require.NoError(t, png.Encode(&buf, img))
	return buf.Bytes()
}

// site is a small HTTPS site with the daemon's CSP: a clean page, a page
// that breaks the policy and logs errors, and a download.
func site(t *testing.T) *httptest.Server {
	t.Helper()
	favicon := icon(t)
	zipped := zipOf(t, map[string]string{"results/a.txt": "alpha\n", "results/b.txt": "beta\n"})
	mux := http.NewServeMux()
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write(favicon)
	})
	mux.HandleFunc("GET /app.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		w.Write([]byte(`document.getElementById("who").textContent = "script ran";`))
	})
	mux.HandleFunc("GET /clean", func(w http.ResponseWriter, r *http.Request) {
		page(w, `<p id="who">waiting</p><img id="dot" src="/favicon.ico" alt="dot"><a id="dl" href="/results.zip">zip</a><script src="/app.js"></script>`)
	})
	mux.HandleFunc("GET /dirty", func(w http.ResponseWriter, r *http.Request) {
		// The inline script breaks default-src 'self'; the external one
		// logs an error and throws.
		page(w, `<p id="who">dirty</p><script>document.title = "inline ran"</script><script src="/dirty.js"></script>`)
	})
	mux.HandleFunc("GET /dirty.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		w.Write([]byte(`console.error("logged on purpose"); throw new Error("thrown on purpose");`))
	})
	mux.HandleFunc("GET /ask", func(w http.ResponseWriter, r *http.Request) {
		page(w, `<p id="who">not asked</p><button id="ask">ask</button><script src="/ask.js"></script>`)
	})
	mux.HandleFunc("GET /ask.js", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/javascript")
		w.Write([]byte(`document.getElementById("ask").addEventListener("click", function () {
  document.getElementById("who").textContent = confirm("Really?") ? "yes" : "no";
});`))
	})
	mux.HandleFunc("GET /results.zip", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/zip")
		w.Header().Set("Content-Disposition", `attachment; filename="results.zip"`)
		w.Write(zipped)
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// selfSigned is a new certificate for localhost and 127.0.0.1, as the
// daemon makes one: httptest's own is the same for every server, so it
// could not show that one server's certificate does not vouch for another.
func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: "localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func page(w http.ResponseWriter, body string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'self'")
	w.Write([]byte(`<!doctype html><html><head><meta charset="utf-8"><title>t</title><link rel="icon" href="/favicon.ico"></head><body>` + body + `</body></html>`))
}

func zipOf(t *testing.T, files map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, content := range files {
		w, err := zw.Create(name)
		require.NoError(t, err)
		_, err = w.Write([]byte(content))
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func TestCleanPageScreenshotAndDownload(t *testing.T) {
	srv := site(t)
	b := Start(t, TrustCert(srv.Certificate()), WindowSize(800, 600))

	assert.EqualValues(t, http.StatusOK, b.Navigate(t, srv.URL+"/clean"))
	b.WaitTrue(t, `document.getElementById("who").textContent === "script ran"`, 10*time.Second)
	b.WaitTrue(t, `document.getElementById("dot").complete`, 10*time.Second)
	assert.Positive(t, Eval[int](t, b, `document.getElementById("dot").naturalWidth`), "the image decodes")

	shot := b.Screenshot(t, "clean")
	f, err := os.Open(shot)
	require.NoError(t, err)
	defer f.Close()
	img, err := png.Decode(f)
	require.NoError(t, err, "the screenshot is a PNG")
	assert.Equal(t, 800, img.Bounds().Dx(), "the window's width")
	assert.Equal(t, filepath.Join(RepoRoot(t), ScreenshotDir), filepath.Dir(shot))

	path := b.Download(t, chromedp.Click(chromedp.ID("dl")))
	assert.Equal(t, "results.zip", filepath.Base(path))
	zr, err := zip.OpenReader(path)
	require.NoError(t, err)
	defer zr.Close()
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	assert.ElementsMatch(t, []string{"results/a.txt", "results/b.txt"}, names)

	// Going to an attachment's address downloads it too.
	again := b.Download(t, chromedp.Navigate(srv.URL+"/results.zip"))
	assert.NotEqual(t, path, again, "each download keeps its own file")
	assert.Equal(t, "results.zip", filepath.Base(again))

	b.AssertClean(t)
}

func TestProblemsCatchConsoleErrorsAndCSP(t *testing.T) {
	srv := site(t)
	b := Start(t, TrustCert(srv.Certificate()))
	b.Navigate(t, srv.URL+"/dirty")
	// Wait for all three to arrive: the console's events are asynchronous.
	var got []Problem
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if got = b.Problems(); len(got) >= 3 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	var csp, logged, thrown bool
	for _, p := range got {
		csp = csp || p.CSP()
		logged = logged || (p.Kind == "console" && strings.Contains(p.Text, "logged on purpose"))
		thrown = thrown || (p.Kind == "exception" && strings.Contains(p.Text, "thrown on purpose"))
	}
	assert.True(t, csp, "the inline script's CSP violation is a problem: %v", got)
	assert.True(t, logged, "console.error is a problem: %v", got)
	assert.True(t, thrown, "an uncaught exception is a problem: %v", got)
	assert.NotEqual(t, "inline ran", Run(t, b, chromedp.Title()), "the CSP kept the inline script from running")

	b.ClearProblems()
	assert.Empty(t, b.Problems())
}

func TestAnswerDialogs(t *testing.T) {
	srv := site(t)
	b := Start(t, TrustCert(srv.Certificate()))
	b.Navigate(t, srv.URL+"/ask")
	for _, tt := range []struct {
		accept bool
		want   string
	}{{true, "yes"}, {false, "no"}} {
		b.AnswerDialogs(tt.accept)
		b.Do(t, chromedp.Click(chromedp.ID("ask")))
		b.WaitTrue(t, `document.getElementById("who").textContent === `+fmt.Sprintf("%q", tt.want), 10*time.Second)
	}
	assert.Equal(t, []string{"Really?", "Really?"}, b.Dialogs())
	b.Screenshot(t, "answered")
	b.AssertClean(t)
}

// Only the pinned certificate is trusted: another self-signed server is
// still refused.
func TestTrustsOnlyThePinnedCertificate(t *testing.T) {
	trusted, other := site(t), site(t)
	b := Start(t, TrustCert(trusted.Certificate()))
	assert.EqualValues(t, http.StatusOK, b.Navigate(t, trusted.URL+"/clean"))

	ctxErr := func() error {
		_, err := chromedp.Run(b.Context(), chromedp.NavigateResponse(other.URL+"/clean"))
		return err
	}()
	require.Error(t, ctxErr, "a server with another self-signed certificate must be refused")
	assert.Contains(t, ctxErr.Error(), "ERR_CERT", "refused for its certificate")
}

// Start leaves no process behind: every Chromium process of the test's
// profile is gone when the test ends.
func TestNoProcessOutlivesTheTest(t *testing.T) {
	var profile string
	t.Run("browse", func(t *testing.T) {
		srv := site(t)
		b := Start(t, TrustCert(srv.Certificate()))
		b.Navigate(t, srv.URL+"/clean")
		profile = b.profile
		require.NotEmpty(t, processesWith(profile), "the browser runs with its profile")
	})
	if t.Skipped() || profile == "" {
		return
	}
	assert.Empty(t, processesWith(profile), "processes left behind")
}

func processesWith(profile string) []string {
	var found []string
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		if bytes.Contains(cmdline, []byte("--user-data-dir="+profile+"\x00")) {
			found = append(found, e.Name())
		}
	}
	return found
}
