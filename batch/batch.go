// Package batch defines the one small interface that every compute backend
// (local, Slurm, HTCondor, Kubernetes) implements, in the spirit of Nomad's
// task drivers: submit, status of many jobs in one call, cancel, logs, and
// recovery after a daemon restart.
//
// Backends keep no state of their own. Everything a backend needs to find a
// job again lives in the opaque [Handle] it returns from Submit, which the
// engine persists in the store before the job counts as submitted.
package batch

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"time"

	"github.com/reana-site/reana-site/asuser"
)

// Spec describes one job: one command of one serial step, as REANA's serial
// engine submits it.
type Spec struct {
	JobID        string // our job id (a UUID); unique across all backends
	WorkflowID   string
	WorkflowName string // REANA's "name.run", e.g. root6-fit.1
	StepName     string
	Command      string // the expanded command, run with a shell in Workspace
	Image        string // the step's environment image
	Workspace    string // absolute path of the workflow workspace
	JobDir       string // absolute, user-owned directory for job scripts, logs and the exit-status file
	Env          map[string]string
	Hints        Hints
	User         asuser.Account
	// Runner, when set, is the argument vector that runs the command in
	// place of the host shell (an `apptainer exec ... <image> <shell>`);
	// see jobscript.Options.Runner. Nil runs the command on the host.
	Runner []string
	// Preamble is text the job prints at the start of its output (which
	// image the step runs in, what a pull printed). Empty prints nothing.
	Preamble string
	// Secrets says where the job finds the user's secrets. The job reads
	// them itself, as the user, when it starts: no value passes through
	// the daemon or the job's files.
	Secrets Secrets
}

// Secrets is where a job's secrets come from, and whether it needs a
// Kerberos ticket made from them.
type Secrets struct {
	// Dir is the user's secret directory (asuser's layout); empty means
	// the job gets no secrets.
	Dir string
	// Kerberos runs kinit from the keytab and principal secrets before
	// the command, and kdestroy after (REANA's kerberos: true).
	Kerberos bool
	// KeytabSecrets are the env secrets, tried in order, whose value names
	// the file secret with the keytab; UserSecrets those holding the
	// principal.
	KeytabSecrets []string
	UserSecrets   []string
	// KrbConfig, when set, is the krb5.conf kinit uses (KRB5_CONFIG).
	KrbConfig string
}

// Hints carries REANA's optional per-step resource fields. An empty field
// means the site default applies.
type Hints struct {
	SlurmPartition          string
	SlurmTime               string
	MemoryLimit             string // kubernetes_memory_limit
	MemoryRequest           string
	CPULimit                string
	CPURequest              string
	JobTimeoutSeconds       int // kubernetes_job_timeout
	HTCondorMaxRuntime      string
	HTCondorAccountingGroup string
}

// Handle is the opaque, versioned record a backend needs to find its job
// again. The engine stores it verbatim.
type Handle struct {
	Backend string          `json:"backend"`
	Version int             `json:"version"`
	ID      string          `json:"id"` // the backend's job id, shown to users (pid, Slurm job id, ...)
	Data    json.RawMessage `json:"data,omitempty"`
}

// Job is a submitted job as the engine hands it back to its backend.
type Job struct {
	Spec   Spec
	Handle Handle
}

// State is the coarse state of a job.
type State int

const (
	// Unknown means the backend could not tell this time (e.g. the batch
	// system is unreachable); the engine keeps waiting.
	Unknown State = iota
	Pending
	Running
	Succeeded
	Failed
	Stopped
)

func (s State) String() string {
	switch s {
	case Pending:
		return "pending"
	case Running:
		return "running"
	case Succeeded:
		return "succeeded"
	case Failed:
		return "failed"
	case Stopped:
		return "stopped"
	}
	return "unknown"
}

// Terminal reports whether the job will not change state again.
func (s State) Terminal() bool { return s == Succeeded || s == Failed || s == Stopped }

// Status is what a backend knows about one job.
type Status struct {
	State    State
	ExitCode *int   // set when the job's command ended with an exit status
	Signal   int    // non-zero when the command was killed by a signal
	Reason   string // human-readable explanation for failures and waits
	// Note is the scheduler's everyday word on a job that waits or runs
	// (Slurm's pending reason "Priority"): no news for the run's status
	// message, but shown per step on the details page.
	Note string
	// Retry asks the engine to submit the job again (e.g. after NODE_FAIL).
	Retry bool
	// Handle, when set, is the job's handle with the backend's progress in
	// it (how far an event log was read); the engine stores it, so after a
	// restart the backend resumes from there instead of the beginning.
	Handle *Handle
}

// Backend runs jobs for users. Implementations must be safe for concurrent
// use and must do every action that touches a user's files or acts in the
// batch system on the user's behalf in a process running as that user.
type Backend interface {
	// Name is the backend's canonical name, e.g. "local" or "slurm".
	Name() string
	// Submit starts the job. It must be idempotent for the same Spec.JobID:
	// a second call after a crash returns the handle of the job already
	// started instead of starting it twice.
	Submit(ctx context.Context, spec Spec) (Handle, error)
	// Status reports on many jobs with as few scheduler queries as possible.
	// Jobs missing from the result are treated as Unknown.
	Status(ctx context.Context, jobs []Job) (map[string]Status, error)
	// Cancel stops the job; cancelling a finished job is not an error.
	Cancel(ctx context.Context, job Job) error
	// Logs returns the job's output so far.
	Logs(ctx context.Context, job Job) (string, error)
}

// ImageNative is implemented by backends that start every step in its
// environment image themselves (Kubernetes pods). For their steps the
// engine neither resolves the image for Apptainer nor wraps the command in
// apptainer exec.
type ImageNative interface {
	ImageNative() bool
}

// SpecChecker is implemented by backends that can tell from a job's spec
// alone (the user, the workspace, the step's resources and image) that they
// would refuse it. The engine asks at start, before any job exists, so a
// step that could never run does not wait for the steps before it.
type SpecChecker interface {
	CheckSpec(spec Spec) error
}

// UnrecordedCanceller is implemented by backends that can find and stop,
// from its spec alone, a job whose submission may have reached the batch
// system without its handle being recorded (the daemon died in between).
// Stopping such a workflow must not leave that job running.
type UnrecordedCanceller interface {
	CancelUnrecorded(ctx context.Context, spec Spec) error
}

// QueryFunc runs a batch-system query command (squeue, condor_q) as the
// daemon itself and returns its standard output and error. Queries read
// the scheduler's state and touch no user's files.
type QueryFunc func(ctx context.Context, argv []string) (stdout, stderr []byte, err error)

// RunQuery is the QueryFunc that runs argv directly.
func RunQuery(ctx context.Context, argv []string) (stdout, stderr []byte, err error) {
	return RunQueryEnv(ctx, argv, nil)
}

// RunQueryEnv runs argv directly with env added to the daemon's
// environment (CONDOR_CONFIG for a site whose HTCondor configuration is
// elsewhere).
func RunQueryEnv(ctx context.Context, argv, env []string) (stdout, stderr []byte, err error) {
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err = cmd.Run()
	return out.Bytes(), errb.Bytes(), err
}

// MaxLogBytes bounds the output kept for one step; the end is kept, since
// that is where errors are.
const MaxLogBytes = 4 << 20

// TruncatedNote heads an output cut to its last MaxLogBytes.
const TruncatedNote = "[output truncated to its last 4 MiB]\n"

// ErrUnavailable marks errors that come from the batch system being
// unreachable; the engine retries these with backoff instead of failing.
var ErrUnavailable = errors.New("batch system unavailable")

// DefaultPollInterval is how often the engine asks backends for status when
// nothing else wakes it.
const DefaultPollInterval = 500 * time.Millisecond

// Preflighter is implemented by backends that can tell before any job
// exists that submissions would be refused (for example by Kubernetes
// admission). Preflight returns the latest finding; nil means ready.
type Preflighter interface {
	Preflight() error
}
