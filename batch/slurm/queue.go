package slurm

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/reana-site/reana-site/batch"
)

// QueueJob is what the controller (or accounting) says about one job.
type QueueJob struct {
	ID      string
	State   string // Slurm's base state, e.g. RUNNING, TIMEOUT
	Reason  string
	User    string
	Comment string
	// HasExit tells whether ExitCode and Signal are known: sacct reports
	// them, squeue does not (the job's exit-status file does).
	HasExit  bool
	ExitCode int
	Signal   int
}

// Status fields asked of squeue. Only the comment is the user's text, so it
// comes last and may hold the separator.
const (
	statusFormat  = "%i|%T|%r"
	commentFormat = "%i|%u|%k"
)

// ParseSqueue reads `squeue --noheader --format=%i|%T|%r` lines.
func ParseSqueue(b []byte) map[string]QueueJob {
	jobs := map[string]QueueJob{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.SplitN(strings.TrimSpace(line), "|", 3)
		if len(f) != 3 || f[0] == "" {
			continue
		}
		jobs[f[0]] = QueueJob{ID: f[0], State: baseState(f[1]), Reason: f[2]}
	}
	return jobs
}

// ParseComments reads `squeue --noheader --format=%i|%u|%k` lines.
func ParseComments(b []byte) []QueueJob {
	var jobs []QueueJob
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.SplitN(strings.TrimRight(line, "\r"), "|", 3)
		if len(f) != 3 || strings.TrimSpace(f[0]) == "" {
			continue
		}
		jobs = append(jobs, QueueJob{ID: strings.TrimSpace(f[0]), User: f[1], Comment: f[2]})
	}
	return jobs
}

// baseState drops what follows the state word ("CANCELLED by 4101").
func baseState(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), " ")
	return strings.ToUpper(s)
}

// Terminal tells whether Slurm considers the job over.
func (q QueueJob) Terminal() bool {
	switch q.State {
	case "PENDING", "RUNNING", "SUSPENDED", "COMPLETING", "CONFIGURING", "REQUEUED", "REQUEUE_HOLD",
		"REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD", "POWER_UP_NODE":
		return false
	}
	return true
}

// Status maps Slurm's view of a job to the engine's.
func (q QueueJob) Status() batch.Status {
	switch q.State {
	case "PENDING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED", "RESV_DEL_HOLD", "CONFIGURING", "POWER_UP_NODE":
		// Slurm's everyday reasons (waiting for priority or resources, or
		// none yet) are no news to the user; the others (held, a limit
		// reached, a dependency never satisfied) are why nothing runs.
		switch q.Reason {
		case "", "None":
			return batch.Status{State: batch.Pending}
		case "Priority", "Resources":
			return batch.Status{State: batch.Pending, Note: q.Reason}
		}
		return batch.Status{State: batch.Pending, Reason: "Slurm job " + q.ID + " is pending: " + q.Reason}
	case "RUNNING", "SUSPENDED", "COMPLETING", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED":
		return batch.Status{State: batch.Running}
	}
	code, sig := q.ExitCode, q.Signal
	st := batch.Status{State: batch.Failed, Signal: sig}
	if q.HasExit {
		st.ExitCode = &code
	}
	where := "Slurm job " + q.ID
	switch q.State {
	case "COMPLETED":
		// Slurm calls a job COMPLETED only when it exited 0.
		if code == 0 && sig == 0 {
			zero := 0
			return batch.Status{State: batch.Succeeded, ExitCode: &zero}
		}
		st.Reason = fmt.Sprintf("%s completed with exit status %d", where, code)
	case "FAILED":
		st.Reason = where + " failed"
		switch {
		case sig != 0:
			st.Reason = fmt.Sprintf("%s failed: killed by signal %d", where, sig)
		case q.HasExit:
			st.Reason = fmt.Sprintf("%s failed: command exited with status %d", where, code)
		}
	case "TIMEOUT":
		st.Reason = where + " reached its time limit (TIMEOUT); ask for more with slurm_time"
	case "OUT_OF_MEMORY":
		st.Reason = where + " ran out of memory (OUT_OF_MEMORY); ask for more with kubernetes_memory_limit"
	case "CANCELLED":
		st.Reason = where + " was cancelled"
		if q.Reason != "" && q.Reason != "None" {
			st.Reason += " (" + q.Reason + ")"
		}
	case "NODE_FAIL":
		st.Reason, st.Retry = where+" failed because its node failed (NODE_FAIL)", true
	case "BOOT_FAIL":
		st.Reason, st.Retry = where+" could not start: its node failed to boot (BOOT_FAIL)", true
	case "PREEMPTED":
		st.Reason = where + " was preempted by the scheduler (PREEMPTED)"
	case "DEADLINE":
		st.Reason = where + " missed its deadline (DEADLINE)"
	default:
		st.Reason = fmt.Sprintf("%s ended in state %s", where, q.State)
	}
	if q.HasExit && code != 0 && q.State != "FAILED" && q.State != "COMPLETED" {
		st.Reason += ", exit status " + strconv.Itoa(code)
	}
	return st
}
