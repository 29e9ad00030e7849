package helper

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
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/helper/wsfs"
)

const claimFile = "started"

func jobStart(_ context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	a, err := decode[asuser.JobStartArgs](raw)
	if err != nil {
		return nil, err
	}
	if !filepath.IsAbs(a.JobDir) {
		return nil, asuser.Errorf(asuser.KindBadPath, "job directory must be absolute")
	}
	if err := wsfs.CreateBelow(a.JobDir, trusted()); err != nil {
		return nil, fsErr(fmt.Errorf("create job directory: %w", err))
	}
	// The claim file makes a second submission of the same job a no-op:
	// after a crash the engine resubmits, and must not start the step twice.
	claim, err := os.OpenFile(filepath.Join(a.JobDir, claimFile), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, os.ErrExist) {
		pid, _ := readPID(a.JobDir)
		return asuser.JobStartResult{PID: pid, Already: true}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claim job: %w", err)
	}
	claim.Close()
	if err := writeFileAtomic(filepath.Join(a.JobDir, asuser.CommandFile), []byte(a.Command), 0o600); err != nil {
		return nil, err
	}
	script := filepath.Join(a.JobDir, asuser.ScriptFile)
	if err := writeFileAtomic(script, []byte(a.Script), 0o700); err != nil {
		return nil, err
	}
	if !a.Detach {
		return asuser.JobStartResult{}, nil
	}
	devnull, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	defer devnull.Close()
	cmd := exec.Command("/bin/sh", script)
	cmd.Dir = a.JobDir
	cmd.Stdin, cmd.Stdout, cmd.Stderr = devnull, devnull, devnull
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start job script: %w", err)
	}
	pid := cmd.Process.Pid
	cmd.Process.Release()
	return asuser.JobStartResult{PID: pid}, nil
}

func jobStatus(_ context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	a, err := decode[asuser.JobStatusArgs](raw)
	if err != nil {
		return nil, err
	}
	out := make(map[string]asuser.JobState, len(a.Jobs))
	for _, j := range a.Jobs {
		out[j.ID] = probeJob(j)
	}
	return out, nil
}

func probeJob(j asuser.JobRef) asuser.JobState {
	var st asuser.JobState
	if code, ok, err := readExit(j.JobDir); ok {
		return asuser.JobState{Exited: true, ExitCode: code, Started: true}
	} else if err != nil {
		st.Reason = err.Error()
	}
	if _, err := os.Stat(filepath.Join(j.JobDir, claimFile)); err == nil {
		st.Started = true
	}
	pid := j.PID
	if p, err := readPID(j.JobDir); err == nil {
		pid = p
	}
	if pid > 0 && isOurScript(pid, j.JobDir) {
		st.Alive = true
		return st
	}
	// The script may have written its status and exited between the two
	// looks; look again before declaring it lost.
	if code, ok, _ := readExit(j.JobDir); ok {
		return asuser.JobState{Exited: true, ExitCode: code, Started: true}
	}
	return st
}

// isOurScript tells whether pid is alive (not a zombie) and is the job
// script of jobDir, so a recycled pid is never mistaken for the job.
func isOurScript(pid int, jobDir string) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the last ')' (the command name may contain one).
	if i := bytes.LastIndexByte(stat, ')'); i < 0 || i+2 >= len(stat) || stat[i+2] == 'Z' || stat[i+2] == 'X' {
		return false
	}
	cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	return bytes.Contains(cmdline, []byte(filepath.Join(jobDir, asuser.ScriptFile)))
}

// openJobFile opens a file of a job directory for reading without
// following a link and without blocking on a FIFO a step may have put
// there; only regular files are read.
func openJobFile(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	return f, nil
}

// readJobFile reads a small file of a job directory (pid, exit status).
func readJobFile(path string) ([]byte, error) {
	f, err := openJobFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 4096))
}

func readPID(jobDir string) (int, error) {
	b, err := readJobFile(filepath.Join(jobDir, asuser.PIDFile))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func readExit(jobDir string) (code int, ok bool, err error) {
	b, err := readJobFile(filepath.Join(jobDir, asuser.ExitFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	code, err = strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, false, fmt.Errorf("malformed exit-status file: %q", string(b))
	}
	return code, true, nil
}

func jobReadExit(_ context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	a, err := decode[asuser.JobReadExitArgs](raw)
	if err != nil {
		return nil, err
	}
	out := make(map[string]asuser.ExitInfo, len(a.JobDirs))
	for id, dir := range a.JobDirs {
		code, ok, _ := readExit(dir)
		out[id] = asuser.ExitInfo{Present: ok, ExitCode: code}
	}
	return out, nil
}

func jobCancel(_ context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	a, err := decode[asuser.JobCancelArgs](raw)
	if err != nil {
		return nil, err
	}
	pid := a.Job.PID
	if p, err := readPID(a.Job.JobDir); err == nil {
		pid = p
	}
	if pid <= 0 || !isOurScript(pid, a.Job.JobDir) {
		return struct{}{}, nil
	}
	// The script leads its own session and process group, so the whole
	// step (shell and everything it started) gets the signal.
	_ = syscall.Kill(-pid, syscall.SIGTERM)
	deadline := time.Now().Add(a.Grace)
	for time.Now().Before(deadline) && isOurScript(pid, a.Job.JobDir) {
		time.Sleep(50 * time.Millisecond)
	}
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	return struct{}{}, nil
}

func jobLogs(_ context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	a, err := decode[asuser.JobLogsArgs](raw)
	if err != nil {
		return nil, err
	}
	f, err := openJobFile(a.Path)
	if errors.Is(err, os.ErrNotExist) {
		return asuser.JobLogsResult{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var res asuser.JobLogsResult
	if a.MaxBytes > 0 {
		if fi, err := f.Stat(); err == nil && fi.Size() > a.MaxBytes {
			if _, err := f.Seek(fi.Size()-a.MaxBytes, io.SeekStart); err == nil {
				res.Truncated = true
			}
		}
	}
	b, err := io.ReadAll(f)
	if err != nil {
		return nil, err
	}
	res.Text = strings.ToValidUTF8(string(b), "\uFFFD")
	return res, nil
}

func execCommand(ctx context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	a, err := decode[asuser.ExecArgs](raw)
	if err != nil {
		return nil, err
	}
	if len(a.Argv) == 0 {
		return nil, asuser.Errorf(asuser.KindInternal, "exec: empty argument vector")
	}
	cmd := exec.CommandContext(ctx, a.Argv[0], a.Argv[1:]...)
	cmd.Dir = a.Dir
	cmd.Env = append(os.Environ(), a.Env...)
	cmd.Stdin = strings.NewReader(a.Stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	res := asuser.ExecResult{Stdout: out.String(), Stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.ExitCode = ee.ExitCode()
	case err != nil:
		return nil, fmt.Errorf("exec %s: %w", a.Argv[0], err)
	}
	return res, nil
}

func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, perm); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", filepath.Base(path), err)
	}
	return nil
}

// batchIDFile holds the scheduler's job id, written right after the
// submission command answers, before the daemon hears of it.
const batchIDFile = "batch_id"

func jobSubmit(ctx context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	a, err := decode[asuser.BatchSubmitArgs](raw)
	if err != nil {
		return nil, err
	}
	if !filepath.IsAbs(a.JobDir) || len(a.Argv) == 0 {
		return nil, asuser.Errorf(asuser.KindBadPath, "job directory must be absolute and the command not empty")
	}
	if err := wsfs.CreateBelow(a.JobDir, trusted()); err != nil {
		return nil, fsErr(fmt.Errorf("create job directory: %w", err))
	}
	if b, err := readJobFile(filepath.Join(a.JobDir, batchIDFile)); err == nil && len(bytes.TrimSpace(b)) > 0 {
		return asuser.BatchSubmitResult{ID: string(bytes.TrimSpace(b)), Already: true}, nil
	}
	claimPath := filepath.Join(a.JobDir, claimFile)
	claim, err := os.OpenFile(claimPath, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	switch {
	case errors.Is(err, os.ErrExist) && !a.Force:
		return asuser.BatchSubmitResult{Interrupted: true}, nil
	case errors.Is(err, os.ErrExist):
	case err != nil:
		return nil, fmt.Errorf("claim job: %w", err)
	default:
		claim.Close()
	}
	if err := writeFileAtomic(filepath.Join(a.JobDir, asuser.CommandFile), []byte(a.Command), 0o600); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(a.JobDir, asuser.ScriptFile), []byte(a.Script), 0o700); err != nil {
		return nil, err
	}
	for name, content := range a.Files {
		if name != filepath.Base(name) || name == "." || name == ".." || name == batchIDFile || name == claimFile {
			return nil, asuser.Errorf(asuser.KindBadPath, "job file name %q is not a plain file name", name)
		}
		if err := writeFileAtomic(filepath.Join(a.JobDir, name), []byte(content), 0o600); err != nil {
			return nil, err
		}
	}
	// The submission must finish once started, even if the daemon goes
	// away: its answer is recorded here for the next attempt to find.
	cmd := exec.CommandContext(context.WithoutCancel(ctx), a.Argv[0], a.Argv[1:]...)
	cmd.Dir = a.JobDir
	if len(a.Env) > 0 {
		cmd.Env = append(os.Environ(), a.Env...)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	runErr := cmd.Run()
	res := asuser.BatchSubmitResult{ID: strings.TrimSpace(out.String()), Stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(runErr, &ee):
		res.ExitCode = ee.ExitCode()
	case runErr != nil:
		_ = os.Remove(claimPath)
		return nil, fmt.Errorf("run %s: %w", a.Argv[0], runErr)
	}
	if res.ExitCode != 0 || res.ID == "" {
		if a.MaybeSubmitted != "" {
			if re, err := regexp.Compile(a.MaybeSubmitted); err == nil && re.MatchString(res.Stderr) {
				// The scheduler may have taken the job before the
				// connection failed: keep the claim, so the next attempt
				// looks for the job before submitting again.
				return res, nil
			}
		}
		// Nothing was submitted: the next attempt starts afresh.
		_ = os.Remove(claimPath)
		return res, nil
	}
	if err := writeFileAtomic(filepath.Join(a.JobDir, batchIDFile), []byte(res.ID+"\n"), 0o600); err != nil {
		return nil, err
	}
	return res, nil
}

func jobFollow(_ context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	a, err := decode[asuser.JobFollowArgs](raw)
	if err != nil {
		return nil, err
	}
	if a.MaxBytes <= 0 {
		a.MaxBytes = 1 << 20
	}
	out := make(map[string]asuser.FollowResult, len(a.Logs))
	for _, l := range a.Logs {
		r := followOne(l, a.MaxBytes)
		if l.JobDir != "" {
			code, ok, _ := readExit(l.JobDir)
			r.Exit = asuser.ExitInfo{Present: ok, ExitCode: code}
		}
		out[l.ID] = r
	}
	return out, nil
}

func followOne(l asuser.FollowRef, max int64) asuser.FollowResult {
	f, err := openJobFile(l.Path)
	if errors.Is(err, os.ErrNotExist) {
		return asuser.FollowResult{}
	}
	if err != nil {
		return asuser.FollowResult{Error: err.Error()}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return asuser.FollowResult{Exists: true, Error: err.Error()}
	}
	r := asuser.FollowResult{Exists: true, Size: fi.Size()}
	if l.Offset < 0 || l.Offset >= r.Size {
		return r // nothing new, or the log shrank: the caller decides
	}
	n := min(r.Size-l.Offset, max)
	buf := make([]byte, n)
	m, err := f.ReadAt(buf, l.Offset)
	if err != nil && !errors.Is(err, io.EOF) {
		r.Error = err.Error()
	}
	r.Data = buf[:m]
	return r
}
