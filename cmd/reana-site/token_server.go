package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/spnego"

	"github.com/reana-site/reana-site/api/login"
)

// serverToken asks a reana-site server for a new token over HTTP
// Negotiate, with the caller's Kerberos ticket from their credential
// cache. gokrb5 reads FILE: caches only.
func serverToken(ctx context.Context, server, spn, cacert string) (login.Answer, error) {
	u, err := url.Parse(server)
	if err != nil || u.Scheme != "https" || u.Host == "" {
		return login.Answer{}, fmt.Errorf("--server must be an https URL, such as https://login01:8443, got %q", server)
	}
	if spn == "" {
		spn = "HTTP/" + u.Hostname()
	}
	cl, err := kerberosClient()
	if err != nil {
		return login.Answer{}, err
	}
	defer cl.Destroy()
	hc, err := httpsClient(cacert)
	if err != nil {
		return login.Answer{}, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimSuffix(server, "/")+"/site/token", nil)
	if err != nil {
		return login.Answer{}, fmt.Errorf("make the request: %w", err)
	}
	resp, err := spnego.NewClient(cl, hc, spn).Do(req)
	if err != nil {
		return login.Answer{}, fmt.Errorf("ask %s for a token (service principal %s): %w", server, spn, err)
	}
	defer resp.Body.Close()
	var a login.Answer
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<16)).Decode(&a); err != nil {
		return a, fmt.Errorf("read the answer of %s (HTTP %d): %w", server, resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK {
		return a, fmt.Errorf("%s: %s", resp.Status, a.Message)
	}
	return a, nil
}

// kerberosClient is a Kerberos client with the TGT of the caller's
// credential cache: KRB5CCNAME, or /tmp/krb5cc_<uid> as MIT's default.
func kerberosClient() (*client.Client, error) {
	cc := os.Getenv("KRB5CCNAME")
	if cc == "" {
		cc = fmt.Sprintf("FILE:/tmp/krb5cc_%d", os.Getuid())
	}
	kind, path, ok := strings.Cut(cc, ":")
	if !ok {
		kind, path = "FILE", cc
	}
	if kind != "FILE" {
		return nil, fmt.Errorf("the credential cache %s is not a file, which this command cannot read; use: curl --negotiate -u : -X POST <server>/site/token", cc)
	}
	ccache, err := credentials.LoadCCache(path)
	if err != nil {
		return nil, fmt.Errorf("read the Kerberos credential cache %s (run kinit first): %w", path, err)
	}
	confPath := os.Getenv("KRB5_CONFIG")
	if confPath == "" {
		confPath = "/etc/krb5.conf"
	}
	conf, err := krbconfig.Load(confPath)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", confPath, err)
	}
	cl, err := client.NewFromCCache(ccache, conf, client.DisablePAFXFAST(true))
	if err != nil {
		return nil, fmt.Errorf("use the Kerberos credential cache %s: %w", path, err)
	}
	if ok, err := cl.IsConfigured(); !ok {
		return nil, fmt.Errorf("the Kerberos credential cache %s: %w", path, err)
	}
	return cl, nil
}

// httpsClient trusts the system's CAs (and SSL_CERT_FILE), or the PEM
// file cacert alone: the daemon's own certificate is self-signed by
// default.
func httpsClient(cacert string) (*http.Client, error) {
	t := http.DefaultTransport.(*http.Transport).Clone()
	if cacert != "" {
		pem, err := os.ReadFile(cacert)
		if err != nil {
			return nil, fmt.Errorf("read --cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, errors.New("--cacert holds no PEM certificate")
		}
		t.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: t, Timeout: 30 * time.Second}, nil
}
