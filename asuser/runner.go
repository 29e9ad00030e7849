package asuser

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Runner starts helpers as users.
type Runner struct {
	// Exe is the reana-site binary. Empty means /proc/self/exe, which stays
	// valid when a package upgrade replaces the file on disk.
	Exe string
	// Args are the arguments that make Exe act as a helper.
	Args []string
	// CanSwitch says whether this process may start processes as other
	// users (it holds CAP_SETUID and CAP_SETGID). Without it only the
	// daemon's own uid can be served.
	CanSwitch bool
	// Env are extra environment variables passed to every helper.
	Env []string
}

func (r *Runner) command(ctx context.Context, acct Account) (*exec.Cmd, error) {
	if acct.UID == 0 || acct.GID == 0 {
		return nil, fmt.Errorf("asuser: refusing to run as uid %d gid %d", acct.UID, acct.GID)
	}
	exe := r.Exe
	if exe == "" {
		exe = "/proc/self/exe"
	}
	cmd := exec.CommandContext(ctx, exe, r.Args...)
	cmd.Dir = "/"
	home := acct.Home
	if home == "" {
		home = "/"
	}
	cmd.Env = append([]string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME=" + home,
		"USER=" + acct.Name,
		"LOGNAME=" + acct.Name,
		"LANG=C.UTF-8",
	}, r.Env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if uint32(os.Getuid()) != acct.UID {
		if !r.CanSwitch {
			return nil, fmt.Errorf("asuser: reana-site runs as uid %d without CAP_SETUID/CAP_SETGID, so it cannot act as %s (uid %d)", os.Getuid(), acct.Name, acct.UID)
		}
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: acct.UID, Gid: acct.GID, Groups: acct.Groups}
	}
	cmd.WaitDelay = 5 * time.Second
	return cmd, nil
}

// Call runs op as acct and decodes the result into out (which may be nil).
func (r *Runner) Call(ctx context.Context, acct Account, op Op, args, out any) error {
	cmd, err := r.command(ctx, acct)
	if err != nil {
		return err
	}
	req, err := encodeRequest(op, args)
	if err != nil {
		return err
	}
	cmd.Stdin = bytes.NewReader(req)
	stdout, stderr := &capped{max: maxReply}, &capped{max: maxStderr}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	runErr := cmd.Run()
	if stdout.over {
		return fmt.Errorf("asuser: %s as %s: reply larger than %d bytes", op, acct.Name, maxReply)
	}
	return decodeReply(op, acct, stdout.Bytes(), stderr.String(), runErr, out)
}

// A helper runs as the user, who may tamper with it, so the daemon bounds
// what it reads from one.
const (
	maxReply  = 64 << 20
	maxStderr = 1 << 20
)

// capped keeps at most max bytes and notes whether more came. The buffer
// is a field, not embedded: an embedded bytes.Buffer would lend capped its
// ReadFrom, which io.Copy (and so os/exec) prefers to Write, and the cap
// would never apply.
type capped struct {
	buf  bytes.Buffer
	max  int
	over bool
}

func (c *capped) Write(p []byte) (int, error) {
	if room := c.max - c.buf.Len(); len(p) > room {
		c.over = true
		c.buf.Write(p[:max(room, 0)])
		return len(p), nil
	}
	return c.buf.Write(p)
}

// Bytes is what was kept.
func (c *capped) Bytes() []byte { return c.buf.Bytes() }

// String is what was kept, as a string.
func (c *capped) String() string { return c.buf.String() }

func encodeRequest(op Op, args any) ([]byte, error) {
	raw, err := json.Marshal(args)
	if err != nil {
		return nil, fmt.Errorf("asuser: encode %s arguments: %w", op, err)
	}
	return json.Marshal(Request{Op: op, Args: raw})
}

func decodeReply(op Op, acct Account, stdout []byte, stderr string, runErr error, out any) error {
	var rep Reply
	if err := json.Unmarshal(stdout, &rep); err != nil {
		msg := strings.TrimSpace(stderr)
		if runErr != nil {
			return fmt.Errorf("asuser: %s as %s: %w: %s", op, acct.Name, runErr, msg)
		}
		return fmt.Errorf("asuser: %s as %s: bad reply: %w: %s", op, acct.Name, err, msg)
	}
	if rep.Error != nil {
		return rep.Error
	}
	if out != nil && len(rep.Result) > 0 {
		if err := json.Unmarshal(rep.Result, out); err != nil {
			return fmt.Errorf("asuser: %s as %s: decode result: %w", op, acct.Name, err)
		}
	}
	return nil
}

// Session is an operation in progress that handed a file back. The helper
// waits until the session ends.
type Session struct {
	File *os.File // the file the helper opened as the user
	conn *net.UnixConn
	cmd  *exec.Cmd
	out  *capped
	errb *capped
	op   Op
	acct Account
	once sync.Once
	err  error
	// onEnd runs once the helper has exited (a Limiter frees its slot).
	onEnd []func()
}

// Open runs op as acct; the helper opens a file and hands its descriptor
// over. The caller must End the session, with commit=true to keep the
// result (e.g. an upload) or false to abandon it.
func (r *Runner) Open(ctx context.Context, acct Account, op Op, args any) (*Session, error) {
	cmd, err := r.command(ctx, acct)
	if err != nil {
		return nil, err
	}
	req, err := encodeRequest(op, args)
	if err != nil {
		return nil, err
	}
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("asuser: socketpair: %w", err)
	}
	ours := os.NewFile(uintptr(fds[0]), "asuser-parent")
	theirs := os.NewFile(uintptr(fds[1]), "asuser-child")
	c, err := net.FileConn(ours)
	ours.Close()
	if err != nil {
		theirs.Close()
		return nil, fmt.Errorf("asuser: socket: %w", err)
	}
	conn := c.(*net.UnixConn)
	cmd.ExtraFiles = []*os.File{theirs} // fd 3 in the helper
	cmd.Env = append(cmd.Env, SocketEnv+"=3")
	cmd.Stdin = bytes.NewReader(req)
	s := &Session{conn: conn, cmd: cmd, out: &capped{max: maxReply}, errb: &capped{max: maxStderr}, op: op, acct: acct}
	cmd.Stdout, cmd.Stderr = s.out, s.errb
	if err := cmd.Start(); err != nil {
		theirs.Close()
		conn.Close()
		return nil, fmt.Errorf("asuser: start %s as %s: %w", op, acct.Name, err)
	}
	theirs.Close()
	f, err := recvFile(conn)
	if err != nil {
		// The helper failed before handing a file over: its reply says why.
		conn.Close()
		waitErr := cmd.Wait()
		if derr := decodeReply(op, acct, s.out.Bytes(), s.errb.String(), waitErr, nil); derr != nil {
			return nil, derr
		}
		return nil, fmt.Errorf("asuser: %s as %s: no file received: %w", op, acct.Name, err)
	}
	s.File = f
	return s, nil
}

// End finishes the session: it tells the helper to commit or abort, waits
// for it, and decodes its result into out (which may be nil).
func (s *Session) End(commit bool, out any) error {
	s.once.Do(func() {
		if s.File != nil {
			s.File.Close()
		}
		msg := Abort
		if commit {
			msg = Commit
		}
		_, werr := s.conn.Write([]byte(msg + "\n"))
		s.conn.CloseWrite()
		waitErr := s.cmd.Wait()
		s.conn.Close()
		for _, f := range s.onEnd {
			f()
		}
		s.err = decodeReply(s.op, s.acct, s.out.Bytes(), s.errb.String(), waitErr, out)
		if s.err == nil && werr != nil && commit {
			s.err = fmt.Errorf("asuser: %s: send commit: %w", s.op, werr)
		}
	})
	return s.err
}

func recvFile(conn *net.UnixConn) (*os.File, error) {
	buf := make([]byte, 1)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := conn.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, err
	}
	if n == 0 && oobn == 0 {
		return nil, io.EOF
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, errors.New("asuser: no descriptor in message")
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, errors.New("asuser: expected exactly one descriptor")
	}
	return os.NewFile(uintptr(fds[0]), "fd-"+strconv.Itoa(fds[0])), nil
}

// SendFile hands f to the daemon over the helper's fd-3 socket. It is the
// helper side of Open.
func SendFile(conn *net.UnixConn, f *os.File) error {
	_, _, err := conn.WriteMsgUnix([]byte{0}, unix.UnixRights(int(f.Fd())), nil)
	return err
}
