package systemd

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// notifySocket listens where NOTIFY_SOCKET points, as the service manager
// does, and returns the messages it receives.
func notifySocket(t *testing.T) <-chan string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	msgs := make(chan string, 100)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			msgs <- string(buf[:n])
		}
	}()
	return msgs
}

func receive(t *testing.T, msgs <-chan string) string {
	t.Helper()
	select {
	case m := <-msgs:
		return m
	case <-time.After(5 * time.Second):
		t.Fatal("no notification within 5 s")
		return ""
	}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestNotifySendsLinesAsOneMessage(t *testing.T) {
	msgs := notifySocket(t)
	require.NoError(t, Notify(Ready, Status("serving https://localhost:8443")))
	assert.Equal(t, "READY=1\nSTATUS=serving https://localhost:8443", receive(t, msgs))
	require.NoError(t, Notify(Stopping))
	assert.Equal(t, "STOPPING=1", receive(t, msgs))
	assert.NotEmpty(t, os.Getenv("NOTIFY_SOCKET"), "kept for the re-executed daemon")
}

func TestNotifyOutsideSystemdDoesNothing(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	assert.NoError(t, Notify(Ready))
}

func TestNotifyReportsAnUnreachableSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", filepath.Join(t.TempDir(), "gone"))
	assert.ErrorContains(t, Notify(Ready), "notify the service manager")
}

func TestWatchdog(t *testing.T) {
	other := strconv.Itoa(os.Getpid() + 1)
	self := strconv.Itoa(os.Getpid())
	tests := []struct {
		name      string
		usec, pid string
		check     func(context.Context) error
		wantPings bool
	}{
		{"pings at half the interval", "100000", "", nil, true},
		{"pings when WATCHDOG_PID is this process", "100000", self, nil, true},
		{"pings while the check passes", "100000", "", func(context.Context) error { return nil }, true},
		{"no ping when the check fails", "100000", "", func(context.Context) error { return errors.New("store wedged") }, false},
		{"no watchdog asked for", "", "", nil, false},
		{"the watchdog is another process's", "100000", other, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs := notifySocket(t)
			t.Setenv("WATCHDOG_USEC", tt.usec)
			t.Setenv("WATCHDOG_PID", tt.pid)
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			defer cancel()
			start := time.Now()
			require.NoError(t, Watchdog(ctx, tt.check, quiet()))
			time.Sleep(100 * time.Millisecond) // let the reader drain the socket
			if !tt.wantPings {
				assert.Empty(t, msgs)
				return
			}
			// 500 ms at a 50 ms period: about ten pings; the bounds are
			// loose so that a slow machine does not fail the test.
			assert.GreaterOrEqual(t, time.Since(start), 450*time.Millisecond, "runs until ctx ends")
			n := len(msgs)
			assert.GreaterOrEqual(t, n, 4)
			assert.LessOrEqual(t, n, 12)
			for range n {
				assert.Equal(t, "WATCHDOG=1", <-msgs)
			}
		})
	}
}

func TestWatchdogGivesTheCheckAQuarterOfTheInterval(t *testing.T) {
	notifySocket(t)
	t.Setenv("WATCHDOG_USEC", "400000")
	t.Setenv("WATCHDOG_PID", "")
	var deadline atomic.Int64
	ctx, cancel := context.WithCancel(context.Background())
	check := func(c context.Context) error {
		d, _ := c.Deadline()
		deadline.Store(int64(time.Until(d)))
		cancel()
		return nil
	}
	require.NoError(t, Watchdog(ctx, check, quiet()))
	assert.InDelta(t, float64(100*time.Millisecond), float64(deadline.Load()), float64(20*time.Millisecond))
}

func TestWatchdogRejectsABadInterval(t *testing.T) {
	t.Setenv("WATCHDOG_USEC", "soon")
	assert.ErrorContains(t, Watchdog(context.Background(), nil, quiet()), "watchdog interval")
}
