package identity

import (
	"errors"
	"fmt"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/daemon/store"
)

// Errors that say a stored user may no longer be served. Callers map them
// to their own answer (an HTTP status, a refusal that ends a workflow, a
// line on the admin's terminal).
var (
	// ErrRemoved means the site's admins removed the user from the service.
	ErrRemoved = errors.New("removed from the service")
	// ErrUIDChanged means the POSIX account now has another uid than the
	// one recorded when the user was added: the name was reused, and the
	// new owner must not inherit the old one's workflows and files.
	ErrUIDChanged = errors.New("the POSIX account changed since it was added")
)

// UIDChangedError is ErrUIDChanged with the numbers.
type UIDChangedError struct {
	Name     string
	UID      uint32 // what NSS says now
	Recorded uint32 // what the store recorded
}

func (e *UIDChangedError) Error() string {
	return fmt.Sprintf("the uid of %s changed from %d to %d", e.Name, e.Recorded, e.UID)
}

// Is makes errors.Is(err, ErrUIDChanged) true.
func (e *UIDChangedError) Is(target error) bool { return target == ErrUIDChanged }

// Refused reports whether err says the account may not be served, as
// opposed to a lookup that failed for a while (NSS or LDAP down), which is
// worth retrying.
func Refused(err error) bool {
	return errors.Is(err, ErrUnknownUser) || errors.Is(err, ErrRefused) ||
		errors.Is(err, ErrRemoved) || errors.Is(err, ErrUIDChanged)
}

// Resolver is the one answer to "may this account (still) be served?": the
// NSS lookup, the site policy and the stored user together. The API asks
// it on every request, the engine before every action as the user, the
// token socket and the admin commands before issuing a token.
type Resolver struct {
	Policy Policy
	// Lookup resolves a POSIX name through NSS; nil means Lookup.
	Lookup func(name string) (asuser.Account, error)
}

// Account looks name up and applies the site policy: for users that are
// not (yet) in the store.
func (r Resolver) Account(name string) (asuser.Account, error) {
	a, err := r.lookup(name)
	if err != nil {
		return a, err
	}
	return a, r.Policy.Check(a)
}

// Serve returns the account of a stored user when it may be served: the
// user was not removed, NSS still knows the name with the recorded uid, and
// the site policy allows it.
func (r Resolver) Serve(u store.User) (asuser.Account, error) {
	if u.RemovedAt != nil {
		return asuser.Account{}, fmt.Errorf("user %s was %w", u.Name, ErrRemoved)
	}
	a, err := r.lookup(u.Name)
	if err != nil {
		return a, err
	}
	if err := SameAccount(u, a); err != nil {
		return a, err
	}
	return a, r.Policy.Check(a)
}

func (r Resolver) lookup(name string) (asuser.Account, error) {
	if r.Lookup != nil {
		return r.Lookup(name)
	}
	return Lookup(name)
}

// SameAccount checks that a is the POSIX account u was recorded with.
func SameAccount(u store.User, a asuser.Account) error {
	if a.UID != u.UID {
		return &UIDChangedError{Name: u.Name, UID: a.UID, Recorded: u.UID}
	}
	return nil
}
