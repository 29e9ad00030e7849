package authlimit

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/time/rate"
)

func TestAuthLimiter(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	slow := rate.Every(time.Hour)
	// step is one token check: from addr, at t0+at, right or wrong; want
	// says whether it may be checked at all.
	type step struct {
		addr  string
		at    time.Duration
		right bool
		want  bool
	}
	repeat := func(n int, s step) []step {
		out := make([]step, n)
		for i := range out {
			out[i] = s
		}
		return out
	}
	cat := func(parts ...[]step) []step {
		var out []step
		for _, p := range parts {
			out = append(out, p...)
		}
		return out
	}
	tests := []struct {
		name   string
		limits Limits
		steps  []step
		addrs  int // how many addresses are remembered at the end; -1: don't check
	}{
		{
			name:   "an address is refused after its burst of failures, another is not",
			limits: Limits{PerAddr: slow, PerAddrBurst: 3, Overall: rate.Inf, OverallBurst: 1, MaxAddrs: 10},
			steps: cat(repeat(3, step{addr: "192.0.2.1:1000", want: true}),
				[]step{{addr: "192.0.2.1:1001", want: false}, {addr: "192.0.2.1:1002", right: true, want: false}, {addr: "192.0.2.2:1000", want: true}}),
			addrs: 2,
		},
		{
			name:   "right tokens are never charged",
			limits: Limits{PerAddr: slow, PerAddrBurst: 3, Overall: slow, OverallBurst: 3, MaxAddrs: 10},
			steps:  cat(repeat(100, step{addr: "192.0.2.1:1", right: true, want: true}), repeat(3, step{addr: "192.0.2.1:1", want: true}), []step{{addr: "192.0.2.1:1", want: false}}),
			addrs:  1,
		},
		{
			name:   "the overall bucket bounds many addresses together",
			limits: Limits{PerAddr: slow, PerAddrBurst: 100, Overall: slow, OverallBurst: 5, MaxAddrs: 100},
			steps: cat([]step{{addr: "192.0.2.1:1", want: true}, {addr: "192.0.2.2:1", want: true}, {addr: "192.0.2.3:1", want: true}, {addr: "192.0.2.4:1", want: true}, {addr: "192.0.2.5:1", want: true}},
				[]step{{addr: "192.0.2.6:1", want: false}}),
			addrs: 6,
		},
		{
			name:   "buckets refill",
			limits: Limits{PerAddr: 1, PerAddrBurst: 2, Overall: rate.Inf, OverallBurst: 1, MaxAddrs: 10},
			steps:  []step{{addr: "192.0.2.1:1", want: true}, {addr: "192.0.2.1:1", want: true}, {addr: "192.0.2.1:1", want: false}, {addr: "192.0.2.1:1", at: 1100 * time.Millisecond, want: true}},
			addrs:  1,
		},
		{
			name:   "an IPv6 /64 is one client",
			limits: Limits{PerAddr: slow, PerAddrBurst: 2, Overall: rate.Inf, OverallBurst: 1, MaxAddrs: 10},
			steps:  []step{{addr: "[2001:db8::1]:1", want: true}, {addr: "[2001:db8::2]:1", want: true}, {addr: "[2001:db8::3]:1", want: false}, {addr: "[2001:db8:0:1::1]:1", want: true}},
			addrs:  2,
		},
		{
			name:   "addresses beyond the cap share one bucket",
			limits: Limits{PerAddr: slow, PerAddrBurst: 2, Overall: rate.Inf, OverallBurst: 1, MaxAddrs: 3},
			steps: func() []step {
				var s []step
				for i := range 3 {
					s = append(s, step{addr: fmt.Sprintf("192.0.2.%d:1", i+1), want: true})
				}
				return append(s, step{addr: "198.51.100.1:1", want: true}, step{addr: "198.51.100.2:1", want: true}, step{addr: "198.51.100.3:1", want: false})
			}(),
			addrs: 3,
		},
		{
			name:   "addresses whose bucket refilled are forgotten to make room",
			limits: Limits{PerAddr: 1, PerAddrBurst: 2, Overall: rate.Inf, OverallBurst: 1, MaxAddrs: 2},
			steps: []step{{addr: "192.0.2.1:1", want: true}, {addr: "192.0.2.2:1", want: true},
				{addr: "192.0.2.3:1", at: 10 * time.Second, want: true}, {addr: "192.0.2.3:1", at: 10 * time.Second, want: true}, {addr: "192.0.2.3:1", at: 10 * time.Second, want: false}},
			addrs: 1,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := New(tt.limits)
			for i, s := range tt.steps {
				a, wait, ok := l.Begin(s.addr, t0.Add(s.at))
				require.Equal(t, s.want, ok, "step %d (%s)", i, s.addr)
				if !ok {
					assert.Positive(t, wait, "step %d: a refusal says how long to wait", i)
					continue
				}
				if s.right {
					a.Succeeded()
				}
			}
			if tt.addrs >= 0 {
				assert.Len(t, l.addrs, tt.addrs)
			}
		})
	}
}

func TestClientPrefix(t *testing.T) {
	tests := []struct{ remote, want string }{
		{"192.0.2.7:4242", "192.0.2.7/32"},
		{"[::ffff:192.0.2.7]:1", "192.0.2.7/32"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
		{"not an address", "invalid Prefix"},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, clientPrefix(tt.remote).String(), tt.remote)
	}
}

func TestRefuse(t *testing.T) {
	tests := []struct {
		wait time.Duration
		want string
	}{
		{1500 * time.Millisecond, "2"},
		{time.Hour, "3600"},
		{0, "60"},
		{rate.InfDuration, "60"},
	}
	for _, tt := range tests {
		w := httptest.NewRecorder()
		msg := Refuse(w, tt.wait)
		assert.Equal(t, tt.want, w.Header().Get("Retry-After"), tt.wait)
		assert.Equal(t, "close", w.Header().Get("Connection"))
		assert.Contains(t, msg, "try again in "+tt.want+" seconds")
	}
}

func TestZeroAttemptSucceeds(t *testing.T) {
	assert.NotPanics(t, func() { Attempt{}.Succeeded() }, "an attempt that reserved nothing gives nothing back")
}
