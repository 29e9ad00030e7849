package batch

import (
	"context"
	"fmt"
	"path/filepath"

	"github.com/reana-site/reana-site/asuser"
)

// What several backends do through the helper in the same way.

// ReadOutput reads a batch job's output file (stdout and stderr as the job
// script wrote them) in jobDir as the job's user, keeping its last
// MaxLogBytes: every backend whose jobs write output.log shows it
// this way.
func ReadOutput(ctx context.Context, r asuser.Caller, acct asuser.Account, jobDir string) (string, error) {
	res, err := asuser.JobLogs(ctx, r, acct, asuser.JobLogsArgs{Path: filepath.Join(jobDir, asuser.OutputFile), MaxBytes: MaxLogBytes})
	if err != nil {
		return "", err
	}
	if res.Truncated {
		return TruncatedNote + res.Text, nil
	}
	return res.Text, nil
}

// SubmitOnce runs a batch submission as the user, at most once per job.
// When an earlier attempt may have reached the scheduler without recording
// its answer (the daemon died in between), find looks for that job first;
// only when it finds none is the submission made again. found reports that
// find found it, in which case res is empty and the caller uses what find
// returned.
func SubmitOnce(ctx context.Context, r asuser.Caller, acct asuser.Account, args asuser.BatchSubmitArgs, find func(context.Context) (bool, error)) (res asuser.BatchSubmitResult, found bool, err error) {
	if res, err = asuser.SubmitJob(ctx, r, acct, args); err != nil {
		return res, false, err
	}
	if !res.Interrupted {
		return res, false, nil
	}
	return resumeInterrupted(ctx, r, acct, args, find)
}

// resumeInterrupted looks for the job of an interrupted submission, and
// submits it (Force) only when it is not there.
func resumeInterrupted(ctx context.Context, r asuser.Caller, acct asuser.Account, args asuser.BatchSubmitArgs, find func(context.Context) (bool, error)) (res asuser.BatchSubmitResult, found bool, err error) {
	if found, err := find(ctx); err != nil || found {
		if err != nil {
			err = fmt.Errorf("look for the job of an interrupted submission: %w", err)
		}
		return asuser.BatchSubmitResult{}, found, err
	}
	args.Force = true
	res, err = asuser.SubmitJob(ctx, r, acct, args)
	return res, false, err
}

// Prepared is one job made ready for the helper's submission: its
// arguments, how to find it in the scheduler after an interrupted attempt,
// and how to turn the answer (or what Find found) into its handle.
type Prepared struct {
	Args asuser.BatchSubmitArgs
	Find func(context.Context) (bool, error)
	Done func(ctx context.Context, res asuser.BatchSubmitResult, found bool) (Handle, error)
}

// Submitted is one job's outcome in a SubmitMany: its handle, or the error
// that job alone met.
type Submitted struct {
	Handle Handle
	Err    error
}

// ManySubmitter is implemented by backends that submit several jobs of one
// user at once (one helper process for all of them, or concurrent
// requests). Each outcome is that job's own, with Submit's guarantee: a
// job is never submitted twice, whatever was interrupted before.
type ManySubmitter interface {
	SubmitMany(ctx context.Context, specs []Spec) []Submitted
}

// SubmitPrepared is Submit for a backend whose jobs go through the
// helper's job.submit: one job, at most once.
func SubmitPrepared(ctx context.Context, r asuser.Caller, backend string, s Spec, prepare func(Spec) (Prepared, error)) (Handle, error) {
	p, err := prepare(s)
	if err != nil {
		return Handle{}, err
	}
	res, found, err := SubmitOnce(ctx, r, s.User, p.Args, p.Find)
	if err != nil {
		return Handle{}, fmt.Errorf("%s: submit job %s: %w", backend, s.JobID, err)
	}
	return p.Done(ctx, res, found)
}

// SubmitManyPrepared submits the jobs of each user in specs through one
// helper process per user (job.submitmany), each job with its own claim,
// and answers in the order of specs. A job whose earlier attempt was
// interrupted is looked for, and submitted on its own only if not found.
func SubmitManyPrepared(ctx context.Context, r asuser.Caller, backend string, specs []Spec, prepare func(Spec) (Prepared, error)) []Submitted {
	return SubmitGroups(ctx, r, backend, specs, prepare, func(ctx context.Context, acct asuser.Account, preps []Prepared) ([]asuser.BatchSubmitOutcome, error) {
		args := asuser.BatchSubmitManyArgs{Jobs: make([]asuser.BatchSubmitArgs, len(preps))}
		for k, p := range preps {
			args.Jobs[k] = p.Args
		}
		return asuser.SubmitJobs(ctx, r, acct, args)
	})
}

// GroupSubmit submits the prepared jobs of one user, with one helper
// call, and answers with one outcome per job, in order.
type GroupSubmit func(ctx context.Context, acct asuser.Account, preps []Prepared) ([]asuser.BatchSubmitOutcome, error)

// SubmitGroups submits the jobs of each user in specs with one submit per
// user, and answers in the order of specs. A job whose earlier attempt was
// interrupted is looked for, and submitted on its own only if not found.
func SubmitGroups(ctx context.Context, r asuser.Caller, backend string, specs []Spec, prepare func(Spec) (Prepared, error), submit GroupSubmit) []Submitted {
	out := make([]Submitted, len(specs))
	byUser := map[uint32][]int{}
	var order []uint32
	preps := make([]Prepared, len(specs))
	for i, s := range specs {
		p, err := prepare(s)
		if err != nil {
			out[i].Err = err
			continue
		}
		preps[i] = p
		if _, ok := byUser[s.User.UID]; !ok {
			order = append(order, s.User.UID)
		}
		byUser[s.User.UID] = append(byUser[s.User.UID], i)
	}
	for _, uid := range order {
		idx := byUser[uid]
		group := make([]Prepared, len(idx))
		for k, i := range idx {
			group[k] = preps[i]
		}
		acct := specs[idx[0]].User
		res, err := submit(ctx, acct, group)
		if err == nil && len(res) != len(idx) {
			err = fmt.Errorf("the helper answered %d of %d jobs", len(res), len(idx))
		}
		for k, i := range idx {
			s, p := specs[i], preps[i]
			var one asuser.BatchSubmitResult
			switch {
			case err != nil:
				out[i].Err = fmt.Errorf("%s: submit job %s: %w", backend, s.JobID, err)
				continue
			case res[k].Error != nil:
				out[i].Err = fmt.Errorf("%s: submit job %s: %w", backend, s.JobID, res[k].Error)
				continue
			case res[k].Result.Interrupted:
				// Rare (a crash mid-submission): look for the job, and
				// submit it on its own only if it is not there.
				again, found, rerr := resumeInterrupted(ctx, r, acct, p.Args, p.Find)
				if rerr != nil {
					out[i].Err = fmt.Errorf("%s: submit job %s: %w", backend, s.JobID, rerr)
					continue
				}
				out[i].Handle, out[i].Err = p.Done(ctx, again, found)
				continue
			default:
				one = res[k].Result
			}
			out[i].Handle, out[i].Err = p.Done(ctx, one, false)
		}
	}
	return out
}
