package htcondor

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"

	"github.com/reana-site/reana-site/batch"
)

// Ad is what the schedd (condor_q) or its history (condor_history) says
// about one job.
type Ad struct {
	ReanaJob             string
	Cluster              int
	Proc                 int
	Owner                string
	JobStatus            int // "Job Status Codes": 1 idle, 2 running, 3 removed, 4 completed, 5 held
	ExitCode             int
	ExitBySignal         bool
	ExitSignal           int
	EnteredCurrentStatus int64
	Reason               string // HoldReason in the queue, RemoveReason in the history
}

// adAttrs are asked with -af; the free-text reason comes last, so the
// fields before it split on blanks.
var adAttrs = []string{"ReanaJob", "ClusterId", "ProcId", "Owner", "JobStatus", "ExitCode", "ExitBySignal", "ExitSignal", "EnteredCurrentStatus"}

// lookupChunk bounds the jobs of one -constraint, keeping the argument well
// below the kernel's limit for one argument (128 KiB).
const lookupChunk = 500

var (
	jobID    = regexp.MustCompile(`^[A-Za-z0-9-]+$`)
	userName = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.@-]*$`)
)

// IDConstraint selects jobs by their cluster and proc ids, which the
// schedd gave us and nobody else can change.
func IDConstraint(ids [][2]int) string {
	parts := make([]string, len(ids))
	for i, id := range ids {
		parts[i] = fmt.Sprintf("(ClusterId == %d && ProcId == %d)", id[0], id[1])
	}
	return strings.Join(parts, " || ")
}

// SubmittedConstraint selects the user's own job that carries our job id,
// with =?= (case-sensitive, never undefined), so another user's job that
// copies the attribute is not taken for it.
func SubmittedConstraint(id, owner string) (string, error) {
	if !jobID.MatchString(id) || !userName.MatchString(owner) {
		return "", fmt.Errorf("htcondor: job id %q or user %q cannot be used in a constraint", id, owner)
	}
	return `ReanaJob =?= "` + id + `" && Owner =?= "` + owner + `"`, nil
}

// lookupJobs asks about tracked jobs by their ids, in the queue first and
// in the history for those that left it, and keeps only the answers that
// are really the jobs: same owner, same ReanaJob. It returns what it
// found even when a later query failed.
func (b *Backend) lookupJobs(ctx context.Context, jobs []batch.Job, progs map[string]progress) (map[string]Ad, error) {
	want := map[string]batch.Job{} // "C.P" -> job
	for _, j := range jobs {
		p := progs[j.Spec.JobID]
		want[fmt.Sprintf("%d.%d", p.Cluster, p.Proc)] = j
	}
	out := map[string]Ad{}
	for _, prog := range []string{"condor_q", "condor_history"} {
		var ids [][2]int
		for _, j := range jobs {
			if _, ok := out[j.Spec.JobID]; !ok {
				p := progs[j.Spec.JobID]
				ids = append(ids, [2]int{p.Cluster, p.Proc})
			}
		}
		for start := 0; start < len(ids); start += lookupChunk {
			chunk := ids[start:min(start+lookupChunk, len(ids))]
			ads, err := b.ask(ctx, prog, IDConstraint(chunk), len(chunk))
			if err != nil {
				return out, err
			}
			for _, a := range ads {
				j, ok := want[fmt.Sprintf("%d.%d", a.Cluster, a.Proc)]
				if !ok || a.ReanaJob != j.Spec.JobID || a.Owner != j.Spec.User.Name {
					continue // not ours: an id reused after a schedd's history was lost
				}
				if _, seen := out[j.Spec.JobID]; !seen {
					out[j.Spec.JobID] = a
				}
			}
		}
	}
	return out, nil
}

// findSubmitted looks for the job an interrupted submission may have left:
// the user's own job carrying our job id, in the queue or the history.
func (b *Backend) findSubmitted(ctx context.Context, s batch.Spec) (Ad, bool, error) {
	constraint, err := SubmittedConstraint(s.JobID, s.User.Name)
	if err != nil {
		return Ad{}, false, err
	}
	for _, prog := range []string{"condor_q", "condor_history"} {
		ads, err := b.ask(ctx, prog, constraint, 1)
		if err != nil {
			return Ad{}, false, err
		}
		for _, a := range ads {
			if a.ReanaJob == s.JobID && a.Owner == s.User.Name {
				return a, true, nil
			}
		}
	}
	return Ad{}, false, nil
}

// ask runs one condor_q or condor_history as the daemon. HTCondor may
// report an unreachable schedd on stderr while exiting 0, so stderr is
// checked too.
func (b *Backend) ask(ctx context.Context, prog, constraint string, n int) ([]Ad, error) {
	argv := append([]string{b.bin(prog)}, b.scheddArgs()...)
	reason := "HoldReason"
	if prog == "condor_q" {
		argv = append(argv, "-allusers")
	} else {
		// The history is read newest first; stopping after n matches keeps
		// a large, rotated history from being read to its end.
		argv = append(argv, "-match", strconv.Itoa(n))
		reason = "RemoveReason"
	}
	argv = append(argv, "-constraint", constraint, "-af")
	argv = append(append(argv, adAttrs...), reason)
	qctx, cancel := context.WithTimeout(ctx, queryTimeout)
	defer cancel()
	stdout, stderr, err := b.query(qctx, argv)
	if qctx.Err() != nil {
		return nil, fmt.Errorf("htcondor: %s did not answer within %s: %w", prog, queryTimeout, batch.ErrUnavailable)
	}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		return nil, fmt.Errorf("htcondor: run %s: %w", prog, err)
	}
	if err != nil || unreachable.Match(stderr) {
		return nil, classify(prog, string(stderr), err)
	}
	return ParseAds(string(stdout)), nil
}

// ParseAds reads `-af` lines of adAttrs and a reason: values separated by
// a blank, "undefined" for attributes the ad lacks.
func ParseAds(s string) []Ad {
	var out []Ad
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) < len(adAttrs) {
			continue
		}
		num := func(v string) int {
			n, _ := strconv.Atoi(v)
			return n
		}
		a := Ad{ReanaJob: f[0], Cluster: num(f[1]), Proc: num(f[2]), Owner: f[3], JobStatus: num(f[4]),
			ExitCode: num(f[5]), ExitBySignal: strings.EqualFold(f[6], "true"), ExitSignal: num(f[7])}
		a.EnteredCurrentStatus, _ = strconv.ParseInt(f[8], 10, 64)
		if r := strings.Join(f[len(adAttrs):], " "); r != "undefined" {
			a.Reason = r
		}
		if a.JobStatus == 0 || a.Cluster == 0 {
			continue // not a job line
		}
		out = append(out, a)
	}
	return out
}
