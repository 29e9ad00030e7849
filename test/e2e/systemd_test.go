//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
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
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/daemon/privsep"
	"github.com/reana-site/reana-site/test/harness"
)

// These tests run the daemon the ways systemd does, with the real tools
// that run here without systemd as PID 1: Debian's systemd-socket-activate
// for socket activation, a unixgram socket of the test's own for
// NOTIFY_SOCKET, and systemd-analyze and systemd-tmpfiles on the shipped
// units. harness.StartDaemon always binds its own port, so they start the
// daemon themselves.

// sdSite is one daemon's state and settings, shared by the admin commands
// and the daemon.
type sdSite struct {
	state, workspaceRoot string
}

func newSDSite(t *testing.T) sdSite {
	return sdSite{
		state:         t.TempDir(),
		workspaceRoot: "{home}/.reana-e2e/" + env.RunID + "-sd-" + harness.RandomHex(4),
	}
}

func (s sdSite) environ(listen string) []string {
	return []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"REANA_SITE_STATE_DIR=" + s.state,
		"REANA_SITE_LISTEN=" + listen,
		"REANA_SITE_WORKSPACE_ROOT=" + s.workspaceRoot,
		"REANA_SITE_POLL_INTERVAL=200ms",
		"REANA_SITE_LOG_LEVEL=debug",
	}
}

// token adds name as a user of the site and issues a token, with the
// admin command working on the state directory (no daemon needed).
func (s sdSite) token(t *testing.T, name string) string {
	t.Helper()
	for _, args := range [][]string{{"user", "add", name}, {"token", "issue", name}} {
		cmd := exec.Command(env.Bin, append([]string{"admin"}, args...)...)
		cmd.Env = s.environ("localhost:0")
		out, err := cmd.Output()
		require.NoError(t, err, "admin %v: %s", args, out)
		if args[0] == "token" {
			return strings.TrimSpace(string(out))
		}
	}
	return ""
}

// freeAddr is a loopback address nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	return ln.Addr().String()
}

// sdProcess is a started daemon (or its launcher) and its output.
type sdProcess struct {
	cmd    *exec.Cmd
	out    *bytes.Buffer
	exited chan struct{}
}

func startSD(t *testing.T, cmd *exec.Cmd) *sdProcess {
	t.Helper()
	p := &sdProcess{cmd: cmd, out: &bytes.Buffer{}, exited: make(chan struct{})}
	if cmd.Stdout == nil && cmd.Stderr == nil {
		// One buffer written only by the child's output copier; read
		// after exit, or on failure.
		cmd.Stdout, cmd.Stderr = p.out, p.out
	}
	require.NoError(t, cmd.Start())
	go func() { _ = cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() {
		select {
		case <-p.exited:
		default:
			_ = cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-p.exited:
			case <-time.After(30 * time.Second):
				_ = cmd.Process.Kill()
				<-p.exited
			}
		}
		if t.Failed() {
			t.Logf("daemon output:\n%s", p.out.String())
		}
	})
	return p
}

func (p *sdProcess) waitExit(t *testing.T, timeout time.Duration) int {
	t.Helper()
	select {
	case <-p.exited:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		t.Fatalf("daemon still running %s after SIGTERM", timeout)
		return -1
	}
}

func insecureHTTP() *http.Client {
	return &http.Client{
		Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}},
		Timeout:   60 * time.Second,
	}
}

// asUser runs argv as a test user, the way harness.User.Run does.
func asUser(t *testing.T, name string, extraEnv []string, argv ...string) (string, int) {
	t.Helper()
	pw, err := user.Lookup(name)
	require.NoError(t, err, "test user %s missing: run test/setup.sh", name)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	args := []string{"--reuid=" + name, "--regid=" + name, "--init-groups", "--reset-env", "--", "/usr/bin/env",
		"HOME=" + pw.HomeDir, "LANG=C.UTF-8", "LC_ALL=C.UTF-8",
		"PATH=" + filepath.Dir(env.Client) + ":/usr/local/bin:/usr/bin:/bin"}
	args = append(append(args, extraEnv...), argv...)
	cmd := exec.CommandContext(ctx, "setpriv", args...)
	cmd.Dir = "/"
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	}
	require.NoError(t, err, "run %v as %s", argv, name)
	return string(out), 0
}

// TestSystemdSocketActivationServesReanaClient: the daemon started by
// Debian's systemd-socket-activate on the first connection, with an HTTPS
// socket and a token socket, serves reana-client on the socket it was
// given, after re-executing itself with narrowed privileges in the same
// process.
func TestSystemdSocketActivationServesReanaClient(t *testing.T) {
	site := newSDSite(t)
	token := site.token(t, "alice")
	activated := freeAddr(t)
	// REANA_SITE_LISTEN names another port: the daemon must not bind it.
	configured := freeAddr(t)
	tokenSock := filepath.Join(t.TempDir(), "token.sock")

	args := []string{"-l", activated, "-l", tokenSock, "--fdname=https:token"}
	for _, e := range site.environ(configured) {
		args = append(args, "-E", e)
	}
	p := startSD(t, exec.Command("systemd-socket-activate", append(args, env.Bin, "serve")...))
	pid := p.cmd.Process.Pid

	// The sockets are bound in order, the token socket last; until a
	// connection comes, the daemon is not started.
	require.Eventually(t, func() bool {
		b, err := os.ReadFile("/proc/net/unix")
		return err == nil && strings.Contains(string(b), " "+tokenSock+"\n")
	}, 10*time.Second, 20*time.Millisecond, "systemd-socket-activate did not listen")
	exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	require.NoError(t, err)
	assert.Equal(t, "systemd-socket-activate", filepath.Base(exe), "started before the first connection")

	out, code := asUser(t, "alice", []string{"REANA_SERVER_URL=https://" + activated, "REANA_ACCESS_TOKEN=" + token},
		env.Client, "ping")
	require.Zero(t, code, "reana-client ping:\n%s", out)
	assert.Contains(t, out, "alice")
	assert.Contains(t, strings.ToLower(out), "connected")

	// The same pid now runs reana-site, narrowed by its re-execution.
	exe, err = os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
	require.NoError(t, err)
	assert.Equal(t, env.Bin, exe, "systemd-socket-activate and the daemon's re-execution keep the pid")
	st := procStatusMaybe(pid)
	require.NotNil(t, st)
	bnd, err := strconv.ParseUint(st["CapBnd"], 16, 64)
	require.NoError(t, err)
	assert.Equal(t, privsep.Kept, bnd, "the serving process is the re-executed one")

	// It serves on the socket it was given and bound nothing itself.
	_, err = net.DialTimeout("tcp", configured, time.Second)
	assert.Error(t, err, "REANA_SITE_LISTEN must not be bound under socket activation")

	// Every descriptor it holds is close-on-exec, so no helper or step
	// inherits a socket; the token socket is among them, kept open.
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	require.NoError(t, err)
	tokenInode := unixSocketInode(t, tokenSock)
	holdsToken := false
	for _, fd := range fds {
		n, _ := strconv.Atoi(fd.Name())
		if n < 3 {
			continue
		}
		info, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%d", pid, n))
		if err != nil {
			continue // closed meanwhile
		}
		flags := fdinfoFlags(t, string(info))
		assert.NotZero(t, flags&syscall.O_CLOEXEC, "descriptor %d of the daemon is inheritable", n)
		if link, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%d", pid, n)); link == "socket:["+tokenInode+"]" {
			holdsToken = true
		}
	}
	assert.True(t, holdsToken, "the token socket stays open in the daemon")

	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	assert.Zero(t, p.waitExit(t, 30*time.Second), "graceful stop")
	assert.Contains(t, p.out.String(), "socket_activated=true")
}

// unixSocketInode finds the inode of the socket listening at path.
func unixSocketInode(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile("/proc/net/unix")
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) >= 8 && f[7] == path {
			return f[6]
		}
	}
	t.Fatalf("no socket listens at %s", path)
	return ""
}

func fdinfoFlags(t *testing.T, info string) int {
	t.Helper()
	for _, line := range strings.Split(info, "\n") {
		if v, ok := strings.CutPrefix(line, "flags:"); ok {
			flags, err := strconv.ParseInt(strings.TrimSpace(v), 8, 64)
			require.NoError(t, err)
			return int(flags)
		}
	}
	t.Fatalf("no flags in fdinfo %q", info)
	return 0
}

// TestSystemdNotifyWatchdogAndGracefulStop: with NOTIFY_SOCKET and a
// watchdog, the daemon sends READY=1 once it serves, WATCHDOG=1 at about
// half of WATCHDOG_USEC, and STOPPING=1 on SIGTERM, after which an upload
// in flight still completes.
func TestSystemdNotifyWatchdogAndGracefulStop(t *testing.T) {
	site := newSDSite(t)
	token := site.token(t, "alice")
	addr := freeAddr(t)
	notify := filepath.Join(t.TempDir(), "notify")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: notify, Net: "unixgram"})
	require.NoError(t, err)
	defer conn.Close()
	type msg struct {
		at   time.Time
		text string
	}
	msgs := make(chan msg, 1000)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			msgs <- msg{time.Now(), string(buf[:n])}
		}
	}()
	next := func(want string) msg {
		t.Helper()
		deadline := time.After(60 * time.Second)
		for {
			select {
			case m := <-msgs:
				if strings.Contains("\n"+m.text+"\n", "\n"+want+"\n") {
					return m
				}
			case <-deadline:
				t.Fatalf("no %s within 60 s", want)
			}
		}
	}

	// systemd sets WATCHDOG_PID to the pid it forked; sh learns it with $$
	// and exec keeps it, as does the daemon's own re-execution.
	cmd := exec.Command("/bin/sh", "-c", `export WATCHDOG_PID=$$; exec "$0" serve`, env.Bin)
	cmd.Env = append(site.environ(addr), "NOTIFY_SOCKET="+notify, "WATCHDOG_USEC=1000000")
	p := startSD(t, cmd)

	ready := next("READY=1")
	assert.Contains(t, ready.text, "STATUS=serving https://", "READY=1 comes with a status line")
	client := insecureHTTP()
	resp, err := client.Get("https://" + addr + "/api/ping")
	require.NoError(t, err, "READY=1 only once the daemon answers")
	resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)

	// WATCHDOG=1 every 500 ms; two within 2 s leaves room for a slow
	// machine, and at most eight shows it is not a busy loop.
	pings := 0
	window := time.After(2 * time.Second)
count:
	for {
		select {
		case m := <-msgs:
			if m.text == "WATCHDOG=1" {
				pings++
			}
		case <-window:
			break count
		}
	}
	assert.GreaterOrEqual(t, pings, 2, "watchdog pings within 2 s at WATCHDOG_USEC=1s")
	assert.LessOrEqual(t, pings, 8, "watchdog pings within 2 s at WATCHDOG_USEC=1s")

	// An upload whose body pauses half-way; SIGTERM arrives in the pause.
	wf := sdCreateWorkflow(t, client, addr, token)
	half := bytes.Repeat([]byte("0123456789abcdef"), 64<<10) // 1 MiB
	body, w := io.Pipe()
	midway := make(chan struct{})
	go func() {
		_, _ = w.Write(half)
		close(midway)
		time.Sleep(time.Second)
		_, _ = w.Write(half)
		_ = w.Close()
	}()
	type result struct {
		status int
		body   string
		err    error
		at     time.Time
	}
	done := make(chan result, 1)
	go func() {
		u := "https://" + addr + "/api/workflows/" + wf + "/workspace?file_name=data.bin&access_token=" + url.QueryEscape(token)
		req, err := http.NewRequest("POST", u, body)
		if err != nil {
			done <- result{err: err}
			return
		}
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := client.Do(req)
		if err != nil {
			done <- result{err: err}
			return
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		done <- result{resp.StatusCode, string(b), err, time.Now()}
	}()
	<-midway
	time.Sleep(200 * time.Millisecond) // the handler is copying the body
	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	stopping := next("STOPPING=1")

	r := <-done
	require.NoError(t, r.err, "the upload in flight survives SIGTERM")
	assert.Equal(t, http.StatusOK, r.status, r.body)
	assert.True(t, stopping.at.Before(r.at), "STOPPING=1 was sent while the upload was in flight")
	assert.Zero(t, p.waitExit(t, 30*time.Second), "graceful stop")

	files, err := filepath.Glob(filepath.Join(homeOf(t, "alice"), ".reana-e2e", filepath.Base(site.workspaceRoot), "workflows", "*", "data.bin"))
	require.NoError(t, err)
	require.Len(t, files, 1, "the uploaded file is in the workspace")
	fi, err := os.Stat(files[0])
	require.NoError(t, err)
	assert.Equal(t, int64(2*len(half)), fi.Size(), "the whole upload was written")
}

func homeOf(t *testing.T, name string) string {
	t.Helper()
	pw, err := user.Lookup(name)
	require.NoError(t, err)
	return pw.HomeDir
}

// sdCreateWorkflow creates a one-step workflow through the API and returns
// its id.
func sdCreateWorkflow(t *testing.T, client *http.Client, addr, token string) string {
	t.Helper()
	spec := `{"version": "0.9.0", "workflow": {"type": "serial", "specification": {"steps": [
		{"name": "s", "environment": "docker.io/library/debian:12-slim", "commands": ["true"]}]}}}`
	u := "https://" + addr + "/api/workflows?workflow_name=sdupload&access_token=" + url.QueryEscape(token)
	resp, err := client.Post(u, "application/json", strings.NewReader(spec))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, resp.StatusCode, "%s", b)
	var c struct {
		ID string `json:"workflow_id"`
	}
	require.NoError(t, json.Unmarshal(b, &c))
	require.NotEmpty(t, c.ID)
	return c.ID
}

// TestSystemdJournalGetsStructuredFields: when stderr is the journal
// stream (JOURNAL_STREAM), the daemon sends its records to the journal's
// socket, with the workflow, the user and the step as fields. The daemon
// runs in its own mount namespace, where the test's socket is mounted at
// /run/systemd/journal/socket, the address go-systemd's journal package
// uses; nothing outside changes.
func TestSystemdJournalGetsStructuredFields(t *testing.T) {
	site := newSDSite(t)
	token := site.token(t, "alice")
	addr := freeAddr(t)
	jdir := t.TempDir()
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: filepath.Join(jdir, "socket"), Net: "unixgram"})
	require.NoError(t, err)
	defer conn.Close()
	entries := make(chan map[string]string, 1000)
	go func() {
		buf := make([]byte, 1<<20)
		for {
			n, err := conn.Read(buf)
			if err != nil {
				return
			}
			if e, err := parseJournalEntry(buf[:n]); err == nil {
				entries <- e
			}
		}
	}()
	var seen []map[string]string
	find := func(message string) map[string]string {
		t.Helper()
		for _, e := range seen {
			if e["MESSAGE"] == message {
				return e
			}
		}
		deadline := time.After(60 * time.Second)
		for {
			select {
			case e := <-entries:
				seen = append(seen, e)
				if e["MESSAGE"] == message {
					return e
				}
			case <-deadline:
				t.Fatalf("no journal entry %q within 60 s; got %v", message, seen)
				return nil
			}
		}
	}

	stderr, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	require.NoError(t, err)
	defer stderr.Close()
	// systemd sets JOURNAL_STREAM to the device and inode of the stream
	// it connects to stderr; here stderr is a file, named the same way.
	script := `d=/run/systemd; [ -d "$d" ] || d=/run
mount -t tmpfs tmpfs "$d" && mkdir -p /run/systemd/journal && mount --bind "$1" /run/systemd/journal || exit 1
export JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2)
exec "$0" serve`
	cmd := exec.Command("unshare", "--mount", "--propagation=private", "/bin/sh", "-c", script, env.Bin, jdir)
	cmd.Env = site.environ(addr)
	cmd.Stdout, cmd.Stderr = stderr, stderr
	p := startSD(t, cmd)
	t.Cleanup(func() {
		if t.Failed() {
			b, _ := os.ReadFile(stderr.Name())
			t.Logf("daemon stderr:\n%s", b)
		}
	})

	serving := find("reana-site serving")
	assert.Equal(t, "reana-site", serving["SYSLOG_IDENTIFIER"])
	assert.Equal(t, "6", serving["PRIORITY"], "info")
	assert.Equal(t, "https://"+addr, serving["URL"])
	assert.Equal(t, site.state, serving["STATE_DIR"])

	client := insecureHTTP()
	wf := sdCreateWorkflow(t, client, addr, token)
	created := find("workflow created")
	assert.Equal(t, "alice", created["USER"])
	assert.Equal(t, wf, created["WORKFLOW"])
	assert.Equal(t, "api", created["COMPONENT"])

	resp, err := client.Post("https://"+addr+"/api/workflows/"+wf+"/start?access_token="+url.QueryEscape(token),
		"application/json", strings.NewReader("{}"))
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
	submitted := find("job submitted")
	assert.Equal(t, wf, submitted["WORKFLOW"])
	assert.Equal(t, "s", submitted["STEP"])
	assert.Equal(t, "local", submitted["BACKEND"])
	assert.NotEmpty(t, submitted["JOB"])

	require.NoError(t, p.cmd.Process.Signal(syscall.SIGTERM))
	assert.Zero(t, p.waitExit(t, 30*time.Second))
	text, err := os.ReadFile(stderr.Name())
	require.NoError(t, err)
	assert.NotContains(t, string(text), "workflow created", "records go to the journal, not also to stderr")
}

// parseJournalEntry decodes one datagram of the journal's native protocol:
// NAME=value lines, or NAME, a newline, a little-endian 64-bit length, the
// value and a newline for values that hold newlines.
func parseJournalEntry(b []byte) (map[string]string, error) {
	e := map[string]string{}
	for len(b) > 0 {
		nl := bytes.IndexByte(b, '\n')
		if nl < 0 {
			return nil, fmt.Errorf("unterminated field %q", b)
		}
		line := b[:nl]
		if k, v, ok := bytes.Cut(line, []byte("=")); ok {
			e[string(k)] = string(v)
			b = b[nl+1:]
			continue
		}
		b = b[nl+1:]
		if len(b) < 8 {
			return nil, fmt.Errorf("short binary field %q", line)
		}
		n := binary.LittleEndian.Uint64(b[:8])
		b = b[8:]
		if uint64(len(b)) < n+1 {
			return nil, fmt.Errorf("short binary field %q", line)
		}
		e[string(line)] = string(b[:n])
		b = b[n+1:]
	}
	return e, nil
}

// TestSystemdUnitsVerify: the shipped units pass systemd-analyze verify
// as they are (ExecStart=/usr/bin/reana-site), installed with the binary
// into a scratch root, and the tmpfiles.d file creates the state
// directory root-only.
func TestSystemdUnitsVerify(t *testing.T) {
	units := []string{"reana-site.service", "reana-site.socket", "reana-site-token.socket"}
	root := scratchRoot(t, units, nil)
	out, err := exec.Command("systemd-analyze", append([]string{"verify", "--man=no", "--root=" + root}, units...)...).CombinedOutput()
	require.NoError(t, err, "systemd-analyze verify:\n%s", out)
	// verify exits 0 on unknown keys and unparsable values ("ignoring"),
	// so any output is a failure.
	assert.Empty(t, string(out), "systemd-analyze verify")

	// The check can fail: a misspelt value is reported.
	bad := scratchRoot(t, units, func(unit string, b []byte) []byte {
		if unit != "reana-site.service" {
			return b
		}
		return bytes.Replace(b, []byte("\nKillMode=process\n"), []byte("\nKillMode=proces\n"), 1)
	})
	out, _ = exec.Command("systemd-analyze", append([]string{"verify", "--man=no", "--root=" + bad}, units...)...).CombinedOutput()
	assert.Contains(t, string(out), "kill mode", "a broken unit is reported")

	tmpfiles := filepath.Join(root, "usr", "lib", "tmpfiles.d")
	require.NoError(t, os.MkdirAll(tmpfiles, 0o755))
	copyFile(t, filepath.Join(env.Repo, "systemd", "reana-site.tmpfiles"), filepath.Join(tmpfiles, "reana-site.conf"), 0o644)
	out, err = exec.Command("systemd-tmpfiles", "--root="+root, "--create", "reana-site.conf").CombinedOutput()
	require.NoError(t, err, "systemd-tmpfiles:\n%s", out)
	assert.Empty(t, string(out))
	fi, err := os.Stat(filepath.Join(root, "var", "lib", "reana-site"))
	require.NoError(t, err)
	assert.Equal(t, os.ModeDir|0o700, fi.Mode())
	assert.Equal(t, uint32(0), fi.Sys().(*syscall.Stat_t).Uid)
}

// scratchRoot installs the binary and the units (through edit, when not
// nil) where the package puts them, plus Debian's standard targets and
// slices, which the units' default dependencies need.
func scratchRoot(t *testing.T, units []string, edit func(unit string, b []byte) []byte) string {
	t.Helper()
	root := t.TempDir()
	unitDir := filepath.Join(root, "usr", "lib", "systemd", "system")
	require.NoError(t, os.MkdirAll(unitDir, 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "usr", "bin"), 0o755))
	copyFile(t, env.Bin, filepath.Join(root, "usr", "bin", "reana-site"), 0o755)
	for _, u := range units {
		b, err := os.ReadFile(filepath.Join(env.Repo, "systemd", u))
		require.NoError(t, err)
		if edit != nil {
			b = edit(u, b)
		}
		require.NoError(t, os.WriteFile(filepath.Join(unitDir, u), b, 0o644))
	}
	for _, pattern := range []string{"*.target", "*.slice"} {
		std, err := filepath.Glob(filepath.Join("/usr/lib/systemd/system", pattern))
		require.NoError(t, err)
		require.NotEmpty(t, std, "Debian's systemd package is missing: run test/setup.sh")
		for _, f := range std {
			if target, err := os.Readlink(f); err == nil {
				require.NoError(t, os.Symlink(target, filepath.Join(unitDir, filepath.Base(f))))
				continue
			}
			copyFile(t, f, filepath.Join(unitDir, filepath.Base(f)), 0o644)
		}
	}
	return root
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(from)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(to, b, mode))
}
