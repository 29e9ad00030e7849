package asuser

import (
	"context"
	"fmt"
	"regexp"
	"strings"
)

// Secret types, as REANA names them: an env secret becomes an environment
// variable of every job, a file secret a file in $REANA_SECRETS_DIR.
const (
	SecretEnv  = "env"
	SecretFile = "file"
)

// The layout of a user's secret directory (the site's
// REANA_SITE_SECRETS_ROOT for that user). The helper writes it and the job
// script reads it at job start, as the user, so both take the names from
// here: one file per secret, its raw value, mode 0600, in a subdirectory
// per type.
const (
	SecretsEnvDir  = "env"
	SecretsFileDir = "file"
	// SecretsJobDir is the private directory, inside a job's directory,
	// that holds the file secrets while the job runs ($REANA_SECRETS_DIR);
	// the job script removes it when the command ends.
	SecretsJobDir = "secrets"
	// SecretsEnvJobDir is the private directory, inside a job's
	// directory, that holds a copy of the env secrets while a container
	// step runs (Apptainer's --cleanenv keeps the host's out); the job
	// script removes it when the command ends.
	SecretsEnvJobDir = "secrets-env"
	// SecretsMountPath is where REANA mounts file secrets in a job's
	// container, and so where reana-site binds them too.
	SecretsMountPath = "/etc/reana/secrets"
)

// SecretsTemplateEnv passes the site's REANA_SITE_SECRETS_ROOT template to
// helpers, for the same checks of the way to the directory as
// WorkspaceTemplateEnv gives workspaces.
const SecretsTemplateEnv = "REANA_SITE_SECRETS_TEMPLATE"

// Secret is one secret with its value. It crosses the process boundary
// only on a helper's stdin or stdout, never in argv.
type Secret struct {
	Name  string `json:"name"`
	Type  string `json:"type"`
	Value []byte `json:"value"`
}

// SecretsWriteArgs adds secrets to a user's secret directory. Without
// Overwrite, a name that exists already (as either type) refuses the
// whole request with KindExists and writes nothing.
type SecretsWriteArgs struct {
	Dir       string   `json:"dir"`
	Secrets   []Secret `json:"secrets"`
	Overwrite bool     `json:"overwrite"`
}

// SecretsDeleteArgs removes secrets by name. A missing name refuses the
// whole request and deletes nothing (REANA's rule).
type SecretsDeleteArgs struct {
	Dir   string   `json:"dir"`
	Names []string `json:"names"`
}

// SecretsDeleteResult names what was deleted, or what was missing.
type SecretsDeleteResult struct {
	Deleted []string `json:"deleted"`
	Missing []string `json:"missing,omitempty"`
}

// SecretsDirArgs names a user's secret directory.
type SecretsDirArgs struct {
	Dir string `json:"dir"`
}

// WriteSecrets stores secrets in the user's secret directory, as the user.
func WriteSecrets(ctx context.Context, c Caller, acct Account, a SecretsWriteArgs) error {
	return c.Call(ctx, acct, OpSecretsWrite, a, nil)
}

// DeleteSecrets removes secrets from the user's secret directory.
func DeleteSecrets(ctx context.Context, c Caller, acct Account, a SecretsDeleteArgs) (SecretsDeleteResult, error) {
	return call[SecretsDeleteResult](ctx, c, acct, OpSecretsDelete, a)
}

// RemoveSecrets removes the user's whole secret directory (a user removed
// by the admins); a missing one is not an error. It returns how many
// secrets were in it.
func RemoveSecrets(ctx context.Context, c Caller, acct Account, a SecretsDirArgs) (int, error) {
	return call[int](ctx, c, acct, OpSecretsRemove, a)
}

// ReadSecrets returns every secret with its value, for a backend whose
// jobs cannot read the user's directory themselves (Kubernetes pods).
func ReadSecrets(ctx context.Context, c Caller, acct Account, a SecretsDirArgs) ([]Secret, error) {
	return call[[]Secret](ctx, c, acct, OpSecretsRead, a)
}

// KrbCacheFile is the Kerberos credential cache that `kerberos: true`
// makes in a job's $REANA_SECRETS_DIR, so a container sees it through the
// same bind; no file secret may take its name.
const KrbCacheFile = "krb5cc"

// MaxSecretName bounds a secret's name: it is a file name.
const MaxSecretName = 255

// CheckSecretName says why name cannot name a secret of type typ, or
// returns nil. Names are file names in the user's secret directory, and
// env names become shell variables, so the rule is strict: no '/', NUL,
// '=', "..", control characters or names of uploads in progress; env
// names are POSIX variable names, and those the job sets itself
// (REANA_*, KRB5CCNAME) are reserved.
func CheckSecretName(name, typ string) error {
	switch {
	case typ != SecretEnv && typ != SecretFile:
		return fmt.Errorf("secret %q: type must be %q or %q, not %q", name, SecretEnv, SecretFile, typ)
	case name == "" || name == ".":
		return fmt.Errorf("secret name %q: a name is required", name)
	case len(name) > MaxSecretName:
		return fmt.Errorf("secret name %.20q...: longer than %d bytes", name, MaxSecretName)
	case strings.ContainsAny(name, "/=\x00") || strings.Contains(name, ".."):
		return fmt.Errorf("secret name %q: it must not contain '/', '=', '..' or NUL", name)
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("secret name %q: it must not contain control characters", name)
	case strings.HasPrefix(name, ".reana-upload-"):
		return fmt.Errorf("secret name %q: names starting with .reana-upload- are reserved", name)
	case typ == SecretFile && name == KrbCacheFile:
		return fmt.Errorf("secret name %q: reserved for the Kerberos ticket cache of kerberos: true", name)
	case typ == SecretEnv && !envVarName.MatchString(name):
		return fmt.Errorf("secret name %q: an env secret must be a variable name (letters, digits and '_', not starting with a digit)", name)
	case typ == SecretEnv && (strings.HasPrefix(name, "REANA_") || name == "KRB5CCNAME"):
		return fmt.Errorf("secret name %q: reserved (reana-site sets REANA_* and KRB5CCNAME in every job itself)", name)
	}
	return nil
}

var envVarName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
