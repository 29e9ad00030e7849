// Package config reads reana-site's configuration from the environment
// (prefix REANA_SITE_), the way systemd hands it over from
// /etc/sysconfig/reana-site, and validates it once at start.
package config

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/kelseyhightower/envconfig"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/batch/htcondor"
	"github.com/reana-site/reana-site/batch/kubernetes"
	"github.com/reana-site/reana-site/containers"
	"github.com/reana-site/reana-site/daemon/identity"
	"github.com/reana-site/reana-site/daemon/spec"
)

// Prefix is the environment prefix of every setting.
const Prefix = "REANA_SITE"

// Config is the whole daemon configuration. Every field documents what its
// zero value means; defaults are the embedded ones a laptop or a test uses.
type Config struct {
	// StateDir holds the SQLite database, the generated TLS certificate and
	// the pid file. Empty means /var/lib/reana-site when running as root and
	// $XDG_STATE_HOME/reana-site (or ~/.local/state/reana-site) otherwise.
	StateDir string `envconfig:"STATE_DIR"`
	// Listen is the HTTPS address.
	Listen string `envconfig:"LISTEN" default:"localhost:8443"`
	// TLSCert and TLSKey name a PEM certificate and key. Empty means a
	// self-signed certificate generated once into StateDir.
	TLSCert string `envconfig:"TLS_CERT"`
	TLSKey  string `envconfig:"TLS_KEY"`
	// WorkspaceRoot is the per-user location of workspaces, a template with
	// {user}, {uid} and {home}. The user's own process creates it (mode 0700
	// for new directories), so its parent must be writable by the user.
	WorkspaceRoot string `envconfig:"WORKSPACE_ROOT" default:"{home}/reana"`
	// SecretsRoot is the per-user directory of secrets, a template like
	// WorkspaceRoot. The user's own helper writes it (mode 0700, files
	// 0600); it must lie outside every workspace.
	SecretsRoot string `envconfig:"SECRETS_ROOT" default:"{home}/.reana-site/secrets"`
	// MaxSecretBytes limits the value of one secret.
	MaxSecretBytes int64 `envconfig:"MAX_SECRET_BYTES" default:"1048576"`
	// KerberosKeytabSecrets are the env secrets, tried in order, whose value
	// names the file secret holding the user's keytab, for steps with
	// kerberos: true (REANA's CERN_KEYTAB, and any the site adds).
	KerberosKeytabSecrets []string `envconfig:"KERBEROS_KEYTAB_SECRETS" default:"CERN_KEYTAB"`
	// KerberosUserSecrets are the env secrets, tried in order, holding the
	// principal to kinit as (REANA's CERN_USER); without a realm, the
	// default realm of krb5.conf applies.
	KerberosUserSecrets []string `envconfig:"KERBEROS_USER_SECRETS" default:"CERN_USER"`
	// KerberosConfig, when set, is the krb5.conf kerberos: true uses
	// (KRB5_CONFIG in the job); empty leaves the node's /etc/krb5.conf.
	KerberosConfig string `envconfig:"KERBEROS_CONFIG"`
	// MinUID is the lowest uid that may use the service; uid 0 is always refused.
	MinUID uint32 `envconfig:"MIN_UID" default:"1000"`
	// MaxUID, when not 0, is the highest uid that may use the service. The
	// overflow uids (65534, 4294967294) are always refused.
	MaxUID uint32 `envconfig:"MAX_UID" default:"0"`
	// AllowedGroups, when not empty, limits the service to members of these
	// POSIX groups (names).
	AllowedGroups []string `envconfig:"ALLOWED_GROUPS"`
	// MaxUploadBytes limits one uploaded file. Zero means no per-request limit.
	MaxUploadBytes int64 `envconfig:"MAX_UPLOAD_BYTES" default:"10737418240"`
	// DiskQuotaBytes is each user's disk quota over all their workspaces.
	// Zero means no quota.
	DiskQuotaBytes int64 `envconfig:"DISK_QUOTA_BYTES"`
	// UploadIdleTimeout is how long an upload may send nothing before it
	// is aborted: a stalled upload would otherwise hold a helper process
	// and a temporary file for ever.
	UploadIdleTimeout time.Duration `envconfig:"UPLOAD_IDLE_TIMEOUT" default:"1m"`
	// SelfService lets users get their own token from `reana-site token`
	// on this host, identified by the kernel through the token socket.
	SelfService bool `envconfig:"SELF_SERVICE"`
	// SelfServiceGroups, when not empty, limits self-service to members of
	// these POSIX groups.
	SelfServiceGroups []string `envconfig:"SELF_SERVICE_GROUPS"`
	// Krb5Keytab is the keytab holding Krb5SPN's key, for Kerberos sign-in
	// (HTTP Negotiate); it must be readable by its owner, root, only. A
	// relative name is a systemd credential (LoadCredential=), looked up in
	// $CREDENTIALS_DIRECTORY. Empty turns Kerberos sign-in off.
	Krb5Keytab string `envconfig:"KRB5_KEYTAB"`
	// Krb5SPN is the service principal without realm, HTTP/<host name
	// users type>. Empty means HTTP/<this host's name>.
	Krb5SPN string `envconfig:"KRB5_SPN"`
	// Krb5Realms are the realms whose one-component principals are local
	// users. Empty means the realm of Krb5SPN's key in the keytab.
	Krb5Realms []string `envconfig:"KRB5_REALMS"`
	// Krb5MaxClockSkew is how far a client's clock may be off.
	Krb5MaxClockSkew time.Duration `envconfig:"KRB5_MAX_CLOCK_SKEW" default:"5m"`
	// OIDCIssuer is the OIDC provider's issuer URL; empty turns OIDC
	// sign-in off.
	OIDCIssuer string `envconfig:"OIDC_ISSUER"`
	// OIDCClientID is this service's client id at the provider.
	OIDCClientID string `envconfig:"OIDC_CLIENT_ID"`
	// OIDCClientSecretFile holds the client secret (a relative name is a
	// systemd credential, as for Krb5Keytab). Empty means a public client
	// (PKCE only).
	OIDCClientSecretFile string `envconfig:"OIDC_CLIENT_SECRET_FILE"`
	// OIDCRedirectURL is the callback registered at the provider,
	// https://<host>:<port>/site/oidc/callback.
	OIDCRedirectURL string `envconfig:"OIDC_REDIRECT_URL"`
	// OIDCScopes are asked for besides openid.
	OIDCScopes []string `envconfig:"OIDC_SCOPES" default:"profile,email"`
	// OIDCUsernameClaim names the ID token claim that names the user;
	// with email, the provider must have verified it.
	OIDCUsernameClaim string `envconfig:"OIDC_USERNAME_CLAIM" default:"preferred_username"`
	// OIDCLabel is the text of the sign-in button.
	OIDCLabel string `envconfig:"OIDC_LABEL" default:"Sign in with single sign-on"`
	// LoginMapRules map a signed-in name to a POSIX user: "regex =>
	// output" rules separated by ";", anchored, the first match wins,
	// {0} is the match and {1}... its groups. Empty keeps the name.
	LoginMapRules string `envconfig:"LOGIN_MAP_RULES"`
	// LoginMapCommand, when set, is run (split at spaces, no shell) with
	// the identity as JSON on stdin and must print one user name.
	LoginMapCommand string `envconfig:"LOGIN_MAP_COMMAND"`
	// LoginMapTimeout bounds LoginMapCommand.
	LoginMapTimeout time.Duration `envconfig:"LOGIN_MAP_TIMEOUT" default:"10s"`
	// LoginSelfService registers a user who signs in with Kerberos or OIDC
	// and is not yet a user of the service; false refuses them.
	LoginSelfService bool `envconfig:"LOGIN_SELF_SERVICE"`
	// Web serves the web pages on the API's address (every path but /api/*
	// and /site/*).
	Web bool `envconfig:"WEB" default:"true"`
	// PublicURL is the site's address as users reach it, for login links
	// and the export lines of the profile page. Empty means https:// and
	// the listen address (this host's name for a wildcard address).
	PublicURL string `envconfig:"PUBLIC_URL"`
	// AdminGroups are the POSIX groups whose members (and root) see the
	// web pages' read-only admin page.
	AdminGroups []string `envconfig:"ADMIN_GROUPS"`
	// WebSessionLifetime is how long a web sign-in lasts.
	WebSessionLifetime time.Duration `envconfig:"WEB_SESSION_LIFETIME" default:"12h"`
	// TokenSocket is the local socket `reana-site token` talks to. The
	// daemon binds it when systemd passed none.
	TokenSocket string `envconfig:"TOKEN_SOCKET" default:"/run/reana-site/token.sock"`
	// MaxHelpersPerUser bounds the helpers the API runs at once for one
	// user; a request beyond it waits briefly, then is answered 429. The
	// engine and backends have a budget of the same size of their own, and
	// wait instead. Zero means no bound.
	MaxHelpersPerUser int `envconfig:"MAX_HELPERS_PER_USER" default:"16"`
	// EnginePython is the interpreter of a Python environment that has
	// the workflow engines (snakemake 7.32.4, cwltool 3.1.20210628163208,
	// yadage 0.20.1; see engines/requirements.txt). Empty means cwl,
	// snakemake and yadage workflows are refused at start.
	EnginePython string `envconfig:"ENGINE_PYTHON"`
	// EngineAdapters is the directory of reana-site's engine adapters
	// (the package reana_site_engines), run by EnginePython as the user.
	EngineAdapters string `envconfig:"ENGINE_ADAPTERS" default:"/usr/share/reana-site/engines"`
	// EngineSocket is the local socket the engine adapters hand their
	// jobs to; every user may connect, the daemon checks who (SO_PEERCRED)
	// and the run's secret.
	EngineSocket string `envconfig:"ENGINE_SOCKET" default:"/run/reana-site/engine.sock"`
	// EngineMaxJobs caps the active jobs of one cwl, snakemake or yadage
	// run; an adapter asking for more waits.
	EngineMaxJobs int `envconfig:"ENGINE_MAX_JOBS" default:"300"`
	// AdminSocket is the root-only local socket `reana-site admin` uses to
	// act through the running daemon.
	AdminSocket string `envconfig:"ADMIN_SOCKET" default:"/run/reana-site/admin.sock"`
	// Backends are the compute backends this site offers; steps naming
	// another are refused at start.
	Backends []string `envconfig:"BACKENDS" default:"local"`
	// DefaultBackend runs steps that name no compute_backend.
	DefaultBackend string `envconfig:"DEFAULT_BACKEND" default:"local"`
	// OutageGrace is how long a step waits for an unreachable batch system
	// to accept it before the step fails; running steps never fail for an
	// outage.
	OutageGrace time.Duration `envconfig:"OUTAGE_GRACE" default:"1h"`
	// NodeFailRetries is how often a job whose node failed under it
	// (Slurm NODE_FAIL, BOOT_FAIL; a Kubernetes pod evicted or disrupted)
	// is submitted again.
	NodeFailRetries int `envconfig:"NODE_FAIL_RETRIES" default:"1"`
	// SlurmBinDir holds sbatch, squeue and scancel; empty means PATH.
	SlurmBinDir string `envconfig:"SLURM_BIN_DIR"`
	// SlurmPartition and SlurmAccount apply to steps that name none.
	SlurmPartition string `envconfig:"SLURM_PARTITION"`
	SlurmAccount   string `envconfig:"SLURM_ACCOUNT"`
	// SlurmExtraArgs are sbatch arguments added to every job, separated by
	// spaces (for example "--qos=normal --exclusive").
	SlurmExtraArgs string `envconfig:"SLURM_EXTRA_ARGS"`
	// HTCondorBinDir holds condor_submit, condor_q, condor_history and
	// condor_rm; empty means PATH.
	HTCondorBinDir string `envconfig:"HTCONDOR_BIN_DIR"`
	// HTCondorConfig, when set, is given to every HTCondor command as
	// CONDOR_CONFIG; empty leaves HTCondor's own lookup (/etc/condor/...).
	HTCondorConfig string `envconfig:"HTCONDOR_CONFIG"`
	// HTCondorSchedd and HTCondorPool select the schedd (condor_submit
	// -name, -pool); empty means the local schedd.
	HTCondorSchedd string `envconfig:"HTCONDOR_SCHEDD"`
	HTCondorPool   string `envconfig:"HTCONDOR_POOL"`
	// HTCondorRequirements is a ClassAd expression every job must match.
	HTCondorRequirements string `envconfig:"HTCONDOR_REQUIREMENTS"`
	// HTCondorAccountingGroup applies to steps that name no
	// htcondor_accounting_group.
	HTCondorAccountingGroup string `envconfig:"HTCONDOR_ACCOUNTING_GROUP"`
	// HTCondorExtraCommands are submit commands added to every job,
	// separated by ';' (for example "should_transfer_files = NO;
	// request_disk = 1GB"). Commands reana-site writes itself are refused.
	HTCondorExtraCommands string `envconfig:"HTCONDOR_EXTRA_COMMANDS"`
	// HTCondorHoldTimeout is how long a job may stay held before it is
	// removed and its step fails with the hold reason; 0 waits for ever.
	HTCondorHoldTimeout time.Duration `envconfig:"HTCONDOR_HOLD_TIMEOUT" default:"6h"`
	// HTCondorLogGrace is how long a job's event log may be missing, or lag
	// behind the job's recorded exit, before the schedd is asked.
	HTCondorLogGrace time.Duration `envconfig:"HTCONDOR_LOG_GRACE" default:"1m"`
	// HTCondorSilenceCheck is how long a job's event log may stay silent
	// before the schedd is asked whether the job still exists.
	HTCondorSilenceCheck time.Duration `envconfig:"HTCONDOR_SILENCE_CHECK" default:"30m"`
	// KubernetesKubeconfig is the kubeconfig file the daemon uses; empty
	// means the in-cluster service account when running in a pod.
	KubernetesKubeconfig string `envconfig:"KUBERNETES_KUBECONFIG"`
	// KubernetesNamespace holds every step pod.
	KubernetesNamespace string `envconfig:"KUBERNETES_NAMESPACE"`
	// KubernetesClaim is the PersistentVolumeClaim whose volume is the
	// filesystem under KubernetesWorkspaceRoot.
	KubernetesClaim string `envconfig:"KUBERNETES_CLAIM"`
	// KubernetesWorkspaceRoot is the path on this host of the claim's
	// volume root; every workspace of a Kubernetes step must be under it.
	KubernetesWorkspaceRoot string `envconfig:"KUBERNETES_WORKSPACE_ROOT"`
	// KubernetesStepServiceAccount is the rightless service account of
	// step pods.
	KubernetesStepServiceAccount string `envconfig:"KUBERNETES_STEP_SERVICE_ACCOUNT" default:"reana-site-step"`
	// KubernetesOpenShift pins step pods to KubernetesSCC.
	KubernetesOpenShift bool   `envconfig:"KUBERNETES_OPENSHIFT"`
	KubernetesSCC       string `envconfig:"KUBERNETES_SCC" default:"nonroot-v2"`
	// KubernetesMaxCPU and KubernetesMaxMemory are the most a step may ask
	// for (Kubernetes quantities); empty means no site maximum.
	KubernetesMaxCPU    string `envconfig:"KUBERNETES_MAX_CPU"`
	KubernetesMaxMemory string `envconfig:"KUBERNETES_MAX_MEMORY"`
	// KubernetesDefaultCPU and KubernetesDefaultMemory apply to steps that
	// ask for none; empty leaves it to the namespace's LimitRange.
	KubernetesDefaultCPU    string `envconfig:"KUBERNETES_DEFAULT_CPU"`
	KubernetesDefaultMemory string `envconfig:"KUBERNETES_DEFAULT_MEMORY"`
	// KubernetesDefaultJobTimeout bounds steps without
	// kubernetes_job_timeout; 0 means no bound.
	KubernetesDefaultJobTimeout time.Duration `envconfig:"KUBERNETES_DEFAULT_JOB_TIMEOUT"`
	// KubernetesImagePullSecrets are Secrets of the namespace that step
	// pods pull images with, comma-separated.
	KubernetesImagePullSecrets []string `envconfig:"KUBERNETES_IMAGE_PULL_SECRETS"`
	// KubernetesUnschedulableGrace and KubernetesImagePullGrace are how
	// long a pod may stay unschedulable, or fail to pull its image, before
	// its step fails.
	KubernetesUnschedulableGrace time.Duration `envconfig:"KUBERNETES_UNSCHEDULABLE_GRACE" default:"10m"`
	KubernetesImagePullGrace     time.Duration `envconfig:"KUBERNETES_IMAGE_PULL_GRACE" default:"5m"`
	// KubernetesPodRetention is how long finished pods are kept for
	// kubectl; negative keeps them.
	KubernetesPodRetention time.Duration `envconfig:"KUBERNETES_POD_RETENTION" default:"24h"`
	// KubernetesAllowImageGroups accepts a cluster that ignores
	// supplementalGroupsPolicy: Strict, where a step's image can add
	// groups to the step's process.
	KubernetesAllowImageGroups bool `envconfig:"KUBERNETES_ALLOW_IMAGE_GROUPS"`
	// KubernetesWatchErrorGrace is how long watching pods may fail before
	// Kubernetes steps are reported as waiting for an unreachable cluster.
	KubernetesWatchErrorGrace time.Duration `envconfig:"KUBERNETES_WATCH_ERROR_GRACE" default:"1m"`
	// KubernetesRequestTimeout bounds each preflight and clean-up request.
	KubernetesRequestTimeout time.Duration `envconfig:"KUBERNETES_REQUEST_TIMEOUT" default:"30s"`
	// SubmitShare is how many jobs of one user one engine round submits at
	// most (users take turns within a round); the rest wait for the next
	// round. Zero means no bound.
	SubmitShare int `envconfig:"SUBMIT_SHARE" default:"200"`
	// PollInterval is how often the engine asks backends about running jobs
	// when no event wakes it earlier.
	PollInterval time.Duration `envconfig:"POLL_INTERVAL" default:"500ms"`
	// RetentionMaxDays is the site's maximum retention period for workspace
	// files. Zero means forever, as REANA's default.
	RetentionMaxDays int `envconfig:"RETENTION_MAX_DAYS"`
	// Containers is "off" (steps run on the host shell, their environment
	// ignored) or "apptainer" (every step runs in its environment image).
	Containers string `envconfig:"CONTAINERS" default:"off"`
	// Apptainer is the apptainer program, a name looked up in PATH where
	// the step runs, or an absolute path.
	Apptainer string `envconfig:"APPTAINER" default:"apptainer"`
	// ImageCache holds <registry>_<repository>:<tag>.sif files (or
	// unpacked directories of that name) and receives pulls. It may be a
	// template with {user}, {uid} and {home} for per-user caches. Empty
	// means no cache, and then no pulls.
	ImageCache string `envconfig:"IMAGE_CACHE"`
	// ImageUnpackedRoots are trees in the /cvmfs/unpacked.cern.ch layout,
	// comma-separated. Empty means none.
	ImageUnpackedRoots []string `envconfig:"IMAGE_UNPACKED_ROOTS"`
	// ImageOrder is where images are looked for, in order: cache,
	// unpacked, and pull (last, when present).
	ImageOrder []string `envconfig:"IMAGE_ORDER" default:"cache,unpacked,pull"`
	// ImagePull lets missing images be pulled into ImageCache, as the user.
	// False makes a missing image an error at start.
	ImagePull bool `envconfig:"IMAGE_PULL" default:"true"`
	// ApptainerBinds are extra binds for every step, comma-separated, each
	// src[:dst[:ro]] (for example /cvmfs,/scratch:/scratch).
	ApptainerBinds []string `envconfig:"APPTAINER_BINDS"`
	// ApptainerCacheDir is APPTAINER_CACHEDIR for pulls, where Apptainer
	// keeps the layers and a SIF copy of every image pulled (about twice
	// the image). A template like ImageCache. Empty means a directory per
	// user in the image cache, <image cache>/.apptainer-cache-<uid>, rather
	// than Apptainer's ~/.apptainer/cache in the user's home.
	ApptainerCacheDir string `envconfig:"APPTAINER_CACHEDIR"`
	// Metrics serves Prometheus metrics at /metrics on the HTTPS listener,
	// without a token; false answers /metrics with 404.
	Metrics bool `envconfig:"METRICS" default:"true"`
	// MetricsAllow, when not empty, limits /metrics to clients in these
	// networks (CIDRs or single addresses, comma-separated); others get
	// 403. Empty serves every client that reaches the listener.
	MetricsAllow []string `envconfig:"METRICS_ALLOW"`
	// LogLevel is one of debug, info, warn, error.
	LogLevel string `envconfig:"LOG_LEVEL" default:"info"`
	// ShutdownTimeout bounds how long in-flight requests may take on stop.
	ShutdownTimeout time.Duration `envconfig:"SHUTDOWN_TIMEOUT" default:"30s"`
}

// defaultPublicURL is https:// and the listen address, naming this host
// where the address is a wildcard or empty.
func defaultPublicURL(listen string) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		return "https://" + listen
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		if h, err := os.Hostname(); err == nil {
			host = h
		}
	}
	if port == "443" {
		return "https://" + strings.TrimSuffix(net.JoinHostPort(host, port), ":443")
	}
	return "https://" + net.JoinHostPort(host, port)
}

// Load reads the environment and validates the result. All problems are
// reported together, one line each.
func Load() (Config, error) {
	var c Config
	if err := envconfig.Process(Prefix, &c); err != nil {
		return c, fmt.Errorf("config: %w", err)
	}
	return c, c.Validate()
}

// Validate checks every setting and fills derived defaults.
func (c *Config) Validate() error {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s_%s: %s", Prefix, name, fmt.Sprintf(format, args...)))
	}
	if c.StateDir == "" {
		c.StateDir = DefaultStateDir()
	}
	if !filepath.IsAbs(c.StateDir) {
		bad("STATE_DIR", "must be an absolute path, got %q", c.StateDir)
	}
	if _, port, err := net.SplitHostPort(c.Listen); err != nil || port == "" {
		bad("LISTEN", "must be host:port, got %q", c.Listen)
	}
	if c.PublicURL == "" {
		c.PublicURL = defaultPublicURL(c.Listen)
	} else if u, err := url.Parse(c.PublicURL); err != nil || u.Scheme != "https" || u.Host == "" || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" {
		bad("PUBLIC_URL", "must be https://host[:port] with no path, got %q", c.PublicURL)
	}
	c.PublicURL = strings.TrimRight(c.PublicURL, "/")
	if c.WebSessionLifetime <= 0 {
		bad("WEB_SESSION_LIFETIME", "must be positive, got %s", c.WebSessionLifetime)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		bad("TLS_CERT", "TLS_CERT and TLS_KEY must be set together")
	}
	if err := checkTemplate(c.WorkspaceRoot); err != nil {
		bad("WORKSPACE_ROOT", "%v", err)
	}
	if err := checkTemplate(c.SecretsRoot); err != nil {
		bad("SECRETS_ROOT", "%v", err)
	} else if overlaps(c.SecretsRoot, c.WorkspaceRoot) {
		bad("SECRETS_ROOT", "%q must lie outside the workspaces (REANA_SITE_WORKSPACE_ROOT %q), so listing, downloading or deleting a workspace never touches a secret", c.SecretsRoot, c.WorkspaceRoot)
	}
	if c.MaxSecretBytes <= 0 {
		bad("MAX_SECRET_BYTES", "must be positive")
	}
	for _, n := range append(append([]string{}, c.KerberosKeytabSecrets...), c.KerberosUserSecrets...) {
		if !envName(n) {
			bad("KERBEROS_KEYTAB_SECRETS", "%q is not an env secret name", n)
		}
	}
	if c.KerberosConfig != "" && !filepath.IsAbs(c.KerberosConfig) {
		bad("KERBEROS_CONFIG", "must be an absolute path, got %q", c.KerberosConfig)
	}
	if c.MinUID == 0 {
		bad("MIN_UID", "must be at least 1 (uid 0 is never served)")
	}
	if c.MaxUID != 0 && c.MaxUID < c.MinUID {
		bad("MAX_UID", "must be 0 (no maximum) or at least MIN_UID (%d)", c.MinUID)
	}
	if c.MaxUploadBytes < 0 {
		bad("MAX_UPLOAD_BYTES", "must not be negative")
	}
	if c.DiskQuotaBytes < 0 {
		bad("DISK_QUOTA_BYTES", "must not be negative")
	}
	if c.UploadIdleTimeout <= 0 {
		bad("UPLOAD_IDLE_TIMEOUT", "must be positive (a stalled upload must end)")
	}
	enabled := map[string]bool{}
	for i, b := range c.Backends {
		b = strings.TrimSpace(b)
		// REANA's names for the same batch systems (slurmcern, htcondorcern).
		if a, err := spec.CanonicalBackend(b); err == nil && a != "" {
			b = a
		}
		c.Backends[i] = b
		if _, ok := batch.KindOf(b); !ok {
			bad("BACKENDS", "unknown backend %q (known: %s)", b, strings.Join(kindNames(), ", "))
		}
		enabled[b] = true
	}
	if a, err := spec.CanonicalBackend(c.DefaultBackend); err == nil && a != "" {
		c.DefaultBackend = a
	}
	if !enabled[c.DefaultBackend] {
		bad("DEFAULT_BACKEND", "%q is not among REANA_SITE_BACKENDS (%s)", c.DefaultBackend, strings.Join(c.Backends, ","))
	}
	if !filepath.IsAbs(c.AdminSocket) {
		bad("ADMIN_SOCKET", "must be an absolute path, got %q", c.AdminSocket)
	}
	if c.MaxHelpersPerUser < 0 {
		bad("MAX_HELPERS_PER_USER", "must not be negative")
	}
	if !filepath.IsAbs(c.EngineSocket) {
		bad("ENGINE_SOCKET", "must be an absolute path, got %q", c.EngineSocket)
	}
	if c.EnginePython != "" && !filepath.IsAbs(c.EnginePython) {
		bad("ENGINE_PYTHON", "must be an absolute path, got %q", c.EnginePython)
	}
	if !filepath.IsAbs(c.EngineAdapters) {
		bad("ENGINE_ADAPTERS", "must be an absolute path, got %q", c.EngineAdapters)
	}
	if c.EngineMaxJobs < 1 {
		bad("ENGINE_MAX_JOBS", "must be at least 1, got %d", c.EngineMaxJobs)
	}
	if !filepath.IsAbs(c.TokenSocket) {
		bad("TOKEN_SOCKET", "must be an absolute path, got %q", c.TokenSocket)
	}
	c.validateLogin(bad)
	if c.OutageGrace < 0 {
		bad("OUTAGE_GRACE", "must not be negative")
	}
	if c.NodeFailRetries < 0 {
		bad("NODE_FAIL_RETRIES", "must not be negative")
	}
	if c.SlurmBinDir != "" && !filepath.IsAbs(c.SlurmBinDir) {
		bad("SLURM_BIN_DIR", "must be an absolute path, got %q", c.SlurmBinDir)
	}
	var short []string
	for _, a := range strings.Fields(c.SlurmExtraArgs) {
		if !strings.HasPrefix(a, "--") {
			short = append(short, strconv.Quote(a))
		}
	}
	if len(short) > 0 {
		bad("SLURM_EXTRA_ARGS", "each argument must be a long option such as --qos=normal, got %s", strings.Join(short, ", "))
	}
	for name, dir := range map[string]string{"HTCONDOR_BIN_DIR": c.HTCondorBinDir, "HTCONDOR_CONFIG": c.HTCondorConfig} {
		if dir != "" && !filepath.IsAbs(dir) {
			bad(name, "must be an absolute path, got %q", dir)
		}
	}
	for name, d := range map[string]time.Duration{"HTCONDOR_HOLD_TIMEOUT": c.HTCondorHoldTimeout,
		"HTCONDOR_LOG_GRACE": c.HTCondorLogGrace, "HTCONDOR_SILENCE_CHECK": c.HTCondorSilenceCheck} {
		if d < 0 {
			bad(name, "must not be negative")
		}
	}
	if enabled["htcondor"] {
		// Each setting on its own, so the error names the one to fix.
		for name, only := range map[string]htcondor.Config{
			"HTCONDOR_REQUIREMENTS":     {Requirements: c.HTCondorRequirements},
			"HTCONDOR_ACCOUNTING_GROUP": {AccountingGroup: c.HTCondorAccountingGroup},
			"HTCONDOR_EXTRA_COMMANDS":   {ExtraCommands: c.HTCondor().ExtraCommands},
		} {
			if err := htcondor.CheckSite(only); err != nil {
				bad(name, "%v", err)
			}
		}
	}
	if enabled["kubernetes"] {
		if err := kubernetes.CheckConfig(c.Kubernetes()); err != nil {
			bad("KUBERNETES_*", "%v", err)
		}
		if c.KubernetesKubeconfig != "" && !filepath.IsAbs(c.KubernetesKubeconfig) {
			bad("KUBERNETES_KUBECONFIG", "must be an absolute path, got %q", c.KubernetesKubeconfig)
		}
	}
	if c.SubmitShare < 0 {
		bad("SUBMIT_SHARE", "must not be negative")
	}
	if c.PollInterval < 10*time.Millisecond {
		bad("POLL_INTERVAL", "must be at least 10ms, got %s", c.PollInterval)
	}
	if c.RetentionMaxDays < 0 {
		bad("RETENTION_MAX_DAYS", "must not be negative")
	}
	switch c.Containers {
	case "off", "apptainer":
	default:
		bad("CONTAINERS", "must be off or apptainer, got %q", c.Containers)
	}
	if c.Containers == "apptainer" {
		for _, err := range c.ContainersConfig().Validate() {
			bad("CONTAINERS", "%v", err)
		}
		if c.ImagePull && c.ImageCache == "" {
			bad("IMAGE_PULL", "pulls need an image cache: set REANA_SITE_IMAGE_CACHE, or REANA_SITE_IMAGE_PULL=false")
		}
	}
	if _, err := c.MetricsNetworks(); err != nil {
		bad("METRICS_ALLOW", "%v", err)
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		bad("LOG_LEVEL", "must be debug, info, warn or error, got %q", c.LogLevel)
	}
	for i, g := range c.AllowedGroups {
		c.AllowedGroups[i] = strings.TrimSpace(g)
	}
	return errors.Join(errs...)
}

// MetricsNetworks parses MetricsAllow; a single address is a network of
// that address alone.
func (c Config) MetricsNetworks() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range c.MetricsAllow {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a network (10.0.0.0/8) nor an address", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

func checkTemplate(t string) error {
	if t == "" {
		return errors.New("must not be empty")
	}
	probe := strings.NewReplacer("{user}", "u", "{uid}", "1", "{home}", "/h").Replace(t)
	if strings.ContainsAny(probe, "{}") {
		return fmt.Errorf("unknown placeholder in %q (known: {user}, {uid}, {home})", t)
	}
	if !filepath.IsAbs(probe) {
		return fmt.Errorf("must be an absolute path template, got %q", t)
	}
	return nil
}

// RootStateDir is the default state directory of a daemon started as root,
// the one the service and the sysconfig template use.
const RootStateDir = "/var/lib/reana-site"

// DefaultStateDir is the state directory used when none is configured.
func DefaultStateDir() string {
	if os.Geteuid() == 0 {
		return RootStateDir
	}
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "reana-site")
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return filepath.Join(os.TempDir(), fmt.Sprintf("reana-site-%d", os.Getuid()))
	}
	return filepath.Join(home, ".local", "state", "reana-site")
}

// HTCondor is the site's HTCondor setup for the backend.
func (c Config) HTCondor() htcondor.Config {
	var extra []string
	for _, cmd := range strings.Split(c.HTCondorExtraCommands, ";") {
		if cmd = strings.TrimSpace(cmd); cmd != "" {
			extra = append(extra, cmd)
		}
	}
	return htcondor.Config{
		BinDir: c.HTCondorBinDir, ConfigFile: c.HTCondorConfig,
		Schedd: c.HTCondorSchedd, Pool: c.HTCondorPool,
		Requirements: c.HTCondorRequirements, AccountingGroup: c.HTCondorAccountingGroup,
		ExtraCommands: extra, HoldTimeout: c.HTCondorHoldTimeout,
		LogGrace: c.HTCondorLogGrace, SilenceCheck: c.HTCondorSilenceCheck,
	}
}

// Kubernetes is the site's Kubernetes setup for the backend.
func (c Config) Kubernetes() kubernetes.Config {
	return kubernetes.Config{
		Namespace: c.KubernetesNamespace, ClaimName: c.KubernetesClaim, WorkspaceRoot: c.KubernetesWorkspaceRoot,
		StepServiceAccount: c.KubernetesStepServiceAccount, OpenShift: c.KubernetesOpenShift, SCC: c.KubernetesSCC,
		MinUID: c.MinUID, MaxCPU: c.KubernetesMaxCPU, MaxMemory: c.KubernetesMaxMemory,
		DefaultCPU: c.KubernetesDefaultCPU, DefaultMemory: c.KubernetesDefaultMemory,
		DefaultJobTimeout: c.KubernetesDefaultJobTimeout, ImagePullSecrets: c.KubernetesImagePullSecrets,
		UnschedulableGrace: c.KubernetesUnschedulableGrace, ImagePullGrace: c.KubernetesImagePullGrace,
		PodRetention: c.KubernetesPodRetention, AllowImageGroups: c.KubernetesAllowImageGroups,
		WatchErrorGrace: c.KubernetesWatchErrorGrace, RequestTimeout: c.KubernetesRequestTimeout,
	}
}

// ContainersConfig is the container setup for the engine and doctor.
func (c Config) ContainersConfig() containers.Config {
	trim := func(xs []string) []string {
		var out []string
		for _, x := range xs {
			if x = strings.TrimSpace(x); x != "" {
				out = append(out, x)
			}
		}
		return out
	}
	return containers.Config{
		Enabled:       c.Containers == "apptainer",
		Apptainer:     c.Apptainer,
		ImageCache:    c.ImageCache,
		UnpackedRoots: trim(c.ImageUnpackedRoots),
		Order:         trim(c.ImageOrder),
		AllowPull:     c.ImagePull,
		ExtraBinds:    trim(c.ApptainerBinds),
		PullCache:     strings.TrimSpace(c.ApptainerCacheDir),
	}
}

// overlaps reports whether one template's directory lies in (or is) the
// other's, for any user: both are filled with the same probe values.
func overlaps(a, b string) bool {
	probe := strings.NewReplacer("{user}", "u", "{uid}", "1", "{home}", "/h")
	pa, pb := filepath.Clean(probe.Replace(a)), filepath.Clean(probe.Replace(b))
	within := func(x, y string) bool { return x == y || strings.HasPrefix(x, y+"/") || y == "/" }
	return within(pa, pb) || within(pb, pa)
}

func envName(n string) bool {
	if n == "" || n[0] >= '0' && n[0] <= '9' {
		return false
	}
	for _, r := range n {
		if !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9') {
			return false
		}
	}
	return true
}

// SecretsDir is the user's secret directory.
func (c Config) SecretsDir(acct asuser.Account) string {
	return ExpandWorkspaceRoot(c.SecretsRoot, acct.Name, strconv.FormatUint(uint64(acct.UID), 10), acct.Home)
}

// ExpandWorkspaceRoot fills the template for one user.
func ExpandWorkspaceRoot(template, user, uid, home string) string {
	return filepath.Clean(strings.NewReplacer("{user}", user, "{uid}", uid, "{home}", home).Replace(template))
}

func kindNames() []string {
	var out []string
	for _, k := range batch.Kinds() {
		out = append(out, k.Name)
	}
	return out
}

// validateLogin checks the Kerberos, OIDC and mapping settings.
func (c *Config) validateLogin(bad func(name, format string, args ...any)) {
	if c.Krb5Keytab != "" {
		if _, err := CredentialPath(c.Krb5Keytab); err != nil {
			bad("KRB5_KEYTAB", "%v", err)
		}
		if c.Krb5SPN == "" {
			if h, err := os.Hostname(); err == nil {
				c.Krb5SPN = "HTTP/" + h
			}
		}
		if svc, host, ok := strings.Cut(c.Krb5SPN, "/"); !ok || svc == "" || host == "" || strings.ContainsAny(c.Krb5SPN, "@ ") {
			bad("KRB5_SPN", "must be SERVICE/host without realm, such as HTTP/login01.example.org, got %q", c.Krb5SPN)
		}
	}
	if c.Krb5MaxClockSkew <= 0 {
		bad("KRB5_MAX_CLOCK_SKEW", "must be positive")
	}
	if c.OIDCIssuer != "" {
		if u, err := url.Parse(c.OIDCIssuer); err != nil || u.Scheme != "https" || u.Host == "" {
			bad("OIDC_ISSUER", "must be an https URL, got %q", c.OIDCIssuer)
		}
		if c.OIDCClientID == "" {
			bad("OIDC_CLIENT_ID", "must be set with REANA_SITE_OIDC_ISSUER")
		}
		if u, err := url.Parse(c.OIDCRedirectURL); err != nil || u.Scheme != "https" || u.Host == "" || u.Path != "/site/oidc/callback" {
			bad("OIDC_REDIRECT_URL", "must be https://<this host>[:port]/site/oidc/callback, got %q", c.OIDCRedirectURL)
		}
		if c.OIDCClientSecretFile != "" {
			if _, err := CredentialPath(c.OIDCClientSecretFile); err != nil {
				bad("OIDC_CLIENT_SECRET_FILE", "%v", err)
			}
		}
		if c.OIDCUsernameClaim == "" {
			bad("OIDC_USERNAME_CLAIM", "must not be empty")
		}
	}
	if _, err := identity.ParseMapRules(c.LoginMapRules); err != nil {
		bad("LOGIN_MAP_RULES", "%v", err)
	}
	if f := strings.Fields(c.LoginMapCommand); len(f) > 0 && !filepath.IsAbs(f[0]) {
		bad("LOGIN_MAP_COMMAND", "the program must be an absolute path, got %q", f[0])
	}
	if c.LoginMapTimeout <= 0 {
		bad("LOGIN_MAP_TIMEOUT", "must be positive")
	}
}

// CredentialPath resolves a credential's file: an absolute path as it is,
// a relative name in systemd's $CREDENTIALS_DIRECTORY (LoadCredential=),
// so the secret never needs a path readable outside the service.
func CredentialPath(p string) (string, error) {
	if filepath.IsAbs(p) {
		return p, nil
	}
	dir := os.Getenv("CREDENTIALS_DIRECTORY")
	if dir == "" {
		return "", fmt.Errorf("%q is not an absolute path, and there is no $CREDENTIALS_DIRECTORY (systemd LoadCredential=) to find it in", p)
	}
	if strings.Contains(p, "/") {
		return "", fmt.Errorf("credential name %q must not contain /", p)
	}
	return filepath.Join(dir, p), nil
}
