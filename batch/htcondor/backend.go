package htcondor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/batch/jobscript"
	"github.com/reana-site/reana-site/daemon/worker"
)

// SubmitFile is the submit description in the job directory, written by
// the user's own process before condor_submit reads it.
const SubmitFile = "job.sub"

// MaxLogBytes bounds the output kept for one step.
const MaxLogBytes = 4 << 20

// maxFollowBytes bounds what one poll reads of one event log; a longer
// backlog is read over the next polls.
const maxFollowBytes = 1 << 20

// Default pacing of the schedd fallback.
const (
	// DefaultLogGrace is how long a job's event log may be missing after
	// submission, or lag behind the job script's exit status, before the
	// schedd is asked.
	DefaultLogGrace = time.Minute
	// DefaultSilenceCheck is how long a job's log may stay silent before
	// the schedd is asked whether the job still exists. Running jobs are
	// silent for hours, so this is a rare, paced sanity check.
	DefaultSilenceCheck = 30 * time.Minute
)

// queryTimeout bounds one condor_q or condor_history.
const queryTimeout = 30 * time.Second

// Backend is the HTCondor backend. Jobs are submitted by the user's own
// helper process with condor_submit, and followed through their user event
// logs, read by the user's helper from the offset the last poll stopped at;
// in steady state the schedd is not asked anything.
type Backend struct {
	Runner batch.Runner
	Config Config
	// Query runs condor_q and condor_history as the daemon for the
	// fallback; nil runs them directly.
	Query batch.QueryFunc
	// Parser reads the event logs (its time zone is the schedd's).
	Parser Parser
	// Now is the clock for the hold timeout and the fallback's pacing; nil
	// means time.Now.
	Now func() time.Time
}

var _ batch.Backend = (*Backend)(nil)

// Name implements batch.Backend.
func (b *Backend) Name() string { return Name }

// progress is the handle's data: where the job's files are, how far its
// event log has been read, and what the events read so far say. It is
// stored with the job after every poll that read something, so a daemon
// restart resumes at Offset instead of reading the log again.
type progress struct {
	JobDir  string `json:"job_dir"`
	Cluster int    `json:"cluster"`
	Proc    int    `json:"proc"`
	Offset  int64  `json:"offset"`
	// Status is the fold of the job's events up to Offset.
	Status storedStatus `json:"status"`
	// Submitted is when condor_submit answered; Changed when the log last
	// grew; Checked when the schedd was last asked about the job.
	Submitted time.Time `json:"submitted"`
	Changed   time.Time `json:"changed,omitzero"`
	Checked   time.Time `json:"checked,omitzero"`
}

// storedStatus is JobStatus in a stable JSON form.
type storedStatus struct {
	State     batch.State `json:"state"`
	ExitCode  *int        `json:"exit_code,omitempty"`
	Signal    int         `json:"signal,omitempty"`
	Reason    string      `json:"reason,omitempty"`
	Held      bool        `json:"held,omitempty"`
	HeldSince time.Time   `json:"held_since,omitzero"`
	HoldCode  int         `json:"hold_code,omitempty"`
	// Ended is set by a terminate event (as opposed to a removal).
	Ended bool `json:"ended,omitempty"`
}

func toStored(s JobStatus, ended bool) storedStatus {
	return storedStatus{State: s.State, ExitCode: s.ExitCode, Signal: s.Signal, Reason: s.Reason,
		Held: s.Held, HeldSince: s.HeldSince, HoldCode: s.HoldCode, Ended: ended}
}

func (s storedStatus) load() JobStatus {
	return JobStatus{Status: batch.Status{State: s.State, ExitCode: s.ExitCode, Signal: s.Signal, Reason: s.Reason},
		Held: s.Held, HeldSince: s.HeldSince, HoldCode: s.HoldCode}
}

func (b *Backend) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

func (b *Backend) bin(name string) string {
	if b.Config.BinDir == "" {
		return name
	}
	return filepath.Join(b.Config.BinDir, name)
}

// env is what every HTCondor command needs besides its arguments.
func (b *Backend) env() []string {
	if b.Config.ConfigFile == "" {
		return nil
	}
	return []string{"CONDOR_CONFIG=" + b.Config.ConfigFile}
}

// scheddArgs selects the site's schedd on every command that talks to it.
func (b *Backend) scheddArgs() []string {
	var a []string
	if b.Config.Schedd != "" {
		a = append(a, "-name", b.Config.Schedd)
	}
	if b.Config.Pool != "" {
		a = append(a, "-pool", b.Config.Pool)
	}
	return a
}

func (b *Backend) query(ctx context.Context, argv []string) ([]byte, []byte, error) {
	if b.Query != nil {
		return b.Query(ctx, argv)
	}
	if cf := b.Config.ConfigFile; cf != "" {
		// The daemon's own queries see the same configuration as the
		// users' commands.
		argv = append([]string{"/usr/bin/env", "CONDOR_CONFIG=" + cf}, argv...)
	}
	return batch.RunQuery(ctx, argv)
}

// unreachable recognises HTCondor's messages for a schedd (or collector)
// it cannot reach (condor_submit and condor_q source texts; see README.md).
var unreachable = regexp.MustCompile(`(?i)can't find address of|failed to connect to (local )?queue manager|failed to fetch ads from|CEDAR:6001|connection refused|timed out|SECMAN:2007|unable to locate|no route to host`)

func classify(what, stderr string, err error) error {
	msg := strings.TrimSpace(stderr)
	if unreachable.MatchString(msg) {
		return fmt.Errorf("htcondor: %s: %s: %w", what, oneLineMsg(msg), batch.ErrUnavailable)
	}
	if msg == "" && err != nil {
		msg = err.Error()
	}
	return fmt.Errorf("htcondor: %s: %s", what, oneLineMsg(msg))
}

// oneLineMsg joins HTCondor's multi-line errors (a blank line, then
// "ERROR: ...") into one line for status messages.
func oneLineMsg(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// terse is condor_submit -terse's answer: "C.P0 - C.PN" per cluster; we
// queue one job, so P0 = PN.
var terse = regexp.MustCompile(`^(\d+)\.(\d+) - (\d+)\.(\d+)$`)

// ParseTerse returns the cluster and proc of a one-job submission.
func ParseTerse(out string) (cluster, proc int, err error) {
	line, _, _ := strings.Cut(strings.TrimSpace(out), "\n")
	m := terse.FindStringSubmatch(strings.TrimSpace(line))
	if m == nil || m[1] != m[3] || m[2] != m[4] {
		return 0, 0, fmt.Errorf("htcondor: condor_submit -terse answered %q, not one job id", out)
	}
	cluster, _ = strconv.Atoi(m[1])
	proc, _ = strconv.Atoi(m[2])
	return cluster, proc, nil
}

// Submit implements batch.Backend. The user's helper writes the job
// script and the submit description into the job directory, runs
// condor_submit -terse, and records its answer there before replying, so a
// daemon that dies meanwhile finds it. A submission interrupted before that
// is looked up by its +ReanaJob attribute instead of being made twice.
func (b *Backend) Submit(ctx context.Context, s batch.Spec) (batch.Handle, error) {
	script, err := jobscript.Render(s, jobscript.Options{Runner: s.Runner, Preamble: s.Preamble})
	if err != nil {
		return batch.Handle{}, err
	}
	desc, err := SubmitDescription(s, b.Config)
	if err != nil {
		return batch.Handle{}, err
	}
	argv := append([]string{b.bin("condor_submit"), "-terse"}, b.scheddArgs()...)
	argv = append(argv, filepath.Join(s.JobDir, SubmitFile))
	args := worker.BatchSubmitArgs{JobDir: s.JobDir, Script: script, Command: s.Command, Argv: argv,
		Files: map[string]string{SubmitFile: desc}, Env: b.env()}
	var res worker.BatchSubmitResult
	if err := b.Runner.Call(ctx, s.User, "job.submit", args, &res); err != nil {
		return batch.Handle{}, fmt.Errorf("htcondor: submit job %s: %w", s.JobID, err)
	}
	if res.Interrupted {
		found, err := b.lookup(ctx, []string{s.JobID})
		if err != nil {
			return batch.Handle{}, fmt.Errorf("htcondor: look for the job of an interrupted submission: %w", err)
		}
		if a, ok := found[s.JobID]; ok {
			return b.handle(s, a.Cluster, a.Proc), nil
		}
		args.Force = true
		if err := b.Runner.Call(ctx, s.User, "job.submit", args, &res); err != nil {
			return batch.Handle{}, fmt.Errorf("htcondor: submit job %s: %w", s.JobID, err)
		}
	}
	if res.ExitCode != 0 || res.ID == "" {
		return batch.Handle{}, classify("condor_submit", res.Stderr, fmt.Errorf("exit status %d", res.ExitCode))
	}
	cluster, proc, err := ParseTerse(res.ID)
	if err != nil {
		return batch.Handle{}, err
	}
	return b.handle(s, cluster, proc), nil
}

func (b *Backend) handle(s batch.Spec, cluster, proc int) batch.Handle {
	p := progress{JobDir: s.JobDir, Cluster: cluster, Proc: proc, Submitted: b.now()}
	data, _ := json.Marshal(p)
	return batch.Handle{Backend: Name, Version: 1, ID: fmt.Sprintf("%d.%d", cluster, proc), Data: data}
}

func decodeProgress(j batch.Job) (progress, error) {
	var p progress
	if err := json.Unmarshal(j.Handle.Data, &p); err != nil {
		return p, fmt.Errorf("htcondor: handle of job %s: %w", j.Spec.JobID, err)
	}
	if p.JobDir == "" {
		p.JobDir = j.Spec.JobDir
	}
	return p, nil
}

// Status implements batch.Backend: each user's helper reads what was
// appended to that user's event logs since the stored offsets (and the
// exit-status files), the new events are folded into the stored status,
// and only jobs whose log is missing, shrank, lags behind the job's exit
// status, or has been silent for long are asked of the schedd, in one
// query for all of them.
func (b *Backend) Status(ctx context.Context, jobs []batch.Job) (map[string]batch.Status, error) {
	now := b.now()
	progs := make(map[string]progress, len(jobs))
	var known []batch.Job
	for _, j := range jobs {
		p, err := decodeProgress(j)
		if err != nil {
			continue
		}
		progs[j.Spec.JobID] = p
		known = append(known, j)
	}
	var mu sync.Mutex
	read := make(map[string]worker.FollowResult, len(known))
	err := batch.EachUser(ctx, known, func(ctx context.Context, js []batch.Job) error {
		args := worker.JobFollowArgs{MaxBytes: maxFollowBytes}
		for _, j := range js {
			p := progs[j.Spec.JobID]
			args.Logs = append(args.Logs, worker.FollowRef{ID: j.Spec.JobID,
				Path: filepath.Join(p.JobDir, EventLogFile), Offset: p.Offset, JobDir: p.JobDir})
		}
		var res map[string]worker.FollowResult
		if err := b.Runner.Call(ctx, js[0].Spec.User, "job.follow", args, &res); err != nil {
			return fmt.Errorf("htcondor: read event logs as %s: %w", js[0].Spec.User.Name, err)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, j := range js {
			if r, ok := res[j.Spec.JobID]; ok {
				read[j.Spec.JobID] = r
			}
		}
		return nil
	})

	out := make(map[string]batch.Status, len(known))
	changed := map[string]bool{}
	var ask []batch.Job
	for _, j := range known {
		id := j.Spec.JobID
		r, ok := read[id]
		if !ok || r.Error != "" {
			continue // ask again next round
		}
		p := progs[id]
		if len(r.Data) > 0 {
			events, n := b.Parser.Parse(r.Data)
			st := p.Status.load()
			ended := p.Status.Ended
			for _, e := range ForJob(events, p.Cluster, p.Proc) {
				st = st.Apply(e)
				ended = e.Code == EventTerminated
			}
			if n > 0 {
				p.Offset += int64(n)
				p.Status = toStored(st, ended)
				p.Changed = now
				changed[id] = true
			}
		}
		progs[id] = p
		if ps := p.Status.load(); ps.Held && b.Config.HoldTimeout > 0 && now.Sub(ps.HeldSince) > b.Config.HoldTimeout {
			out[id] = b.removeHeld(ctx, j, p, ps)
			continue
		}
		if b.needsSchedd(p, r, now) {
			ask = append(ask, j)
			continue
		}
		out[id] = b.decide(p, r)
	}

	if len(ask) > 0 {
		ids := make([]string, len(ask))
		for i, j := range ask {
			ids[i] = j.Spec.JobID
		}
		ads, qerr := b.lookup(ctx, ids)
		for _, j := range ask {
			id := j.Spec.JobID
			p := progs[id]
			if qerr != nil {
				// The schedd is needed only for these jobs; the others go
				// on. Ask again after the grace.
				p.Checked = now
				progs[id], changed[id] = p, true
				out[id] = p.Status.load().Status
				continue
			}
			p.Checked = now
			progs[id], changed[id] = p, true
			out[id] = b.fromSchedd(p, read[id], ads[id], ads[id].Found)
		}
		if qerr != nil && err == nil && !errors.Is(qerr, batch.ErrUnavailable) {
			err = qerr
		}
	}

	for _, j := range known {
		id := j.Spec.JobID
		st, ok := out[id]
		if !ok {
			continue
		}
		p := progs[id]
		if changed[id] {
			h := j.Handle
			h.Data, _ = json.Marshal(p)
			st.Handle = &h
		}
		out[id] = st
	}
	return out, err
}

func (b *Backend) logGrace() time.Duration {
	if b.Config.LogGrace > 0 {
		return b.Config.LogGrace
	}
	return DefaultLogGrace
}

func (b *Backend) silenceCheck() time.Duration {
	if b.Config.SilenceCheck > 0 {
		return b.Config.SilenceCheck
	}
	return DefaultSilenceCheck
}

// needsSchedd tells whether a job's log cannot be trusted alone this
// round. Each reason is paced, so a job is asked about at most once per
// grace period, however long the condition lasts.
func (b *Backend) needsSchedd(p progress, r worker.FollowResult, now time.Time) bool {
	if p.Status.State.Terminal() {
		return false
	}
	last := p.Submitted
	for _, t := range []time.Time{p.Changed, p.Checked} {
		if t.After(last) {
			last = t
		}
	}
	quiet := now.Sub(last)
	switch {
	case !r.Exists, r.Size < p.Offset:
		// Missing (HTCondor writes the submit event at once) or shrunk
		// (replaced or truncated by someone).
		return quiet > b.logGrace()
	case r.Exit.Present:
		// The job script has ended; its terminate event should follow
		// within moments.
		return quiet > b.logGrace()
	}
	return quiet > b.silenceCheck()
}

// decide turns the log's story into the engine's status, cross-checking an
// end with the exit-status file the job script writes.
func (b *Backend) decide(p progress, r worker.FollowResult) batch.Status {
	st := p.Status.load().Status
	id := fmt.Sprintf("HTCondor job %d.%d", p.Cluster, p.Proc)
	if !p.Status.Ended {
		return st // running, waiting, held, or removed (009)
	}
	if st.Signal != 0 {
		return st
	}
	if !r.Exit.Present {
		if st.State == batch.Succeeded {
			return batch.Status{State: batch.Failed, Reason: "final state unknown: " + id +
				" terminated with return value 0, but its job script recorded no exit status"}
		}
		return st
	}
	// The script's own record wins for the exit code, as on Slurm.
	code := r.Exit.ExitCode
	if code == 0 {
		return batch.Status{State: batch.Succeeded, ExitCode: &code}
	}
	return batch.Status{State: batch.Failed, ExitCode: &code, Reason: fmt.Sprintf("command exited with status %d (%s)", code, id)}
}

// fromSchedd settles a job the log could not: the schedd's (or its
// history's) record, else the exit-status file, else "final state
// unknown" — a job is never taken to have succeeded without evidence.
func (b *Backend) fromSchedd(p progress, r worker.FollowResult, a Ad, found bool) batch.Status {
	id := fmt.Sprintf("HTCondor job %d.%d", p.Cluster, p.Proc)
	if !found {
		if r.Exit.Present {
			code := r.Exit.ExitCode
			if code == 0 {
				return batch.Status{State: batch.Succeeded, ExitCode: &code}
			}
			return batch.Status{State: batch.Failed, ExitCode: &code, Reason: fmt.Sprintf("command exited with status %d (%s)", code, id)}
		}
		return batch.Status{State: batch.Failed, Reason: "final state unknown: " + id +
			" is neither in the schedd's queue nor in its history, and its event log has no terminate event"}
	}
	switch a.JobStatus {
	case 1:
		return batch.Status{State: batch.Pending}
	case 2, 6, 7:
		return batch.Status{State: batch.Running}
	case 5:
		return batch.Status{State: batch.Pending, Reason: "held: " + a.Reason}
	case 3:
		reason := id + " was removed"
		if a.Reason != "" {
			reason += " (" + a.Reason + ")"
		}
		return batch.Status{State: batch.Failed, Reason: reason}
	case 4:
		if a.ExitBySignal {
			return batch.Status{State: batch.Failed, Signal: a.ExitSignal, Reason: fmt.Sprintf("%s was killed by signal %d", id, a.ExitSignal)}
		}
		p.Status = storedStatus{State: batch.Succeeded, Ended: true}
		if a.ExitCode != 0 {
			c := a.ExitCode
			p.Status = storedStatus{State: batch.Failed, ExitCode: &c, Ended: true,
				Reason: fmt.Sprintf("command exited with status %d (%s)", c, id)}
		}
		return b.decide(p, r)
	}
	return p.Status.load().Status
}

// removeHeld ends a job that stayed held longer than the site allows: it
// is removed as its owner, and the step fails with HTCondor's hold reason.
func (b *Backend) removeHeld(ctx context.Context, j batch.Job, p progress, ps JobStatus) batch.Status {
	limit := b.Config.HoldTimeout
	reason := fmt.Sprintf("HTCondor job %d.%d was held for more than %s and has been removed; %s",
		p.Cluster, p.Proc, limit, ps.Reason)
	if err := b.remove(ctx, j, fmt.Sprintf("held for more than %s by reana-site", limit)); err != nil {
		// Report the hold as before and try again next round.
		st := ps.Status
		st.Reason += fmt.Sprintf(" (removing it after %s failed: %v)", limit, err)
		return st
	}
	return batch.Status{State: batch.Failed, Reason: reason}
}

// Cancel implements batch.Backend: condor_rm as the user, so HTCondor's own
// owner check applies.
func (b *Backend) Cancel(ctx context.Context, j batch.Job) error {
	return b.remove(ctx, j, "stopped by the user with reana-client")
}

func (b *Backend) remove(ctx context.Context, j batch.Job, why string) error {
	argv := append([]string{b.bin("condor_rm")}, b.scheddArgs()...)
	argv = append(argv, "-reason", why, j.Handle.ID)
	var res worker.ExecResult
	if err := b.Runner.Call(ctx, j.Spec.User, "exec", worker.ExecArgs{Argv: argv, Dir: "/", Env: b.env()}, &res); err != nil {
		return fmt.Errorf("htcondor: remove job %s: %w", j.Handle.ID, err)
	}
	if res.ExitCode == 0 {
		return nil
	}
	// A job that already left the queue, or is already being removed,
	// is what we wanted (condor_rm's texts, rm.cpp).
	if strings.Contains(res.Stderr, "not found") || strings.Contains(res.Stderr, "already marked for removal") {
		return nil
	}
	return classify("condor_rm "+j.Handle.ID, res.Stderr, fmt.Errorf("exit status %d", res.ExitCode))
}

// Logs implements batch.Backend.
func (b *Backend) Logs(ctx context.Context, j batch.Job) (string, error) {
	p, err := decodeProgress(j)
	if err != nil {
		return "", err
	}
	var res worker.JobLogsResult
	err = b.Runner.Call(ctx, j.Spec.User, "job.logs", worker.JobLogsArgs{
		Path: filepath.Join(p.JobDir, jobscript.OutputFile), MaxBytes: MaxLogBytes,
	}, &res)
	if err != nil {
		return "", fmt.Errorf("htcondor: logs of job %s: %w", j.Handle.ID, err)
	}
	if res.Truncated {
		return "[output truncated to its last 4 MiB]\n" + res.Text, nil
	}
	return res.Text, nil
}
