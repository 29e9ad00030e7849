// Package slurm runs steps as Slurm jobs submitted by the user who owns
// the workflow, so they show up under the user's name in squeue.
//
// Submission and cancellation run in a helper process with the user's
// uid, gid and groups (sbatch and scancel as argument vectors). Status is
// one query for every tracked job of every user per poll (squeue --json,
// run by the daemon, which holds no power over files), so the cost of a
// poll does not grow with the number of jobs. A job that left the queue is
// never assumed to have succeeded: its script writes the step's exit
// status to a file (write, then rename), read back as the user, and
// without that or Slurm's own record the step fails as "final state
// unknown".
package slurm

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/batch/jobscript"
)

// Name is the backend's canonical name (REANA's "slurmcern" maps to it).
const Name = "slurm"

// Config is the site's Slurm setup.
type Config struct {
	// BinDir holds sbatch, squeue, scancel and scontrol; empty means PATH.
	BinDir string
	// Partition and Account are used when a step names none.
	Partition string
	Account   string
	// ExtraArgs are sbatch arguments the admin adds to every job.
	ExtraArgs []string
}

// Runner runs a program as a user; *asuser.Runner is the real one.
type Runner = asuser.Caller

// QueryFunc runs a Slurm query command as the daemon itself.
type QueryFunc = batch.QueryFunc

// Backend is the Slurm backend.
type Backend struct {
	Runner Runner
	Config Config
	// Query runs squeue/scontrol for status; nil runs them directly.
	Query QueryFunc
}

var _ batch.Backend = (*Backend)(nil)

type handleData struct {
	JobDir string `json:"job_dir"`
}

// Name implements batch.Backend.
func (b *Backend) Name() string { return Name }

func (b *Backend) bin(name string) string {
	if b.Config.BinDir == "" {
		return name
	}
	return filepath.Join(b.Config.BinDir, name)
}

func (b *Backend) query(ctx context.Context, argv []string) ([]byte, []byte, error) {
	if b.Query != nil {
		return b.Query(ctx, argv)
	}
	return batch.RunQuery(ctx, argv)
}

// unreachable recognises Slurm's messages for a controller it cannot reach,
// which some commands print while exiting 0.
var unreachable = regexp.MustCompile(`(?i)unable to contact slurm controller|socket timed out|connection refused|communication connection failure|slurm_load_jobs error|slurmctld.*(down|not responding)|Zero Bytes were transmitted`)

// classify turns a failed Slurm command into an error, marking controller
// outages as batch.ErrUnavailable so the engine waits instead of failing.
func classify(what string, stderr []byte, err error) error {
	msg := strings.TrimSpace(string(stderr))
	if unreachable.MatchString(msg) {
		return fmt.Errorf("slurm: %s: %s: %w", what, msg, batch.ErrUnavailable)
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		// The command itself could not run (missing binary): a site
		// problem, not a passing outage.
		return fmt.Errorf("slurm: %s: %w", what, err)
	}
	if msg == "" && err != nil {
		msg = err.Error()
	}
	return fmt.Errorf("slurm: %s: %s", what, msg)
}

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// JobName says which workflow, run and step a job is, in the characters
// every Slurm tool prints unharmed.
func JobName(s batch.Spec) string {
	n := "reana." + unsafeName.ReplaceAllString(s.WorkflowName, "_") + "." + unsafeName.ReplaceAllString(s.StepName, "_")
	if len(n) > 200 {
		n = n[:200]
	}
	return n
}

// Comment carries the ids that find a job again after a crash.
func Comment(s batch.Spec) string {
	return "reana-site job=" + s.JobID + " workflow=" + s.WorkflowID
}

var slurmTime = regexp.MustCompile(`^[0-9]+(-[0-9]+)?(:[0-9]+){0,2}$`)

// SbatchArgs is the sbatch argument vector for a step (without the script).
func (b *Backend) SbatchArgs(s batch.Spec) ([]string, error) {
	out := filepath.Join(s.JobDir, asuser.OutputFile)
	args := []string{
		b.bin("sbatch"), "--parsable",
		"--job-name=" + JobName(s),
		"--comment=" + Comment(s),
		"--chdir=" + s.Workspace,
		"--output=" + out, "--error=" + out,
		"--open-mode=append",
	}
	partition := s.Hints.SlurmPartition
	if partition == "" {
		partition = b.Config.Partition
	}
	if partition != "" {
		if unsafeName.MatchString(partition) {
			return nil, fmt.Errorf("slurm_partition %q: only letters, digits, '.', '_' and '-' are allowed", partition)
		}
		args = append(args, "--partition="+partition)
	}
	if b.Config.Account != "" {
		args = append(args, "--account="+b.Config.Account)
	}
	if t := s.Hints.SlurmTime; t != "" {
		if !slurmTime.MatchString(t) {
			return nil, fmt.Errorf("slurm_time %q is not a Slurm time such as 60, 2:00:00 or 1-0", t)
		}
		args = append(args, "--time="+t)
	}
	if m := s.Hints.MemoryLimit; m != "" {
		mb, err := batch.MemoryMB(m)
		if err != nil {
			return nil, fmt.Errorf("kubernetes_memory_limit: %w", err)
		}
		args = append(args, "--mem="+strconv.FormatInt(mb, 10))
	}
	args = append(args, b.Config.ExtraArgs...)
	return append(args, filepath.Join(s.JobDir, asuser.ScriptFile)), nil
}

// Submit implements batch.Backend. The helper (as the user) writes the
// job script, runs sbatch, and records the job id in the job directory
// before answering, so a daemon that dies meanwhile finds the job there;
// a job whose submission was interrupted before that is looked up by its
// comment instead of being submitted twice.
func (b *Backend) Submit(ctx context.Context, s batch.Spec) (batch.Handle, error) {
	return batch.SubmitPrepared(ctx, b.Runner, Name, s, b.prepare)
}

// SubmitMany implements batch.ManySubmitter: one helper per user runs
// every sbatch of the group, each job with its own claim.
func (b *Backend) SubmitMany(ctx context.Context, specs []batch.Spec) []batch.Submitted {
	return batch.SubmitManyPrepared(ctx, b.Runner, Name, specs, b.prepare)
}

// prepare makes a job's script and sbatch command, the way to find it by
// its comment, and the reading of sbatch's answer.
func (b *Backend) prepare(s batch.Spec) (batch.Prepared, error) {
	script, err := jobscript.Render(s, jobscript.Options{Runner: s.Runner, Preamble: s.Preamble})
	if err != nil {
		return batch.Prepared{}, err
	}
	argv, err := b.SbatchArgs(s)
	if err != nil {
		return batch.Prepared{}, err
	}
	// An earlier submission that got as far as sbatch but not as recording
	// its answer is found by its comment.
	var foundID string
	return batch.Prepared{
		Args: asuser.BatchSubmitArgs{JobDir: s.JobDir, Script: script, Command: s.Command, Argv: argv},
		Find: func(ctx context.Context) (bool, error) {
			id, err := b.findByComment(ctx, s.User.Name, Comment(s))
			foundID = id
			return id != "", err
		},
		Done: func(_ context.Context, res asuser.BatchSubmitResult, found bool) (batch.Handle, error) {
			if found {
				return b.handle(s, foundID), nil
			}
			if res.ExitCode != 0 || res.ID == "" {
				return batch.Handle{}, classify("sbatch", []byte(res.Stderr), fmt.Errorf("exit status %d", res.ExitCode))
			}
			id, _, _ := strings.Cut(strings.TrimSpace(res.ID), ";") // "id;cluster"
			if _, err := strconv.ParseUint(id, 10, 64); err != nil {
				return batch.Handle{}, fmt.Errorf("slurm: sbatch answered %q, not a job id (stderr: %s)", res.ID, strings.TrimSpace(res.Stderr))
			}
			return b.handle(s, id), nil
		},
	}, nil
}

func (b *Backend) handle(s batch.Spec, id string) batch.Handle {
	data, _ := json.Marshal(handleData{JobDir: s.JobDir})
	return batch.Handle{Backend: Name, Version: 1, ID: id, Data: data}
}

// findByComment looks among the user's own jobs for the one an
// interrupted submission left.
func (b *Backend) findByComment(ctx context.Context, user, comment string) (string, error) {
	out, err := b.squeue(ctx, "--user="+user, "--format="+commentFormat)
	if err != nil {
		return "", err
	}
	for _, j := range ParseComments(out) {
		if j.Comment == comment && j.User == user {
			return j.ID, nil
		}
	}
	return "", nil
}

// queue is the single scheduler query of a poll: the tracked jobs of every
// user, by id, whatever their state. Asking for just these keeps the answer
// small on a cluster whose controller holds many other jobs.
func (b *Backend) queue(ctx context.Context, ids []string) (map[string]QueueJob, error) {
	if len(ids) == 0 {
		return map[string]QueueJob{}, nil
	}
	out, err := b.squeue(ctx, "--jobs="+strings.Join(ids, ","), "--format="+statusFormat)
	if err != nil {
		return nil, err
	}
	return ParseSqueue(out), nil
}

// squeue runs squeue as the daemon with the given selection. Slurm can
// print its errors while exiting 0, so stderr is checked too.
func (b *Backend) squeue(ctx context.Context, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, pollTimeout)
	defer cancel()
	argv := append([]string{b.bin("squeue"), "--noheader", "--states=all"}, args...)
	out, stderr, err := b.query(ctx, argv)
	if ctx.Err() != nil {
		return nil, fmt.Errorf("slurm: squeue did not answer within %s: %w", pollTimeout, batch.ErrUnavailable)
	}
	if bytes.Contains(stderr, []byte("Invalid job id specified")) {
		// A single id the controller has forgotten: nothing to report.
		return nil, nil
	}
	if err != nil || unreachable.Match(stderr) || len(bytes.TrimSpace(stderr)) > 0 {
		return nil, classify("squeue", stderr, err)
	}
	return out, nil
}

func jobDir(j batch.Job) string {
	var h handleData
	_ = json.Unmarshal(j.Handle.Data, &h)
	if h.JobDir == "" {
		return j.Spec.JobDir
	}
	return h.JobDir
}

// Status implements batch.Backend: one squeue for all jobs; exit-status
// files are read, one helper per user, only for jobs that ended; sacct is
// asked only about jobs that left the controller without one.
func (b *Backend) Status(ctx context.Context, jobs []batch.Job) (map[string]batch.Status, error) {
	ids := make([]string, 0, len(jobs))
	for _, j := range jobs {
		ids = append(ids, j.Handle.ID)
	}
	queue, err := b.queue(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := make(map[string]batch.Status, len(jobs))
	var ended []batch.Job
	for _, j := range jobs {
		q, known := queue[j.Handle.ID]
		if known && !q.Terminal() {
			out[j.Spec.JobID] = q.Status()
			continue
		}
		ended = append(ended, j)
	}
	var mu sync.Mutex
	exits := map[string]asuser.ExitInfo{}
	read := map[string]bool{}
	err = batch.EachUser(ctx, ended, func(ctx context.Context, js []batch.Job) error {
		args := asuser.JobReadExitArgs{JobDirs: map[string]string{}}
		for _, j := range js {
			args.JobDirs[j.Spec.JobID] = jobDir(j)
		}
		res, err := asuser.ReadExits(ctx, b.Runner, js[0].Spec.User, args)
		if err != nil {
			return fmt.Errorf("slurm: read exit status as %s: %w", js[0].Spec.User.Name, err)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, j := range js {
			exits[j.Spec.JobID] = res[j.Spec.JobID]
			read[j.Spec.JobID] = true
		}
		return nil
	})
	// Jobs gone from the controller without an exit file: ask accounting,
	// once for all of them, where the site has it.
	var gone []string
	for _, j := range ended {
		if _, known := queue[j.Handle.ID]; !known && read[j.Spec.JobID] && !exits[j.Spec.JobID].Present {
			gone = append(gone, j.Handle.ID)
		}
	}
	accounted := b.accounting(ctx, gone)
	for _, j := range ended {
		if !read[j.Spec.JobID] {
			continue // its owner's helper failed: ask again next round
		}
		q, known := queue[j.Handle.ID]
		if !known {
			q, known = accounted[j.Handle.ID]
		}
		out[j.Spec.JobID] = Settle(q, known, exits[j.Spec.JobID], j.Handle.ID)
	}
	return out, err
}

// accounting asks sacct about jobs the controller no longer holds. Without
// accounting storage (or when sacct fails) it knows nothing, which leaves
// those jobs to the exit-status files alone.
func (b *Backend) accounting(ctx context.Context, ids []string) map[string]QueueJob {
	if len(ids) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, pollTimeout)
	defer cancel()
	out, stderr, err := b.query(ctx, []string{b.bin("sacct"), "--noheader", "--parsable2", "--allocations",
		"--format=JobID,State,ExitCode", "--jobs=" + strings.Join(ids, ",")})
	if err != nil || len(bytes.TrimSpace(stderr)) > 0 {
		return nil
	}
	return ParseSacct(out)
}

// ParseSacct reads `sacct --parsable2 --format=JobID,State,ExitCode`
// lines such as "42|CANCELLED by 4101|0:15". The fields are Slurm's own
// (ids, state words, numbers), so '|' cannot occur inside them.
func ParseSacct(b []byte) map[string]QueueJob {
	jobs := map[string]QueueJob{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(strings.TrimSpace(line), "|")
		if len(f) != 3 || f[0] == "" {
			continue
		}
		q := QueueJob{ID: f[0], State: baseState(f[1]), HasExit: true}
		if by, ok := strings.CutPrefix(f[1], q.State+" "); ok {
			q.Reason = by // "by 4101": who cancelled it
		}
		code, sig, _ := strings.Cut(f[2], ":")
		q.ExitCode, _ = strconv.Atoi(code)
		q.Signal, _ = strconv.Atoi(sig)
		jobs[q.ID] = q
	}
	return jobs
}

// Settle decides the end of a job from Slurm's record (if the controller
// still has it) and the exit-status file the job script writes.
func Settle(q QueueJob, known bool, exit asuser.ExitInfo, id string) batch.Status {
	if known {
		st := q.Status()
		if exit.Present && (q.State == "COMPLETED" || q.State == "FAILED") {
			// The script's own record wins for the exit code: Slurm's may be
			// the shell's, after the script trapped the command's.
			code := exit.ExitCode
			st.ExitCode = &code
			st.State, st.Reason = batch.Succeeded, ""
			if code != 0 {
				st.State, st.Reason = batch.Failed, fmt.Sprintf("command exited with status %d (Slurm job %s)", code, id)
			}
		}
		return st
	}
	if exit.Present {
		code := exit.ExitCode
		if code == 0 {
			return batch.Status{State: batch.Succeeded, ExitCode: &code}
		}
		return batch.Status{State: batch.Failed, ExitCode: &code, Reason: fmt.Sprintf("command exited with status %d (Slurm job %s)", code, id)}
	}
	return batch.Status{State: batch.Failed, Reason: fmt.Sprintf(
		"final state unknown: Slurm job %s left the queue without recording an exit status", id)}
}

// Cancel implements batch.Backend: scancel as the user, so Slurm's own
// permission check applies.
func (b *Backend) Cancel(ctx context.Context, j batch.Job) error {
	argv := []string{b.bin("scancel"), j.Handle.ID}
	res, err := asuser.Exec(ctx, b.Runner, j.Spec.User, asuser.ExecArgs{Argv: argv, Dir: "/"})
	if err != nil {
		return fmt.Errorf("slurm: cancel job %s: %w", j.Handle.ID, err)
	}
	if res.ExitCode != 0 || unreachable.MatchString(res.Stderr) {
		if strings.Contains(res.Stderr, "already completed") || strings.Contains(res.Stderr, "Invalid job id") {
			return nil
		}
		return classify("scancel "+j.Handle.ID, []byte(res.Stderr), fmt.Errorf("exit status %d", res.ExitCode))
	}
	return nil
}

// CancelUnrecorded implements batch.UnrecordedCanceller: the user's own
// job carrying our job id in its comment is looked up, and cancelled when
// found.
func (b *Backend) CancelUnrecorded(ctx context.Context, s batch.Spec) error {
	id, err := b.findByComment(ctx, s.User.Name, Comment(s))
	if err != nil || id == "" {
		return err
	}
	return b.Cancel(ctx, batch.Job{Spec: s, Handle: batch.Handle{Backend: Name, ID: id}})
}

// Logs implements batch.Backend.
func (b *Backend) Logs(ctx context.Context, j batch.Job) (string, error) {
	out, err := batch.ReadOutput(ctx, b.Runner, j.Spec.User, jobDir(j))
	if err != nil {
		return "", fmt.Errorf("slurm: logs of job %s: %w", j.Handle.ID, err)
	}
	return out, nil
}

// pollTimeout bounds one squeue; a controller that does not answer within
// it counts as unreachable for this round.
const pollTimeout = 30 * time.Second
