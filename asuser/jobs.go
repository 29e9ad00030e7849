package asuser

import "time"

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

// JobReadExitArgs reads the exit-status files of batch jobs.
type JobReadExitArgs struct {
	JobDirs map[string]string `json:"job_dirs"` // job id -> dir
}

// ExitInfo is the content of one job's exit-status file.
type ExitInfo struct {
	Present  bool `json:"present"`
	ExitCode int  `json:"exit_code"`
}

// JobCancelArgs stops a local job.
type JobCancelArgs struct {
	Job   JobRef        `json:"job"`
	Grace time.Duration `json:"grace"`
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

// BatchSubmitManyArgs are the jobs of one user and backend that one
// helper submits, in order.
type BatchSubmitManyArgs struct {
	Jobs []BatchSubmitArgs `json:"jobs"`
}

// BatchSubmitClusterArgs are jobs of one user that one run of Argv
// submits as one transaction (HTCondor's condor_submit of a description
// with one block per job). Each job is claimed and its files written as
// for BatchSubmitArgs (its Argv is not run); the jobs' DescFile texts, in
// order, are Argv's standard input, and Argv answers on stdout with lines
// "C.P0 - C.PN" that name the jobs' ids C.P0 to C.PN, in order. Jobs with a
// recorded id or an interrupted claim are answered without being in it.
type BatchSubmitClusterArgs struct {
	Jobs     []BatchSubmitArgs `json:"jobs"`
	DescFile string            `json:"desc_file"`
	Argv     []string          `json:"argv"`
	Env      []string          `json:"env,omitempty"`
	// MaybeSubmitted is as in BatchSubmitArgs, for the whole cluster.
	MaybeSubmitted string `json:"maybe_submitted,omitempty"`
}

// BatchSubmitOutcome is one job's answer in a SubmitJobs call: its result,
// or the error that job alone met (the others are unaffected).
type BatchSubmitOutcome struct {
	Result BatchSubmitResult `json:"result"`
	Error  *Error            `json:"error,omitempty"`
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
