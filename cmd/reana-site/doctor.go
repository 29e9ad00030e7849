package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/batch/kubernetes"
	"github.com/reana-site/reana-site/containers"
	"github.com/reana-site/reana-site/daemon/config"
)

// doctorEnv is what the doctor looks at. Tests point its paths at temp
// directories and replace its functions.
type doctorEnv struct {
	Proc     string // the /proc root
	LookPath func(string) (string, error)
	// Run runs a program and returns its combined output.
	Run         func(ctx context.Context, argv ...string) (string, error)
	LookupGroup func(string) error
	Listen      func(addr string) (net.Listener, error)
	Now         func() time.Time
	// KubePreflight asks the cluster whether it would admit a step pod.
	KubePreflight func(ctx context.Context, cfg config.Config) error
	// Dev is the /dev root.
	Dev string
	// TryImage finds image as user, as a step would (without pulling),
	// and runs `apptainer exec ... <image> true` in it as that user,
	// through the helper as the daemon does; it returns the image path
	// and the output.
	TryImage func(ctx context.Context, cfg config.Config, user, image string) (path, out string, err error)
	// HTTPClient fetches the OIDC issuer's discovery document; nil means
	// the default client.
	HTTPClient *http.Client
}

func realDoctorEnv() doctorEnv {
	return doctorEnv{
		Proc:     "/proc",
		LookPath: exec.LookPath,
		Run: func(ctx context.Context, argv ...string) (string, error) {
			out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).CombinedOutput()
			return string(out), err
		},
		LookupGroup: func(g string) error { _, err := user.LookupGroup(g); return err },
		Listen:      func(addr string) (net.Listener, error) { return net.Listen("tcp", addr) },
		Now:         time.Now,
		KubePreflight: func(ctx context.Context, cfg config.Config) error {
			api, err := kubernetes.NewClient(cfg.KubernetesKubeconfig)
			if err != nil {
				return err
			}
			b, err := kubernetes.New(cfg.Kubernetes(), api, slog.New(slog.NewTextHandler(io.Discard, nil)))
			if err != nil {
				return err
			}
			return b.RunPreflight(ctx)
		},
		Dev:      "/dev",
		TryImage: tryImage,
	}
}

// tryImage is the real doctorEnv.TryImage.
func tryImage(ctx context.Context, cfg config.Config, user, image string) (string, string, error) {
	acct, err := accountResolver(cfg).Account(user)
	if err != nil {
		return "", "", err
	}
	runner := newRunner(cfg)
	cc := cfg.ContainersConfig()
	cc.AllowPull = false // the doctor looks, it never pulls
	res, err := (&containers.Resolver{Config: cc, Runner: runner}).Resolve(ctx, image, acct, nil)
	if err != nil {
		return "", "", err
	}
	argv, err := containers.ExecArgs(cc, res, batch.Spec{Workspace: "/tmp"})
	if err != nil {
		return res.Path, "", err
	}
	// ExecArgs ends in a shell launcher taking "-c <command>".
	out, err := asuser.Exec(ctx, runner, acct, asuser.ExecArgs{Argv: append(argv, "-c", "true"), Dir: "/"})
	if err != nil {
		return res.Path, "", err
	}
	text := strings.TrimSpace(out.Stdout + out.Stderr)
	if out.ExitCode != 0 {
		return res.Path, text, fmt.Errorf("exit status %d", out.ExitCode)
	}
	return res.Path, text, nil
}

// findingKind says how a finding counts: only problems make the doctor
// exit 1; a warning is something that works, worse than it could.
type findingKind int

const (
	kindOK findingKind = iota
	kindWarning
	kindProblem
)

// finding is one line of the doctor's report.
type finding struct {
	Kind findingKind
	Msg  string
}

func (f finding) String() string {
	switch f.Kind {
	case kindOK:
		return "ok: " + f.Msg
	case kindWarning:
		return "warning: " + f.Msg
	}
	return "problem: " + f.Msg
}

// OK reports whether the finding lets the doctor pass.
func (f finding) OK() bool { return f.Kind != kindProblem }

func okf(format string, a ...any) finding   { return finding{kindOK, fmt.Sprintf(format, a...)} }
func warnf(format string, a ...any) finding { return finding{kindWarning, fmt.Sprintf(format, a...)} }
func problemf(format string, a ...any) finding {
	return finding{kindProblem, fmt.Sprintf(format, a...)}
}

// doctorOptions are the doctor's flags.
type doctorOptions struct {
	// Image and User, when set, make the doctor run a step's image as
	// that user.
	Image, User string
	// InDaemon leaves out what the daemon must not do for a web page or
	// may wait long for: a step's image run as a user, the cluster's dry
	// run (the daemon's own preflight does it), the workflow engines'
	// interpreter, and binding the address the daemon listens on.
	InDaemon bool
}

// doctor checks the site setup and prints one line per finding; it
// exits 1 when anything is wrong (warnings do not count).
func doctor(args []string) int {
	fs := flag.NewFlagSet("doctor", flag.ContinueOnError)
	var opt doctorOptions
	fs.StringVar(&opt.Image, "image", "", "also run `apptainer exec IMAGE true` as -user (an environment as a step names it)")
	fs.StringVar(&opt.User, "user", "", "the user -image runs as (a normal user the site serves)")
	fs.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: reana-site doctor [-image IMAGE -user NAME]")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil || fs.NArg() > 0 {
		fs.Usage()
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return runDoctor(ctx, os.Stdout, realDoctorEnv(), opt)
}

func runDoctor(ctx context.Context, w io.Writer, env doctorEnv, opt doctorOptions) int {
	cfg, err := config.Load()
	var findings []finding
	if err != nil {
		for _, l := range strings.Split(strings.TrimPrefix(err.Error(), "config: "), "\n") {
			findings = append(findings, problemf("configuration: %s", l))
		}
	} else {
		findings = env.checkAll(ctx, cfg, opt)
	}
	code := 0
	for _, f := range findings {
		fmt.Fprintln(w, f)
		if !f.OK() {
			code = 1
		}
	}
	return code
}

func (env doctorEnv) checkAll(ctx context.Context, cfg config.Config, opt doctorOptions) []finding {
	var out []finding
	if cc := cfg.ContainersConfig(); cc.Enabled {
		out = append(out, env.checkApptainer(ctx, cc.Apptainer)...)
		out = append(out, env.checkUserNamespaces(ctx, cc.Apptainer))
		out = append(out, checkImageCache(cc.ImageCache, cc.CanPull()))
		for _, r := range cc.UnpackedRoots {
			out = append(out, checkDir("unpacked image tree", r))
		}
		out = append(out, env.checkSIFTools()...)
		if opt.Image != "" || opt.User != "" {
			out = append(out, env.checkImage(ctx, cfg, opt))
		}
	} else if opt.Image != "" {
		out = append(out, problemf("image: -image needs containers on (REANA_SITE_CONTAINERS=apptainer)"))
	} else {
		out = append(out, okf("containers: off (REANA_SITE_CONTAINERS=off): steps run on the host shell and their environment is ignored"))
	}
	out = append(out, env.checkBatchCommands(cfg)...)
	if slices.Contains(cfg.Backends, "kubernetes") && !opt.InDaemon {
		out = append(out, env.checkKubernetes(ctx, cfg))
	}
	if !opt.InDaemon {
		out = append(out, env.checkEngines(ctx, cfg)...)
	}
	out = append(out, checkLogin(ctx, cfg, env.HTTPClient)...)
	out = append(out, checkWorkspaceRoot(cfg.WorkspaceRoot), checkRoot("secrets root", cfg.SecretsRoot))
	out = append(out, env.checkUIDPolicy(cfg)...)
	if !opt.InDaemon {
		out = append(out, env.checkListen(cfg))
	}
	out = append(out, env.checkTLS(cfg))
	return out
}

func (env doctorEnv) checkApptainer(ctx context.Context, prog string) []finding {
	path, err := env.LookPath(prog)
	if err != nil {
		return []finding{problemf("apptainer: %q is not installed or not in PATH (REANA_SITE_APPTAINER): %v", prog, err)}
	}
	out, err := env.Run(ctx, path, "--version")
	if err != nil {
		return []finding{problemf("apptainer: %s --version failed: %v: %s", path, err, strings.TrimSpace(out))}
	}
	return []finding{okf("apptainer: %s is %s", path, strings.TrimSpace(out))}
}

// checkSIFTools: any step may name a SIF file, and pulls make SIF files.
// Without squashfuse_ll and a /dev/fuse users can open, Apptainer unpacks
// every SIF image into a temporary sandbox under /tmp at every step
// ("Converting SIF file to temporary sandbox..."): slow and big, but it
// works. But with squashfuse_ll installed and /dev/fuse closed to users,
// Apptainer 1.4.5 does not fall back: every SIF step fails ("squashfuse_ll
// exited: fuse: failed to open /dev/fuse: Permission denied"). Without
// gocryptfs every SIF step's log gets an INFO line.
func (env doctorEnv) checkSIFTools() []finding {
	var out []finding
	p, err := env.LookPath("squashfuse_ll")
	if err != nil {
		out = append(out, warnf("sif: squashfuse_ll is not installed (package squashfuse): SIF images are unpacked into /tmp at every step"))
	} else {
		out = append(out, okf("sif: squashfuse_ll is %s", p))
		dev := filepath.Join(env.Dev, "fuse")
		fi, err := os.Stat(dev)
		why := ""
		switch {
		case err != nil:
			why = err.Error()
		case fi.Mode().Perm()&0o006 != 0o006:
			why = fmt.Sprintf("%s (mode %s) cannot be opened by users", dev, fi.Mode().Perm())
		case fi.Mode()&os.ModeCharDevice == 0:
			why = dev + " is not a character device"
		}
		if why != "" {
			out = append(out, problemf("sif: %s, so apptainer fails every SIF step (it uses squashfuse_ll and does not unpack instead); make /dev/fuse 0666, as the fuse udev rule does, or remove squashfuse so that SIF images are unpacked into /tmp", why))
		} else {
			out = append(out, okf("sif: %s can be opened by users", dev))
		}
	}
	if _, err := env.LookPath("gocryptfs"); err != nil {
		out = append(out, warnf("sif: gocryptfs is not installed: every SIF step's log gets an INFO line about it (encrypted images cannot run)"))
	}
	return out
}

// checkImage runs a step's image as a user, as a step would run.
func (env doctorEnv) checkImage(ctx context.Context, cfg config.Config, opt doctorOptions) finding {
	if opt.Image == "" || opt.User == "" {
		return problemf("image: -image and -user go together")
	}
	path, out, err := env.TryImage(ctx, cfg, opt.User, opt.Image)
	if err != nil {
		if out != "" {
			err = fmt.Errorf("%w: %s", err, out)
		}
		return problemf("image: %s as %s: %v", opt.Image, opt.User, err)
	}
	if out != "" {
		return warnf("image: %s (%s) runs as %s, with output: %s", opt.Image, path, opt.User, out)
	}
	return okf("image: %s (%s) runs as %s", opt.Image, path, opt.User)
}

// checkUserNamespaces: Apptainer without setuid needs unprivileged user
// namespaces; the kernel knobs that turn them off are checked by name.
func (env doctorEnv) checkUserNamespaces(ctx context.Context, prog string) finding {
	read := func(name string) (string, bool) {
		b, err := os.ReadFile(filepath.Join(env.Proc, "sys", name))
		return strings.TrimSpace(string(b)), err == nil
	}
	var why []string
	if v, ok := read("user/max_user_namespaces"); !ok || v == "0" {
		why = append(why, "user.max_user_namespaces is 0 or unreadable")
	}
	if v, ok := read("kernel/unprivileged_userns_clone"); ok && v != "1" {
		why = append(why, "kernel.unprivileged_userns_clone is "+v)
	}
	if v, ok := read("kernel/apparmor_restrict_unprivileged_userns"); ok && v != "0" {
		why = append(why, "kernel.apparmor_restrict_unprivileged_userns is "+v)
	}
	if len(why) == 0 {
		return okf("user namespaces: unprivileged user namespaces are enabled")
	}
	if path, err := env.LookPath(prog); err == nil {
		if out, err := env.Run(ctx, path, "buildcfg", "APPTAINER_SUID_INSTALL"); err == nil && strings.TrimSpace(out) == "1" {
			return okf("user namespaces: unavailable (%s), but apptainer is a setuid install", strings.Join(why, "; "))
		}
	}
	return problemf("user namespaces: apptainer cannot start containers as users: %s; enable them (sysctl) or install apptainer-suid", strings.Join(why, "; "))
}

// checkImageCache: a cache others can write to lets any user replace the
// images everybody runs; a cache users pull into must let them write.
func checkImageCache(dir string, pulls bool) finding {
	if dir == "" {
		if pulls {
			return problemf("image cache: pulls are on but REANA_SITE_IMAGE_CACHE is empty")
		}
		return okf("image cache: none configured; images come from unpacked trees or paths")
	}
	if strings.Contains(dir, "{") {
		base := staticBase(dir)
		if _, err := os.Stat(base); err != nil {
			return problemf("image cache: %s is per user, but its base %s is missing: %v", dir, base, err)
		}
		return okf("image cache: per user (%s), created by each user on first pull", dir)
	}
	fi, err := os.Stat(dir)
	switch {
	case err != nil:
		return problemf("image cache: %s: %v (create it, e.g. install -d -m 0755 %s)", dir, err, dir)
	case !fi.IsDir():
		return problemf("image cache: %s is not a directory", dir)
	}
	mode := fi.Mode()
	othersWrite := mode.Perm()&0o022 != 0
	switch {
	case pulls && mode.Perm()&0o002 == 0:
		return problemf("image cache: %s (mode %s) is not writable by users, who pull into it as themselves; make it 1777 or set REANA_SITE_IMAGE_PULL=false", dir, mode)
	case pulls && mode&os.ModeSticky == 0:
		return problemf("image cache: %s (mode %s) is world-writable without the sticky bit: users can delete each other's images; chmod +t it", dir, mode)
	case pulls:
		return okf("image cache: %s (mode %s) takes pulls from every user; any user can add images others will use", dir, mode)
	case othersWrite:
		return problemf("image cache: %s (mode %s) is writable by group or others, who could replace images other users run; chmod go-w it", dir, mode)
	}
	return okf("image cache: %s (mode %s), read-only for users", dir, mode)
}

func checkDir(what, dir string) finding {
	fi, err := os.Stat(dir)
	if err != nil {
		return problemf("%s: %s: %v", what, dir, err)
	}
	if !fi.IsDir() {
		return problemf("%s: %s is not a directory", what, dir)
	}
	return okf("%s: %s is present", what, dir)
}

func (env doctorEnv) checkBatchCommands(cfg config.Config) []finding {
	var out []finding
	commands := map[string]struct {
		dir, setting string
		progs        []string
	}{
		"slurm":    {cfg.SlurmBinDir, "REANA_SITE_SLURM_BIN_DIR", []string{"sbatch", "squeue", "scancel"}},
		"htcondor": {cfg.HTCondorBinDir, "REANA_SITE_HTCONDOR_BIN_DIR", []string{"condor_submit", "condor_q", "condor_history", "condor_rm"}},
	}
	for _, b := range cfg.Backends {
		want, ok := commands[b]
		if !ok {
			continue
		}
		for _, c := range want.progs {
			name := c
			if want.dir != "" {
				name = filepath.Join(want.dir, c)
			}
			if p, err := env.LookPath(name); err != nil {
				out = append(out, problemf("%s: %s not found (PATH or %s): %v", b, c, want.setting, err))
			} else {
				out = append(out, okf("%s: %s is %s", b, c, p))
			}
		}
	}
	if cfg.HTCondorConfig != "" && slices.Contains(cfg.Backends, "htcondor") {
		if _, err := os.Stat(cfg.HTCondorConfig); err != nil {
			out = append(out, problemf("htcondor: REANA_SITE_HTCONDOR_CONFIG: %v", err))
		}
	}
	return out
}

// staticBase is the directory part of a template before its first
// placeholder; "{home}/reana" has /home as base, where homes usually are.
func staticBase(template string) string {
	i := strings.Index(template, "{")
	if i < 0 {
		return template
	}
	if strings.HasPrefix(template, "{home}") {
		return "/home"
	}
	base := filepath.Dir(template[:i] + "x")
	return base
}

func checkWorkspaceRoot(template string) finding { return checkRoot("workspace root", template) }

// checkRoot checks the site's part of a per-user template (what names it:
// "workspace root", "secrets root").
func checkRoot(what, template string) finding {
	base := staticBase(template)
	fi, err := os.Stat(base)
	if err != nil {
		return problemf("%s: %s: base directory %s: %v", what, template, base, err)
	}
	if !fi.IsDir() {
		return problemf("%s: %s: %s is not a directory", what, template, base)
	}
	mode := fi.Mode()
	switch {
	case mode.Perm()&0o002 != 0 && mode&os.ModeSticky == 0:
		return problemf("%s: %s: %s is writable by every user without the sticky bit, so one user could rename or replace another's %s; make it mode 1777 (or 0755 with roots made by the admins)", what, template, base, what)
	case mode.Perm()&0o022 != 0 && mode&os.ModeSticky != 0:
		return okf("%s: %s (base %s, mode %s, shared): each user's root below it must be made by that user's helper; a root made by anyone else is refused", what, template, base, mode.Perm()|os.ModeSticky)
	}
	return okf("%s: %s (base %s, mode %s); each user's helper creates its own part", what, template, base, mode.Perm())
}

// checkKubernetes dry-runs a step pod as the daemon would at start: the
// claim, Pod Security, OpenShift's SCC, RBAC, quota and webhooks all answer.
func (env doctorEnv) checkKubernetes(ctx context.Context, cfg config.Config) finding {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := env.KubePreflight(ctx, cfg); err != nil {
		// The backend's errors already begin with its name.
		return problemf("kubernetes: %s", strings.ReplaceAll(strings.TrimPrefix(err.Error(), "kubernetes: "), "\nkubernetes: ", "\n"))
	}
	return okf("kubernetes: namespace %s would admit a step pod, and claim %s is bound", cfg.KubernetesNamespace, cfg.KubernetesClaim)
}

func (env doctorEnv) checkUIDPolicy(cfg config.Config) []finding {
	groups := "every group"
	if len(cfg.AllowedGroups) > 0 {
		groups = "members of " + strings.Join(cfg.AllowedGroups, ", ")
	}
	out := []finding{okf("uid policy: uids from %d, %s; uid 0 and primary gid 0 never", cfg.MinUID, groups)}
	for _, g := range cfg.AllowedGroups {
		if err := env.LookupGroup(g); err != nil {
			out = append(out, problemf("uid policy: REANA_SITE_ALLOWED_GROUPS names %q, which does not exist: %v", g, err))
		}
	}
	return out
}

// checkListen binds the address for a moment; when it is taken, the pid
// file tells whether reana-site itself holds it.
func (env doctorEnv) checkListen(cfg config.Config) finding {
	ln, err := env.Listen(cfg.Listen)
	if err == nil {
		ln.Close()
		return okf("listen: %s is free", cfg.Listen)
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		if pid, ok := env.runningDaemon(cfg.StateDir); ok {
			return okf("listen: %s is in use by reana-site (pid %d)", cfg.Listen, pid)
		}
		return problemf("listen: %s is in use by another program", cfg.Listen)
	}
	return problemf("listen: cannot bind %s: %v", cfg.Listen, err)
}

func (env doctorEnv) runningDaemon(stateDir string) (int, bool) {
	b, err := os.ReadFile(filepath.Join(stateDir, "reana-site.pid"))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, false
	}
	comm, err := os.ReadFile(filepath.Join(env.Proc, strconv.Itoa(pid), "comm"))
	return pid, err == nil && strings.TrimSpace(string(comm)) == "reana-site"
}

func (env doctorEnv) checkTLS(cfg config.Config) finding {
	cert, key := cfg.TLSCert, cfg.TLSKey
	if cert == "" {
		cert, key = filepath.Join(cfg.StateDir, "tls.crt"), filepath.Join(cfg.StateDir, "tls.key")
		if _, err := os.Stat(cert); errors.Is(err, os.ErrNotExist) {
			return okf("tls: no certificate configured; a self-signed one will be generated into %s", cfg.StateDir)
		}
	}
	pair, err := tls.LoadX509KeyPair(cert, key)
	if err != nil {
		return problemf("tls: %s / %s: %v", cert, key, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return problemf("tls: %s: %v", cert, err)
	}
	now := env.Now()
	switch {
	case now.After(leaf.NotAfter):
		return problemf("tls: %s expired on %s", cert, leaf.NotAfter.Format(time.DateOnly))
	case now.Before(leaf.NotBefore):
		return problemf("tls: %s is not valid before %s", cert, leaf.NotBefore.Format(time.DateOnly))
	case leaf.NotAfter.Sub(now) < 30*24*time.Hour:
		return okf("tls: %s is valid but expires soon, on %s", cert, leaf.NotAfter.Format(time.DateOnly))
	}
	return okf("tls: %s is valid until %s", cert, leaf.NotAfter.Format(time.DateOnly))
}
