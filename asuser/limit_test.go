package asuser

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// blockingOpener stands in for the Runner: each Call holds its "helper"
// until the test releases it.
type blockingOpener struct {
	started chan struct{}
	release chan struct{}
	openErr error
}

func newBlockingOpener() *blockingOpener {
	return &blockingOpener{started: make(chan struct{}, 100), release: make(chan struct{})}
}

func (b *blockingOpener) Call(ctx context.Context, _ Account, _ Op, _, _ any) error {
	b.started <- struct{}{}
	select {
	case <-b.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (b *blockingOpener) Open(context.Context, Account, Op, any) (*Session, error) {
	return nil, b.openErr
}

var (
	alice = Account{Name: "alice", UID: 1001, GID: 1001}
	bob   = Account{Name: "bob", UID: 1002, GID: 1002}
)

// fill starts n calls as acct that hold their slot, and waits until they do.
func fill(t *testing.T, l *Limiter, b *blockingOpener, acct Account, n int, wg *sync.WaitGroup) {
	t.Helper()
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = l.Call(context.Background(), acct, OpExec, nil, nil)
		}()
		<-b.started
	}
}

func TestLimiter(t *testing.T) {
	tests := []struct {
		name    string
		wait    time.Duration
		ctx     time.Duration // deadline of the call beyond the cap; 0: none
		release bool          // a holder ends while the call waits
		who     Account
		want    func(t *testing.T, err error)
	}{
		{name: "refused after a short wait", wait: 50 * time.Millisecond, who: alice, want: func(t *testing.T, err error) {
			var busy *BusyError
			require.ErrorAs(t, err, &busy)
			assert.Equal(t, "alice", busy.User)
			assert.Equal(t, 2, busy.Limit)
			assert.Contains(t, err.Error(), "too many operations in flight for alice")
		}},
		{name: "another user is not held up", wait: 50 * time.Millisecond, who: bob, release: true, want: func(t *testing.T, err error) {
			assert.NoError(t, err)
		}},
		{name: "a slot that frees in time is taken", wait: 5 * time.Second, who: alice, release: true, want: func(t *testing.T, err error) {
			assert.NoError(t, err)
		}},
		{name: "the engine's budget waits for a slot", who: alice, release: true, want: func(t *testing.T, err error) {
			assert.NoError(t, err)
		}},
		{name: "the engine's budget waits no longer than its context", ctx: 50 * time.Millisecond, who: alice, want: func(t *testing.T, err error) {
			require.ErrorIs(t, err, context.DeadlineExceeded)
			assert.False(t, errors.As(err, new(*BusyError)), "a context that ended is not a refusal")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newBlockingOpener()
			l := &Limiter{Next: b, Max: 2, Wait: tt.wait}
			var wg sync.WaitGroup
			fill(t, l, b, alice, 2, &wg)
			ctx := context.Background()
			if tt.ctx > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tt.ctx)
				defer cancel()
			}
			done := make(chan error, 1)
			go func() { done <- l.Call(ctx, tt.who, OpExec, nil, nil) }()
			if tt.release {
				go func() {
					time.Sleep(20 * time.Millisecond)
					close(b.release) // every holder, and the call once it runs
				}()
			}
			err := <-done
			tt.want(t, err)
			if !tt.release {
				close(b.release)
			}
			wg.Wait()
			assert.Empty(t, l.users, "no state is kept for users with nothing in flight")
		})
	}
}

// TestLimiterOpenFailureFreesTheSlot: an Open that fails holds no slot.
func TestLimiterOpenFailureFreesTheSlot(t *testing.T) {
	b := newBlockingOpener()
	b.openErr = errors.New("helper failed")
	l := &Limiter{Next: b, Max: 1, Wait: 10 * time.Millisecond}
	for range 3 {
		_, err := l.Open(context.Background(), alice, OpFSOpen, nil)
		require.ErrorIs(t, err, b.openErr)
	}
	assert.Empty(t, l.users)
}

// TestLimiterUnbounded: Max 0 never waits.
func TestLimiterUnbounded(t *testing.T) {
	b := newBlockingOpener()
	l := &Limiter{Next: b}
	var wg sync.WaitGroup
	fill(t, l, b, alice, 50, &wg)
	close(b.release)
	wg.Wait()
}
