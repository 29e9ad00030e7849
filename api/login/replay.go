package login

import (
	"sync"
	"time"
)

// replays remembers the authenticators a Kerberos has accepted, each until
// its time is too old to be accepted anyway, so that each is accepted
// once. gokrb5 has a replay cache of its own (see docs/identity.md), but
// it checks and then records without holding its lock in between, so the
// same captured header sent twice at once could be accepted twice, and it
// forgets an entry after the clock skew counted from when it was
// presented, while an authenticator from a client whose clock is ahead
// stays acceptable for up to the skew longer.
type replays struct {
	mu      sync.Mutex
	until   map[replayKey]time.Time // when the authenticator stops being acceptable
	sweepAt int                     // the size at which expired entries are dropped
}

// replayKey names an authenticator as RFC 4120 3.2.3 does: the client and
// the authenticator's time, to the microsecond. The service is always
// this Kerberos's SPN.
type replayKey struct {
	client string // name@REALM
	ctime  time.Time
}

// minSweep is the size below which expired entries are not looked for.
const minSweep = 1024

// first records the authenticator of client made at ctime and says whether
// it is the first time it is seen. It stays acceptable (and is kept) until
// ctime+skew: Verify refuses a ctime more than skew away from now.
func (r *replays) first(client string, ctime time.Time, skew time.Duration, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.until == nil {
		r.until = map[replayKey]time.Time{}
	}
	k := replayKey{client: client, ctime: ctime.UTC()}
	if until, seen := r.until[k]; seen && !now.After(until) {
		return false
	}
	if len(r.until) >= max(r.sweepAt, minSweep) {
		for k, until := range r.until {
			if now.After(until) {
				delete(r.until, k)
			}
		}
		// Sweeping again only once the live entries have doubled keeps
		// the cost per sign-in constant.
		r.sweepAt = 2 * len(r.until)
	}
	r.until[k] = ctime.Add(skew)
	return true
}
