package api

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

// AuthLimits says how fast wrong access tokens are answered. A token is
// 256 random bits, so guessing cannot succeed, but answering thousands of
// guesses a second costs the site a store lookup each and fills its logs.
type AuthLimits struct {
	PerAddr      rate.Limit // failed checks a second from one client address (an IPv6 /64)
	PerAddrBurst int
	Overall      rate.Limit // failed checks a second from all addresses together
	OverallBurst int
	// MaxAddrs bounds the addresses remembered; beyond it, new addresses
	// share one bucket, so many addresses buy no more guesses than one.
	MaxAddrs int
}

// DefaultAuthLimits leaves room for a user who mistyped a token (or a
// script retrying with an old one) and for the tests' deliberate bad
// tokens, and refuses a guessing loop within a second.
func DefaultAuthLimits() AuthLimits {
	return AuthLimits{PerAddr: 5, PerAddrBurst: 30, Overall: 50, OverallBurst: 300, MaxAddrs: 10000}
}

// AuthLimiter is a token bucket per client address and one overall,
// charged for failed token checks only. Every check reserves a token up
// front, so concurrent guesses cannot overshoot the burst, and a check
// that succeeds gives its tokens back: a valid user is never slowed by
// their own requests. While a bucket is empty every token check it covers
// is answered 429 without looking the token up, right or wrong, since
// answering would tell the guesser which one was right.
type AuthLimiter struct {
	limits AuthLimits

	mu       sync.Mutex
	overall  *rate.Limiter
	overflow *rate.Limiter
	addrs    map[netip.Prefix]*rate.Limiter
}

// NewAuthLimiter makes an AuthLimiter with empty history.
func NewAuthLimiter(l AuthLimits) *AuthLimiter {
	return &AuthLimiter{
		limits:   l,
		overall:  rate.NewLimiter(l.Overall, l.OverallBurst),
		overflow: rate.NewLimiter(l.PerAddr, l.PerAddrBurst),
		addrs:    map[netip.Prefix]*rate.Limiter{},
	}
}

// authAttempt is one token check's reservation.
type authAttempt struct {
	now       time.Time
	addr, all *rate.Reservation
}

// succeeded gives the attempt's tokens back: the token was right (or the
// check failed for a reason that is no guess, such as the store failing).
func (a authAttempt) succeeded() {
	a.addr.CancelAt(a.now)
	a.all.CancelAt(a.now)
}

// begin reserves a failed check's worth from addr's bucket and the
// overall one; if either is empty it reserves nothing and says how long
// until a check would be allowed.
func (l *AuthLimiter) begin(addr string, now time.Time) (authAttempt, time.Duration, bool) {
	l.mu.Lock()
	bucket := l.bucket(clientPrefix(addr), now)
	l.mu.Unlock()
	a := authAttempt{now: now, addr: bucket.ReserveN(now, 1)}
	if d := a.addr.DelayFrom(now); d > 0 || !a.addr.OK() {
		a.addr.CancelAt(now)
		return authAttempt{}, d, false
	}
	a.all = l.overall.ReserveN(now, 1)
	if d := a.all.DelayFrom(now); d > 0 || !a.all.OK() {
		a.all.CancelAt(now)
		a.addr.CancelAt(now)
		return authAttempt{}, d, false
	}
	return a, 0, true
}

// bucket is p's bucket, made if need be. Called with l.mu held.
func (l *AuthLimiter) bucket(p netip.Prefix, now time.Time) *rate.Limiter {
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
func (l *AuthLimiter) expire(now time.Time) {
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

// tooManyFailuresRefusal is the answer to a token check refused by the
// AuthLimiter, wait being how long until one would be allowed.
func tooManyFailuresRefusal(wait time.Duration) *Refusal {
	secs := max(1, int(math.Ceil(wait.Seconds())))
	if wait <= 0 || wait == rate.InfDuration {
		secs = 60
	}
	return &Refusal{Status: http.StatusTooManyRequests, RetryAfter: secs,
		Message: fmt.Sprintf("Too many failed authentication attempts from your address; try again in %d seconds.", secs)}
}

// tooManyFailures answers a token check refused by the AuthLimiter.
func tooManyFailures(w http.ResponseWriter, ref *Refusal) {
	w.Header().Set("Retry-After", strconv.Itoa(ref.RetryAfter))
	w.Header().Set("Connection", "close") // a guesser pays a new handshake; see tooBusy
	writeError(w, ref.Status, ref.Message)
}
