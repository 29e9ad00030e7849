// Package authlimit slows down guessing: it counts failed sign-ins
// (wrong access tokens on /api, wrong Kerberos tickets and failed OIDC
// callbacks on /site) per client address and overall, and says when to
// refuse without checking. The daemon has one Limiter that every way in
// shares, so failures on one count against the others.
package authlimit

import (
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limits says how fast failed sign-ins are answered. A token is 256
// random bits and a Kerberos ticket or OIDC code cannot be made up either,
// so guessing cannot succeed, but answering thousands of guesses a second
// costs the site a store lookup (or a round trip to the OIDC provider)
// each and fills its logs.
type Limits struct {
	PerAddr      rate.Limit // failed checks a second from one client address (an IPv6 /64)
	PerAddrBurst int
	Overall      rate.Limit // failed checks a second from all addresses together
	OverallBurst int
	// MaxAddrs bounds the addresses remembered; beyond it, new addresses
	// share one bucket, so many addresses buy no more guesses than one.
	MaxAddrs int
}

// Default leaves room for a user who mistyped a token (or a script
// retrying with an old one) and for the tests' deliberate bad tokens, and
// refuses a guessing loop within a second.
func Default() Limits {
	return Limits{PerAddr: 5, PerAddrBurst: 30, Overall: 50, OverallBurst: 300, MaxAddrs: 10000}
}

// Limiter is a token bucket per client address and one overall, charged
// for failed checks only. Every check reserves a token up front, so
// concurrent guesses cannot overshoot the burst, and a check that succeeds
// gives its tokens back: a valid user is never slowed by their own
// requests. While a bucket is empty every check it covers is answered 429
// without looking the credential up, right or wrong, since answering would
// tell the guesser which one was right.
type Limiter struct {
	limits Limits

	mu       sync.Mutex
	overall  *rate.Limiter
	overflow *rate.Limiter
	addrs    map[netip.Prefix]*rate.Limiter
}

// New makes a Limiter with empty history.
func New(l Limits) *Limiter {
	return &Limiter{
		limits:   l,
		overall:  rate.NewLimiter(l.Overall, l.OverallBurst),
		overflow: rate.NewLimiter(l.PerAddr, l.PerAddrBurst),
		addrs:    map[netip.Prefix]*rate.Limiter{},
	}
}

// Attempt is one check's reservation. Its zero value is an attempt that
// reserved nothing.
type Attempt struct {
	now       time.Time
	addr, all *rate.Reservation
}

// Succeeded gives the attempt's tokens back: the credential was right (or
// the check failed for a reason that is no guess, such as the store or the
// OIDC provider failing).
func (a Attempt) Succeeded() {
	if a.addr == nil {
		return
	}
	a.addr.CancelAt(a.now)
	a.all.CancelAt(a.now)
}

// Begin reserves a failed check's worth from the bucket of remoteAddr (a
// request's RemoteAddr) and the overall one; if either is empty it
// reserves nothing and says how long until a check would be allowed.
func (l *Limiter) Begin(remoteAddr string, now time.Time) (Attempt, time.Duration, bool) {
	l.mu.Lock()
	bucket := l.bucket(clientPrefix(remoteAddr), now)
	l.mu.Unlock()
	a := Attempt{now: now, addr: bucket.ReserveN(now, 1)}
	if d := a.addr.DelayFrom(now); d > 0 || !a.addr.OK() {
		a.addr.CancelAt(now)
		return Attempt{}, d, false
	}
	a.all = l.overall.ReserveN(now, 1)
	if d := a.all.DelayFrom(now); d > 0 || !a.all.OK() {
		a.all.CancelAt(now)
		a.addr.CancelAt(now)
		return Attempt{}, d, false
	}
	return a, 0, true
}

// bucket is p's bucket, made if need be. Called with l.mu held.
func (l *Limiter) bucket(p netip.Prefix, now time.Time) *rate.Limiter {
	if b, ok := l.addrs[p]; ok {
		return b
	}
	if len(l.addrs) >= l.limits.MaxAddrs {
		l.expire(now)
	}
	if len(l.addrs) >= l.limits.MaxAddrs {
		return l.overflow
	}
	b := rate.NewLimiter(l.limits.PerAddr, l.limits.PerAddrBurst)
	l.addrs[p] = b
	return b
}

// expire forgets the addresses whose bucket has filled up again: a full
// bucket is what a new one would be, so nothing is lost.
func (l *Limiter) expire(now time.Time) {
	for p, b := range l.addrs {
		if b.TokensAt(now) >= float64(l.limits.PerAddrBurst) {
			delete(l.addrs, p)
		}
	}
}

// clientPrefix is the bucket of a RemoteAddr: the IPv4 address, or the
// IPv6 /64 (one host usually holds a whole /64). An address that does not
// parse shares the zero prefix's bucket.
func clientPrefix(remote string) netip.Prefix {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Prefix{}
	}
	ip = ip.Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, _ := ip.Prefix(bits)
	return p
}

// RetryAfter is how many whole seconds a refused client is told to wait,
// wait being how long until a check would be allowed.
func RetryAfter(wait time.Duration) int {
	if wait <= 0 || wait == rate.InfDuration {
		return 60
	}
	return max(1, int(math.Ceil(wait.Seconds())))
}

// Message is what a refused client is told.
func Message(retryAfter int) string {
	return fmt.Sprintf("Too many failed authentication attempts from your address; try again in %d seconds.", retryAfter)
}

// SetHeaders sets the headers of a 429 answer to a refused check.
func SetHeaders(w http.ResponseWriter, retryAfter int) {
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	// A guesser pays a new TLS handshake for each further try.
	w.Header().Set("Connection", "close")
}

// Refuse sets the headers of a 429 answer to a check the Limiter refused
// and returns its message; the caller writes the body in its own format.
func Refuse(w http.ResponseWriter, wait time.Duration) string {
	secs := RetryAfter(wait)
	SetHeaders(w, secs)
	return Message(secs)
}
