package api

import "sync"

// reservations are the bytes of each user's quota promised to uploads in
// flight. The recorded usage only grows once an upload is committed, so
// without them parallel uploads would each see the whole of what is left.
// The Server holds one; nothing here is package state.
type reservations struct {
	mu   sync.Mutex
	held map[string]int64 // by user id
}

// reserve promises want bytes (want < 0: the length is unknown, so all
// that is left, up to limit if it is positive) of quota to one upload of
// user, whose recorded usage is used. It refuses a known length that does
// not fit. What it grants must
// be given back with release once the upload is recorded or abandoned.
func (r *reservations) reserve(user string, want, limit, quota, used int64) (granted int64, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	left := max(quota-used-r.held[user], 0)
	switch {
	case want < 0 && limit > 0:
		granted = min(left, limit)
	case want < 0:
		granted = left
	case want > left:
		return 0, false
	default:
		granted = want
	}
	if r.held == nil {
		r.held = map[string]int64{}
	}
	r.held[user] += granted
	return granted, true
}

func (r *reservations) release(user string, n int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.held[user] -= n; r.held[user] <= 0 {
		delete(r.held, user)
	}
}
