package htcondor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
)

// followBudget bounds what one user's helper returns in one poll over all
// of that user's logs (the reply also carries it base64-encoded, and the
// helper's reply is capped at 64 MiB); a backlog is read over the next
// polls.
const followBudget = 16 << 20

// minFollowBytes is the least read of one log per poll, however many logs
// a user has, so every log moves on.
const minFollowBytes = 64 << 10

// progress is the handle's data: where the job's files are, how far its
// event log has been read, and what the events read so far say. It is
// stored with the job after every poll that changed it, so a daemon
// restart resumes at Offset instead of reading the log again.
type progress struct {
	JobDir  string `json:"job_dir"`
	Cluster int    `json:"cluster"`
	Proc    int    `json:"proc"`
	Offset  int64  `json:"offset"`
	// Status is the fold of the job's events up to Offset (and of what the
	// schedd said, when it was asked).
	Status storedStatus `json:"status"`
	// Submitted is when condor_submit answered; Changed when the log last
	// grew; Checked when the schedd was last asked about the job;
	// RemoveTried when the hold timeout last tried to remove it.
	Submitted   time.Time `json:"submitted"`
	Changed     time.Time `json:"changed,omitzero"`
	Checked     time.Time `json:"checked,omitzero"`
	RemoveTried time.Time `json:"remove_tried,omitzero"`
	// Unreachable is the error of the last query about the job when the
	// schedd could not be reached: until a query answers (or the log moves
	// on), every poll reports the outage, so the user is told for as long
	// as it lasts, and the schedd is asked again at the shorter retry pace.
	Unreachable string `json:"unreachable,omitempty"`
}

// maxUnreachableRetry bounds how long a job whose query found the schedd
// unreachable waits before asking again: an outage should be seen to end
// within seconds, not a log grace later.
const maxUnreachableRetry = 10 * time.Second

// storedStatus is JobStatus as stored in the handle.
type storedStatus struct {
	State     string    `json:"state"` // batch.State's name, stable across releases
	ExitCode  *int      `json:"exit_code,omitempty"`
	Signal    int       `json:"signal,omitempty"`
	Reason    string    `json:"reason,omitempty"`
	Held      bool      `json:"held,omitempty"`
	HeldSince time.Time `json:"held_since,omitzero"`
	HoldCode  int       `json:"hold_code,omitempty"`
	Ended     bool      `json:"ended,omitempty"`
	Runs      int       `json:"runs,omitempty"`
	Reruns    int       `json:"reruns,omitempty"`
}

var stateNames = map[string]batch.State{}

func init() {
	for s := batch.Unknown; s <= batch.Stopped; s++ {
		stateNames[s.String()] = s
	}
}

func toStored(s JobStatus) storedStatus {
	return storedStatus{State: s.State.String(), ExitCode: s.ExitCode, Signal: s.Signal, Reason: s.Reason,
		Held: s.Held, HeldSince: s.HeldSince, HoldCode: s.HoldCode, Ended: s.Ended, Runs: s.Runs, Reruns: s.Reruns}
}

func (s storedStatus) load() JobStatus {
	return JobStatus{Status: batch.Status{State: stateNames[s.State], ExitCode: s.ExitCode, Signal: s.Signal, Reason: s.Reason},
		Held: s.Held, HeldSince: s.HeldSince, HoldCode: s.HoldCode, Ended: s.Ended, Runs: s.Runs, Reruns: s.Reruns}
}

func (b *Backend) handle(s batch.Spec, cluster, proc int) batch.Handle {
	p := progress{JobDir: s.JobDir, Cluster: cluster, Proc: proc, Submitted: b.now(),
		Status: toStored(JobStatus{Status: batch.Status{State: batch.Pending}})}
	data, _ := json.Marshal(p)
	return batch.Handle{Backend: Name, Version: 1, ID: fmt.Sprintf("%d.%d", cluster, proc), Data: data}
}

func decodeProgress(j batch.Job) (progress, error) {
	var p progress
	if err := json.Unmarshal(j.Handle.Data, &p); err != nil || p.Cluster == 0 {
		return p, fmt.Errorf("htcondor: the stored handle of job %s (%s) cannot be read", j.Spec.JobID, j.Handle.ID)
	}
	if p.JobDir == "" {
		p.JobDir = j.Spec.JobDir
	}
	return p, nil
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

// Status implements batch.Backend: each user's helper reads what was
// appended to that user's event logs since the stored offsets (and the
// exit-status files), the new events are folded into the stored status,
// and only jobs whose log is missing, unreadable, shrank, lags behind the
// job's exit status, or has been silent for long are asked of the schedd,
// in one query for all of them.
func (b *Backend) Status(ctx context.Context, jobs []batch.Job) (map[string]batch.Status, error) {
	now := b.now()
	out := make(map[string]batch.Status, len(jobs))
	progs := make(map[string]progress, len(jobs))
	var known []batch.Job
	for _, j := range jobs {
		p, err := decodeProgress(j)
		if err != nil {
			out[j.Spec.JobID] = batch.Status{State: batch.Failed, Reason: err.Error()}
			continue
		}
		progs[j.Spec.JobID] = p
		known = append(known, j)
	}
	read, err := b.follow(ctx, known, progs)

	changed := map[string]bool{}
	var ask []batch.Job
	for _, j := range known {
		id := j.Spec.JobID
		r, ok := read[id]
		if !ok {
			continue // the owner's helper failed: ask again next round
		}
		p := progs[id]
		if len(r.Data) > 0 {
			events, n := b.Parser.Parse(r.Data)
			if n == 0 && int64(len(r.Data)) >= r.Asked {
				out[id] = batch.Status{State: batch.Failed, Reason: fmt.Sprintf(
					"the event log of HTCondor job %d.%d has no complete event in its %d bytes after offset %d: it is not in HTCondor's text format (DEFAULT_USERLOG_FORMAT_OPTIONS?)",
					p.Cluster, p.Proc, len(r.Data), p.Offset)}
				continue
			}
			st := p.Status.load()
			for _, e := range ForJob(events, p.Cluster, p.Proc) {
				was := st.Held
				st = st.Apply(e)
				if st.Held && !was && st.HeldSince.After(now) {
					// The schedd's clock (or time zone) is ahead of ours:
					// the hold timeout counts from when we saw it.
					st.HeldSince = now
				}
			}
			if n > 0 {
				p.Offset += int64(n)
				p.Status = toStored(st)
				p.Changed = now
				// Events are written by the schedd and its shadows: they
				// are back.
				p.Unreachable = ""
				changed[id] = true
			}
		}
		caughtUp := r.Exists && r.Error == "" && p.Offset >= r.Size
		if ps := p.Status.load(); ps.Held && caughtUp && b.Config.HoldTimeout > 0 && now.Sub(ps.HeldSince) > b.Config.HoldTimeout {
			if !p.RemoveTried.IsZero() && now.Sub(p.RemoveTried) < b.logGrace() {
				out[id] = ps.Status // removal asked for lately; wait for it
			} else {
				p.RemoveTried, changed[id] = now, true
				out[id] = b.removeHeld(ctx, j, p, ps)
			}
			progs[id] = p
			continue
		}
		progs[id] = p
		if b.needsSchedd(p, r, now) {
			ask = append(ask, j)
			continue
		}
		out[id] = b.decide(p, r, now)
	}

	var outage error
	if len(ask) > 0 {
		ads, qerr := b.lookupJobs(ctx, ask, progs)
		down := errors.Is(qerr, batch.ErrUnavailable)
		for _, j := range ask {
			id := j.Spec.JobID
			p := progs[id]
			p.Checked, changed[id] = now, true
			a, found := ads[id]
			if !found && qerr != nil {
				// The schedd could not say: wait, and ask again after the
				// grace (or the retry pace, when it is unreachable). The
				// other jobs go on.
				out[id] = p.Status.load().Status
				if down {
					p.Unreachable = strings.TrimSuffix(qerr.Error(), ": "+batch.ErrUnavailable.Error())
				}
			} else {
				p.Unreachable = ""
				p, out[id] = b.fromSchedd(p, read[id], a, found, now)
				out[id] = b.noLog(p, read[id], out[id], now)
			}
			progs[id] = p
		}
		switch {
		case down:
			outage = qerr
		case qerr != nil && err == nil:
			err = qerr
		}
	}
	// An outage seen by an earlier poll lasts until a query answers: the
	// engine tells the owners (status -v) while it is reported.
	for _, j := range known {
		if p := progs[j.Spec.JobID]; outage == nil && p.Unreachable != "" && !p.Status.load().State.Terminal() {
			outage = fmt.Errorf("%s: %w", p.Unreachable, batch.ErrUnavailable)
		}
	}
	if err == nil {
		err = outage
	}

	for _, j := range known {
		id := j.Spec.JobID
		st, ok := out[id]
		if !ok || !changed[id] {
			continue
		}
		h := j.Handle
		h.Data, _ = json.Marshal(progs[id])
		st.Handle = &h
		out[id] = st
	}
	return out, err
}

// followed is one log's news, with how much was asked for.
type followed struct {
	asuser.FollowResult
	Asked int64
}

// follow has each user's helper read that user's logs from their offsets,
// within followBudget per user.
func (b *Backend) follow(ctx context.Context, jobs []batch.Job, progs map[string]progress) (map[string]followed, error) {
	var mu sync.Mutex
	read := make(map[string]followed, len(jobs))
	err := batch.EachUser(ctx, jobs, func(ctx context.Context, js []batch.Job) error {
		per := max(min(maxFollowBytes, followBudget/int64(len(js))), minFollowBytes)
		args := asuser.JobFollowArgs{MaxBytes: per}
		for _, j := range js {
			p := progs[j.Spec.JobID]
			args.Logs = append(args.Logs, asuser.FollowRef{ID: j.Spec.JobID,
				Path: filepath.Join(p.JobDir, EventLogFile), Offset: p.Offset, JobDir: p.JobDir})
		}
		res, err := asuser.FollowLogs(ctx, b.Runner, js[0].Spec.User, args)
		if err != nil {
			return fmt.Errorf("htcondor: read event logs as %s: %w", js[0].Spec.User.Name, err)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, j := range js {
			if r, ok := res[j.Spec.JobID]; ok {
				read[j.Spec.JobID] = followed{FollowResult: r, Asked: per}
			}
		}
		return nil
	})
	return read, err
}

// needsSchedd tells whether a job's log cannot be trusted alone this
// round. Each reason is paced, so a job is asked about at most once per
// grace period, however long the condition lasts.
func (b *Backend) needsSchedd(p progress, r followed, now time.Time) bool {
	if p.Status.load().State.Terminal() {
		return false
	}
	last := p.Submitted
	for _, t := range []time.Time{p.Changed, p.Checked} {
		if t.After(last) {
			last = t
		}
	}
	quiet := now.Sub(last)
	if p.Unreachable != "" {
		return now.Sub(p.Checked) > min(b.logGrace(), maxUnreachableRetry)
	}
	switch {
	case !r.Exists, r.Error != "", r.Size < p.Offset:
		// Missing (HTCondor writes the submit event at once), unreadable
		// (not a regular file, no permission), or shrunk (replaced or
		// truncated by someone).
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
func (b *Backend) decide(p progress, r followed, now time.Time) batch.Status {
	js := p.Status.load()
	st := js.Status
	id := fmt.Sprintf("HTCondor job %d.%d", p.Cluster, p.Proc)
	if !js.Ended {
		return st // running, waiting, held, or removed (009)
	}
	if st.Signal != 0 {
		return st
	}
	if !r.Exit.Present {
		if st.State != batch.Succeeded {
			return st
		}
		// The exit-status file is written on the execute node; over NFS
		// the submit host may see the terminate event first.
		if now.Sub(p.Changed) < b.logGrace() {
			return batch.Status{State: batch.Running}
		}
		return batch.Status{State: batch.Failed, Reason: "final state unknown: " + id +
			" terminated with return value 0, but its job script recorded no exit status"}
	}
	// The script's own record wins for the exit code, as on Slurm.
	return exitStatus(r.Exit.ExitCode, id)
}

func exitStatus(code int, id string) batch.Status {
	if code == 0 {
		return batch.Status{State: batch.Succeeded, ExitCode: &code}
	}
	return batch.Status{State: batch.Failed, ExitCode: &code, Reason: fmt.Sprintf("command exited with status %d (%s)", code, id)}
}

// fromSchedd settles or updates a job the log could not: the schedd's (or
// its history's) record, else the exit-status file, else "final state
// unknown" — a job is never taken to have succeeded without evidence. What
// the schedd says of a job still in the queue is kept in the progress, so
// a hold seen only there is timed like one read from the log.
func (b *Backend) fromSchedd(p progress, r followed, a Ad, found bool, now time.Time) (progress, batch.Status) {
	id := fmt.Sprintf("HTCondor job %d.%d", p.Cluster, p.Proc)
	if !found {
		if r.Exit.Present {
			return p, exitStatus(r.Exit.ExitCode, id)
		}
		return p, batch.Status{State: batch.Failed, Reason: "final state unknown: " + id +
			" is neither in the schedd's queue nor in its history, and its event log has no terminate event"}
	}
	keep := func(js JobStatus) (progress, batch.Status) {
		p.Status = toStored(js)
		return p, js.Status
	}
	switch a.JobStatus {
	case 1:
		return keep(JobStatus{Status: batch.Status{State: batch.Pending}})
	case 2, 6, 7:
		return keep(JobStatus{Status: batch.Status{State: batch.Running}})
	case 5:
		since := now
		if cur := p.Status.load(); cur.Held {
			since = cur.HeldSince
		} else if a.EnteredCurrentStatus > 0 && time.Unix(a.EnteredCurrentStatus, 0).Before(now) {
			since = time.Unix(a.EnteredCurrentStatus, 0)
		}
		return keep(JobStatus{Status: batch.Status{State: batch.Pending, Reason: "held: " + ByWhom(a.Reason)}, Held: true, HeldSince: since})
	case 3:
		reason := id + " was removed"
		if a.Reason != "" {
			reason += " (" + ByWhom(a.Reason) + ")"
		}
		return p, batch.Status{State: batch.Failed, Reason: reason}
	case 4:
		if a.ExitBySignal {
			return p, batch.Status{State: batch.Failed, Signal: a.ExitSignal, Reason: fmt.Sprintf("%s was killed by signal %d", id, a.ExitSignal)}
		}
		if r.Exit.Present {
			return p, exitStatus(r.Exit.ExitCode, id)
		}
		if a.ExitCode != 0 {
			return p, exitStatus(a.ExitCode, id)
		}
		return p, batch.Status{State: batch.Failed, Reason: "final state unknown: " + id +
			" completed with exit code 0, but its job script recorded no exit status"}
	}
	return p, p.Status.load().Status
}

// noLog explains a job whose event log has not appeared a log grace after
// submission: condor_submit accepts a log the schedd cannot write (a 24.0
// pool ran such a job to its end and never wrote the file), so the job is
// followed through the schedd, slowly, and the user is told why.
func (b *Backend) noLog(p progress, r followed, st batch.Status, now time.Time) batch.Status {
	if r.Exists || r.Error != "" || now.Sub(p.Submitted) <= b.logGrace() {
		return st
	}
	why := fmt.Sprintf("the event log %s of HTCondor job %d.%d has not appeared %s after submission: HTCondor cannot write it there "+
		"(is the job directory on a filesystem the schedd sees, and writable by the user?)",
		filepath.Join(p.JobDir, EventLogFile), p.Cluster, p.Proc, now.Sub(p.Submitted).Round(time.Second))
	switch {
	case !st.State.Terminal() && st.Reason == "":
		st.Reason = why + "; the job is followed through the schedd meanwhile"
	case st.State == batch.Failed:
		st.Reason += "; " + why
	}
	return st
}

// removeHeld ends a job that stayed held longer than the site allows: it
// is removed as its owner, and the step fails with HTCondor's hold reason.
func (b *Backend) removeHeld(ctx context.Context, j batch.Job, p progress, ps JobStatus) batch.Status {
	limit := b.Config.HoldTimeout
	reason := fmt.Sprintf("HTCondor job %d.%d was held for more than %s and has been removed; %s",
		p.Cluster, p.Proc, limit, ps.Reason)
	if err := b.remove(ctx, j, fmt.Sprintf("held for more than %s by reana-site", limit)); err != nil {
		// Report the hold as before and try again after the grace.
		st := ps.Status
		st.Reason += fmt.Sprintf(" (removing it after %s failed: %v)", limit, err)
		return st
	}
	return batch.Status{State: batch.Failed, Reason: reason}
}
