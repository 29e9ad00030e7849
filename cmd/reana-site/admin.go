package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/daemon/config"
	"github.com/reana-site/reana-site/daemon/identity"
	"github.com/reana-site/reana-site/daemon/store"
)

// admin runs an admin command in the running daemon, through its
// root-only local socket, or, when no daemon answers there, on the store
// directly (SQLite's WAL mode would let both run side by side).
func admin(args []string) int {
	if len(args) < 2 {
		fmt.Fprint(os.Stderr, usage)
		return 2
	}
	cfg, err := config.Load()
	if err != nil {
		fmt.Fprintf(os.Stderr, "reana-site: invalid configuration:\n%v\n", err)
		return 2
	}
	if a, ok := adminViaSocket(cfg.AdminSocket, args); ok {
		fmt.Print(a.Output)
		if a.Error != "" {
			fmt.Fprintln(os.Stderr, "reana-site:", a.Error)
			if a.Usage {
				return 2
			}
			return 1
		}
		return 0
	}
	ctx := context.Background()
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		fmt.Fprintln(os.Stderr, "reana-site: create state directory:", err)
		return 1
	}
	db, err := store.Open(ctx, filepath.Join(cfg.StateDir, "reana-site.db"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "reana-site:", err)
		return 1
	}
	defer db.Close()
	d := adminDeps{db: db, accounts: accountResolver(cfg), runner: newRunner(cfg), cfg: cfg}
	if err := adminCmd(ctx, os.Stdout, d, args[0], args[1], args[2:]); err != nil {
		fmt.Fprintln(os.Stderr, "reana-site:", err)
		var ue usageError
		if errors.As(err, &ue) {
			return 2
		}
		return 1
	}
	return 0
}

type usageError string

func (u usageError) Error() string { return string(u) }

// adminDeps is what the admin commands act with.
type adminDeps struct {
	db       *store.DB
	accounts identity.Resolver
	// runner removes a removed user's secrets, as that user.
	runner asuser.Caller
	cfg    config.Config
}

func adminCmd(ctx context.Context, out io.Writer, d adminDeps, noun, verb string, rest []string) error {
	db, accounts := d.db, d.accounts
	fs := flag.NewFlagSet(noun+" "+verb, flag.ContinueOnError)
	email := fs.String("email", "", "the user's e-mail address (shown by reana-client ping)")
	// Flags may come before or after the name, as the usage text shows.
	var args []string
	for {
		if err := fs.Parse(rest); err != nil {
			return usageError(err.Error())
		}
		if fs.NArg() == 0 {
			break
		}
		args = append(args, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	needName := func() (string, error) {
		if len(args) != 1 {
			return "", usageError(fmt.Sprintf("usage: reana-site admin %s %s NAME", noun, verb))
		}
		return args[0], nil
	}
	// needUser is the stored user the command names.
	needUser := func() (store.User, error) {
		name, err := needName()
		if err != nil {
			return store.User{}, err
		}
		u, err := db.UserByName(ctx, name)
		if err != nil {
			return u, fmt.Errorf("no user %s: %w", name, err)
		}
		return u, nil
	}
	switch noun + " " + verb {
	case "user add":
		name, err := needName()
		if err != nil {
			return err
		}
		acct, err := accounts.Account(name)
		if err != nil {
			return err
		}
		u, err := db.CreateUser(ctx, store.User{Name: acct.Name, UID: acct.UID, Email: *email})
		if errors.Is(err, store.ErrExists) {
			return fmt.Errorf("user %s already exists", name)
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "user %s (uid %d) added; issue a token with: reana-site admin token issue %s\n", u.Name, u.UID, u.Name)
	case "user list":
		users, err := db.ListUsers(ctx)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tUID\tEMAIL\tADDED\tSTATE")
		for _, u := range users {
			state := "active"
			if u.RemovedAt != nil {
				state = "removed"
			}
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", u.Name, u.UID, u.Email, u.CreatedAt.Format("2006-01-02"), state)
		}
		return tw.Flush()
	case "user remove":
		name, err := needName()
		if err != nil {
			return err
		}
		// Their secrets go first, while the account may still be served:
		// the helper removes them as the user.
		serr := d.removeSecrets(ctx, out, name)
		if err := db.RemoveUser(ctx, name); err != nil {
			return fmt.Errorf("remove user %s: %w", name, err)
		}
		fmt.Fprintf(out, "user %s removed; their tokens are revoked\n", name)
		if serr != nil {
			return serr
		}
	case "secrets list":
		u, err := needUser()
		if err != nil {
			return err
		}
		list, err := db.Secrets(ctx, u.ID)
		if err != nil {
			return err
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tTYPE\tADDED\tUPDATED")
		for _, x := range list {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", x.Name, x.Type, x.CreatedAt.Format(time.DateTime), x.UpdatedAt.Format(time.DateTime))
		}
		return tw.Flush()
	case "token issue":
		name, err := needName()
		if err != nil {
			return err
		}
		u, err := db.UserByName(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("no user %s: add it first with reana-site admin user add %s", name, name)
		}
		if err != nil {
			return err
		}
		if _, err := accounts.Serve(u); err != nil {
			return err
		}
		token, _, err := identity.IssueToken(ctx, db, u.ID, store.TokenAdd)
		if err != nil {
			return err
		}
		fmt.Fprintln(out, token)
	case "token revoke":
		u, err := needUser()
		if err != nil {
			return err
		}
		n, err := db.RevokeTokens(ctx, u.ID)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%d token(s) of %s revoked\n", n, u.Name)
	case "login list":
		return listLogins(ctx, out, db, args)
	case "login remove":
		u, err := needUser()
		if err != nil {
			return err
		}
		n, err := db.UnbindLogins(ctx, u.ID)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%d sign-in binding(s) of %s removed; their next OIDC sign-in binds the account it comes from\n", n, u.Name)
	default:
		return usageError(fmt.Sprintf("unknown admin command %q", noun+" "+verb))
	}
	return nil
}

// removeSecrets removes a user's secret directory as the user and forgets
// their secret names. The account must still be the one recorded (a uid
// that changed is someone else's directory); when NSS no longer knows it,
// nobody can act as it, and the admin is told where the directory is.
func (d adminDeps) removeSecrets(ctx context.Context, out io.Writer, name string) error {
	u, err := d.db.UserByName(ctx, name)
	if err != nil {
		return nil // RemoveUser says so
	}
	acct, err := identity.Lookup(name)
	if d.accounts.Lookup != nil {
		acct, err = d.accounts.Lookup(name)
	}
	if err == nil {
		err = identity.SameAccount(u, acct)
	}
	if err != nil {
		return fmt.Errorf("the secrets of %s were not removed (%v): remove the directory REANA_SITE_SECRETS_ROOT names for them by hand", name, err)
	}
	n, err := asuser.RemoveSecrets(ctx, d.runner, acct, asuser.SecretsDirArgs{Dir: d.cfg.SecretsDir(acct)})
	if err != nil {
		return fmt.Errorf("remove the secrets of %s, as %s: %w", name, name, err)
	}
	if err := d.db.DeleteSecrets(ctx, u.ID, nil); err != nil {
		return err
	}
	if n > 0 {
		fmt.Fprintf(out, "%d secret(s) of %s removed\n", n, name)
	}
	return nil
}

// listLogins prints the OIDC accounts bound to users (see store.BindLogin),
// of the one user args names, or of all.
func listLogins(ctx context.Context, out io.Writer, db *store.DB, args []string) error {
	var userID string
	switch len(args) {
	case 0:
	case 1:
		u, err := db.UserByName(ctx, args[0])
		if err != nil {
			return fmt.Errorf("no user %s: %w", args[0], err)
		}
		userID = u.ID
	default:
		return usageError("usage: reana-site admin login list [NAME]")
	}
	list, err := db.LoginBindings(ctx, userID)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tISSUER\tSUBJECT\tBOUND\tLAST SIGN-IN")
	for _, b := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", b.User, b.Issuer, b.Subject, b.CreatedAt.Format(time.DateTime), b.LastLoginAt.Format(time.DateTime))
	}
	return tw.Flush()
}
