// Package browser drives a real headless Chromium (Debian's chromium
// package, which test/setup.sh installs) from tests, through chromedp. A
// Browser has its own throwaway profile, trusts only the certificates a
// test names, records what the page logged as an error, saves full-page
// screenshots under .cache/ui-screenshots/ and catches downloads.
package browser

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

// Browser is one Chromium process with one tab, for one test.
type Browser struct {
	// ctx is the tab's context: actions run against it, each with its own
	// timeout (the first Run on a chromedp context binds the browser's life
	// to the context it gets, so that one has none).
	ctx     context.Context
	timeout time.Duration
	profile string
	// downloads is where Chromium saves what a page downloads.
	downloads string
	// output is the browser's stdout and stderr and chromedp's errors: a
	// file, which takes writes from several goroutines as they come.
	output   *os.File
	problems *problems
	dialogs  *dialogs
}

// config is what the options set.
type config struct {
	env           []string
	negotiate     []string
	timeout       time.Duration
	width, height int
	spki          []string
}

// Option changes how Start starts the browser.
type Option func(*config) error

// Env adds variables (NAME=value) to the browser's environment, e.g.
// KRB5_CONFIG and KRB5CCNAME for Negotiate.
func Env(vars ...string) Option {
	return func(c *config) error { c.env = append(c.env, vars...); return nil }
}

// Negotiate lets Chromium answer a Negotiate (SPNEGO) challenge from these
// hosts (--auth-server-allowlist; "localhost" when none is given). Chromium
// on Linux loads its Kerberos library only once a profile has seen a
// Negotiate header (the first challenge of a fresh profile fails with
// ERR_UNSUPPORTED_AUTH_SCHEME), so the profile is made as if it had.
func Negotiate(hosts ...string) Option {
	return func(c *config) error {
		if len(hosts) == 0 {
			hosts = []string{"localhost"}
		}
		c.negotiate = append(c.negotiate, hosts...)
		return nil
	}
}

// Timeout is how long one action (Do, Run, Navigate, a download) may take;
// 30 s when not set.
func Timeout(d time.Duration) Option {
	return func(c *config) error { c.timeout = d; return nil }
}

// WindowSize sets the window's size in CSS pixels; 1280×900 when not set.
func WindowSize(width, height int) Option {
	return func(c *config) error { c.width, c.height = width, height; return nil }
}

// TrustCert makes the browser accept servers that present this certificate
// (self-signed, or of a name it lacks) and no other certificate error. It
// pins the certificate's public key (--ignore-certificate-errors-spki-list),
// so a test never turns certificate checking off as a whole.
func TrustCert(cert *x509.Certificate) Option {
	return func(c *config) error {
		sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
		c.spki = append(c.spki, base64.StdEncoding.EncodeToString(sum[:]))
		return nil
	}
}

// TrustCertFile is TrustCert for the first certificate of a PEM file, such
// as the daemon's generated tls.crt in its state directory.
func TrustCertFile(path string) Option {
	return func(c *config) error {
		b, err := os.ReadFile(path)
		if err != nil {
			return fmt.Errorf("read the certificate to trust: %w", err)
		}
		block, _ := pem.Decode(b)
		if block == nil || block.Type != "CERTIFICATE" {
			return fmt.Errorf("%s holds no PEM certificate", path)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return fmt.Errorf("parse %s: %w", path, err)
		}
		return TrustCert(cert)(c)
	}
}

// ExecPath is the Chromium the tests run: Debian's binary itself rather
// than its /usr/bin/chromium wrapper script, which adds nothing headless
// needs; it is empty when Chromium is not installed.
func ExecPath() string {
	if _, err := os.Stat("/usr/lib/chromium/chromium"); err == nil {
		return "/usr/lib/chromium/chromium"
	}
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// Start starts headless Chromium for the test and stops it, with every
// process it forked, when the test ends. Without Chromium the test skips,
// except under CI (CI=true), where test/setup.sh must have installed it and
// its absence is a failure.
func Start(t testing.TB, opts ...Option) *Browser {
	t.Helper()
	bin := ExecPath()
	if bin == "" {
		const why = "chromium is not installed (test/setup.sh installs Debian's chromium and fonts-liberation)"
		if os.Getenv("CI") == "true" {
			t.Fatal(why)
		}
		t.Skip(why)
	}
	cfg := config{timeout: 30 * time.Second, width: 1280, height: 900}
	for _, o := range opts {
		if err := o(&cfg); err != nil {
			t.Fatalf("browser option: %v", err)
		}
	}
	profile := t.TempDir()
	if len(cfg.negotiate) > 0 {
		if err := writeNegotiateSeen(profile); err != nil {
			t.Fatal(err)
		}
	}
	output, err := os.Create(filepath.Join(t.TempDir(), "chromium.log"))
	if err != nil {
		t.Fatal(err)
	}
	b := &Browser{timeout: cfg.timeout, profile: profile, downloads: t.TempDir(),
		output: output, problems: &problems{}, dialogs: &dialogs{}}

	aopts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin),
		chromedp.UserDataDir(profile),
		chromedp.WindowSize(cfg.width, cfg.height),
		chromedp.CombinedOutput(b.output),
		chromedp.Env(cfg.env...),
		// Own process group and death signal: nothing of the browser may
		// outlive the test, even when the test binary is killed.
		chromedp.ModifyCmdFunc(func(cmd *exec.Cmd) {
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
		}),
	)
	if os.Geteuid() == 0 {
		// Chromium's sandbox refuses to run as root; the tests run as root.
		aopts = append(aopts, chromedp.NoSandbox)
	}
	if len(cfg.negotiate) > 0 {
		aopts = append(aopts, chromedp.Flag("auth-server-allowlist", strings.Join(cfg.negotiate, ",")))
	}
	if len(cfg.spki) > 0 {
		aopts = append(aopts, chromedp.Flag("ignore-certificate-errors-spki-list", strings.Join(cfg.spki, ",")))
	}
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), aopts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx,
		chromedp.WithLogf(func(string, ...any) {}),
		chromedp.WithErrorf(func(f string, a ...any) { fmt.Fprintf(b.output, "chromedp: "+f+"\n", a...) }))
	b.ctx = ctx
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		killProfile(profile)
		if t.Failed() {
			t.Logf("chromium output (tail):\n%s", b.tail(4000))
		}
		output.Close()
	})

	// The first action starts the browser; it gets no timeout of its own
	// (that would end the browser with it), so a start that hangs is
	// bounded here instead.
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("start %s: %v\n%s", bin, err, b.tail(4000))
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("%s did not start within 60 s:\n%s", bin, b.tail(4000))
	}
	b.problems.collect(ctx)
	b.Do(t, chromedp.Func(func(ctx context.Context, _ *chromedp.Target) error {
		_, err := chromedp.Call(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
			Behavior:      browser.SetDownloadBehaviorBehaviorAllowAndName,
			DownloadPath:  b.downloads,
			EventsEnabled: new(true),
		})
		return err
	}))
	return b
}

// Context is the tab's context, for chromedp calls the helpers do not
// cover; bound it with context.WithTimeout, never cancel it.
func (b *Browser) Context() context.Context { return b.ctx }

// Do runs actions in the tab within the timeout and fails the test when one
// fails.
func (b *Browser) Do(t testing.TB, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("browser: %v%s", err, b.problems.summary())
	}
}

// Run runs one action that returns a value, within the browser's timeout,
// and fails the test when it fails.
func Run[T any](t testing.TB, b *Browser, a chromedp.Action[T]) T {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("browser: %v%s", err, b.problems.summary())
	}
	return v
}

// Navigate loads url and returns the HTTP status of the main document.
func (b *Browser) Navigate(t testing.TB, url string) int64 {
	t.Helper()
	resp := Run(t, b, chromedp.NavigateResponse(url))
	if resp == nil {
		return 0
	}
	return resp.Status
}

// Eval evaluates a JavaScript expression in the page and decodes its value.
func Eval[T any](t testing.TB, b *Browser, expr string) T {
	t.Helper()
	return Run(t, b, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// WaitTrue waits, up to d, until a JavaScript expression is truthy in the
// page; it survives the page navigating meanwhile.
func (b *Browser) WaitTrue(t testing.TB, expr string, d time.Duration) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, d)
	defer cancel()
	var last error
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool]("!!("+expr+")"))
		if err == nil && ok {
			return
		}
		if err != nil {
			// A typo in the expression will not heal by waiting.
			if strings.Contains(err.Error(), "SyntaxError") {
				t.Fatalf("browser: %q: %v", expr, err)
			}
			last = err
		}
		select {
		case <-ctx.Done():
			t.Fatalf("browser: %q was not true within %s (last error: %v)%s", expr, d, last, b.problems.summary())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// writeNegotiateSeen pre-writes the profile's Local State with the mark
// Chromium leaves after its first Negotiate challenge
// (prefs::kReceivedHttpAuthNegotiateHeader): only then does the network
// service load the GSSAPI library.
func writeNegotiateSeen(profile string) error {
	state, err := json.Marshal(map[string]any{"net": map[string]any{"received_http_auth_negotiate_headers": true}})
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(profile, "Local State"), state, 0o600); err != nil {
		return fmt.Errorf("write the profile's Local State: %w", err)
	}
	return nil
}

// killProfile kills what is left of a browser that ran with this profile:
// Chromium's zygote and utility processes can outlive the main one when it
// is killed, and every one of them has --user-data-dir=profile on its
// command line. It looks until a few passes in a row find none, since a
// child may fork while its parent dies.
func killProfile(profile string) {
	want := []byte("--user-data-dir=" + profile)
	deadline := time.Now().Add(3 * time.Second)
	for quiet := 0; quiet < 3 && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		found := 0
		entries, _ := os.ReadDir("/proc")
		for _, e := range entries {
			pid, err := strconv.Atoi(e.Name())
			if err != nil || pid == os.Getpid() {
				continue
			}
			cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
			if err != nil {
				continue
			}
			for arg := range bytes.SplitSeq(cmdline, []byte{0}) {
				if bytes.Equal(arg, want) {
					_ = syscall.Kill(pid, syscall.SIGKILL)
					found++
					break
				}
			}
		}
		if found == 0 {
			quiet++
		} else {
			quiet = 0
		}
	}
}

// tail is the last n bytes of the browser's output, without Chromium's
// complaints about the missing D-Bus, which every headless start here logs
// and which say nothing about a failure.
func (b *Browser) tail(n int) string {
	out, err := os.ReadFile(b.output.Name())
	if err != nil {
		return fmt.Sprintf("(cannot read the browser's output: %v)", err)
	}
	var keep []string
	for line := range strings.SplitSeq(string(out), "\n") {
		if !strings.Contains(line, "ERROR:dbus/") {
			keep = append(keep, line)
		}
	}
	s := strings.Join(keep, "\n")
	if len(s) > n {
		s = "…" + s[len(s)-n:]
	}
	return s
}
