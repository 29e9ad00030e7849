package identity

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/reana-site/reana-site/asuser"
)

// Login methods: how a person proved who they are.
const (
	MethodKerberos = "kerberos"
	MethodOIDC     = "oidc"
)

// ErrNotMapped means the identity names no POSIX account on this site (an
// untrusted realm, a principal with an instance, no rule or command gave a
// name). It wraps ErrRefused, so Refused and callers that map ErrRefused
// to 403 treat it as a refusal.
var ErrNotMapped = fmt.Errorf("%w: no account for this identity", ErrRefused)

// LoginIdentity is who a login says the person is, before mapping.
type LoginIdentity struct {
	Method string `json:"method"` // MethodKerberos or MethodOIDC
	// Name is the Kerberos principal (alice@REALM) or the value of the
	// OIDC claim the site names users by.
	Name string `json:"name"`
	// Issuer, Subject and Email are the OIDC token's iss, sub and email.
	Issuer  string `json:"issuer,omitempty"`
	Subject string `json:"subject,omitempty"`
	Email   string `json:"email,omitempty"`
}

// MapRule is one anchored regular expression and the name it gives: {0} is
// the whole match, {1}... its groups.
type MapRule struct {
	Match  *regexp.Regexp
	Output string
}

// ParseMapRules reads REANA_SITE_LOGIN_MAP_RULES: rules separated by ";",
// each "regex => output". The regex is anchored (^...$ is implied), so a
// rule never matches part of a name by accident.
func ParseMapRules(s string) ([]MapRule, error) {
	var rules []MapRule
	for _, part := range strings.Split(s, ";") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		expr, out, ok := strings.Cut(part, "=>")
		if !ok {
			return nil, fmt.Errorf("rule %q: want \"regex => output\"", part)
		}
		expr, out = strings.TrimSpace(expr), strings.TrimSpace(out)
		re, err := regexp.Compile("^(?:" + expr + ")$")
		if err != nil {
			return nil, fmt.Errorf("rule %q: %w", part, err)
		}
		if out == "" {
			return nil, fmt.Errorf("rule %q: empty output", part)
		}
		for _, m := range groupRef.FindAllStringSubmatch(out, -1) {
			var n int
			fmt.Sscan(m[1], &n)
			if n > re.NumSubexp() {
				return nil, fmt.Errorf("rule %q: output names group {%d}, the regex has %d", part, n, re.NumSubexp())
			}
		}
		rules = append(rules, MapRule{Match: re, Output: out})
	}
	return rules, nil
}

// groupRef is {n} in a rule's output.
var groupRef = regexp.MustCompile(`\{(\d+)\}`)

// apply returns the rule's name for s, or false when it does not match.
func (r MapRule) apply(s string) (string, bool) {
	m := r.Match.FindStringSubmatch(s)
	if m == nil {
		return "", false
	}
	return groupRef.ReplaceAllStringFunc(r.Output, func(ref string) string {
		var n int
		fmt.Sscanf(ref, "{%d}", &n)
		return m[n]
	}), true
}

// Mapper turns a login identity into a POSIX account, in the order MIT's
// auth_to_local, Open OnDemand and Globus Compute use between them: the
// Kerberos realm is stripped, then the rules, then the site's command,
// then NSS and the site policy.
type Mapper struct {
	// Realms are the Kerberos realms whose one-component principals are
	// local users; a principal of any other realm is refused.
	Realms []string
	// Rules apply to the name left after the realm (or to the OIDC claim);
	// the first that matches gives the name, and none leaves it as is.
	Rules []MapRule
	// Command, when set, is run (argv, no shell) with the identity as JSON
	// on stdin (LoginIdentity plus "mapped", the name so far) and must
	// print exactly one name.
	Command []string
	// Timeout bounds Command; 0 means 10 s.
	Timeout time.Duration
	// Accounts applies NSS and the site policy to the name.
	Accounts Resolver
}

// posixName is what a mapped name must look like: the portable user name
// characters, so no rule or command can hand NSS something odd.
var posixName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$`)

// Name maps id to a POSIX user name without looking it up. Every refusal
// wraps ErrNotMapped and says why.
func (m Mapper) Name(ctx context.Context, id LoginIdentity) (string, error) {
	name := id.Name
	if id.Method == MethodKerberos {
		n, err := m.stripRealm(id.Name)
		if err != nil {
			return "", err
		}
		name = n
	}
	for _, r := range m.Rules {
		if out, ok := r.apply(name); ok {
			name = out
			break
		}
	}
	if len(m.Command) > 0 {
		n, err := m.runCommand(ctx, id, name)
		if err != nil {
			return "", err
		}
		name = n
	}
	if !posixName.MatchString(name) {
		return "", fmt.Errorf("%w: %q maps to %q, which is not a user name", ErrNotMapped, id.Name, name)
	}
	return name, nil
}

// Account maps id to its POSIX account and applies the site policy.
func (m Mapper) Account(ctx context.Context, id LoginIdentity) (asuser.Account, error) {
	name, err := m.Name(ctx, id)
	if err != nil {
		return asuser.Account{}, err
	}
	return m.Accounts.Account(name)
}

// stripRealm is MIT's DEFAULT rule: alice@REALM is alice when REALM is
// accepted; alice/admin@REALM is another identity than alice and refused.
func (m Mapper) stripRealm(principal string) (string, error) {
	at := strings.LastIndex(principal, "@")
	if at < 0 {
		return "", fmt.Errorf("%w: principal %q has no realm", ErrNotMapped, principal)
	}
	user, realm := principal[:at], principal[at+1:]
	if !slices.Contains(m.Realms, realm) {
		return "", fmt.Errorf("%w: realm %s of %q is not one this site trusts", ErrNotMapped, realm, principal)
	}
	if user == "" || strings.Contains(user, "/") {
		return "", fmt.Errorf("%w: %q is not a user principal (it has an instance); only NAME@%s is mapped", ErrNotMapped, principal, realm)
	}
	return user, nil
}

// commandOutputLimit bounds what the mapping command may print.
const commandOutputLimit = 4096

func (m Mapper) runCommand(ctx context.Context, id LoginIdentity, name string) (string, error) {
	timeout := m.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	in, err := json.Marshal(struct {
		LoginIdentity
		Mapped string `json:"mapped"`
	}{id, name})
	if err != nil {
		return "", fmt.Errorf("encode the identity for the mapping command: %w", err)
	}
	cmd := exec.CommandContext(ctx, m.Command[0], m.Command[1:]...)
	cmd.Stdin = bytes.NewReader(in)
	// The daemon's environment (its settings, systemd's credentials
	// directory) is none of the command's business.
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"}
	var out limitedBuffer
	cmd.Stdout = &out
	// A command that left a child holding stdout must not hang the login.
	cmd.WaitDelay = time.Second
	err = cmd.Run()
	if ctx.Err() != nil {
		return "", fmt.Errorf("%w: the mapping command %s did not answer within %s", ErrNotMapped, m.Command[0], timeout)
	}
	if err != nil && !errors.Is(err, exec.ErrWaitDelay) {
		return "", fmt.Errorf("%w: the mapping command %s failed for %q: %v", ErrNotMapped, m.Command[0], id.Name, err)
	}
	lines := strings.Fields(out.String())
	switch {
	case out.over:
		return "", fmt.Errorf("%w: the mapping command %s printed more than %d bytes", ErrNotMapped, m.Command[0], commandOutputLimit)
	case len(lines) == 0:
		return "", fmt.Errorf("%w: the mapping command %s gave no name for %q", ErrNotMapped, m.Command[0], id.Name)
	case len(lines) > 1:
		return "", fmt.Errorf("%w: the mapping command %s gave %d names for %q; it must print one", ErrNotMapped, m.Command[0], len(lines), id.Name)
	}
	return lines[0], nil
}

// limitedBuffer keeps the first commandOutputLimit bytes written to it. It
// holds the buffer in a field, not embedded: an embedded bytes.Buffer's
// ReadFrom would let io.Copy bypass the limit.
type limitedBuffer struct {
	buf  bytes.Buffer
	over bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := commandOutputLimit - b.buf.Len(); len(p) > room {
		b.over = true
		if room > 0 {
			b.buf.Write(p[:room])
		}
		return len(p), nil
	}
	return b.buf.Write(p)
}

func (b *limitedBuffer) String() string { return b.buf.String() }
