// Package containers runs a step's commands inside its `environment`
// image with Apptainer, as the user, the same way on every backend: it
// finds the image (site cache, unpacked trees such as
// /cvmfs/unpacked.cern.ch, or a pull into the cache) and builds the
// `apptainer exec` argument vector that the job script runs in place of
// the host shell.
//
// # The exec command line
//
// ExecArgs emits only flags that Apptainer 1.2 already has:
//
//   - --cleanenv: the step sees REANA's variables, not the daemon's or
//     the submitting shell's environment.
//   - --no-home: the user's home directory is not mounted, so a step sees
//     the workspace and the site's binds and nothing else of the user's
//     files (workspaces live under the home directory by default, and
//     binding the workspace alone keeps the rest of it out). HOME inside
//     the container still names the host path, which usually does not
//     exist there; steps that need a writable HOME set it to
//     $REANA_WORKSPACE themselves, as on REANA's Kubernetes jobs, where
//     HOME is the image's.
//   - --pid: a new PID namespace, so that one signal to apptainer ends
//     the whole step. Without it Apptainer passes a SIGTERM on to the
//     payload only, and whatever the payload started lives on; with it
//     the namespace's end takes every process of the step along.
//   - --bind <ws>:<ws> and --pwd <ws>: the workspace at the same path, so
//     REANA_WORKSPACE and absolute paths in commands stay valid.
//   - --bind for each site bind (REANA_SITE_APPTAINER_BINDS).
//
// The step's variables are not passed with --env (nor env secrets as
// APPTAINERENV_<name>): Apptainer injects those only right after the
// image's /.singularity.d/env/99-base.sh, so an image tree that has
// /.singularity.d/env without that file (an OCI image unpacked with
// umoci, or by hand, with a %environment-style script added) silently
// gets none of them (seen with 1.4.5), and Apptainer shell-evaluates the
// values it does inject. ShellLauncher sets them instead, inside the
// container after the image's scripts have run: the variables from its
// own arguments (K=V up to "--"), env secrets from files the job script
// copies into a private directory bound at EnvSecretsMountPath.
//
// No --contain: a step keeps the host's /tmp and /dev as any batch job
// on the node does; --contain would put /tmp on a small session tmpfs.
// No --nv: REANA's serial specification has no GPU field, so no step can
// ask for one yet.
package containers

import (
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
)

// Where images are looked for, in Config.Order.
const (
	SourceCache    = "cache"
	SourceUnpacked = "unpacked"
	SourcePull     = "pull"
)

// DefaultOrder is the lookup order when the site sets none.
func DefaultOrder() []string { return []string{SourceCache, SourceUnpacked, SourcePull} }

// Config is the site's container setup.
type Config struct {
	// Enabled runs every step in its image; false runs steps on the host
	// shell, ignoring their environment.
	Enabled bool
	// Apptainer is the program to run; empty means "apptainer" from PATH.
	Apptainer string
	// ImageCache is the directory holding <CacheName>.sif files or
	// <CacheName> unpacked directories, and where pulls go. It may be a
	// template with {user}, {uid} and {home} for a per-user cache. Empty
	// means no cache (and no pulls).
	ImageCache string
	// UnpackedRoots are trees in the CVMFS unpacked.cern.ch layout, such
	// as /cvmfs/unpacked.cern.ch, looked at in order.
	UnpackedRoots []string
	// Order is the lookup order over SourceCache, SourceUnpacked and
	// SourcePull (which, when present, is last). Nil means DefaultOrder.
	Order []string
	// AllowPull lets the resolver pull images missing elsewhere; pulls
	// also need SourcePull in Order and an ImageCache.
	AllowPull bool
	// ExtraBinds are added to every step as --bind values, "src[:dst[:ro]]".
	ExtraBinds []string
	// PullCache is APPTAINER_CACHEDIR for pulls (the OCI blobs and a SIF
	// copy Apptainer keeps, about twice the image): a template like
	// ImageCache. Empty means DefaultPullCache.
	PullCache string
}

// DefaultPullCache is the pull cache when the site names none: a
// directory per user beside the images, so the blobs count against the
// image cache's space rather than the user's home (Apptainer's default,
// ~/.apptainer/cache), and no user owns a directory another user's pulls
// go through, even in a shared cache.
const DefaultPullCache = "{cache}/.apptainer-cache-{uid}"

func (c Config) apptainer() string {
	if c.Apptainer == "" {
		return "apptainer"
	}
	return c.Apptainer
}

func (c Config) order() []string {
	if c.Order == nil {
		return DefaultOrder()
	}
	return c.Order
}

// CanPull reports whether missing images are pulled.
func (c Config) CanPull() bool {
	if !c.AllowPull || c.ImageCache == "" {
		return false
	}
	for _, o := range c.order() {
		if o == SourcePull {
			return true
		}
	}
	return false
}

// Validate checks the site settings; each problem names the setting.
func (c Config) Validate() []error {
	var errs []error
	if c.Apptainer != "" && strings.Contains(c.Apptainer, "/") && !filepath.IsAbs(c.Apptainer) {
		errs = append(errs, fmt.Errorf("apptainer path must be a command name or an absolute path, got %q", c.Apptainer))
	}
	probe := asuser.Account{Name: "u", UID: 1, Home: "/h"}
	if c.ImageCache != "" && !filepath.IsAbs(expand(c.ImageCache, probe)) {
		errs = append(errs, fmt.Errorf("image cache must be an absolute path (template), got %q", c.ImageCache))
	}
	if c.PullCache != "" && (strings.Contains(c.PullCache, "{cache}") || !filepath.IsAbs(expand(c.PullCache, probe))) {
		errs = append(errs, fmt.Errorf("apptainer pull cache must be an absolute path (template with {user}, {uid}, {home}), got %q", c.PullCache))
	}
	for _, r := range c.UnpackedRoots {
		if !filepath.IsAbs(r) {
			errs = append(errs, fmt.Errorf("unpacked root must be an absolute path, got %q", r))
		}
	}
	seen := map[string]bool{}
	for i, o := range c.order() {
		switch {
		case o != SourceCache && o != SourceUnpacked && o != SourcePull:
			errs = append(errs, fmt.Errorf("image order: unknown source %q (known: cache, unpacked, pull)", o))
		case seen[o]:
			errs = append(errs, fmt.Errorf("image order: %q appears twice", o))
		case o == SourcePull && i != len(c.order())-1:
			errs = append(errs, fmt.Errorf("image order: pull must come last, since a pulled image lands in the cache"))
		}
		seen[o] = true
	}
	for _, b := range c.ExtraBinds {
		if err := checkBind(b); err != nil {
			errs = append(errs, err)
		}
	}
	return errs
}

// checkBind accepts src[:dst[:ro|rw]] with absolute paths and no commas,
// which Apptainer would read as a second bind.
func checkBind(b string) error {
	parts := strings.Split(b, ":")
	if len(parts) > 3 || strings.Contains(b, ",") {
		return fmt.Errorf("bind %q: must be src[:dst[:ro]] with no commas", b)
	}
	for _, p := range parts[:min(len(parts), 2)] {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("bind %q: %q must be an absolute path", b, p)
		}
	}
	if len(parts) == 3 && parts[2] != "ro" && parts[2] != "rw" {
		return fmt.Errorf("bind %q: the option must be ro or rw, got %q", b, parts[2])
	}
	return nil
}

func expand(template string, acct asuser.Account) string {
	return filepath.Clean(strings.NewReplacer("{user}", acct.Name, "{uid}", fmt.Sprint(acct.UID), "{home}", acct.Home).Replace(template))
}

// CacheDir is the image cache for acct; empty when the site has none.
func (c Config) CacheDir(acct asuser.Account) string {
	if c.ImageCache == "" {
		return ""
	}
	return expand(c.ImageCache, acct)
}

// PullCacheDir is APPTAINER_CACHEDIR for acct's pulls; empty when the
// site has no image cache (and so no pulls).
func (c Config) PullCacheDir(acct asuser.Account) string {
	dir := c.CacheDir(acct)
	if dir == "" {
		return ""
	}
	if c.PullCache != "" {
		return expand(c.PullCache, acct)
	}
	return expand(strings.ReplaceAll(DefaultPullCache, "{cache}", dir), acct)
}

// Resolved is an image found on disk, ready for apptainer exec.
type Resolved struct {
	Image Image
	// Path is the SIF file or unpacked directory.
	Path string
	// Source says where it was found: SourceCache, SourceUnpacked,
	// SourcePull, or "path" for an image the step named by path.
	Source string
}

// ShellLauncher is run inside the container with the step's command. It
// exports the K=V arguments that come before "--" and the env secrets
// found in EnvSecretsMountPath (one file per variable, its content the
// value, read as the host job script reads them), then runs the command
// with bash when the image has bash and sh otherwise, as the host job
// script does, so a step means the same with or without containers.
// jobscript appends "-c" and the command, which arrive after "--".
const ShellLauncher = `while [ "$#" -gt 0 ] && [ "$1" != -- ]; do export "$1"; shift; done; shift
if [ -d ` + EnvSecretsMountPath + ` ]; then
  for __reana_f in ` + EnvSecretsMountPath + `/*; do
    [ -f "$__reana_f" ] || continue
    __reana_v=$(cat -- "$__reana_f"; printf x); export "${__reana_f##*/}=${__reana_v%x}"
  done
  unset __reana_f __reana_v
fi
if [ -x /bin/bash ]; then exec /bin/bash "$@"; fi; exec /bin/sh "$@"`

// EnvSecretsMountPath is where a container step finds the job's private
// copy of the user's env secrets (see ShellLauncher). It is read-only and
// gone when the step ends.
const EnvSecretsMountPath = "/etc/reana/env-secrets"

// envName is what the launcher's export takes as a variable name.
var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// ExecArgs is the `apptainer exec` argument vector for a step, ending in
// a shell that takes "-c <command>" (see jobscript.Options.Runner). It
// fails for variable values that Apptainer would reinterpret (see
// checkEnvValue).
func ExecArgs(cfg Config, image Resolved, spec batch.Spec) ([]string, error) {
	if !filepath.IsAbs(spec.Workspace) || !filepath.IsAbs(image.Path) {
		return nil, fmt.Errorf("containers: workspace and image must be absolute paths")
	}
	if strings.ContainsAny(spec.Workspace, ",:") {
		return nil, fmt.Errorf("containers: workspace %q contains ',' or ':', which apptainer's --bind cannot take", spec.Workspace)
	}
	args := []string{cfg.apptainer(), "exec", "--cleanenv", "--no-home", "--pid",
		"--bind", spec.Workspace + ":" + spec.Workspace, "--pwd", spec.Workspace}
	vars := map[string]string{}
	for k, v := range spec.Env {
		if !envName.MatchString(k) {
			return nil, fmt.Errorf("containers: bad environment variable name %q", k)
		}
		vars[k] = v
	}
	if spec.Secrets.Dir != "" {
		// The job script fills these directories before apptainer
		// starts; REANA mounts file secrets at the same place. Only
		// paths are in argv.
		files := filepath.Join(spec.JobDir, asuser.SecretsJobDir)
		envs := filepath.Join(spec.JobDir, asuser.SecretsEnvJobDir)
		if strings.ContainsAny(spec.JobDir, ",:") {
			return nil, fmt.Errorf("containers: job directory %q contains ',' or ':', which apptainer's --bind cannot take", spec.JobDir)
		}
		args = append(args, "--bind", files+":"+asuser.SecretsMountPath+":ro",
			"--bind", envs+":"+EnvSecretsMountPath+":ro")
		vars["REANA_SECRETS_DIR"] = asuser.SecretsMountPath
		if spec.Secrets.Kerberos {
			vars["KRB5CCNAME"] = "FILE:" + asuser.SecretsMountPath + "/" + asuser.KrbCacheFile
		}
	}
	for _, b := range cfg.ExtraBinds {
		args = append(args, "--bind", b)
	}
	args = append(args, image.Path, "/bin/sh", "-c", ShellLauncher, "sh")
	keys := make([]string, 0, len(vars))
	for k := range vars {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, k+"="+vars[k])
	}
	return append(args, "--"), nil
}
