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
	accounts := accountResolver(cfg)
	if err := adminCmd(ctx, os.Stdout, db, accounts, args[0], args[1], args[2:]); err != nil {
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

func adminCmd(ctx context.Context, out io.Writer, db *store.DB, accounts identity.Resolver, noun, verb string, rest []string) error {
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
		if err := db.RemoveUser(ctx, name); err != nil {
			return fmt.Errorf("remove user %s: %w", name, err)
		}
		fmt.Fprintf(out, "user %s removed; their tokens are revoked\n", name)
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
		token, hash, err := identity.NewToken()
		if err != nil {
			return err
		}
		if _, err := db.CreateToken(ctx, u.ID, hash, token[len(token)-4:]); err != nil {
			return err
		}
		fmt.Fprintln(out, token)
	case "token revoke":
		name, err := needName()
		if err != nil {
			return err
		}
		u, err := db.UserByName(ctx, name)
		if err != nil {
			return fmt.Errorf("no user %s: %w", name, err)
		}
		n, err := db.RevokeTokens(ctx, u.ID)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "%d token(s) of %s revoked\n", n, name)
	default:
		return usageError(fmt.Sprintf("unknown admin command %q", noun+" "+verb))
	}
	return nil
}
