// Package identity maps REANA access tokens and POSIX user names to
// accounts, and applies the site's uid and group policy. Accounts are
// always looked up through NSS at the time of use, so LDAP/SSSD users work
// and a user removed from NSS stops working at once.
package identity

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"os/user"
	"slices"
	"strconv"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/daemon/store"
)

var (
	// ErrUnknownUser means NSS does not know the name.
	ErrUnknownUser = errors.New("no such POSIX user")
	// ErrRefused means the site policy does not allow the account.
	ErrRefused = errors.New("refused by site policy")
)

// Lookup resolves a POSIX user name to its account, with every group the
// user belongs to.
func Lookup(name string) (asuser.Account, error) {
	u, err := user.Lookup(name)
	if err != nil {
		var unknown user.UnknownUserError
		if errors.As(err, &unknown) {
			return asuser.Account{}, fmt.Errorf("%w: %q", ErrUnknownUser, name)
		}
		return asuser.Account{}, fmt.Errorf("look up user %q: %w", name, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return asuser.Account{}, fmt.Errorf("user %q: bad uid %q", name, u.Uid)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return asuser.Account{}, fmt.Errorf("user %q: bad gid %q", name, u.Gid)
	}
	ids, err := u.GroupIds()
	if err != nil {
		return asuser.Account{}, fmt.Errorf("user %q: list groups: %w", name, err)
	}
	groups := make([]uint32, 0, len(ids))
	for _, s := range ids {
		g, err := strconv.ParseUint(s, 10, 32)
		if err != nil {
			return asuser.Account{}, fmt.Errorf("user %q: bad group id %q", name, s)
		}
		groups = append(groups, uint32(g))
	}
	slices.Sort(groups)
	return asuser.Account{Name: u.Username, UID: uint32(uid), GID: uint32(gid), Groups: slices.Compact(groups), Home: u.HomeDir}, nil
}

// Policy is the site's rule for who may use the service.
type Policy struct {
	// MinUID is the lowest uid allowed; uid 0 and gid 0 are refused whatever it says.
	MinUID uint32
	// MaxUID, when not 0, is the highest uid allowed. The overflow ids
	// (65534, nobody, and 4294967294/4294967295, (uid_t)-2 and -1) are
	// refused whatever it says: they stand for "unknown" on NFS and in user
	// namespaces, and files owned by them belong to no one in particular.
	MaxUID uint32
	// AllowedGroups, when not empty, requires membership in one of these groups.
	AllowedGroups []string
}

// Check returns nil when the account may use the service, or an error
// wrapping ErrRefused that says why.
func (p Policy) Check(a asuser.Account) error {
	if a.UID == 0 {
		return fmt.Errorf("%w: user %q is root (uid 0)", ErrRefused, a.Name)
	}
	if a.GID == 0 {
		return fmt.Errorf("%w: user %q has primary group 0", ErrRefused, a.Name)
	}
	if a.UID < p.MinUID {
		return fmt.Errorf("%w: user %q has uid %d, below the site minimum %d", ErrRefused, a.Name, a.UID, p.MinUID)
	}
	if overflowID(a.UID) || overflowID(a.GID) {
		return fmt.Errorf("%w: user %q has uid %d, gid %d: an overflow id (nobody), which is never served", ErrRefused, a.Name, a.UID, a.GID)
	}
	if p.MaxUID != 0 && a.UID > p.MaxUID {
		return fmt.Errorf("%w: user %q has uid %d, above the site maximum %d", ErrRefused, a.Name, a.UID, p.MaxUID)
	}
	if len(p.AllowedGroups) == 0 {
		return nil
	}
	for _, name := range p.AllowedGroups {
		g, err := user.LookupGroup(name)
		if err != nil {
			continue
		}
		gid, err := strconv.ParseUint(g.Gid, 10, 32)
		if err == nil && (slices.Contains(a.Groups, uint32(gid)) || a.GID == uint32(gid)) {
			return nil
		}
	}
	return fmt.Errorf("%w: user %q is in none of the allowed groups %v", ErrRefused, a.Name, p.AllowedGroups)
}

// NewToken returns a fresh random access token and the hash to store.
// Only the hash is ever stored; the token is shown once.
func NewToken() (token string, hash []byte, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", nil, fmt.Errorf("generate token: %w", err)
	}
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token), nil
}

// TokenIssuer is the part of the store that issuing a token needs.
type TokenIssuer interface {
	IssueToken(ctx context.Context, userID string, hash []byte, hint string, mode store.TokenMode) (store.Token, error)
}

// IssueToken makes a new token for the user and records its hash, treating
// the user's other tokens as mode says. Every path that gives a user a
// token (the admin CLI, the token socket, the web profile page, a Kerberos
// or OIDC login) goes through here, so they agree on form and rules. With
// store.TokenFirst and a valid token already there, it returns that
// token's record with store.ErrExists.
func IssueToken(ctx context.Context, db TokenIssuer, userID string, mode store.TokenMode) (string, store.Token, error) {
	token, hash, err := NewToken()
	if err != nil {
		return "", store.Token{}, err
	}
	t, err := db.IssueToken(ctx, userID, hash, token[len(token)-4:], mode)
	if err != nil {
		return "", t, err
	}
	return token, t, nil
}

// HashToken is the stored form of a token. Tokens are 256 random bits, so a
// plain SHA-256 is enough (no password stretching needed).
func HashToken(token string) []byte {
	h := sha256.Sum256([]byte(token))
	return h[:]
}

// LookupUID resolves a uid (as the kernel reports a peer) to its account.
func LookupUID(uid uint32) (asuser.Account, error) {
	u, err := user.LookupId(strconv.FormatUint(uint64(uid), 10))
	if err != nil {
		var unknown user.UnknownUserIdError
		if errors.As(err, &unknown) {
			return asuser.Account{}, fmt.Errorf("%w: uid %d", ErrUnknownUser, uid)
		}
		return asuser.Account{}, fmt.Errorf("look up uid %d: %w", uid, err)
	}
	return Lookup(u.Username)
}

// overflowID reports the ids that stand for "no one": the kernel's
// overflow uid/gid (65534) and (uid_t)-2 and -1.
func overflowID(id uint32) bool { return id == 65534 || id >= 4294967294 }
