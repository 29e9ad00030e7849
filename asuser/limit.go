package asuser

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// BusyError is a call refused because the user already has as many
// helpers running as a Limiter allows.
type BusyError struct {
	User  string
	Limit int
	Wait  time.Duration // how long the call waited for a slot
}

func (e *BusyError) Error() string {
	return fmt.Sprintf("too many operations in flight for %s (at most %d at a time); try again", e.User, e.Limit)
}

// Limiter is an Opener that bounds how many helpers run at once for one
// uid. Each helper is a process with the user's memory and file
// descriptors, and an upload or download keeps its helper for as long as
// the client keeps the connection: without a bound, a user (or whoever
// holds their token) can stall requests until the host runs out.
//
// A call beyond Max waits for a slot. With Wait > 0 it gives up after Wait
// with a *BusyError (the API's choice: answer 429 at once rather than hold
// the request); with Wait == 0 it waits as long as its context allows (the
// engine's choice: its work must happen, later is fine).
type Limiter struct {
	Next Opener
	Max  int // helpers per uid; <= 0 means no bound
	Wait time.Duration

	mu    sync.Mutex
	users map[uint32]*slots
}

// slots is one uid's semaphore; refs counts the holders and waiters, so
// the entry can go when nobody uses it and the map stays as small as the
// set of users with helpers in flight.
type slots struct {
	sem  chan struct{}
	refs int
}

func (l *Limiter) acquire(ctx context.Context, acct Account) (release func(), err error) {
	if l.Max <= 0 {
		return func() {}, nil
	}
	l.mu.Lock()
	if l.users == nil {
		l.users = map[uint32]*slots{}
	}
	s := l.users[acct.UID]
	if s == nil {
		s = &slots{sem: make(chan struct{}, l.Max)}
		l.users[acct.UID] = s
	}
	s.refs++
	l.mu.Unlock()
	unref := func() {
		l.mu.Lock()
		if s.refs--; s.refs == 0 {
			delete(l.users, acct.UID)
		}
		l.mu.Unlock()
	}

	select {
	case s.sem <- struct{}{}:
	default:
		var timeout <-chan time.Time
		if l.Wait > 0 {
			t := time.NewTimer(l.Wait)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case s.sem <- struct{}{}:
		case <-timeout:
			unref()
			return nil, &BusyError{User: acct.Name, Limit: l.Max, Wait: l.Wait}
		case <-ctx.Done():
			unref()
			return nil, fmt.Errorf("asuser: waiting for a free helper slot for %s: %w", acct.Name, ctx.Err())
		}
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			<-s.sem
			unref()
		})
	}, nil
}

// Call runs op as acct once a slot is free.
func (l *Limiter) Call(ctx context.Context, acct Account, op Op, args, result any) error {
	release, err := l.acquire(ctx, acct)
	if err != nil {
		return err
	}
	defer release()
	return l.Next.Call(ctx, acct, op, args, result)
}

// Open starts op as acct once a slot is free; the slot is held until the
// session ends, since the helper runs until then.
func (l *Limiter) Open(ctx context.Context, acct Account, op Op, args any) (*Session, error) {
	release, err := l.acquire(ctx, acct)
	if err != nil {
		return nil, err
	}
	sess, err := l.Next.Open(ctx, acct, op, args)
	if err != nil {
		release()
		return nil, err
	}
	sess.onEnd = append(sess.onEnd, release)
	return sess, nil
}
