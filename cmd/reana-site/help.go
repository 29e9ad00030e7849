package main

import (
	"fmt"
	"io"
	"slices"
)

// commandUsages is each command's own usage, for `reana-site CMD --help`.
// A command asked for help does nothing else: `serve --help` must not
// start a daemon.
func commandUsages() map[string]string {
	return map[string]string{
		"serve": `Usage: reana-site serve

Run the daemon: the REANA REST API on REANA_SITE_LISTEN (HTTPS), the engine
that runs workflows, the admin socket and the token socket. Configuration
comes from REANA_SITE_* variables (under systemd, /etc/sysconfig/reana-site).
Run it as root: it keeps only CAP_SETUID and CAP_SETGID, and does every
file operation and submission as the user concerned.
See man 8 reana-site.
`,
		"admin": `Usage:
  reana-site admin user add NAME [--email ADDRESS]
                                       allow a POSIX user to use the service
  reana-site admin user list           list users
  reana-site admin user remove NAME    stop a user from using the service
                                       (revokes their tokens, removes their
                                       secrets as them)
  reana-site admin token issue NAME    issue an access token (printed once)
  reana-site admin token revoke NAME   revoke all access tokens of a user
  reana-site admin secrets list NAME   list a user's secret names and types
                                       (never their values)
  reana-site admin login list [NAME]   list the OIDC accounts (issuer and
                                       subject) bound to users, or to NAME
  reana-site admin login remove NAME   forget the OIDC accounts bound to NAME:
                                       their next OIDC sign-in binds the
                                       account it comes from

Admin commands are for root. They go to the running daemon through its
admin socket (REANA_SITE_ADMIN_SOCKET), or work on the store directly when
no daemon runs.
`,
		"token": `Usage: reana-site token [--rotate|--revoke] [--socket PATH]
       reana-site token --server URL [--spn HTTP/HOST] [--cacert FILE]

Get your own REANA access token from the daemon on this machine, when the
site allows self-service (REANA_SITE_SELF_SERVICE). The daemon learns who
you are from the kernel. A token is shown once; --rotate replaces it,
--revoke ends it. --socket names the daemon's token socket
(REANA_SITE_TOKEN_SOCKET).

With --server, get a new token (ending the old ones) from that reana-site
server with your Kerberos ticket: the credential cache of KRB5CCNAME, or
/tmp/krb5cc_<uid>, which must be a FILE: cache (otherwise use
curl --negotiate -u : -X POST URL/site/token). --spn is the server's
service principal (default HTTP/<the URL's host>); --cacert a PEM file to
trust instead of the system's CAs, such as the daemon's self-signed
certificate. The token goes to standard output, the export lines to
standard error.
`,
		"login-link": `Usage: reana-site login-link [--socket PATH]

Print a link that signs you in to the site's web pages: open it in your
browser within 10 minutes; it works once. The daemon learns who you are
from the kernel, over its token socket (REANA_SITE_TOKEN_SOCKET, or
--socket). A user the admins have not added gets one only where
self-service (REANA_SITE_SELF_SERVICE) would add them.
`,
		"doctor": `Usage: reana-site doctor [-image IMAGE -user NAME]

Check the site setup (apptainer, user namespaces, image cache, batch
commands, Kubernetes admission, workspace root, uid policy, address,
certificate, the Kerberos keytab and the OIDC issuer), one line per finding: ok, warning or problem. With -image
and -user, also run "apptainer exec IMAGE true" as that user, as a step
would. Exit status 1 when anything is a problem.
`,
		"version": `Usage: reana-site version

Print the version.
`,
		"worker": `Usage: reana-site worker

Internal: one operation as a user, started by the daemon with the user's
uid, gid and groups; the request comes on standard input.
`,
	}
}

func isHelp(arg string) bool { return arg == "-h" || arg == "--help" || arg == "-help" }

// commandHelp prints cmd's usage when its arguments ask for help.
func commandHelp(w io.Writer, cmd string, args []string) bool {
	u, ok := commandUsages()[cmd]
	if !ok || !slices.ContainsFunc(args, isHelp) {
		return false
	}
	fmt.Fprint(w, u)
	return true
}
