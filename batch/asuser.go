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
