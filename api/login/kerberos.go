package login

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/jcmturner/gokrb5/v8/gssapi"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/service"
	"github.com/jcmturner/gokrb5/v8/spnego"
	"github.com/jcmturner/gokrb5/v8/types"
)

// ErrNoTicket means the request carried no Negotiate token.
var ErrNoTicket = errors.New("no Kerberos ticket was sent")

// acceptCompleted is the SPNEGO answer "accept-completed" (RFC 4178), the
// one gokrb5's own handler sends; clients take it as the end of the
// exchange.
const acceptCompleted = "Negotiate oRQwEqADCgEAoQsGCSqGSIb3EgECAg=="

// Kerberos checks HTTP Negotiate (SPNEGO) requests against the service's
// keytab.
type Kerberos struct {
	keytab *keytab.Keytab
	// SPN is the service principal, HTTP/<host> (no realm).
	SPN string
	// MaxClockSkew is how far a client's clock may be off.
	MaxClockSkew time.Duration
	// KVNO is the newest key version the keytab holds for SPN, and Realm
	// that key's realm.
	KVNO  int
	Realm string

	seen replays // the authenticators accepted
}

// KeytabInfo is what the keytab holds for a principal.
type KeytabInfo struct {
	Principals []string // every principal@realm in the keytab
	KVNO       int      // the newest key version of the SPN; 0 when absent
	Realm      string   // the SPN's realm
}

// ReadKeytab loads the keytab at path, which must be a regular file that
// only its owner (root, or this process's user) can read: it is the
// service's password. spn is the service principal without realm.
func ReadKeytab(path, spn string) (*keytab.Keytab, KeytabInfo, error) {
	var info KeytabInfo
	fi, err := os.Stat(path)
	if err != nil {
		return nil, info, fmt.Errorf("keytab: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, info, fmt.Errorf("keytab %s is not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 {
		return nil, info, fmt.Errorf("keytab %s has mode %04o: it must be readable by its owner only (chmod 0600)", path, perm)
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return nil, info, fmt.Errorf("keytab %s belongs to uid %d: it must be root's", path, st.Uid)
	}
	kt, err := keytab.Load(path)
	if err != nil {
		return nil, info, fmt.Errorf("read keytab %s: %w", path, err)
	}
	for _, e := range kt.Entries {
		p := strings.Join(e.Principal.Components, "/")
		full := p + "@" + e.Principal.Realm
		if !slices.Contains(info.Principals, full) {
			info.Principals = append(info.Principals, full)
		}
		if p == spn && int(e.KVNO) >= info.KVNO {
			info.KVNO, info.Realm = int(e.KVNO), e.Principal.Realm
		}
	}
	if info.KVNO == 0 {
		return kt, info, fmt.Errorf("keytab %s has no key for %s (it holds %s)", path, spn, strings.Join(info.Principals, ", "))
	}
	return kt, info, nil
}

// NewKerberos loads the keytab once, at start; the daemon then needs no
// access to the file.
func NewKerberos(path, spn string, skew time.Duration) (*Kerberos, error) {
	kt, info, err := ReadKeytab(path, spn)
	if err != nil {
		return nil, err
	}
	return &Kerberos{keytab: kt, SPN: spn, MaxClockSkew: skew, KVNO: info.KVNO, Realm: info.Realm}, nil
}

// Authenticate verifies the request's Negotiate token and returns the
// client's principal, name@REALM. A missing token is ErrNoTicket; any
// other error says why the ticket was not accepted (another service's, a
// replayed authenticator, a clock too far off).
func (k *Kerberos) Authenticate(r *http.Request) (string, error) {
	value, ok := negotiateValue(r)
	if !ok {
		return "", ErrNoTicket
	}
	b, err := base64.StdEncoding.DecodeString(value)
	if err != nil {
		return "", fmt.Errorf("the Negotiate token is not base64: %w", err)
	}
	mech, err := krb5MechToken(b)
	if err != nil {
		return "", err
	}
	var tok spnego.KRB5Token
	if err := tok.Unmarshal(mech); err != nil {
		return "", fmt.Errorf("the Negotiate token is not a Kerberos token: %w", err)
	}
	if !tok.IsAPReq() {
		return "", errors.New("the Negotiate token is not a Kerberos AP-REQ")
	}
	opts := []func(*service.Settings){
		service.KeytabPrincipal(k.SPN),
		service.MaxClockSkew(k.MaxClockSkew),
		// MIT's KDC issues a PAC without the AD logon information gokrb5
		// expects (jcmturner/gokrb5#545), and nothing here uses a PAC.
		service.DecodePAC(false),
	}
	if h, err := types.GetHostAddress(r.RemoteAddr); err == nil {
		opts = append(opts, service.ClientAddress(h))
	}
	ok, creds, err := service.VerifyAPREQ(&tok.APReq, service.NewSettings(k.keytab, opts...))
	if err != nil {
		return "", fmt.Errorf("the Kerberos ticket was not accepted: %w", err)
	}
	if !ok || creds == nil {
		return "", errors.New("the Kerberos ticket was not accepted")
	}
	principal := creds.CName().PrincipalNameString() + "@" + creds.Domain()
	a := tok.APReq.Authenticator // decrypted by VerifyAPREQ
	ctime := a.CTime.Add(time.Duration(a.Cusec) * time.Microsecond)
	if !k.seen.first(principal, ctime, k.MaxClockSkew, time.Now()) {
		return "", errors.New("the Kerberos ticket was not accepted: replay detected (this authenticator was used before)")
	}
	return principal, nil
}

// negotiateValue is the request's Negotiate token, still in base64.
func negotiateValue(r *http.Request) (string, bool) {
	scheme, value, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	value = strings.TrimSpace(value)
	return value, strings.EqualFold(scheme, "Negotiate") && value != ""
}

// hasTicket says whether the request sent a Negotiate token at all.
func hasTicket(r *http.Request) bool {
	_, ok := negotiateValue(r)
	return ok
}

// krb5MechToken takes the Kerberos token out of an SPNEGO NegTokenInit,
// or returns b when it is a bare Kerberos token (some clients send those).
func krb5MechToken(b []byte) ([]byte, error) {
	var st spnego.SPNEGOToken
	if err := st.Unmarshal(b); err != nil {
		var k spnego.KRB5Token
		if k.Unmarshal(b) == nil {
			return b, nil
		}
		return nil, fmt.Errorf("the Negotiate token is neither SPNEGO nor Kerberos: %w", err)
	}
	if !st.Init || len(st.NegTokenInit.MechTypes) == 0 {
		return nil, errors.New("the Negotiate token does not start a Kerberos exchange")
	}
	oid := st.NegTokenInit.MechTypes[0]
	if !oid.Equal(gssapi.OIDKRB5.OID()) && !oid.Equal(gssapi.OIDMSLegacyKRB5.OID()) {
		return nil, fmt.Errorf("the Negotiate token offers mechanism %v first, not Kerberos (NTLM is not supported)", oid)
	}
	return st.NegTokenInit.MechTokenBytes, nil
}
