package jobscript

import (
	"fmt"
	"strings"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
)

// The job reads the user's secrets itself, as the user, when it starts:
// the daemon never holds a value, none is in the script, the command file,
// argv or the scheduler's view of the job. File secrets are copied into a
// private directory in the job directory ($REANA_SECRETS_DIR, 0700, files
// 0600), which the script removes, with the Kerberos ticket, before it
// records the exit status; env secrets are exported, or, for Apptainer,
// whose --cleanenv drops the host's environment, copied into a second
// private directory ($jobdir/secrets-env) that the container's launcher
// reads (see containers.ShellLauncher).

// secretsCleanup is what finish runs before it records the status, so no
// copy of a secret outlives the command.
func secretsCleanup(s batch.Secrets) string {
	if s.Dir == "" {
		return ""
	}
	var b strings.Builder
	if s.Kerberos {
		b.WriteString("  [ -n \"${krb_ticket:-}\" ] && kdestroy -q 2>/dev/null\n")
	}
	b.WriteString("  rm -rf \"$jobdir/" + asuser.SecretsJobDir + "\" \"$jobdir/" + asuser.SecretsEnvJobDir + "\"\n")
	return b.String()
}

// secretsBlock loads the secrets; container says whether the command runs
// in Apptainer.
func secretsBlock(s batch.Secrets, container bool) (string, error) {
	if s.Dir == "" {
		return "", nil
	}
	var b strings.Builder
	fmt.Fprintf(&b, "secrets=%s\n", Quote(s.Dir))
	b.WriteString(`REANA_SECRETS_DIR="$jobdir/` + asuser.SecretsJobDir + `"; export REANA_SECRETS_DIR
rm -rf "$REANA_SECRETS_DIR"
umask_was=$(umask); umask 077
mkdir "$REANA_SECRETS_DIR" || { echo "reana-site: cannot make the job's secret directory" >&2; finish 127; }
`)
	if container {
		b.WriteString(`rm -rf "$jobdir/` + asuser.SecretsEnvJobDir + `"
mkdir "$jobdir/` + asuser.SecretsEnvJobDir + `" || { echo "reana-site: cannot make the job's secret directory" >&2; finish 127; }
`)
	}
	b.WriteString(`if [ -h "$secrets" ]; then echo "reana-site: your secret directory $secrets is a symbolic link: refusing to read secrets through it" >&2; finish 127; fi
for f in "$secrets/` + asuser.SecretsFileDir + `"/* "$secrets/` + asuser.SecretsFileDir + `"/.[!.]*; do
  [ -f "$f" ] && [ ! -h "$f" ] || continue
  case ${f##*/} in .reana-upload-*) continue ;; esac
  cp -- "$f" "$REANA_SECRETS_DIR/" || { echo "reana-site: cannot copy secret ${f##*/}" >&2; finish 127; }
done
for f in "$secrets/` + asuser.SecretsEnvDir + `"/*; do
  [ -f "$f" ] && [ ! -h "$f" ] || continue
  n=${f##*/}
  case $n in *[!A-Za-z0-9_]* | [0-9]* | REANA_* | KRB5CCNAME) continue ;; esac
`)
	if container {
		// Copied for the container's launcher to export (see
		// containers.ShellLauncher): no value passes through argv or
		// through Apptainer's own environment handling.
		b.WriteString("  cp -- \"$f\" \"$jobdir/" + asuser.SecretsEnvJobDir + "/$n\" || { echo \"reana-site: cannot copy secret $n\" >&2; finish 127; }\n")
	} else {
		b.WriteString("  v=$(cat -- \"$f\"; printf x); v=${v%x}\n  export \"$n=$v\"\n")
	}
	b.WriteString("done\nunset f n v\numask \"$umask_was\"\n")
	if s.Kerberos {
		k, err := kerberosBlock(s)
		if err != nil {
			return "", err
		}
		b.WriteString(k)
	}
	return b.String(), nil
}

// kerberosBlock makes the job's own ticket cache from the keytab, as
// REANA's kerberos: true does in an init container: the first keytab and
// principal secrets present win, and a missing one fails the step saying
// which secret to add.
func kerberosBlock(s batch.Secrets) (string, error) {
	if len(s.KeytabSecrets) == 0 || len(s.UserSecrets) == 0 {
		return "", fmt.Errorf("jobscript: kerberos needs keytab and user secret names")
	}
	var b strings.Builder
	if s.KrbConfig != "" {
		fmt.Fprintf(&b, "KRB5_CONFIG=%s; export KRB5_CONFIG\n", Quote(s.KrbConfig))
	}
	b.WriteString("krb_keytab=; krb_user=\n")
	read := func(v string, names []string) {
		for _, n := range names {
			if !envName.MatchString(n) {
				continue
			}
			fmt.Fprintf(&b, "[ -z \"$%s\" ] && [ -f \"$secrets/%s/%s\" ] && %s=$(cat \"$secrets/%s/%s\")\n",
				v, asuser.SecretsEnvDir, n, v, asuser.SecretsEnvDir, n)
		}
	}
	read("krb_keytab", s.KeytabSecrets)
	read("krb_user", s.UserSecrets)
	keytab, user := s.KeytabSecrets[0], s.UserSecrets[0]
	fmt.Fprintf(&b, `if [ -z "$krb_keytab" ]; then echo %s >&2; finish 1; fi
case $krb_keytab in */* | ..* | '') echo %s >&2; finish 1 ;; esac
if [ ! -f "$REANA_SECRETS_DIR/$krb_keytab" ]; then echo "reana-site: kerberos: true: the keytab $krb_keytab that %s names is not among your file secrets: add it with reana-client secrets-add --file $krb_keytab" >&2; finish 1; fi
if [ -z "$krb_user" ]; then echo %s >&2; finish 1; fi
KRB5CCNAME="FILE:$REANA_SECRETS_DIR/%s"; export KRB5CCNAME
krb_ticket=1
kinit -k -t "$REANA_SECRETS_DIR/$krb_keytab" "$krb_user" || { echo "reana-site: kerberos: true: kinit with the keytab $krb_keytab for $krb_user failed (see above): check the keytab and %s" >&2; finish 1; }
unset krb_keytab krb_user
`,
		Quote("reana-site: kerberos: true needs your keytab: add it with reana-client secrets-add --file KEYTAB --env "+keytab+"=KEYTAB --env "+user+"=PRINCIPAL"),
		Quote("reana-site: kerberos: true: the secret "+keytab+" must name a file secret (a file name, not a path)"),
		keytab,
		Quote("reana-site: kerberos: true needs your principal: add it with reana-client secrets-add --env "+user+"=PRINCIPAL"),
		asuser.KrbCacheFile, user)
	return b.String(), nil
}
