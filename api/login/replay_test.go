package login

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/test/harness"
)

func TestReplays(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	const skew = 5 * time.Minute
	type seen struct {
		client string
		ctime  time.Duration // after t0
		at     time.Duration // when it is presented, after t0
		want   bool
	}
	tests := []struct {
		name  string
		steps []seen
	}{
		{"an authenticator is accepted once", []seen{
			{"alice@R", 0, 0, true}, {"alice@R", 0, time.Second, false}, {"alice@R", 0, skew, false}}},
		{"another client or another microsecond is another authenticator", []seen{
			{"alice@R", 0, 0, true}, {"bob@R", 0, 0, true}, {"alice@OTHER", 0, 0, true}, {"alice@R", time.Microsecond, 0, true}}},
		{"a client clock ahead: kept until its time is too old, not the skew after it was presented", []seen{
			{"alice@R", skew, 0, true}, {"alice@R", skew, skew + time.Minute, false}, {"alice@R", skew, 2*skew - time.Second, false}}},
		{"forgotten once no longer acceptable anyway", []seen{
			{"alice@R", 0, 0, true}, {"alice@R", 0, skew + time.Second, true}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r replays
			for i, s := range tt.steps {
				assert.Equal(t, s.want, r.first(s.client, t0.Add(s.ctime), skew, t0.Add(s.at)), "step %d", i)
			}
		})
	}
}

func TestReplaysForgetExpired(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	var r replays
	for i := range minSweep {
		require.True(t, r.first(fmt.Sprint("u", i), t0, time.Minute, t0))
	}
	live := t0.Add(10 * time.Minute)
	require.True(t, r.first("alice@R", live, time.Minute, live))
	assert.Len(t, r.until, 1, "the expired entries were dropped")
	assert.False(t, r.first("alice@R", live, time.Minute, live))
}

// TestConcurrentReplayAcceptedOnce: the same header sent several times at
// once gives one sign-in (gokrb5's own cache alone let about one in a
// thousand through twice on this machine, so a few thousand rounds
// show it).
func TestConcurrentReplayAcceptedOnce(t *testing.T) {
	k := harness.StartKDC(t)
	krb, err := NewKerberos(k.ServiceKeytab, k.ServicePrincipal, 5*time.Minute)
	require.NoError(t, err)
	cl := krbClient(t, k, "alice")
	const rounds, senders = 2000, 4
	for i := range rounds {
		h := negotiateHeader(t, cl, k.ServicePrincipal)
		var accepted atomic.Int32
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range senders {
			r, err := http.NewRequest(http.MethodPost, "https://localhost/site/token", nil)
			require.NoError(t, err)
			r.Header.Set("Authorization", h)
			r.RemoteAddr = "127.0.0.1:4242"
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if _, err := krb.Authenticate(r); err == nil {
					accepted.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		require.EqualValues(t, 1, accepted.Load(), "round %d", i)
	}
}
