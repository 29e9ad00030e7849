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
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/helper/wsfs"
)

// jobStart writes a local job's files and, with Detach, starts its script
// in a session of its own, so the step outlives this helper.
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
	// The script records its pid too, but only once it runs: written here
	// as well, a resubmission right after this one (a daemon that died
	// before recording the answer) finds the pid instead of 0.
	if err := writePIDFile(a.JobDir, pid); err != nil {
		return nil, err
	}
	return asuser.JobStartResult{PID: pid}, nil
}

// writePIDFile writes the pid file through a temporary name of its own,
// since the script renames its own pid.tmp into place at the same time.
func writePIDFile(jobDir string, pid int) error {
	f, err := os.CreateTemp(jobDir, asuser.PIDFile+".start-")
	if err != nil {
		return fmt.Errorf("write pid file: %w", err)
	}
	_, werr := fmt.Fprintf(f, "%d\n", pid)
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr == nil {
		werr = os.Rename(f.Name(), filepath.Join(jobDir, asuser.PIDFile))
	}
	if werr != nil {
		os.Remove(f.Name())
		return fmt.Errorf("write pid file: %w", werr)
	}
	return nil
}

// jobStatus probes every job it is asked about in one helper start.
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

// probeJob tells what became of one job from its files and /proc.
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
	if st.Started {
		dropJobSecrets(j.JobDir) // the script died without its cleanup (KILL)
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

// jobReadExit reads the exit-status files of many job directories.
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

// jobCancel stops a job script and everything it started: TERM, then KILL
// after the grace period.
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
	killed := isOurScript(pid, a.Job.JobDir)
	_ = syscall.Kill(-pid, syscall.SIGKILL)
	if killed {
		dropJobSecrets(a.Job.JobDir) // KILL leaves the script no time to clean up
	}
	return struct{}{}, nil
}

// jobLogs reads a job's output file, or only its last MaxBytes.
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
