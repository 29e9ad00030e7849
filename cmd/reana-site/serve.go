package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reana-site/reana-site/api/localsock"
	"github.com/reana-site/reana-site/daemon/config"
	"github.com/reana-site/reana-site/daemon/privsep"
	"github.com/reana-site/reana-site/daemon/store"
	"github.com/reana-site/reana-site/daemon/systemd"
)

// listenFDEnv passes a listener bound before the re-execution (so a port
// below 1024 works after privileges are narrowed) to the serving process.
const listenFDEnv = "REANA_SITE_LISTEN_FD"

func newLogger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(systemd.LogHandler("reana-site", l))
}

// serve runs the daemon: it narrows its privileges, wires the parts
// together (wiring.go) and keeps only the order of start-up and shutdown.
func serve(ctx context.Context) error {
	// Socket activation passes its sockets as descriptors 3 to 3+n-1. They
	// must stay inheritable through the re-execution below; the serving
	// process takes them and marks them close-on-exec itself.
	nPassed, passedHTTPS := systemd.Passed()
	if os.Getenv(listenFDEnv) == "" {
		// Descriptors inherited from whoever started the daemon must not
		// reach the helpers and steps it starts as users.
		if err := unix.CloseRange(uint(3+nPassed), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
			return fmt.Errorf("mark inherited descriptors close-on-exec: %w", err)
		}
	}
	cfg, err := config.Load()
	if err != nil {
		return fmt.Errorf("invalid configuration:\n%w", err)
	}
	log := newLogger(cfg.LogLevel)
	if err := prepareStateDir(&cfg); err != nil {
		return err
	}
	if privsep.NeedsReexec() {
		return reexecNarrowed(cfg, passedHTTPS)
	}
	if err := privsep.Verify(); err != nil {
		return err
	}
	socks, err := systemd.Take()
	if err != nil {
		return err
	}
	// The "token" socket, when passed, is served by the token service below.
	defer socks.Close()
	ln, listenAddr, err := httpsListener(cfg, socks)
	if err != nil {
		return err
	}
	defer ln.Close()
	db, err := store.Open(ctx, filepath.Join(cfg.StateDir, "reana-site.db"))
	if err != nil {
		return err
	}
	defer db.Close()
	d, err := wire(cfg, db, log)
	if err != nil {
		return err
	}
	hs, err := httpsServer(cfg, d.handler(), log)
	if err != nil {
		return err
	}
	if d.web != nil {
		hs.RegisterOnShutdown(d.web.Shutdown)
	}

	engCtx, stopEngine := context.WithCancel(context.Background())
	engDone := make(chan struct{})
	d.startBackends(engCtx)
	go func() { defer close(engDone); d.engine.Run(engCtx) }()
	go d.cleanOrphanedUploads(engCtx)
	if d.web != nil {
		go d.web.Cleanup(engCtx)
	}
	stopAll := func() { stopEngine(); <-engDone }
	defer d.serveLocalSockets(engCtx, socks)()

	if err := os.WriteFile(filepath.Join(cfg.StateDir, "reana-site.pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		log.Warn("write pid file", "err", err)
	}
	url := "https://" + displayAddr(ln.Addr(), listenAddr)
	log.Info("reana-site serving", "url", url, "state_dir", cfg.StateDir, "version", version, "pid", os.Getpid(),
		"socket_activated", socks.HTTPS != nil)
	announce(cfg, url)

	errc := make(chan error, 1)
	go func() { errc <- hs.ServeTLS(ln, "", "") }()
	// The listener is bound, so connections wait in its queue until
	// ServeTLS accepts them: the daemon is ready.
	if err := systemd.Notify(systemd.Ready, systemd.Status("serving "+url)); err != nil {
		log.Warn("tell systemd the daemon is ready", "err", err)
	}
	// The watchdog runs until serve returns, through the graceful stop,
	// which may take up to REANA_SITE_SHUTDOWN_TIMEOUT.
	defer startWatchdog(db, log)()
	select {
	case err := <-errc:
		stopAll()
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	if err := systemd.Notify(systemd.Stopping, systemd.Status("stopping: finishing requests in flight")); err != nil {
		log.Warn("tell systemd the daemon is stopping", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
	defer cancel()
	err = hs.Shutdown(sctx)
	stopAll()
	d.api.Wait() // the background measurements the last requests started
	return err
}

// prepareStateDir makes the state directory and, unless the site names
// its own, a self-signed certificate in it.
func prepareStateDir(cfg *config.Config) error {
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}
	if cfg.TLSCert != "" {
		return nil
	}
	var err error
	cfg.TLSCert, cfg.TLSKey, err = ensureSelfSigned(cfg.StateDir)
	return err
}

// reexecNarrowed starts the serving process with only CAP_SETUID and
// CAP_SETGID. Everything that needs more (binding a port below 1024)
// happens before: the bound listener is handed over as a descriptor.
func reexecNarrowed(cfg config.Config, passedHTTPS bool) error {
	if os.Getenv(listenFDEnv) == "" && !passedHTTPS {
		ln, err := net.Listen("tcp", cfg.Listen)
		if err != nil {
			return fmt.Errorf("listen on %s: %w", cfg.Listen, err)
		}
		f, err := ln.(*net.TCPListener).File()
		if err != nil {
			return err
		}
		if _, err := unix.FcntlInt(f.Fd(), unix.F_SETFD, 0); err != nil {
			return fmt.Errorf("pass listener: %w", err)
		}
		os.Setenv(listenFDEnv, strconv.Itoa(int(f.Fd())))
	}
	return privsep.Reexec(append([]string{"reana-site"}, "serve"))
}

// httpsListener is the socket systemd passed, or the one handed over by
// the re-execution, or a new one.
func httpsListener(cfg config.Config, socks systemd.Sockets) (net.Listener, string, error) {
	if socks.HTTPS != nil {
		return socks.HTTPS, socks.HTTPS.Addr().String(), nil
	}
	ln, err := listener(cfg.Listen)
	return ln, cfg.Listen, err
}

func httpsServer(cfg config.Config, h http.Handler, log *slog.Logger) (*http.Server, error) {
	cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate: %w", err)
	}
	return &http.Server{
		Handler:           h,
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}, nil
}

// startWatchdog pings systemd while the store answers; the returned
// function stops it.
func startWatchdog(db *store.DB, log *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := systemd.Watchdog(ctx, db.Ping, log); err != nil {
			log.Warn("watchdog disabled", "err", err)
		}
	}()
	return func() { cancel(); <-done }
}

// announce tells whoever started the daemon by hand how to go on. It
// names the admin command exactly as it must be typed here: this binary,
// and the state directory when it is not the default.
func announce(cfg config.Config, url string) {
	admin := "reana-site"
	if exe, err := os.Executable(); err == nil {
		admin = exe
	}
	if os.Getenv("REANA_SITE_STATE_DIR") != "" {
		admin = "REANA_SITE_STATE_DIR=" + cfg.StateDir + " " + admin
	}
	fmt.Fprintf(os.Stderr, `
reana-site %s is serving %s (state in %s).
Create a user and a token, as root:
    %s admin user add <posix-user>
    %s admin token issue <posix-user>
then, as that user:
    export REANA_SERVER_URL=%s REANA_ACCESS_TOKEN=<token>
    reana-client ping
`, version, url, cfg.StateDir, admin, admin, url)
	if cfg.Web {
		// The web pages take the same token, or a one-time link the user
		// asks for on this machine.
		fmt.Fprintf(os.Stderr, "The web pages are at %s/: sign in with the token, or with the link\nthat `reana-site login-link` prints for that user.\n", url)
	}
	fmt.Fprintln(os.Stderr)
}

// listener returns the listener handed over by the launcher, or binds one.
func listener(addr string) (net.Listener, error) {
	if v := os.Getenv(listenFDEnv); v != "" {
		os.Unsetenv(listenFDEnv)
		fd, err := strconv.Atoi(v)
		if err != nil {
			return nil, fmt.Errorf("bad %s=%q", listenFDEnv, v)
		}
		unix.CloseOnExec(fd)
		f := os.NewFile(uintptr(fd), "listener")
		defer f.Close()
		ln, err := net.FileListener(f)
		if err != nil {
			return nil, fmt.Errorf("inherited listener: %w", err)
		}
		return ln, nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	return ln, nil
}

func displayAddr(a net.Addr, configured string) string {
	host, _, err := net.SplitHostPort(configured)
	_, port, err2 := net.SplitHostPort(a.String())
	if err != nil || err2 != nil {
		return a.String()
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host, _ = os.Hostname()
	}
	return net.JoinHostPort(host, port)
}

// tokenListener is the local socket for `reana-site token`: the one systemd
// passed, or one bound here (anyone may connect; the kernel tells the
// daemon who did). It is served even with self-service off, so that users
// get a clear refusal rather than silence.
func tokenListener(cfg config.Config, socks systemd.Sockets) (net.Listener, error) {
	if f, ok := socks.Others[systemd.TokenName]; ok {
		ln, err := net.FileListener(f)
		if err != nil {
			return nil, fmt.Errorf("use the token socket passed by systemd: %w", err)
		}
		return ln, nil
	}
	return localsock.Listen(cfg.TokenSocket, 0o666)
}
