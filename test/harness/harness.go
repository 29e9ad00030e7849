// Package harness starts the real reana-site daemon as root and acts as
// the real POSIX test users that test/setup.sh creates, with the real
// reana-client. The end-to-end tests and the benchmarks share it.
package harness

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// Env holds what every test shares: paths from test/setup.sh and the
// binary built for this run.
type Env struct {
	Repo    string
	Bin     string
	Client  string
	Python  string
	Commons string
	RunID   string
	// Apptainers says which Apptainer the container tests run. Images
	// holds the test images test/images/build.sh made.
	Apptainers
	Images string
	// pool remembers, for this test run, why the real HTCondor pool could
	// not start, so later tests fall back to the stand-in at once instead
	// of waiting for it again.
	pool *poolMemo
	// kube is this run's real Kubernetes API server, once a test asked
	// for it.
	kube *realKube
}

// Prepare reads .cache/setup.env and builds the binary; repo is the
// repository root.
func Prepare(repo string) (*Env, error) {
	vars, err := readEnvFile(filepath.Join(repo, ".cache", "setup.env"))
	if err != nil {
		return nil, fmt.Errorf("read .cache/setup.env (run test/setup.sh first): %w", err)
	}
	s := &Env{pool: &poolMemo{}, kube: &realKube{}, Repo: repo, Client: vars["REANA_CLIENT"], Python: vars["PYTHON"], Commons: vars["REANA_COMMONS_DIR"], RunID: RandomHex(4),
		Apptainers: ChooseApptainer(repo, vars, os.Getenv("REANA_SITE_TEST_APPTAINER")), Images: vars["IMAGES_DIR"]}
	if s.Client == "" || s.Python == "" {
		return s, fmt.Errorf(".cache/setup.env lacks REANA_CLIENT or PYTHON")
	}
	// The binary must be executable by the test users: the daemon re-executes
	// it (/proc/self/exe) as them for every file operation and step. Each run
	// builds its own, so two runs (two checkouts sharing .cache) never start
	// daemons from each other's code; Close removes it.
	parent := filepath.Join(repo, ".cache", "e2e")
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return s, err
	}
	dir, err := os.MkdirTemp(parent, "bin-")
	if err != nil {
		return s, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return s, err
	}
	s.Bin = filepath.Join(dir, "reana-site")
	build := exec.Command("go", "build", "-o", s.Bin, "-ldflags", "-X main.version=e2e", "./cmd/reana-site")
	build.Dir = repo
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return s, fmt.Errorf("build reana-site: %w", err)
	}
	return s, os.Chmod(s.Bin, 0o755)
}

// Close stops the run's real Kubernetes API server, if one started, and
// removes the binary Prepare built.
func (e *Env) Close() {
	if e.kube != nil {
		e.kube.mu.Lock()
		e.kube.close()
		e.kube.mu.Unlock()
	}
	if e.Bin != "" {
		os.RemoveAll(filepath.Dir(e.Bin))
	}
}

func readEnvFile(path string) (map[string]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	vars := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "=")
		if ok {
			vars[k] = strings.Trim(v, `"'`)
		}
	}
	return vars, sc.Err()
}

func RandomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// syncBuffer collects the daemon's output for failure reports.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Daemon is one reana-site serve process with its own state directory and
// port, kept across restarts.
type Daemon struct {
	t        testing.TB
	StateDir string
	// WorkspaceRoot is the REANA_SITE_WORKSPACE_ROOT template: a directory
	// per run inside each user's home.
	WorkspaceRoot string
	// SecretsRoot is the REANA_SITE_SECRETS_ROOT template, one of this
	// daemon's own in each user's home.
	SecretsRoot string
	Addr        string
	ExtraEnv    []string
	env         *Env
	cmd         *exec.Cmd
	out         *syncBuffer
	exited      chan struct{}
}

// StartDaemon starts a daemon as root and waits until it answers.
func StartDaemon(t testing.TB, e *Env, extraEnv ...string) *Daemon {
	t.Helper()
	state := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	d := &Daemon{
		t:             t,
		env:           e,
		StateDir:      state,
		WorkspaceRoot: "{home}/.reana-e2e/" + e.RunID + "-" + filepath.Base(state),
		// Per daemon: t.TempDir's base name (001) repeats across tests.
		SecretsRoot: "{home}/.reana-e2e/" + e.RunID + "-secrets-" + RandomHex(4),
		Addr:        addr,
		ExtraEnv:    extraEnv,
	}
	d.Start()
	t.Cleanup(func() {
		d.Stop()
		if t.Failed() {
			t.Logf("daemon output:\n%s", d.out.String())
		}
	})
	return d
}

func (d *Daemon) environ() []string {
	e := []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"REANA_SITE_STATE_DIR=" + d.StateDir,
		"REANA_SITE_LISTEN=" + d.Addr,
		"REANA_SITE_WORKSPACE_ROOT=" + d.WorkspaceRoot,
		"REANA_SITE_SECRETS_ROOT=" + d.SecretsRoot,
		"REANA_SITE_POLL_INTERVAL=200ms",
		"REANA_SITE_TOKEN_SOCKET=" + filepath.Join(d.StateDir, "token.sock"),
		"REANA_SITE_ADMIN_SOCKET=" + filepath.Join(d.StateDir, "admin.sock"),
		"REANA_SITE_LOG_LEVEL=debug",
	}
	return append(e, d.ExtraEnv...)
}

// Start (re)starts the daemon process on the same state and port.
func (d *Daemon) Start() {
	d.t.Helper()
	d.out = &syncBuffer{}
	d.cmd = exec.Command(d.env.Bin, "serve")
	d.cmd.Env = d.environ()
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	require.NoError(d.t, d.cmd.Start())
	d.exited = make(chan struct{})
	go func(c *exec.Cmd, done chan struct{}) { _ = c.Wait(); close(done) }(d.cmd, d.exited)
	deadline := time.Now().Add(60 * time.Second)
	for {
		st, _, err := d.Do("GET", "/api/ping", "", nil)
		if err == nil && st == http.StatusOK {
			return
		}
		select {
		case <-d.exited:
			d.t.Fatalf("daemon exited during start:\n%s", d.out.String())
		default:
		}
		if time.Now().After(deadline) {
			d.t.Fatalf("daemon did not answer within 60 s (last error %v):\n%s", err, d.out.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop ends the daemon with SIGTERM, as systemd would.
func (d *Daemon) Stop() {
	if d.cmd == nil || d.cmd.Process == nil {
		return
	}
	select {
	case <-d.exited:
		return
	default:
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(30 * time.Second):
		_ = d.cmd.Process.Kill()
		<-d.exited
	}
}

// Kill ends the daemon with SIGKILL, as a crash would.
func (d *Daemon) Kill() {
	d.t.Helper()
	require.NoError(d.t, d.cmd.Process.Kill())
	<-d.exited
}

// Pid is the serving process (the same pid after privileges are narrowed).
func (d *Daemon) Pid() int { return d.cmd.Process.Pid }

// Output is what the daemon logged so far.
func (d *Daemon) Output() string { return d.out.String() }

// Admin runs `reana-site admin ...` as root against the daemon's state.
func (d *Daemon) Admin(args ...string) (string, error) {
	cmd := exec.Command(d.env.Bin, append([]string{"admin"}, args...)...)
	cmd.Env = d.environ()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		return stdout.String() + stderr.String(), fmt.Errorf("admin %v: %w: %s", args, err, stderr.String())
	}
	return stdout.String(), nil
}

// Env is the suite the daemon belongs to.
func (d *Daemon) Env() *Env { return d.env }

// URL is what reana-client gets as REANA_SERVER_URL.
func (d *Daemon) URL() string { return "https://" + d.Addr }

var insecureClient = &http.Client{
	Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
	Timeout:   60 * time.Second,
}

// Do sends one HTTP request. path may carry a query; token, when set, is
// added as access_token the way reana-client sends it.
func (d *Daemon) Do(method, path, token string, body io.Reader, headers ...string) (int, []byte, error) {
	u := d.URL() + path
	if token != "" {
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		u += sep + "access_token=" + url.QueryEscape(token)
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		return 0, nil, err
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := insecureClient.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

// JSON sends a request and decodes a JSON answer into out (if not nil).
func (d *Daemon) JSON(t testing.TB, method, path, token string, body any, out any) int {
	t.Helper()
	var r io.Reader
	var hdr []string
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		r = bytes.NewReader(b)
		hdr = []string{"Content-Type", "application/json"}
	}
	st, b, err := d.Do(method, path, token, r, hdr...)
	require.NoError(t, err)
	if out != nil && len(b) > 0 {
		require.NoError(t, json.Unmarshal(b, out), "decode %s %s answer %q", method, path, b)
	}
	return st
}

// User is a POSIX test user created by test/setup.sh, with a token.
type User struct {
	Name  string
	UID   int
	GID   int
	Home  string
	Token string
	d     *Daemon
}

// PosixUser is a test user as NSS knows them, not (yet) registered with
// the daemon and without a token.
func PosixUser(t testing.TB, d *Daemon, name string) *User {
	t.Helper()
	pw, err := user.Lookup(name)
	require.NoError(t, err, "test user %s missing: run test/setup.sh", name)
	u := &User{Name: name, Home: pw.HomeDir, d: d}
	fmt.Sscan(pw.Uid, &u.UID)
	fmt.Sscan(pw.Gid, &u.GID)
	return u
}

// AddUser registers a test user with the daemon and issues a token.
func (d *Daemon) AddUser(t testing.TB, name string) *User {
	t.Helper()
	u := PosixUser(t, d, name)
	if _, err := d.Admin("user", "add", name); err != nil && !strings.Contains(err.Error(), "exists") {
		require.NoError(t, err)
	}
	out, err := d.Admin("token", "issue", name)
	require.NoError(t, err)
	u.Token = strings.TrimSpace(out)
	require.NotEmpty(t, u.Token)
	return u
}

// Run runs argv as the user (uid, gid and supplementary groups from NSS,
// clean environment) in dir.
func (u *User) Run(t testing.TB, dir string, extraEnv []string, argv ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := []string{"--reuid=" + u.Name, "--regid=" + u.Name, "--init-groups", "--reset-env", "--", "/usr/bin/env",
		"HOME=" + u.Home, "LANG=C.UTF-8", "LC_ALL=C.UTF-8",
		"PATH=" + filepath.Dir(u.d.env.Client) + ":/usr/local/bin:/usr/bin:/bin"}
	args = append(args, extraEnv...)
	args = append(args, argv...)
	cmd := exec.CommandContext(ctx, "setpriv", args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		require.True(t, ok, "run %v as %s: %v", argv, u.Name, err)
		code = ee.ExitCode()
	}
	return string(out), code
}

// Client runs reana-client as the user against the daemon.
func (u *User) Client(t testing.TB, dir string, args ...string) (string, int) {
	t.Helper()
	return u.Run(t, dir, []string{"REANA_SERVER_URL=" + u.d.URL(), "REANA_ACCESS_TOKEN=" + u.Token}, append([]string{u.d.env.Client}, args...)...)
}

// MustClient runs reana-client and requires success.
func (u *User) MustClient(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, code := u.Client(t, dir, args...)
	require.Zero(t, code, "reana-client %s as %s failed:\n%s\ndaemon:\n%s", strings.Join(args, " "), u.Name, out, u.d.Output())
	return out
}

// WorkDir makes a fresh directory owned by the user, with a copy of a
// testdata tree made by the user (so the files are theirs, as on a login
// node).
func (u *User) WorkDir(t testing.TB, testdata string) string {
	t.Helper()
	dir := filepath.Join(u.Home, ".reana-e2e", u.d.env.RunID+"-src-"+RandomHex(4))
	out, code := u.Run(t, "/", nil, "mkdir", "-p", "-m", "0700", dir)
	require.Zero(t, code, out)
	if testdata != "" {
		src := filepath.Join(u.d.env.Repo, "test", "testdata", testdata)
		out, code = u.Run(t, "/", nil, "cp", "-r", src+"/.", dir)
		require.Zero(t, code, out)
	}
	return dir
}

// Workflow is the API's view of one run.
type Workflow struct {
	ID       string `json:"id"`
	Name     string `json:"name"`
	Status   string `json:"status"`
	Logs     string `json:"logs"`
	Progress struct {
		Total    struct{ Total int } `json:"total"`
		Running  struct{ Total int } `json:"running"`
		Finished struct{ Total int } `json:"finished"`
		Failed   struct{ Total int } `json:"failed"`
	} `json:"progress"`
}

// Status asks the API for a workflow's status.
func (u *User) Status(t testing.TB, wf string) (Workflow, int) {
	t.Helper()
	var w Workflow
	st := u.d.JSON(t, "GET", "/api/workflows/"+url.PathEscape(wf)+"/status", u.Token, nil, &w)
	return w, st
}

// WaitStatus polls until the workflow reaches one of the wanted states (or
// any final state, which then fails the test if unwanted).
func (u *User) WaitStatus(t testing.TB, wf string, timeout time.Duration, want ...string) Workflow {
	t.Helper()
	final := map[string]bool{"finished": true, "failed": true, "stopped": true, "deleted": true}
	deadline := time.Now().Add(timeout)
	for {
		w, st := u.Status(t, wf)
		require.Equal(t, http.StatusOK, st)
		for _, s := range want {
			if w.Status == s {
				return w
			}
		}
		if final[w.Status] {
			t.Fatalf("workflow %s ended %s, want %v; logs:\n%s\ndaemon:\n%s", wf, w.Status, want, u.Logs(t, wf), u.d.Output())
		}
		if time.Now().After(deadline) {
			t.Fatalf("workflow %s still %s after %s, want %v; daemon:\n%s", wf, w.Status, timeout, want, u.d.Output())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Logs returns the workflow's logs as the API gives them (decoded).
func (u *User) Logs(t testing.TB, wf string) string {
	t.Helper()
	var r struct {
		Logs string `json:"logs"`
	}
	u.d.JSON(t, "GET", "/api/workflows/"+url.PathEscape(wf)+"/logs", u.Token, nil, &r)
	return r.Logs
}

// WorkspaceOf is where the daemon keeps a workflow's workspace for a user.
func (d *Daemon) WorkspaceOf(u *User, workflowID string) string {
	root := strings.NewReplacer("{home}", u.Home, "{user}", u.Name, "{uid}", fmt.Sprint(u.UID)).Replace(d.WorkspaceRoot)
	return filepath.Join(root, "workflows", workflowID)
}

// CmdError reports a failed command with its output.
type CmdError struct {
	Argv []string
	Out  string
	Err  error
}

func (e *CmdError) Error() string {
	return fmt.Sprintf("%s: %v: %s", strings.Join(e.Argv, " "), e.Err, e.Out)
}

// ExecCombined runs argv as the caller and returns its combined output.
func ExecCombined(argv ...string) (string, error) {
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	return string(out), err
}

// Daemon is the daemon the user is registered with.
func (u *User) Daemon() *Daemon { return u.d }
