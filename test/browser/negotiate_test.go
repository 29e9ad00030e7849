package browser

import (
	"bytes"
	"crypto/tls"
	"encoding/asn1"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/test/harness"
)

var (
	oidSPNEGO = asn1.ObjectIdentifier{1, 3, 6, 1, 5, 5, 2}
	oidKRB5   = asn1.ObjectIdentifier{1, 2, 840, 113554, 1, 2, 2}
)

// TestNegotiateSendsSPNEGOToken: with a ticket of alice's from the real
// test KDC and localhost on the allow-list, Chromium answers a Negotiate
// challenge from https://localhost with an SPNEGO token that carries a
// Kerberos AP-REQ for HTTP/localhost, on the first start of a fresh
// profile.
func TestNegotiateSendsSPNEGOToken(t *testing.T) {
	kdc := harness.StartKDC(t)
	ccache := kdc.Kinit(t, "alice", "")

	var mu sync.Mutex
	var token []byte
	favicon := icon(t)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /favicon.ico", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "image/png")
		w.Write(favicon)
	})
	mux.HandleFunc("GET /", func(w http.ResponseWriter, r *http.Request) {
		b64, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Negotiate ")
		if !ok {
			w.Header().Set("WWW-Authenticate", "Negotiate")
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `<!doctype html><title>401</title><p id="who">no token</p>`)
			return
		}
		tok, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		token = tok
		mu.Unlock()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprint(w, `<!doctype html><title>in</title><p id="who">token received</p>`)
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	_, port, err := net.SplitHostPort(srv.Listener.Addr().String())
	require.NoError(t, err)

	b := Start(t, TrustCert(srv.Certificate()), Negotiate("localhost"), Env(kdc.Env(ccache)...))
	// The service principal is HTTP/<host as typed>: localhost, not
	// 127.0.0.1.
	assert.EqualValues(t, http.StatusOK, b.Navigate(t, "https://localhost:"+port+"/"))
	assert.Equal(t, "token received", Run(t, b, chromedp.Text(chromedp.ID("who"))))
	b.Screenshot(t, "negotiated")

	mu.Lock()
	tok := token
	mu.Unlock()
	require.NotEmpty(t, tok)
	ticket := apReqTicket(t, tok)
	assert.True(t, bytes.Contains(ticket, []byte(kdc.Realm)), "the ticket is of realm %s", kdc.Realm)
	assert.True(t, bytes.Contains(ticket, []byte("HTTP")) && bytes.Contains(ticket, []byte("localhost")),
		"the ticket is for HTTP/localhost")
	// Chromium got that service ticket from the KDC into alice's cache.
	assert.Contains(t, kdc.Run(t, ccache, "klist"), kdc.ServicePrincipal+"@"+kdc.Realm)
}

// TestNegotiateNeedsTheAllowList: without the allow-list Chromium does
// not answer the challenge, though it has a ticket.
func TestNegotiateNeedsTheAllowList(t *testing.T) {
	kdc := harness.StartKDC(t)
	ccache := kdc.Kinit(t, "alice", "")
	var asked sync.WaitGroup
	asked.Add(1)
	var once sync.Once
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/favicon.ico" {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("Authorization") != "" {
			t.Errorf("the browser sent %q to a host off the allow-list", r.Header.Get("Authorization"))
		}
		once.Do(asked.Done)
		w.Header().Set("WWW-Authenticate", "Negotiate")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `<!doctype html><title>401</title><p id="who">no token</p>`)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())

	b := Start(t, TrustCert(srv.Certificate()), Env(kdc.Env(ccache)...), Timeout(15*time.Second))
	assert.EqualValues(t, http.StatusUnauthorized, b.Navigate(t, "https://localhost:"+port+"/"))
	asked.Wait()
}

// apReqTicket takes an SPNEGO NegTokenInit apart (RFC 4178): the GSS-API
// framing with the SPNEGO OID, the Kerberos mechanism among its mechTypes,
// and a mechToken that is a GSS-wrapped Kerberos AP-REQ (RFC 4121 4.1,
// RFC 4120 5.5.1); it returns the AP-REQ's ticket, DER.
func apReqTicket(t *testing.T, tok []byte) []byte {
	t.Helper()
	var outer asn1.RawValue
	_, err := asn1.Unmarshal(tok, &outer)
	require.NoError(t, err, "the token is DER")
	require.Equal(t, asn1.ClassApplication, outer.Class, "GSS-API InitialContextToken")
	var mech asn1.ObjectIdentifier
	rest, err := asn1.Unmarshal(outer.Bytes, &mech)
	require.NoError(t, err)
	require.True(t, mech.Equal(oidSPNEGO), "SPNEGO, not %v", mech)

	var choice asn1.RawValue
	_, err = asn1.Unmarshal(rest, &choice)
	require.NoError(t, err)
	require.Equal(t, 0, choice.Tag, "negTokenInit")
	var init struct {
		MechTypes []asn1.ObjectIdentifier `asn1:"explicit,tag:0"`
		ReqFlags  asn1.BitString          `asn1:"explicit,optional,tag:1"`
		MechToken []byte                  `asn1:"explicit,optional,tag:2"`
	}
	_, err = asn1.Unmarshal(choice.Bytes, &init)
	require.NoError(t, err)
	assert.Contains(t, fmt.Sprint(init.MechTypes), oidKRB5.String(), "Kerberos is offered")
	require.NotEmpty(t, init.MechToken, "an optimistic Kerberos token")

	var inner asn1.RawValue
	_, err = asn1.Unmarshal(init.MechToken, &inner)
	require.NoError(t, err)
	rest, err = asn1.Unmarshal(inner.Bytes, &mech)
	require.NoError(t, err)
	require.True(t, mech.Equal(oidKRB5), "a Kerberos mechToken, not %v", mech)
	require.True(t, len(rest) > 2 && rest[0] == 0x01 && rest[1] == 0x00, "TOK_ID 01 00: an AP-REQ")

	var apReq asn1.RawValue
	_, err = asn1.Unmarshal(rest[2:], &apReq)
	require.NoError(t, err)
	require.Equal(t, 14, apReq.Tag, "[APPLICATION 14] AP-REQ")
	var body struct {
		PVNO    int            `asn1:"explicit,tag:0"`
		MsgType int            `asn1:"explicit,tag:1"`
		Options asn1.BitString `asn1:"explicit,tag:2"`
		Ticket  asn1.RawValue  `asn1:"explicit,tag:3"`
	}
	_, err = asn1.Unmarshal(apReq.Bytes, &body)
	require.NoError(t, err)
	assert.Equal(t, 5, body.PVNO)
	assert.Equal(t, 14, body.MsgType)
	return body.Ticket.FullBytes
}
