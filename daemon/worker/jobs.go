package worker

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

	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/batch/jobscript"
	"github.com/reana-site/reana-site/daemon/userproc"
)

// JobStartArgs asks the worker to start a local job.
type JobStartArgs struct {
	JobDir  string `json:"job_dir"`
	Script  string `json:"script"`
	Command string `json:"command"`
	// Detach starts the script in its own session, so it outlives the
	// worker and the daemon (local backend). Without it, the files are only
	// written (batch backends submit the script themselves).
	Detach bool `json:"detach"`
}

// JobStartResult reports the started job.
type JobStartResult struct {
	PID     int  `json:"pid"`
	Already bool `json:"already"` // the job had been started before (idempotent resubmission)
}

const claimFile = "started"

func jobStart(_ context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	a, err := decode[JobStartArgs](raw)
	if err != nil {
		return nil, err
	}
	if !filepath.IsAbs(a.JobDir) {
		return nil, userproc.Errorf(userproc.KindBadPath, "job directory must be absolute")
	}
	if err := os.MkdirAll(a.JobDir, 0o700); err != nil {
		return nil, fmt.Errorf("create job directory: %w", err)
	}
	// The claim file makes a second submission of the same job a no-op:
	// after a crash the engine resubmits, and must not start the step twice.
	claim, err := os.OpenFile(filepath.Join(a.JobDir, claimFile), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if errors.Is(err, os.ErrExist) {
		pid, _ := readPID(a.JobDir)
		return JobStartResult{PID: pid, Already: true}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("claim job: %w", err)
	}
	claim.Close()
	if err := writeFileAtomic(filepath.Join(a.JobDir, jobscript.CommandFile), []byte(a.Command), 0o600); err != nil {
		return nil, err
	}
	script := filepath.Join(a.JobDir, jobscript.ScriptFile)
	if err := writeFileAtomic(script, []byte(a.Script), 0o700); err != nil {
		return nil, err
	}
	if !a.Detach {
		return JobStartResult{}, nil
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
	return JobStartResult{PID: pid}, nil
}

// JobRef names one local job.
type JobRef struct {
	ID     string `json:"id"`
	JobDir string `json:"job_dir"`
	PID    int    `json:"pid"`
}

// JobState is what the worker found about a job.
type JobState struct {
	Alive    bool   `json:"alive"`
	Exited   bool   `json:"exited"`
	ExitCode int    `json:"exit_code"`
	Started  bool   `json:"started"` // the claim exists
	Reason   string `json:"reason,omitempty"`
}

// JobStatusArgs asks about many jobs in one process start.
type JobStatusArgs struct {
	Jobs []JobRef `json:"jobs"`
}

func jobStatus(_ context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	a, err := decode[JobStatusArgs](raw)
	if err != nil {
		return nil, err
	}
	out := make(map[string]JobState, len(a.Jobs))
	for _, j := range a.Jobs {
		out[j.ID] = probeJob(j)
	}
	return out, nil
}

func probeJob(j JobRef) JobState {
	var st JobState
	if code, ok, err := readExit(j.JobDir); ok {
		return JobState{Exited: true, ExitCode: code, Started: true}
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
		return JobState{Exited: true, ExitCode: code, Started: true}
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
	return bytes.Contains(cmdline, []byte(filepath.Join(jobDir, jobscript.ScriptFile)))
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
	b, err := readJobFile(filepath.Join(jobDir, jobscript.PIDFile))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

func readExit(jobDir string) (code int, ok bool, err error) {
	b, err := readJobFile(filepath.Join(jobDir, jobscript.ExitFile))
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

// JobReadExitArgs reads the exit-status files of batch jobs.
type JobReadExitArgs struct {
	JobDirs map[string]string `json:"job_dirs"` // job id -> dir
}

// ExitInfo is the content of one job's exit-status file.
type ExitInfo struct {
	Present  bool `json:"present"`
	ExitCode int  `json:"exit_code"`
}

func jobReadExit(_ context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	a, err := decode[JobReadExitArgs](raw)
	if err != nil {
		return nil, err
	}
	out := make(map[string]ExitInfo, len(a.JobDirs))
	for id, dir := range a.JobDirs {
		code, ok, _ := readExit(dir)
		out[id] = ExitInfo{Present: ok, ExitCode: code}
	}
	return out, nil
}

// JobCancelArgs stops a local job.
type JobCancelArgs struct {
	Job   JobRef        `json:"job"`
	Grace time.Duration `json:"grace"`
}

func jobCancel(_ context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	a, err := decode[JobCancelArgs](raw)
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

// JobLogsArgs reads a job's output.
type JobLogsArgs struct {
	Path     string `json:"path"`
	MaxBytes int64  `json:"max_bytes"`
}

// JobLogsResult is a job's output, possibly only its tail.
type JobLogsResult struct {
	Text      string `json:"text"`
	Truncated bool   `json:"truncated"`
}

func jobLogs(_ context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	a, err := decode[JobLogsArgs](raw)
	if err != nil {
		return nil, err
	}
	f, err := openJobFile(a.Path)
	if errors.Is(err, os.ErrNotExist) {
		return JobLogsResult{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var res JobLogsResult
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

// ReadOutput reads a batch job's output file (stdout and stderr as the job
// script wrote them) in jobDir as the job's user, keeping its last
// batch.MaxLogBytes: every backend whose jobs write output.log shows it
// this way.
func ReadOutput(ctx context.Context, r batch.Runner, acct batch.Account, jobDir string) (string, error) {
	var res JobLogsResult
	err := r.Call(ctx, acct, "job.logs", JobLogsArgs{Path: filepath.Join(jobDir, jobscript.OutputFile), MaxBytes: batch.MaxLogBytes}, &res)
	if err != nil {
		return "", err
	}
	if res.Truncated {
		return batch.TruncatedNote + res.Text, nil
	}
	return res.Text, nil
}

// ExecArgs runs a program as the user (batch-system commands such as
// sbatch). Argv is an argument vector, never a shell string.
type ExecArgs struct {
	Argv  []string `json:"argv"`
	Dir   string   `json:"dir"`
	Env   []string `json:"env"`
	Stdin string   `json:"stdin"`
}

// ExecResult is the outcome of a program.
type ExecResult struct {
	ExitCode int    `json:"exit_code"`
	Stdout   string `json:"stdout"`
	Stderr   string `json:"stderr"`
}

func execCommand(ctx context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	a, err := decode[ExecArgs](raw)
	if err != nil {
		return nil, err
	}
	if len(a.Argv) == 0 {
		return nil, userproc.Errorf(userproc.KindInternal, "exec: empty argument vector")
	}
	cmd := exec.CommandContext(ctx, a.Argv[0], a.Argv[1:]...)
	cmd.Dir = a.Dir
	cmd.Env = append(os.Environ(), a.Env...)
	cmd.Stdin = strings.NewReader(a.Stdin)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	res := ExecResult{Stdout: out.String(), Stderr: errb.String()}
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

// BatchSubmitArgs writes a batch job's files and submits it with Argv (for
// example sbatch ... script), as the user.
type BatchSubmitArgs struct {
	JobDir  string   `json:"job_dir"`
	Script  string   `json:"script"`
	Command string   `json:"command"`
	Argv    []string `json:"argv"`
	// Force submits even though an earlier attempt was interrupted (the
	// caller looked for that attempt's job in the scheduler and found none).
	Force bool `json:"force"`
	// Files are further files written into JobDir before Argv runs, by
	// base name (an HTCondor submit description).
	Files map[string]string `json:"files,omitempty"`
	// Env is added to the submission command's environment (for example
	// CONDOR_CONFIG for a site whose configuration is not in /etc).
	Env []string `json:"env,omitempty"`
	// MaybeSubmitted is a regular expression for the failures after which
	// the job may exist all the same (a timeout after the scheduler got
	// it); the claim is then kept, so the next attempt is Interrupted and
	// the caller looks for the job first.
	MaybeSubmitted string `json:"maybe_submitted,omitempty"`
}

// SubmitOnce runs a batch submission as the user, at most once per job.
// When an earlier attempt may have reached the scheduler without recording
// its answer (the daemon died in between), find looks for that job first;
// only when it finds none is the submission made again. found reports that
// find found it, in which case res is empty and the caller uses what find
// returned.
func SubmitOnce(ctx context.Context, r batch.Runner, acct batch.Account, args BatchSubmitArgs, find func(context.Context) (bool, error)) (res BatchSubmitResult, found bool, err error) {
	if err := r.Call(ctx, acct, "job.submit", args, &res); err != nil {
		return res, false, err
	}
	if !res.Interrupted {
		return res, false, nil
	}
	if found, err := find(ctx); err != nil || found {
		if err != nil {
			err = fmt.Errorf("look for the job of an interrupted submission: %w", err)
		}
		return BatchSubmitResult{}, found, err
	}
	args.Force = true
	res = BatchSubmitResult{}
	err = r.Call(ctx, acct, "job.submit", args, &res)
	return res, false, err
}

// BatchSubmitResult is the scheduler's answer, or the id recorded by an
// earlier submission of the same job.
type BatchSubmitResult struct {
	ID       string `json:"id"`
	Already  bool   `json:"already"`
	ExitCode int    `json:"exit_code"`
	Stderr   string `json:"stderr"`
	// Interrupted means an earlier attempt began to submit and recorded no
	// answer: the job may exist in the scheduler.
	Interrupted bool `json:"interrupted"`
}

// batchIDFile holds the scheduler's job id, written right after the
// submission command answers, before the daemon hears of it.
const batchIDFile = "batch_id"

func jobSubmit(ctx context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	a, err := decode[BatchSubmitArgs](raw)
	if err != nil {
		return nil, err
	}
	if !filepath.IsAbs(a.JobDir) || len(a.Argv) == 0 {
		return nil, userproc.Errorf(userproc.KindBadPath, "job directory must be absolute and the command not empty")
	}
	if err := os.MkdirAll(a.JobDir, 0o700); err != nil {
		return nil, fmt.Errorf("create job directory: %w", err)
	}
	if b, err := readJobFile(filepath.Join(a.JobDir, batchIDFile)); err == nil && len(bytes.TrimSpace(b)) > 0 {
		return BatchSubmitResult{ID: string(bytes.TrimSpace(b)), Already: true}, nil
	}
	claimPath := filepath.Join(a.JobDir, claimFile)
	claim, err := os.OpenFile(claimPath, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	switch {
	case errors.Is(err, os.ErrExist) && !a.Force:
		return BatchSubmitResult{Interrupted: true}, nil
	case errors.Is(err, os.ErrExist):
	case err != nil:
		return nil, fmt.Errorf("claim job: %w", err)
	default:
		claim.Close()
	}
	if err := writeFileAtomic(filepath.Join(a.JobDir, jobscript.CommandFile), []byte(a.Command), 0o600); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(a.JobDir, jobscript.ScriptFile), []byte(a.Script), 0o700); err != nil {
		return nil, err
	}
	for name, content := range a.Files {
		if name != filepath.Base(name) || name == "." || name == ".." || name == batchIDFile || name == claimFile {
			return nil, userproc.Errorf(userproc.KindBadPath, "job file name %q is not a plain file name", name)
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
	res := BatchSubmitResult{ID: strings.TrimSpace(out.String()), Stderr: errb.String()}
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

// FollowRef names one log to read from an offset, and the job directory
// whose exit-status file is read with it.
type FollowRef struct {
	ID     string `json:"id"`
	Path   string `json:"path"`
	Offset int64  `json:"offset"`
	JobDir string `json:"job_dir"`
}

// JobFollowArgs reads what was appended to many logs since their offsets,
// in one process start per user and poll.
type JobFollowArgs struct {
	Logs []FollowRef `json:"logs"`
	// MaxBytes bounds what is returned per log in one call; the rest is
	// read next time.
	MaxBytes int64 `json:"max_bytes"`
}

// FollowResult is one log's news.
type FollowResult struct {
	Exists bool   `json:"exists"`
	Size   int64  `json:"size"`
	Data   []byte `json:"data,omitempty"` // from Offset, at most MaxBytes
	Error  string `json:"error,omitempty"`
	// Exit is the job's exit-status file, read after the log, so a log
	// without a terminate event and an exit status present means the
	// event is late (or will not come).
	Exit ExitInfo `json:"exit"`
}

func jobFollow(_ context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	a, err := decode[JobFollowArgs](raw)
	if err != nil {
		return nil, err
	}
	if a.MaxBytes <= 0 {
		a.MaxBytes = 1 << 20
	}
	out := make(map[string]FollowResult, len(a.Logs))
	for _, l := range a.Logs {
		r := followOne(l, a.MaxBytes)
		if l.JobDir != "" {
			code, ok, _ := readExit(l.JobDir)
			r.Exit = ExitInfo{Present: ok, ExitCode: code}
		}
		out[l.ID] = r
	}
	return out, nil
}

func followOne(l FollowRef, max int64) FollowResult {
	f, err := openJobFile(l.Path)
	if errors.Is(err, os.ErrNotExist) {
		return FollowResult{}
	}
	if err != nil {
		return FollowResult{Error: err.Error()}
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return FollowResult{Exists: true, Error: err.Error()}
	}
	r := FollowResult{Exists: true, Size: fi.Size()}
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
