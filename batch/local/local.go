// Package local runs steps on this host, as the user, in the workspace.
// It is the embedded default backend for a laptop, a login node or a test.
//
// Each step runs as a job script in its own session, started by a helper
// running as the user, so it outlives the helper and a restart of the
// daemon. Its pid and, at the end, its exit status are written by the
// script itself into the job directory; status is read back from there and
// from /proc, never assumed from a process having vanished.
package local

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/batch/jobscript"
)

// Name is the backend's canonical name.
const Name = "local"

// Backend is the local backend.
type Backend struct {
	Runner asuser.Caller
	// StopGrace is how long a stopped step gets between SIGTERM and SIGKILL.
	StopGrace time.Duration
}

type handleData struct {
	JobDir string `json:"job_dir"`
	PID    int    `json:"pid"`
}

// Name implements batch.Backend.
func (b *Backend) Name() string { return Name }

// Submit implements batch.Backend.
func (b *Backend) Submit(ctx context.Context, spec batch.Spec) (batch.Handle, error) {
	script, err := jobscript.Render(spec, jobscript.Options{
		WritePID: true, RedirectOutput: true, Runner: spec.Runner, Preamble: spec.Preamble,
	})
	if err != nil {
		return batch.Handle{}, err
	}
	res, err := asuser.StartJob(ctx, b.Runner, spec.User, asuser.JobStartArgs{
		JobDir: spec.JobDir, Script: script, Command: spec.Command, Detach: true,
	})
	if err != nil {
		return batch.Handle{}, fmt.Errorf("local: start job %s: %w", spec.JobID, err)
	}
	data, _ := json.Marshal(handleData{JobDir: spec.JobDir, PID: res.PID})
	return batch.Handle{Backend: Name, Version: 1, ID: strconv.Itoa(res.PID), Data: data}, nil
}

func ref(j batch.Job) asuser.JobRef {
	var h handleData
	_ = json.Unmarshal(j.Handle.Data, &h)
	if h.JobDir == "" {
		h.JobDir = j.Spec.JobDir
	}
	return asuser.JobRef{ID: j.Spec.JobID, JobDir: h.JobDir, PID: h.PID}
}

// Status implements batch.Backend with one helper per user, whatever the
// number of that user's jobs.
func (b *Backend) Status(ctx context.Context, jobs []batch.Job) (map[string]batch.Status, error) {
	out := make(map[string]batch.Status, len(jobs))
	var mu sync.Mutex
	err := batch.EachUser(ctx, jobs, func(ctx context.Context, js []batch.Job) error {
		args := asuser.JobStatusArgs{}
		for _, j := range js {
			args.Jobs = append(args.Jobs, ref(j))
		}
		res, err := asuser.JobStatus(ctx, b.Runner, js[0].Spec.User, args)
		if err != nil {
			return fmt.Errorf("local: status for %s: %w", js[0].Spec.User.Name, err)
		}
		mu.Lock()
		defer mu.Unlock()
		for _, j := range js {
			out[j.Spec.JobID] = toStatus(res[j.Spec.JobID])
		}
		return nil
	})
	return out, err
}

func toStatus(s asuser.JobState) batch.Status {
	switch {
	case s.Exited:
		code := s.ExitCode
		st := batch.Status{State: batch.Succeeded, ExitCode: &code}
		if code != 0 {
			st.State = batch.Failed
			st.Reason = fmt.Sprintf("command exited with status %d", code)
			if code > 128 && code < 128+65 {
				st.Signal = code - 128
				st.Reason = fmt.Sprintf("command exited with status %d (killed by signal %d?)", code, code-128)
			}
		}
		return st
	case s.Alive:
		return batch.Status{State: batch.Running}
	}
	reason := "final state unknown: the step's process ended without recording an exit status"
	if s.Reason != "" {
		reason += " (" + s.Reason + ")"
	}
	return batch.Status{State: batch.Failed, Reason: reason}
}

// Cancel implements batch.Backend.
func (b *Backend) Cancel(ctx context.Context, j batch.Job) error {
	grace := b.StopGrace
	if grace == 0 {
		grace = 10 * time.Second
	}
	if err := asuser.CancelJob(ctx, b.Runner, j.Spec.User, asuser.JobCancelArgs{Job: ref(j), Grace: grace}); err != nil {
		return fmt.Errorf("local: cancel job %s: %w", j.Spec.JobID, err)
	}
	return nil
}

// CancelUnrecorded implements batch.UnrecordedCanceller: the job
// directory holds the script's pid, so the handle is not needed.
func (b *Backend) CancelUnrecorded(ctx context.Context, s batch.Spec) error {
	return b.Cancel(ctx, batch.Job{Spec: s})
}

// Logs implements batch.Backend.
func (b *Backend) Logs(ctx context.Context, j batch.Job) (string, error) {
	out, err := batch.ReadOutput(ctx, b.Runner, j.Spec.User, ref(j).JobDir)
	if err != nil {
		return "", fmt.Errorf("local: logs of job %s: %w", j.Spec.JobID, err)
	}
	return out, nil
}
