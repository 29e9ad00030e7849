package identity

import (
	"context"
	"errors"
	"fmt"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/daemon/store"
)

// ErrNotRegistered means the POSIX account is allowed but not a user of
// the service, and the site does not let people add themselves.
var ErrNotRegistered = fmt.Errorf("%w: not registered with this service", ErrRefused)

// Users is the part of the store that Register needs.
type Users interface {
	UserByName(ctx context.Context, name string) (store.User, error)
	CreateUser(ctx context.Context, u store.User) (store.User, error)
}

// Register returns the service's user of the account acct (already
// checked against the site policy). With selfService, an account not yet
// registered is added (created is true): the site's login is the sign-up.
// Without it, that is ErrNotRegistered. A removed user, or one whose uid
// changed, is refused as Resolver.Serve would.
func Register(ctx context.Context, db Users, acct asuser.Account, selfService bool) (u store.User, created bool, err error) {
	u, err = db.UserByName(ctx, acct.Name)
	if errors.Is(err, store.ErrNotFound) {
		if !selfService {
			return u, false, fmt.Errorf("%s is %w; ask the site's admins to add you (reana-site admin user add %s)", acct.Name, ErrNotRegistered, acct.Name)
		}
		u, err = db.CreateUser(ctx, store.User{Name: acct.Name, UID: acct.UID})
		if err != nil {
			return u, false, fmt.Errorf("register %s: %w", acct.Name, err)
		}
		return u, true, nil
	}
	if err != nil {
		return u, false, fmt.Errorf("look up user %s: %w", acct.Name, err)
	}
	if u.RemovedAt != nil {
		return u, false, fmt.Errorf("user %s was %w", u.Name, ErrRemoved)
	}
	if err := SameAccount(u, acct); err != nil {
		return u, false, err
	}
	return u, false, nil
}
