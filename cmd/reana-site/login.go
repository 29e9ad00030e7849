package main

import (
	"fmt"
	"log/slog"
	"os"
	"strings"

	"github.com/reana-site/reana-site/api/authlimit"
	"github.com/reana-site/reana-site/api/login"
	"github.com/reana-site/reana-site/daemon/config"
	"github.com/reana-site/reana-site/daemon/identity"
	"github.com/reana-site/reana-site/daemon/store"
)

// siteLogin builds the sign-in service (Kerberos, OIDC) the site
// configured; nil when it configured neither. The keytab and the client
// secret are read here, once, at start.
func siteLogin(cfg config.Config, db *store.DB, accounts identity.Resolver, failures *authlimit.Limiter, log *slog.Logger) (*login.Service, error) {
	if cfg.Krb5Keytab == "" && cfg.OIDCIssuer == "" {
		return nil, nil
	}
	rules, err := identity.ParseMapRules(cfg.LoginMapRules)
	if err != nil {
		return nil, fmt.Errorf("REANA_SITE_LOGIN_MAP_RULES: %w", err)
	}
	s := &login.Service{DB: db, SelfService: cfg.LoginSelfService, Failures: failures, Log: log,
		Mapper: identity.Mapper{Realms: cfg.Krb5Realms, Rules: rules, Command: strings.Fields(cfg.LoginMapCommand),
			Timeout: cfg.LoginMapTimeout, Accounts: accounts}}
	if cfg.Krb5Keytab != "" {
		path, err := config.CredentialPath(cfg.Krb5Keytab)
		if err != nil {
			return nil, fmt.Errorf("REANA_SITE_KRB5_KEYTAB: %w", err)
		}
		if s.Kerberos, err = login.NewKerberos(path, cfg.Krb5SPN, cfg.Krb5MaxClockSkew); err != nil {
			return nil, err
		}
		if len(s.Mapper.Realms) == 0 {
			s.Mapper.Realms = []string{s.Kerberos.Realm}
		}
		log.Info("Kerberos sign-in", "spn", cfg.Krb5SPN, "kvno", s.Kerberos.KVNO, "realms", s.Mapper.Realms)
	}
	if cfg.OIDCIssuer != "" {
		secret, err := oidcSecret(cfg)
		if err != nil {
			return nil, err
		}
		if s.OIDC, err = login.NewOIDC(login.OIDCConfig{Issuer: cfg.OIDCIssuer, ClientID: cfg.OIDCClientID, ClientSecret: secret,
			RedirectURL: cfg.OIDCRedirectURL, Scopes: cfg.OIDCScopes, UsernameClaim: cfg.OIDCUsernameClaim, Label: cfg.OIDCLabel}); err != nil {
			return nil, err
		}
		log.Info("OIDC sign-in", "issuer", cfg.OIDCIssuer, "client", cfg.OIDCClientID, "claim", cfg.OIDCUsernameClaim)
	}
	return s, nil
}

// oidcSecret reads the client secret file; "" for a public client.
func oidcSecret(cfg config.Config) (string, error) {
	if cfg.OIDCClientSecretFile == "" {
		return "", nil
	}
	path, err := config.CredentialPath(cfg.OIDCClientSecretFile)
	if err != nil {
		return "", fmt.Errorf("REANA_SITE_OIDC_CLIENT_SECRET_FILE: %w", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("read the OIDC client secret: %w", err)
	}
	secret := strings.TrimSpace(string(b))
	if secret == "" {
		return "", fmt.Errorf("the OIDC client secret file %s is empty", path)
	}
	return secret, nil
}
