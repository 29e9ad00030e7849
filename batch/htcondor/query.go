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
// about one job, found by its +ReanaJob attribute.
type Ad struct {
	Found        bool
	Cluster      int
	Proc         int
	JobStatus    int // "Job Status Codes": 1 idle, 2 running, 3 removed, 4 completed, 5 held
	ExitCode     int
	ExitBySignal bool
	ExitSignal   int
	Reason       string // HoldReason in the queue, RemoveReason in the history
}

// adAttrs are asked with -af; the free-text reason comes last, so the
// fields before it split on blanks.
var adAttrs = []string{"ReanaJob", "ClusterId", "ProcId", "JobStatus", "ExitCode", "ExitBySignal", "ExitSignal"}

// lookupChunk bounds the ids of one -constraint, keeping the argument well
// below the kernel's limit for one argument (128 KiB).
const lookupChunk = 500

var jobID = regexp.MustCompile(`^[A-Za-z0-9-]+$`)

// Constraint selects jobs by their +ReanaJob attribute.
func Constraint(ids []string) (string, error) {
	parts := make([]string, len(ids))
	for i, id := range ids {
		if !jobID.MatchString(id) {
			return "", fmt.Errorf("htcondor: job id %q cannot be used in a constraint", id)
		}
		parts[i] = `ReanaJob == "` + id + `"`
	}
	return strings.Join(parts, " || "), nil
}

// lookup finds jobs by their +ReanaJob attribute: in the queue first, then
// in the history for those that left it. It is the fallback for jobs whose
// logs cannot tell, and the way an interrupted submission's job is found.
func (b *Backend) lookup(ctx context.Context, ids []string) (map[string]Ad, error) {
	out := map[string]Ad{}
	for _, cmd := range []struct{ prog, reason string }{{"condor_q", "HoldReason"}, {"condor_history", "RemoveReason"}} {
		var missing []string
		for _, id := range ids {
			if !out[id].Found {
				missing = append(missing, id)
			}
		}
		for start := 0; start < len(missing); start += lookupChunk {
			chunk := missing[start:min(start+lookupChunk, len(missing))]
			constraint, err := Constraint(chunk)
			if err != nil {
				return nil, err
			}
			argv := append([]string{b.bin(cmd.prog)}, b.scheddArgs()...)
			if cmd.prog == "condor_q" {
				argv = append(argv, "-allusers")
			}
			argv = append(argv, "-constraint", constraint, "-af")
			argv = append(argv, adAttrs...)
			argv = append(argv, cmd.reason)
			qctx, cancel := context.WithTimeout(ctx, queryTimeout)
			stdout, stderr, err := b.query(qctx, argv)
			timedOut := qctx.Err() != nil
			cancel()
			if timedOut {
				return nil, fmt.Errorf("htcondor: %s did not answer within %s: %w", cmd.prog, queryTimeout, batch.ErrUnavailable)
			}
			var ee *exec.ExitError
			if err != nil && !errors.As(err, &ee) {
				return nil, fmt.Errorf("htcondor: run %s: %w", cmd.prog, err)
			}
			if err != nil {
				return nil, classify(cmd.prog, string(stderr), err)
			}
			for id, ad := range ParseAds(string(stdout)) {
				if _, asked := out[id]; !asked || !out[id].Found {
					out[id] = ad
				}
			}
		}
	}
	return out, nil
}

// ParseAds reads `-af ReanaJob ClusterId ProcId JobStatus ExitCode
// ExitBySignal ExitSignal <reason>` lines: values separated by a blank,
// "undefined" for attributes the ad lacks.
func ParseAds(s string) map[string]Ad {
	out := map[string]Ad{}
	for _, line := range strings.Split(s, "\n") {
		f := strings.Fields(line)
		if len(f) < len(adAttrs) {
			continue
		}
		num := func(v string) int {
			n, _ := strconv.Atoi(v)
			return n
		}
		a := Ad{Found: true, Cluster: num(f[1]), Proc: num(f[2]), JobStatus: num(f[3]),
			ExitCode: num(f[4]), ExitBySignal: strings.EqualFold(f[5], "true"), ExitSignal: num(f[6])}
		if r := strings.Join(f[len(adAttrs):], " "); r != "undefined" {
			a.Reason = r
		}
		if a.JobStatus == 0 {
			continue // not a job line
		}
		out[f[0]] = a
	}
	return out
}
