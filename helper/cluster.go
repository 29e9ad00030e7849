package helper

import (
	"context"
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/reana-site/reana-site/asuser"
)

// procRange is the submission command's answer for each cluster: "C.P0 -
// C.PN" (condor_submit -terse), the jobs' ids C.P0 to C.PN in order.
var procRange = regexp.MustCompile(`^(\d+)\.(\d+) - (\d+)\.(\d+)$`)

// jobSubmitCluster submits several jobs with one run of the submission
// command, as one transaction at the scheduler, keeping jobSubmit's
// guarantees for each job: every job is claimed before the command runs,
// and each job's id is recorded in its own directory after it answers. A
// helper killed in between leaves claims without ids, which the next
// attempt reports as interrupted, so the caller looks the jobs up instead
// of submitting them twice. Jobs with a recorded id, or claimed by an
// earlier attempt, are answered without being submitted.
func jobSubmitCluster(ctx context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	a, err := decode[asuser.BatchSubmitClusterArgs](raw)
	if err != nil {
		return nil, err
	}
	if len(a.Argv) == 0 || a.DescFile == "" {
		return nil, asuser.Errorf(asuser.KindBadPath, "the submission command and the description file name must not be empty")
	}
	parent := os.Getppid()
	out := make([]asuser.BatchSubmitOutcome, len(a.Jobs))
	var claimed []int
	claims := make([]string, len(a.Jobs))
	var stdin strings.Builder
	for i, job := range a.Jobs {
		desc, ok := job.Files[a.DescFile]
		if !filepath.IsAbs(job.JobDir) || !ok {
			out[i].Error = asuser.Errorf(asuser.KindBadPath, "job directory must be absolute and the job have its description %s", a.DescFile)
			continue
		}
		claim, done, err := claimJob(job, false)
		switch {
		case err != nil:
			out[i].Error = protocolError(err)
		case done != nil:
			out[i].Result = *done
		default:
			claims[i] = claim
			claimed = append(claimed, i)
			stdin.WriteString(desc)
			if !strings.HasSuffix(desc, "\n") {
				stdin.WriteString("\n")
			}
		}
	}
	if len(claimed) == 0 {
		return out, nil
	}
	release := func() {
		for _, i := range claimed {
			_ = os.Remove(claims[i])
		}
	}
	// A helper whose daemon died (it is reparented) submits nothing: the
	// daemon that comes back submits the group again, and would race this
	// one for the claims.
	if os.Getppid() != parent {
		release()
		for _, i := range claimed {
			out[i].Error = asuser.Errorf(asuser.KindInternal, "not submitted: the daemon went away")
		}
		return out, nil
	}
	stdout, res, err := runSubmit(ctx, a.Argv, a.Jobs[claimed[0]].JobDir, a.Env, strings.NewReader(stdin.String()))
	if err != nil {
		release()
		return nil, err
	}
	ids, parsed := clusterIDs(stdout, len(claimed))
	if res.ExitCode != 0 || !parsed {
		if res.ExitCode == 0 || maybeSubmitted(a.MaybeSubmitted, res.Stderr) {
			// The jobs may exist (the connection broke after the
			// scheduler got them, or its answer is not the one
			// expected): keep the claims, so they are looked up before
			// being submitted again.
			for _, i := range claimed {
				out[i].Result = res
				out[i].Result.Interrupted = res.ExitCode == 0
			}
			return out, nil
		}
		// The scheduler took none of them (the cluster is one
		// transaction): the next attempt starts afresh. That may be one
		// bad job's doing, so the caller, which knows an unreachable
		// scheduler from a refusal, submits refused jobs again one by one
		// (job.submitmany).
		release()
		for _, i := range claimed {
			out[i].Result = res
		}
		return out, nil
	}
	for k, i := range claimed {
		dir := a.Jobs[i].JobDir
		if err := writeFileAtomic(filepath.Join(dir, batchIDFile), []byte(ids[k]+"\n"), 0o600); err != nil {
			// The job exists but its id is not recorded: the claim stays,
			// and the caller looks it up.
			out[i].Result = asuser.BatchSubmitResult{Interrupted: true, Stderr: res.Stderr}
			continue
		}
		out[i].Result = asuser.BatchSubmitResult{ID: ids[k], Stderr: res.Stderr}
	}
	return out, nil
}

// clusterIDs reads the "C.P0 - C.PN" lines of the answer, in order (a
// wrapper or a site's submit hook may print more around them), and
// returns the n ids "C.P" they name, or false when they do not name
// exactly n jobs. condor_submit starts a new cluster whenever the
// executable changes between queue statements, so a description with one
// job script per block is answered with one line per job.
func clusterIDs(answer string, n int) ([]string, bool) {
	var ids []string
	for _, line := range strings.Split(answer, "\n") {
		m := procRange.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil || m[1] != m[3] {
			continue
		}
		first, err1 := strconv.Atoi(m[2])
		last, err2 := strconv.Atoi(m[4])
		if err1 != nil || err2 != nil || last < first || len(ids)+last-first+1 > n {
			return nil, false
		}
		for p := first; p <= last; p++ {
			ids = append(ids, m[1]+"."+strconv.Itoa(p))
		}
	}
	return ids, len(ids) == n
}
