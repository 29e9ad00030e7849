package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reana-site/reana-site/api"
	"github.com/reana-site/reana-site/api/localsock"
	"github.com/reana-site/reana-site/api/tokensock"
	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/batch/htcondor"
	"github.com/reana-site/reana-site/batch/kubernetes"
	"github.com/reana-site/reana-site/batch/local"
	"github.com/reana-site/reana-site/batch/slurm"
	"github.com/reana-site/reana-site/containers"
	"github.com/reana-site/reana-site/daemon/config"
	"github.com/reana-site/reana-site/daemon/engine"
	"github.com/reana-site/reana-site/daemon/identity"
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
	if err := os.MkdirAll(cfg.StateDir, 0o700); err != nil {
		return fmt.Errorf("create state directory: %w", err)
	}
	if cfg.TLSCert == "" {
		if cfg.TLSCert, cfg.TLSKey, err = ensureSelfSigned(cfg.StateDir); err != nil {
			return err
		}
	}
	if privsep.NeedsReexec() {
		// Everything that needs more than CAP_SETUID/CAP_SETGID happens
		// before this point; the process that serves keeps only those two.
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
	if err := privsep.Verify(); err != nil {
		return err
	}
	socks, err := systemd.Take()
	if err != nil {
		return err
	}
	// The "token" socket, when passed, is served by the token service below.
	defer socks.Close()
	ln, listenAddr := socks.HTTPS, cfg.Listen
	if ln != nil {
		listenAddr = ln.Addr().String()
	} else {
		if ln, err = listener(cfg.Listen); err != nil {
			return err
		}
		defer ln.Close()
	}

	db, err := store.Open(ctx, filepath.Join(cfg.StateDir, "reana-site.db"))
	if err != nil {
		return err
	}
	defer db.Close()

	runner := &asuser.Runner{Args: []string{"worker"}, CanSwitch: privsep.CanSwitchUser()}
	if !runner.CanSwitch {
		log.Warn("running without CAP_SETUID/CAP_SETGID: only this uid can be served", "uid", os.Getuid())
	}
	policy := identity.Policy{MinUID: cfg.MinUID, AllowedGroups: cfg.AllowedGroups}
	// accounts marks the problems that waiting will not cure (the user is
	// gone or no longer allowed) as refusals; anything else (NSS or the
	// store briefly failing) is retried by the engine.
	accounts := func(ctx context.Context, ownerID string) (asuser.Account, error) {
		u, err := db.UserByID(ctx, ownerID)
		if errors.Is(err, store.ErrNotFound) {
			return asuser.Account{}, fmt.Errorf("%w: %v", engine.ErrAccountRefused, err)
		}
		if err != nil {
			return asuser.Account{}, err
		}
		if u.RemovedAt != nil {
			return asuser.Account{}, fmt.Errorf("%w: user %s was removed from the service", engine.ErrAccountRefused, u.Name)
		}
		a, err := identity.Lookup(u.Name)
		if errors.Is(err, identity.ErrUnknownUser) {
			return a, fmt.Errorf("%w: %v", engine.ErrAccountRefused, err)
		}
		if err != nil {
			return a, err
		}
		if a.UID != u.UID {
			return a, fmt.Errorf("%w: the uid of %s changed from %d to %d", engine.ErrAccountRefused, u.Name, u.UID, a.UID)
		}
		if err := policy.Check(a); err != nil {
			return a, fmt.Errorf("%w: %v", engine.ErrAccountRefused, err)
		}
		return a, nil
	}
	backends := map[string]batch.Backend{}
	var kubeBackend *kubernetes.Backend
	for _, name := range cfg.Backends {
		switch name {
		case local.Name:
			backends[name] = &local.Backend{Runner: runner, StopGrace: 5 * time.Second}
		case slurm.Name:
			backends[name] = &slurm.Backend{Runner: runner, Config: slurm.Config{
				BinDir: cfg.SlurmBinDir, Partition: cfg.SlurmPartition, Account: cfg.SlurmAccount,
				ExtraArgs: strings.Fields(cfg.SlurmExtraArgs),
			}}
		case htcondor.Name:
			backends[name] = &htcondor.Backend{Runner: runner, Config: cfg.HTCondor()}
		case kubernetes.Name:
			client, err := kubernetes.NewClient(cfg.KubernetesKubeconfig)
			if err != nil {
				return err
			}
			kb, err := kubernetes.New(cfg.Kubernetes(), client, log.With("component", "kubernetes"))
			if err != nil {
				return err
			}
			backends[name] = kb
			kubeBackend = kb
		}
	}
	eng := &engine.Engine{
		DB:             db,
		Backends:       backends,
		Retries:        cfg.NodeFailRetries,
		OutageGrace:    cfg.OutageGrace,
		DefaultBackend: cfg.DefaultBackend,
		Account:        accounts,
		Log:            log.With("component", "engine"),
		Poll:           cfg.PollInterval,
	}
	if cc := cfg.ContainersConfig(); cc.Enabled {
		eng.Images = &containers.Resolver{Config: cc, Runner: runner}
	}
	eng.OnTerminal = func(ctx context.Context, wf store.Workflow) {
		acct, err := accounts(ctx, wf.OwnerID)
		if err != nil {
			return
		}
		used, err := asuser.Usage(ctx, runner, acct, asuser.UsageArgs{Paths: []string{wf.WorkspacePath}})
		if err != nil {
			log.Warn("measure disk usage", "workflow", wf.ID, "err", err)
			return
		}
		_, _ = db.UpdateWorkflow(ctx, wf.ID, func(w *store.Workflow) error { w.DiskUsage = used; return nil })
	}
	srv := &api.Server{DB: db, Engine: eng, Runner: runner, Config: cfg, Policy: policy, Version: version, Log: log.With("component", "api")}

	cert, err := tls.LoadX509KeyPair(cfg.TLSCert, cfg.TLSKey)
	if err != nil {
		return fmt.Errorf("load TLS certificate: %w", err)
	}
	hs := &http.Server{
		Handler:           srv.Handler(),
		TLSConfig:         &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	engCtx, stopEngine := context.WithCancel(context.Background())
	engDone := make(chan struct{})
	if kubeBackend != nil {
		// The pod cache must be filled before the engine asks about pods;
		// a cluster that cannot be reached leaves the daemon running, with
		// Kubernetes steps told why (the informer keeps trying).
		if err := kubeBackend.Start(engCtx); err != nil {
			log.Error("kubernetes backend not ready", "err", err)
		}
	}
	go func() { defer close(engDone); eng.Run(engCtx) }()

	// Root-only by mode, and serveAdmin checks that the peer is root too.
	if adminLn, err := localsock.Listen(cfg.AdminSocket, 0o600); err != nil {
		// Admin commands then work on the store directly.
		log.Warn("no admin socket", "socket", cfg.AdminSocket, "err", err)
	} else {
		defer adminLn.Close()
		go serveAdmin(engCtx, adminLn, db, policy, log.With("component", "admin"))
	}

	tokenLn, err := tokenListener(cfg, socks)
	if err != nil {
		// The API works without it; only `reana-site token` does not.
		log.Warn("no token socket: reana-site token will not work", "socket", cfg.TokenSocket, "err", err)
	}
	if tokenLn != nil {
		defer tokenLn.Close()
		tok := &tokensock.Server{DB: db, Policy: policy, Enabled: cfg.SelfService, Groups: cfg.SelfServiceGroups, Log: log.With("component", "token")}
		go func() {
			if err := tok.Serve(engCtx, tokenLn); err != nil {
				log.Error("token socket", "err", err)
			}
		}()
	}

	if err := os.WriteFile(filepath.Join(cfg.StateDir, "reana-site.pid"), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		log.Warn("write pid file", "err", err)
	}
	url := "https://" + displayAddr(ln.Addr(), listenAddr)
	log.Info("reana-site serving", "url", url, "state_dir", cfg.StateDir, "version", version, "pid", os.Getpid(),
		"socket_activated", socks.HTTPS != nil)
	// Name the admin command exactly as it must be typed here: this
	// binary, and the state directory when it is not the default.
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

	errc := make(chan error, 1)
	go func() { errc <- hs.ServeTLS(ln, "", "") }()
	// The listener is bound, so connections wait in its queue until
	// ServeTLS accepts them: the daemon is ready.
	if err := systemd.Notify(systemd.Ready, systemd.Status("serving "+url)); err != nil {
		log.Warn("tell systemd the daemon is ready", "err", err)
	}
	// The watchdog runs until serve returns, through the graceful stop,
	// which may take up to REANA_SITE_SHUTDOWN_TIMEOUT.
	wdCtx, stopWatchdog := context.WithCancel(context.Background())
	wdDone := make(chan struct{})
	go func() {
		defer close(wdDone)
		if err := systemd.Watchdog(wdCtx, db.Ping, log); err != nil {
			log.Warn("watchdog disabled", "err", err)
		}
	}()
	defer func() { stopWatchdog(); <-wdDone }()
	select {
	case err := <-errc:
		stopEngine()
		<-engDone
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
	stopEngine()
	<-engDone
	return err
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
