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
	"strings"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/helper/wsfs"
)

// batchIDFile holds the scheduler's job id, written right after the
// submission command answers, before the daemon hears of it.
const batchIDFile = "batch_id"

// jobSubmit writes a batch job's files and runs the submission command,
// at most once per claim: the recorded scheduler id answers a repeated
// submission, and a claim without one reports an interrupted attempt.
func jobSubmit(ctx context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	a, err := decode[asuser.BatchSubmitArgs](raw)
	if err != nil {
		return nil, err
	}
	if !filepath.IsAbs(a.JobDir) || len(a.Argv) == 0 {
		return nil, asuser.Errorf(asuser.KindBadPath, "job directory must be absolute and the command not empty")
	}
	claimPath, done, err := claimJob(a, a.Force)
	if err != nil {
		return nil, err
	}
	if done != nil {
		return *done, nil
	}
	out, res, err := runSubmit(ctx, a.Argv, a.JobDir, a.Env, nil)
	if err != nil {
		_ = os.Remove(claimPath)
		return nil, err
	}
	res.ID = strings.TrimSpace(out)
	if res.ExitCode != 0 || res.ID == "" {
		if maybeSubmitted(a.MaybeSubmitted, res.Stderr) {
			// The scheduler may have taken the job before the connection
			// failed: keep the claim, so the next attempt looks for the
			// job before submitting again.
			return res, nil
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

// runSubmit runs the submission command argv in dir, with env added and
// stdin (nil for none), and answers with its output, exit status and
// stderr; an error only when the command could not be run at all. The
// submission must finish once started, even if the daemon goes away: its
// answer is recorded for the next attempt to find.
func runSubmit(ctx context.Context, argv []string, dir string, env []string, stdin io.Reader) (string, asuser.BatchSubmitResult, error) {
	cmd := exec.CommandContext(context.WithoutCancel(ctx), argv[0], argv[1:]...)
	cmd.Dir = dir
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	runErr := cmd.Run()
	res := asuser.BatchSubmitResult{Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(runErr, &ee):
		res.ExitCode = ee.ExitCode()
	case runErr != nil:
		return "", res, fmt.Errorf("run %s: %w", argv[0], runErr)
	}
	return stdout.String(), res, nil
}

// claimJob claims a job directory for one submission and writes the job's
// files. A job with a recorded id, or claimed by an earlier attempt that
// recorded none (unless force), is answered in done and not claimed.
func claimJob(a asuser.BatchSubmitArgs, force bool) (claimPath string, done *asuser.BatchSubmitResult, err error) {
	if err := wsfs.CreateBelow(a.JobDir, trusted()); err != nil {
		return "", nil, fsErr(fmt.Errorf("create job directory: %w", err))
	}
	if b, err := readJobFile(filepath.Join(a.JobDir, batchIDFile)); err == nil && len(bytes.TrimSpace(b)) > 0 {
		return "", &asuser.BatchSubmitResult{ID: string(bytes.TrimSpace(b)), Already: true}, nil
	}
	claimPath = filepath.Join(a.JobDir, claimFile)
	claim, err := os.OpenFile(claimPath, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	switch {
	case errors.Is(err, os.ErrExist) && !force:
		return "", &asuser.BatchSubmitResult{Interrupted: true}, nil
	case errors.Is(err, os.ErrExist):
	case err != nil:
		return "", nil, fmt.Errorf("claim job: %w", err)
	default:
		claim.Close()
	}
	if err := writeJobFiles(a); err != nil {
		// Nothing was submitted: the next attempt starts afresh.
		_ = os.Remove(claimPath)
		return "", nil, err
	}
	return claimPath, nil, nil
}

// writeJobFiles writes the command, the job script and the further files
// of a claimed job.
func writeJobFiles(a asuser.BatchSubmitArgs) error {
	if err := writeFileAtomic(filepath.Join(a.JobDir, asuser.CommandFile), []byte(a.Command), 0o600); err != nil {
		return err
	}
	if err := writeFileAtomic(filepath.Join(a.JobDir, asuser.ScriptFile), []byte(a.Script), 0o700); err != nil {
		return err
	}
	for name, content := range a.Files {
		if name != filepath.Base(name) || name == "." || name == ".." || name == batchIDFile || name == claimFile {
			return asuser.Errorf(asuser.KindBadPath, "job file name %q is not a plain file name", name)
		}
		if err := writeFileAtomic(filepath.Join(a.JobDir, name), []byte(content), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// maybeSubmitted tells whether a failed submission's stderr matches the
// caller's pattern for failures after which the job may exist.
func maybeSubmitted(pattern, stderr string) bool {
	if pattern == "" {
		return false
	}
	re, err := regexp.Compile(pattern)
	return err == nil && re.MatchString(stderr)
}

// jobSubmitMany submits several jobs in this one process, each as
// jobSubmit does, so every job keeps its own claim and recorded id: a
// helper killed in the middle leaves the jobs before it recorded, the one
// it was at claimed (found again by the caller), and the rest untouched.
// One job's failure is its own outcome and does not stop the others.
//
// A helper whose daemon died (it is reparented) submits no further job:
// the daemon that comes back submits the group again, and a helper still
// going through the list at the same time would race it for the claims.
func jobSubmitMany(ctx context.Context, raw json.RawMessage, conn *net.UnixConn) (any, error) {
	a, err := decode[asuser.BatchSubmitManyArgs](raw)
	if err != nil {
		return nil, err
	}
	parent := os.Getppid()
	out := make([]asuser.BatchSubmitOutcome, len(a.Jobs))
	for i, job := range a.Jobs {
		if os.Getppid() != parent {
			for k := i; k < len(a.Jobs); k++ {
				out[k].Error = asuser.Errorf(asuser.KindInternal, "not submitted: the daemon went away")
			}
			break
		}
		one, err := json.Marshal(job)
		if err != nil {
			return nil, fmt.Errorf("encode job %d: %w", i, err)
		}
		res, err := jobSubmit(ctx, one, conn)
		if err != nil {
			out[i].Error = protocolError(err)
			continue
		}
		out[i].Result = res.(asuser.BatchSubmitResult)
	}
	return out, nil
}

// jobFollow reads what was appended to many logs, with each job's exit
// status read after its log.
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

// followOne reads one log from its offset, at most max bytes.
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
