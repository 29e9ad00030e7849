package main

import (
	"context"
	"net/http"
	"strings"

	"github.com/reana-site/reana-site/api/login"
	"github.com/reana-site/reana-site/daemon/config"
)

// checkLogin looks at what Kerberos and OIDC sign-in need: a private
// keytab with the SPN's key, the client secret, and the OIDC issuer's
// discovery document. client talks to the issuer; nil means the default.
func checkLogin(ctx context.Context, cfg config.Config, client *http.Client) []finding {
	var out []finding
	if cfg.Krb5Keytab == "" {
		out = append(out, okf("Kerberos sign-in: off (REANA_SITE_KRB5_KEYTAB is not set)"))
	} else if path, err := config.CredentialPath(cfg.Krb5Keytab); err != nil {
		out = append(out, problemf("Kerberos sign-in: REANA_SITE_KRB5_KEYTAB: %v", err))
	} else if _, info, err := login.ReadKeytab(path, cfg.Krb5SPN); err != nil {
		out = append(out, problemf("Kerberos sign-in: %v", err))
	} else {
		realms := cfg.Krb5Realms
		if len(realms) == 0 {
			realms = []string{info.Realm}
		}
		out = append(out, okf("Kerberos sign-in: keytab %s holds %s@%s, key version %d; users of realm %s", path, cfg.Krb5SPN, info.Realm, info.KVNO, strings.Join(realms, ", ")))
	}
	if cfg.OIDCIssuer == "" {
		return append(out, okf("OIDC sign-in: off (REANA_SITE_OIDC_ISSUER is not set)"))
	}
	if _, err := oidcSecret(cfg); err != nil {
		out = append(out, problemf("OIDC sign-in: %v", err))
	}
	o, err := login.NewOIDC(login.OIDCConfig{Issuer: cfg.OIDCIssuer, ClientID: cfg.OIDCClientID, RedirectURL: cfg.OIDCRedirectURL, HTTPClient: client})
	if err != nil {
		return append(out, problemf("OIDC sign-in: %v", err))
	}
	p, err := o.Discover(ctx)
	if err != nil {
		return append(out, problemf("OIDC sign-in: %v", err))
	}
	return append(out, okf("OIDC sign-in: %s answers (authorization at %s); register %s as the redirect URL of client %s", cfg.OIDCIssuer, p.Endpoint().AuthURL, cfg.OIDCRedirectURL, cfg.OIDCClientID))
}
