package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/reana-site/reana-site/api"
	"github.com/reana-site/reana-site/api/authlimit"
	"github.com/reana-site/reana-site/api/localsock"
	"github.com/reana-site/reana-site/api/login"
	"github.com/reana-site/reana-site/api/tokensock"
	"github.com/reana-site/reana-site/api/web"
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
	"github.com/reana-site/reana-site/daemon/metrics"
	"github.com/reana-site/reana-site/daemon/privsep"
	"github.com/reana-site/reana-site/daemon/store"
	"github.com/reana-site/reana-site/daemon/systemd"
	"github.com/reana-site/reana-site/daemon/workflowengine"
)

// daemon is the serving process's parts, wired together once.
type daemon struct {
	cfg      config.Config
	db       *store.DB
	log      *slog.Logger
	runner   *asuser.Runner
	helpers  helperBudgets // the per-user bounds over runner (see limitHelpers)
	accounts identity.Resolver
	backends map[string]batch.Backend
	engine   *engine.Engine
	engines  *workflowengine.Launcher
	api      *api.Server
	web      *web.Server      // nil when the site turned the web pages off
	metrics  *metrics.Metrics // nil when the site turned metrics off
	// login is the Kerberos and OIDC sign-in, nil when the site set up
	// neither; its Sessions are the web interface's, when that is on.
	login *login.Service
}

// backendBuilder makes one backend from the site's configuration.
type backendBuilder func(cfg config.Config, runner asuser.Caller, log *slog.Logger) (batch.Backend, error)

// backendBuilders has one builder for each of batch.Kinds.
func backendBuilders() map[string]backendBuilder {
	return map[string]backendBuilder{
		local.Name: func(_ config.Config, runner asuser.Caller, _ *slog.Logger) (batch.Backend, error) {
			return &local.Backend{Runner: runner, StopGrace: 5 * time.Second}, nil
		},
		slurm.Name: func(cfg config.Config, runner asuser.Caller, _ *slog.Logger) (batch.Backend, error) {
			return &slurm.Backend{Runner: runner, Config: slurm.Config{
				BinDir: cfg.SlurmBinDir, Partition: cfg.SlurmPartition, Account: cfg.SlurmAccount,
				ExtraArgs: strings.Fields(cfg.SlurmExtraArgs),
			}}, nil
		},
		htcondor.Name: func(cfg config.Config, runner asuser.Caller, _ *slog.Logger) (batch.Backend, error) {
			return &htcondor.Backend{Runner: runner, Config: cfg.HTCondor()}, nil
		},
		kubernetes.Name: func(cfg config.Config, helpers asuser.Caller, log *slog.Logger) (batch.Backend, error) {
			client, err := kubernetes.NewClient(cfg.KubernetesKubeconfig)
			if err != nil {
				return nil, err
			}
			b, err := kubernetes.New(cfg.Kubernetes(), client, log.With("component", "kubernetes"))
			if err != nil {
				return nil, err
			}
			// Pods cannot read the secret directory themselves.
			return b.WithSecrets(helpers), nil
		},
	}
}

func accountResolver(cfg config.Config) identity.Resolver {
	return identity.Resolver{Policy: identity.Policy{MinUID: cfg.MinUID, MaxUID: cfg.MaxUID, AllowedGroups: cfg.AllowedGroups}}
}

// newRunner is the helper runner: this binary's worker, re-executed as
// each user.
func newRunner(cfg config.Config) *asuser.Runner {
	return &asuser.Runner{Args: []string{"worker"}, CanSwitch: privsep.CanSwitchUser(),
		Env: []string{asuser.WorkspaceTemplateEnv + "=" + cfg.WorkspaceRoot, asuser.SecretsTemplateEnv + "=" + cfg.SecretsRoot}}
}

// wire builds the helper runner, the backends the site enabled, the engine
// and the API.
func wire(cfg config.Config, db *store.DB, log *slog.Logger) (*daemon, error) {
	d := &daemon{cfg: cfg, db: db, log: log, accounts: accountResolver(cfg), backends: map[string]batch.Backend{}}
	d.runner = newRunner(cfg)
	if !d.runner.CanSwitch {
		log.Warn("running without CAP_SETUID/CAP_SETGID: only this uid can be served", "uid", os.Getuid())
	}
	if cfg.Metrics {
		d.metrics = metrics.New(db, cfg.Backends)
		db.ObserveTransactions(d.metrics.Transaction)
	}
	// Counted below the per-user bounds: a call those refuse starts no
	// helper.
	d.helpers = limitHelpers(d.metrics.Helpers(d.runner), cfg.MaxHelpersPerUser)
	builders := backendBuilders()
	for _, name := range cfg.Backends {
		build, ok := builders[name]
		if !ok {
			return nil, fmt.Errorf("backend %q has no builder", name)
		}
		b, err := build(cfg, d.helpers.engine, log)
		if err != nil {
			return nil, err
		}
		d.backends[name] = b
	}
	d.engine = &engine.Engine{
		DB:             db,
		Backends:       d.backends,
		Retries:        cfg.NodeFailRetries,
		OutageGrace:    cfg.OutageGrace,
		DefaultBackend: cfg.DefaultBackend,
		Account:        d.account,
		Log:            log.With("component", "engine"),
		Poll:           cfg.PollInterval,
		OnTerminal:     d.measureDiskUsage,
		SecretsDir:     cfg.SecretsDir,
		KeytabSecrets:  cfg.KerberosKeytabSecrets,
		UserSecrets:    cfg.KerberosUserSecrets,
		KrbConfig:      cfg.KerberosConfig,
		Metrics:        d.metrics,
		RoundShare:     cfg.SubmitShare,
	}
	if cc := cfg.ContainersConfig(); cc.Enabled {
		d.engine.Images = &containers.Resolver{Config: cc, Runner: d.helpers.engine}
	}
	d.engines = d.workflowEngines(context.Background())
	d.engine.EngineProcess, d.engine.MaxEngineJobs = d.engines.EngineProcess, cfg.EngineMaxJobs
	// One limiter for failed token checks and failed sign-ins: a guesser
	// gains nothing by turning from /api to /site.
	failures := authlimit.New(authlimit.Default())
	d.api = &api.Server{DB: db, Engine: d.engine, Engines: d.engines, Runner: d.helpers.api, Config: cfg, Accounts: d.accounts,
		Version: version, Log: log.With("component", "api"), Metrics: d.metrics, AuthFailures: failures}
	if d.metrics != nil {
		allow, err := cfg.MetricsNetworks()
		if err != nil {
			return nil, err
		}
		d.api.MetricsHandler = d.metrics.Handler(allow, log.With("component", "metrics"))
	}
	if cfg.Web {
		w, err := web.New(d.api, web.Config{PublicURL: cfg.PublicURL, AdminGroups: cfg.AdminGroups, SessionLifetime: cfg.WebSessionLifetime,
			Checks: newSiteChecks(cfg).Checks},
			log.With("component", "web"))
		if err != nil {
			return nil, err
		}
		d.web = w
	}
	signIn, err := siteLogin(cfg, db, d.accounts, failures, log.With("component", "login"))
	if err != nil {
		return nil, err
	}
	if signIn != nil {
		if d.web != nil {
			// Browser sign-ins start the web pages' sessions, and the
			// sign-in page offers them.
			signIn.Sessions = d.web.Sessions
			for _, o := range signIn.Options() {
				d.web.Config.SignInOptions = append(d.web.Config.SignInOptions, web.SignInOption{Label: o.Label, URL: o.URL})
			}
		}
		d.login, d.api.Site = signIn, signIn.Handler()
	}
	return d, nil
}

// handler serves the API, and the web pages on every path that is not
// the API's (/api/*, /metrics, /gitlab*) nor the sign-ins' (/site/*,
// package api/login, mounted in the API).
func (d *daemon) handler() http.Handler {
	apiHandler := d.api.Handler()
	if d.web == nil {
		return apiHandler
	}
	pages := d.web.Handler()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p := r.URL.Path
		if strings.HasPrefix(p, "/api/") || p == "/api" || p == "/metrics" || strings.HasPrefix(p, "/gitlab") || strings.HasPrefix(p, "/site/") {
			apiHandler.ServeHTTP(w, r)
			return
		}
		pages.ServeHTTP(w, r)
	})
}

// workflowEngines finds out which engines the site's interpreter has; the
// versions go to the log.
func (d *daemon) workflowEngines(ctx context.Context) *workflowengine.Launcher {
	l := &workflowengine.Launcher{Python: d.cfg.EnginePython, Adapters: d.cfg.EngineAdapters, Socket: d.cfg.EngineSocket, MaxJobs: d.cfg.EngineMaxJobs}
	if l.Python == "" {
		d.log.Info("no workflow engines: REANA_SITE_ENGINE_PYTHON is not set; only serial workflows run")
		return l
	}
	if _, ok := d.backends[local.Name]; !ok {
		l.Broken = fmt.Errorf("engine processes run on this host's local backend, which REANA_SITE_BACKENDS does not offer")
		d.log.Warn("no workflow engines", "err", l.Broken)
		return l
	}
	v, err := workflowengine.Probe(ctx, l.Python)
	if err != nil {
		l.Broken = err
		d.log.Warn("no workflow engines", "err", err)
		return l
	}
	l.Versions = v
	d.log.Info("workflow engines", "python", l.Python, "snakemake", v["snakemake"], "cwltool", v["cwl"], "yadage", v["yadage"])
	return l
}

// account is the engine's way to the owner of a workflow. It marks the
// problems that waiting will not cure (the user is gone or no longer
// allowed) as refusals; anything else (NSS or the store briefly failing)
// is retried by the engine.
func (d *daemon) account(ctx context.Context, ownerID string) (asuser.Account, error) {
	u, err := d.db.UserByID(ctx, ownerID)
	if errors.Is(err, store.ErrNotFound) {
		return asuser.Account{}, fmt.Errorf("%w: %v", engine.ErrAccountRefused, err)
	}
	if err != nil {
		return asuser.Account{}, err
	}
	a, err := d.accounts.Serve(u)
	if identity.Refused(err) {
		return a, fmt.Errorf("%w: %v", engine.ErrAccountRefused, err)
	}
	return a, err
}

// measureDiskUsage records a finished workflow's disk usage, measured as
// its owner.
func (d *daemon) measureDiskUsage(ctx context.Context, wf store.Workflow) {
	acct, err := d.account(ctx, wf.OwnerID)
	if err != nil {
		return
	}
	used, err := asuser.Usage(ctx, d.helpers.engine, acct, asuser.UsageArgs{Paths: []string{wf.WorkspacePath}})
	if err != nil {
		d.log.Warn("measure disk usage", "workflow", wf.ID, "err", err)
		return
	}
	_, _ = d.db.UpdateWorkflow(ctx, wf.ID, func(w *store.Workflow) error { w.DiskUsage = used; return nil })
}

// cleanupTimeout bounds the start-up sweep of one user's workspaces.
const cleanupTimeout = 10 * time.Minute

// cleanOrphanedUploads removes, as each owner, the temporary files of
// uploads whose helper died with an earlier daemon (or was killed): no
// request would ever remove them, and they count against the disk.
func (d *daemon) cleanOrphanedUploads(ctx context.Context) {
	byOwner, err := d.db.LiveWorkspaces(ctx)
	if err != nil {
		d.log.Warn("find workspaces to clean", "err", err)
		return
	}
	for owner, paths := range byOwner {
		acct, err := d.account(ctx, owner)
		if err != nil {
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, cleanupTimeout)
		n, err := asuser.CleanTemps(cctx, d.runner, acct, asuser.CleanTempsArgs{Workspaces: paths})
		cancel()
		if err != nil {
			d.log.Warn("remove orphaned uploads", "user", acct.Name, "err", err)
		}
		if n > 0 {
			d.log.Info("removed orphaned uploads", "user", acct.Name, "files", n)
		}
		if ctx.Err() != nil {
			return
		}
	}
}

// startBackends starts the backends that keep a cache (the Kubernetes pod
// informer) before the engine asks them anything. One that cannot reach
// its cluster leaves the daemon running, with its steps told why.
func (d *daemon) startBackends(ctx context.Context) {
	for name, b := range d.backends {
		s, ok := b.(interface{ Start(context.Context) error })
		if !ok {
			continue
		}
		if err := s.Start(ctx); err != nil {
			d.log.Error(name+" backend not ready", "err", err)
		}
	}
}

// serveLocalSockets serves the admin socket and the token socket until ctx
// ends; the returned function closes them. Either may be missing: admin
// commands then work on the store directly, and only `reana-site token`
// does not work.
func (d *daemon) serveLocalSockets(ctx context.Context, socks systemd.Sockets) (closeAll func()) {
	var closers []func() error
	// Root-only by mode, and serveAdmin checks that the peer is root too.
	if adminLn, err := localsock.Listen(d.cfg.AdminSocket, 0o600); err != nil {
		d.log.Warn("no admin socket", "socket", d.cfg.AdminSocket, "err", err)
	} else {
		closers = append(closers, adminLn.Close)
		go serveAdmin(ctx, adminLn, adminDeps{db: d.db, accounts: d.accounts, runner: d.runner, cfg: d.cfg}, d.log.With("component", "admin"))
	}
	if d.engines.Python != "" {
		// Any user may connect; the server checks who and the run's secret.
		if ln, err := localsock.Listen(d.cfg.EngineSocket, 0o666); err != nil {
			d.log.Error("no engine socket: cwl, snakemake and yadage runs cannot submit jobs", "socket", d.cfg.EngineSocket, "err", err)
		} else {
			closers = append(closers, ln.Close)
			srv := &workflowengine.Server{DB: d.db, Engine: d.engine, Log: d.log.With("component", "engine-socket")}
			go func() {
				if err := srv.Serve(ctx, ln); err != nil {
					d.log.Error("engine socket", "err", err)
				}
			}()
		}
	}
	tokenLn, err := tokenListener(d.cfg, socks)
	if err != nil {
		d.log.Warn("no token socket: reana-site token will not work", "socket", d.cfg.TokenSocket, "err", err)
	}
	if tokenLn != nil {
		closers = append(closers, tokenLn.Close)
		tok := &tokensock.Server{DB: d.db, Accounts: d.accounts, Enabled: d.cfg.SelfService, Groups: d.cfg.SelfServiceGroups, Log: d.log.With("component", "token")}
		if d.web != nil {
			tok.LoginLink = d.web.NewLoginLink
		}
		go func() {
			if err := tok.Serve(ctx, tokenLn); err != nil {
				d.log.Error("token socket", "err", err)
			}
		}()
	}
	return func() {
		for _, c := range closers {
			_ = c()
		}
	}
}
