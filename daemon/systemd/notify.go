// Package systemd is what the daemon does differently when systemd runs
// it: it takes the sockets of socket activation instead of binding its own
// (activation.go), tells the service manager when it is ready, what it is
// doing and when it stops, and pings the watchdog (this file), and writes
// its log records to the journal with their attributes as fields
// (journal.go).
//
// Each part reads the environment systemd sets (LISTEN_FDS, NOTIFY_SOCKET,
// WATCHDOG_USEC, JOURNAL_STREAM) and does nothing when it is absent, so
// the same binary runs unchanged from a shell, a test or another init
// system. The helpers and steps the daemon starts get a clean environment
// (asuser.Runner), so none of these variables reach them.
package systemd

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// Notification lines of sd_notify(3).
const (
	Ready    = daemon.SdNotifyReady
	Stopping = daemon.SdNotifyStopping
)

// Status is the STATUS= line systemctl status shows.
func Status(s string) string { return "STATUS=" + s }

// Notify sends lines such as Ready and Status("...") to the service
// manager in one message. It does nothing when the daemon was not started
// with NOTIFY_SOCKET.
//
// The variable is left in the environment on purpose: the daemon
// re-executes itself once (daemon/privsep) and the re-executed process is
// the one that notifies. With NotifyAccess=main that is accepted because
// re-execution keeps the pid.
func Notify(lines ...string) error {
	if _, err := daemon.SdNotify(false, strings.Join(lines, "\n")); err != nil {
		return fmt.Errorf("notify the service manager: %w", err)
	}
	return nil
}

// Watchdog sends WATCHDOG=1 at half the interval the service manager asked
// for (WATCHDOG_USEC, when WATCHDOG_PID is unset or this process), until
// ctx ends. It returns at once when no watchdog is asked for.
//
// A ping that only proves a goroutine still runs would keep a wedged daemon
// alive, so each ping first runs check (nil means none) with a deadline of
// a quarter of the interval; when it fails, the ping is skipped and the
// failure logged, and the service manager restarts the daemon if the next
// checks fail too.
func Watchdog(ctx context.Context, check func(context.Context) error, log *slog.Logger) error {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		return fmt.Errorf("read the watchdog interval: %w", err)
	}
	if interval == 0 {
		return nil
	}
	tick := time.NewTicker(interval / 2)
	defer tick.Stop()
	for {
		if err := ping(ctx, check, interval/4); err != nil {
			log.Warn("watchdog ping skipped", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

func ping(ctx context.Context, check func(context.Context) error, timeout time.Duration) error {
	if check != nil {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		if err := check(cctx); err != nil {
			return fmt.Errorf("health check: %w", err)
		}
	}
	return Notify(daemon.SdNotifyWatchdog)
}
