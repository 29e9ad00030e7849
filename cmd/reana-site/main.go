// Command reana-site is the site-local REANA server: it speaks reana-server's
// REST API so the unmodified reana-client works against it, and runs every
// workflow step as the POSIX user who submitted it.
//
// Usage:
//
//	reana-site serve                     run the daemon (configuration from REANA_SITE_* variables)
//	reana-site admin user add NAME       allow a POSIX user to use the service
//	reana-site admin user list           list users
//	reana-site admin user remove NAME    stop a user from using the service (revokes their tokens)
//	reana-site admin token issue NAME    issue an access token for a user (printed once)
//	reana-site admin token revoke NAME   revoke all access tokens of a user
//	reana-site admin login list [NAME]   list the OIDC accounts bound to users
//	reana-site admin login remove NAME   forget the OIDC accounts bound to a user
//	reana-site token [--rotate|--revoke] get your own access token (self-service)
//	reana-site token --server URL        get a new token with your Kerberos ticket
//	reana-site login-link                a one-time link that signs you in to the web pages
//	reana-site doctor [-image I -user U] check the site setup, one line per finding
//	reana-site version                   print the version
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/reana-site/reana-site/helper"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

const usage = `reana-site: a site-local REANA server that runs each step as its POSIX user

Usage:
  reana-site serve                     run the daemon
  reana-site admin user add NAME [--email ADDRESS]
                                       allow a POSIX user to use the service
  reana-site admin user list           list users
  reana-site admin user remove NAME    stop a user from using the service
  reana-site admin token issue NAME    issue an access token (printed once)
  reana-site admin token revoke NAME   revoke all access tokens of a user
  reana-site admin login list [NAME]   list the OIDC accounts bound to users
  reana-site admin login remove NAME   forget the OIDC accounts bound to a
                                       user (their next sign-in binds anew)
  reana-site token [--rotate|--revoke] get your own access token from the
                                       local daemon (when the site allows
                                       self-service)
  reana-site token --server URL        get a new token from a reana-site
                                       server with your Kerberos ticket
  reana-site login-link                print a one-time link that signs you
                                       in to the web pages
  reana-site doctor [-image IMAGE -user NAME]
                                       check the site setup (apptainer, user
                                       namespaces, image cache, SIF tools,
                                       batch commands, workspace root, uid
                                       policy, address, certificate); with
                                       -image, run that image as NAME; exit 1
                                       on any problem (not on warnings)
  reana-site version                   print the version

Configuration comes from REANA_SITE_* environment variables; under systemd,
from /etc/sysconfig/reana-site, which lists every one, commented out, with
its default. The ones a site sets first:
  REANA_SITE_LISTEN                    the HTTPS address
                                       (default localhost:8443)
  REANA_SITE_TLS_CERT, REANA_SITE_TLS_KEY
                                       PEM certificate and key (default: a
                                       self-signed one, made once)
  REANA_SITE_WORKSPACE_ROOT            where workspaces go
                                       (default {home}/reana)
  REANA_SITE_MIN_UID                   the lowest uid served (default 1000)
  REANA_SITE_ALLOWED_GROUPS            only members of these groups are served
  REANA_SITE_BACKENDS                  local, slurm, htcondor, kubernetes
                                       (default local)
  REANA_SITE_CONTAINERS                off, or apptainer to run each step in
                                       its image (default off)
  REANA_SITE_SELF_SERVICE              let users run reana-site token
                                       (default false)

Every command and every variable: man 8 reana-site.
`

// The privilege split re-executes /proc/self/exe, which the kernel would
// name "exe" in ps and top; init runs on the main thread, whose name is the
// process's.
func init() {
	_ = unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&[]byte("reana-site\x00")[0])), 0, 0, 0)
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) == 0 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	if commandHelp(os.Stdout, args[0], args[1:]) {
		return 0
	}
	switch args[0] {
	case "serve":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
		defer stop()
		if err := serve(ctx); err != nil {
			fmt.Fprintln(os.Stderr, "reana-site:", err)
			return 1
		}
		return 0
	case "admin":
		return admin(args[1:])
	case "worker":
		// Internal: one operation as a user, started by the daemon.
		return helper.Main(context.Background(), os.Stdin, os.Stdout)
	case "token":
		return token(args[1:])
	case "login-link":
		return loginLink(args[1:])
	case "doctor":
		return doctor(args[1:])
	case "version", "--version":
		fmt.Println("reana-site", version)
		return 0
	case "help", "-h", "--help":
		fmt.Print(usage)
		return 0
	}
	fmt.Fprintf(os.Stderr, "reana-site: unknown command %q\n\n%s", args[0], usage)
	return 2
}
