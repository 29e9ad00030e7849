package slurm

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/reana-site/reana-site/batch"
)

// QueueJob is what the controller says about one job.
type QueueJob struct {
	ID      string
	State   string // Slurm's base state, e.g. RUNNING, TIMEOUT
	Reason  string
	Comment string
	User    string
	// ExitCode and Signal come from Slurm's wait status.
	ExitCode int
	Signal   int
}

// ParseQueue reads `squeue --json`. Slurm 22.05 (data_parser 0.0.38) gives
// job_state as a string and exit_code as a raw wait status; later versions
// give a list of state flags and an object. Both are accepted.
func ParseQueue(b []byte) (map[string]QueueJob, error) {
	var doc struct {
		Errors []json.RawMessage `json:"errors"`
		Jobs   []struct {
			JobID       json.Number     `json:"job_id"`
			JobState    json.RawMessage `json:"job_state"`
			StateReason string          `json:"state_reason"`
			Comment     string          `json:"comment"`
			UserName    string          `json:"user_name"`
			ExitCode    json.RawMessage `json:"exit_code"`
		} `json:"jobs"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("decode: %w", err)
	}
	if len(doc.Errors) > 0 {
		// 22.05 reports an unreachable controller here, exits 0 and lists
		// no jobs: an empty queue must never be believed then.
		return nil, fmt.Errorf("squeue reported errors: %s: %w", joinRaw(doc.Errors), batch.ErrUnavailable)
	}
	out := make(map[string]QueueJob, len(doc.Jobs))
	for _, j := range doc.Jobs {
		q := QueueJob{ID: j.JobID.String(), Reason: j.StateReason, Comment: j.Comment, User: j.UserName}
		q.State = parseState(j.JobState)
		q.ExitCode, q.Signal = parseExit(j.ExitCode)
		out[q.ID] = q
	}
	return out, nil
}

func joinRaw(rs []json.RawMessage) string {
	parts := make([]string, len(rs))
	for i, r := range rs {
		parts[i] = string(r)
	}
	return strings.Join(parts, "; ")
}

func parseState(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return baseState(s)
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil && len(list) > 0 {
		return baseState(list[0])
	}
	return "UNKNOWN"
}

// baseState drops flags some tools append ("CANCELLED by 4101").
func baseState(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), " ")
	return strings.ToUpper(s)
}

func parseExit(raw json.RawMessage) (code, signal int) {
	var n int64
	if json.Unmarshal(raw, &n) == nil {
		// A wait status: low 7 bits the signal, next byte the exit code.
		return int((n >> 8) & 0xff), int(n & 0x7f)
	}
	var obj struct {
		ReturnCode json.RawMessage `json:"return_code"`
		Signal     struct {
			ID json.RawMessage `json:"id"`
		} `json:"signal"`
	}
	if json.Unmarshal(raw, &obj) == nil {
		return numberOf(obj.ReturnCode), numberOf(obj.Signal.ID)
	}
	return 0, 0
}

// numberOf reads 3 or {"set": true, "number": 3}.
func numberOf(raw json.RawMessage) int {
	var n int
	if json.Unmarshal(raw, &n) == nil {
		return n
	}
	var v struct {
		Number int `json:"number"`
	}
	_ = json.Unmarshal(raw, &v)
	return v.Number
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
		return batch.Status{State: batch.Pending, Reason: q.Reason}
	case "RUNNING", "SUSPENDED", "COMPLETING", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED":
		return batch.Status{State: batch.Running}
	}
	code, sig := q.ExitCode, q.Signal
	st := batch.Status{State: batch.Failed, ExitCode: &code, Signal: sig}
	where := "Slurm job " + q.ID
	switch q.State {
	case "COMPLETED":
		if code == 0 && sig == 0 {
			return batch.Status{State: batch.Succeeded, ExitCode: &code}
		}
		st.Reason = fmt.Sprintf("%s completed with exit status %d", where, code)
	case "FAILED":
		st.Reason = fmt.Sprintf("%s failed: command exited with status %d", where, code)
		if sig != 0 {
			st.Reason = fmt.Sprintf("%s failed: killed by signal %d", where, sig)
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
	if code != 0 && q.State != "FAILED" && q.State != "COMPLETED" {
		st.Reason += ", exit status " + strconv.Itoa(code)
	}
	return st
}
