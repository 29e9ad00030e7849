//go:build e2e

package e2e

import (
	"encoding/pem"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/test/browser"
	"github.com/reana-site/reana-site/test/harness"
	"github.com/reana-site/reana-site/test/oidcprovider"
)

// signInSite is a daemon with the web pages on and alice registered, as
// https://localhost:PORT: the host name Chromium asks a Kerberos ticket
// for (HTTP/localhost) and the one the OIDC redirect URL names.
func signInSite(t *testing.T, extraEnv ...string) (*Daemon, string) {
	t.Helper()
	d := StartDaemon(t, extraEnv...)
	_, err := d.Admin("user", "add", "alice")
	require.NoError(t, err)
	_, port, err := net.SplitHostPort(d.Addr)
	require.NoError(t, err)
	return d, "https://localhost:" + port
}

// signedInAs waits for the web pages' runs page and returns who it says
// is signed in.
func signedInAs(t *testing.T, b *browser.Browser) string {
	t.Helper()
	b.WaitTrue(t, `location.pathname === "/runs" && document.getElementById("who")`, 20*time.Second)
	return browser.Run(t, b, chromedp.Text(chromedp.ID("who")))
}

// TestBrowserSignInWithKerberos: headless Chromium holding alice's ticket
// from the real KDC follows the sign-in page's Kerberos link, answers the
// Negotiate challenge, and lands on the web pages signed in as alice.
func TestBrowserSignInWithKerberos(t *testing.T) {
	k := harness.StartKDC(t)
	d, base := signInSite(t, "REANA_SITE_KRB5_KEYTAB="+k.ServiceKeytab, "REANA_SITE_KRB5_SPN="+k.ServicePrincipal)
	ccache := k.Kinit(t, "alice", "")
	b := browser.Start(t, browser.TrustCertFile(filepath.Join(d.StateDir, "tls.crt")), browser.Negotiate("localhost"),
		browser.Env(k.Env(ccache)...), browser.Timeout(45*time.Second))

	assert.EqualValues(t, http.StatusOK, b.Navigate(t, base+"/signin"))
	b.Do(t, chromedp.Click(chromedp.CSS(`#signin-options a[href="/site/login/kerberos"]`)))
	assert.Equal(t, "alice", signedInAs(t, b))
	b.Screenshot(t, "kerberos-signed-in")
	// Chromium got the service's ticket from the KDC with alice's TGT.
	assert.Contains(t, k.Run(t, ccache, "klist"), k.ServicePrincipal+"@"+k.Realm)
}

// TestBrowserSignInWithOIDC: Chromium follows the sign-in page's OIDC
// button to the test provider's real HTML form, signs in there as alice,
// and comes back through the daemon's callback to the web pages, signed
// in as alice; a second sign-in of the same account works too.
func TestBrowserSignInWithOIDC(t *testing.T) {
	p := oidcprovider.Start(t, "reana-site", "client-secret")
	p.AddUser("alice", oidcprovider.User{Password: "alicepw", Claims: map[string]any{
		"sub": "s-alice", "preferred_username": "alice", "email": "alice@example.org", "email_verified": true}})
	dir := t.TempDir()
	caFile, secretFile := filepath.Join(dir, "provider.pem"), filepath.Join(dir, "oidc-secret")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.Certificate().Raw}), 0o644))
	require.NoError(t, os.WriteFile(secretFile, []byte(p.ClientSecret+"\n"), 0o600))
	d, base := signInSite(t)
	// The redirect URL names the daemon's port, known once it runs: start
	// it again, on the same port, with OIDC set up. The daemon trusts the
	// provider's certificate through SSL_CERT_FILE, as a site would its CA.
	d.Stop()
	d.ExtraEnv = append(d.ExtraEnv, "SSL_CERT_FILE="+caFile, "REANA_SITE_OIDC_ISSUER="+p.URL, "REANA_SITE_OIDC_CLIENT_ID="+p.ClientID,
		"REANA_SITE_OIDC_CLIENT_SECRET_FILE="+secretFile, "REANA_SITE_OIDC_REDIRECT_URL="+base+"/site/oidc/callback",
		"REANA_SITE_OIDC_LABEL=Sign in with the test provider")
	d.Start()
	b := browser.Start(t, browser.TrustCertFile(filepath.Join(d.StateDir, "tls.crt")), browser.TrustCert(p.Certificate()),
		browser.Timeout(45*time.Second))

	for i := range 2 {
		assert.EqualValues(t, http.StatusOK, b.Navigate(t, base+"/signin"))
		assert.Equal(t, "Sign in with the test provider", browser.Run(t, b, chromedp.Text(chromedp.CSS(`#signin-options a[href="/site/login/oidc"]`))))
		b.Do(t, chromedp.Click(chromedp.CSS(`#signin-options a[href="/site/login/oidc"]`)))
		b.WaitTrue(t, `document.getElementById("username")`, 20*time.Second)
		if i == 0 {
			b.Screenshot(t, "oidc-provider-form")
		}
		b.Do(t, chromedp.SendKeys(chromedp.ID("username"), "alice"), chromedp.SendKeys(chromedp.ID("password"), "alicepw"),
			chromedp.Click(chromedp.ID("submit")))
		assert.Equal(t, "alice", signedInAs(t, b), "sign-in %d", i+1)
		if i == 0 {
			b.Screenshot(t, "oidc-signed-in")
			b.Do(t, chromedp.Click(chromedp.ID("logout-button")))
			b.WaitTrue(t, `location.pathname === "/signin"`, 20*time.Second)
		}
	}
	out, err := d.Admin("login", "list", "alice")
	require.NoError(t, err)
	assert.Contains(t, out, p.URL+"  s-alice", "the first sign-in bound the provider's account")
}
