package htcondor

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/batch/jobscript"
)

// SubmitFile is the submit description in the job directory, written by
// the user's own process before condor_submit reads it.
const SubmitFile = "job.sub"

// maxFollowBytes bounds what one poll reads of one event log; a longer
// backlog is read over the next polls.
const maxFollowBytes = 1 << 20

// Default pacing of the schedd fallback.
const (
	// DefaultLogGrace is how long a job's event log may be missing after
	// submission, or lag behind the job script's exit status, before the
	// schedd is asked.
	DefaultLogGrace = time.Minute
	// DefaultSilenceCheck is how long a job's log may stay silent before
	// the schedd is asked whether the job still exists. Running jobs are
	// silent for hours, so this is a rare, paced sanity check.
	DefaultSilenceCheck = 30 * time.Minute
)

// queryTimeout bounds one condor_q or condor_history.
const queryTimeout = 30 * time.Second

// Backend is the HTCondor backend. Jobs are submitted by the user's own
// helper process with condor_submit, and followed through their user event
// logs, read by the user's helper from the offset the last poll stopped at;
// in steady state the schedd is not asked anything.
type Backend struct {
	Runner asuser.Caller
	Config Config
	// Query runs condor_q and condor_history as the daemon for the
	// fallback; nil runs them directly.
	Query batch.QueryFunc
	// Parser reads the event logs (its time zone is the schedd's).
	Parser Parser
	// Now is the clock for the hold timeout and the fallback's pacing; nil
	// means time.Now.
	Now func() time.Time
}

var _ batch.Backend = (*Backend)(nil)

// Name implements batch.Backend.
func (b *Backend) Name() string { return Name }

func (b *Backend) now() time.Time {
	if b.Now != nil {
		return b.Now()
	}
	return time.Now()
}

func (b *Backend) bin(name string) string {
	if b.Config.BinDir == "" {
		return name
	}
	return filepath.Join(b.Config.BinDir, name)
}

// env is what every HTCondor command needs besides its arguments.
func (b *Backend) env() []string {
	if b.Config.ConfigFile == "" {
		return nil
	}
	return []string{"CONDOR_CONFIG=" + b.Config.ConfigFile}
}

// scheddArgs selects the site's schedd on every command that talks to it.
func (b *Backend) scheddArgs() []string {
	var a []string
	if b.Config.Schedd != "" {
		a = append(a, "-name", b.Config.Schedd)
	}
	if b.Config.Pool != "" {
		a = append(a, "-pool", b.Config.Pool)
	}
	return a
}

func (b *Backend) query(ctx context.Context, argv []string) ([]byte, []byte, error) {
	if b.Query != nil {
		return b.Query(ctx, argv)
	}
	// The daemon's own queries see the same configuration as the users'
	// commands.
	return batch.RunQueryEnv(ctx, argv, b.env())
}

// unreachable recognises HTCondor's messages for a schedd (or collector)
// it cannot reach (condor_submit and condor_q source texts; see README.md).
// A real 24.0 pool showed the "for schedd" and "to schedd" forms: condor_q
// and condor_rm/hold/release print "Can't find address for schedd NAME"
// when the schedd is stopped, and condor_rm "DCSchedd::actOnJobs:6001:
// Failed to connect to schedd" when it crashed.
var unreachable = regexp.MustCompile(`(?i)can't find address (of|for)|failed to connect to (local )?queue manager|failed to connect to schedd|failed to fetch ads from|CEDAR:6001|connection refused|timed out|SECMAN:2007|unable to locate|no route to host`)

func classify(what, stderr string, err error) error {
	msg := strings.TrimSpace(stderr)
	if unreachable.MatchString(msg) {
		return fmt.Errorf("htcondor: %s: %s: %w", what, oneLineMsg(msg), batch.ErrUnavailable)
	}
	if msg == "" && err != nil {
		msg = err.Error()
	}
	return fmt.Errorf("htcondor: %s: %s", what, oneLineMsg(msg))
}

// oneLineMsg joins HTCondor's multi-line errors (a blank line, then
// "ERROR: ...") into one line for status messages.
func oneLineMsg(s string) string {
	return strings.Join(strings.Fields(s), " ")
}

// maybeSubmitted are condor_submit failures after which the schedd may
// have queued the job anyway: the connection broke or timed out after the
// job ad was sent (CEDAR:6002 is a failure to read the reply; SECMAN:2007
// ending the message).
const maybeSubmitted = `(?i)timed? ?out|CEDAR:6002|SECMAN:2007|end classad message`

var maybeSubmittedRe = regexp.MustCompile(maybeSubmitted)

// multiQueueWarning is condor_submit 24.0's warning about a description
// with several queue statements (a group, see SubmitMany), left out of the
// step's message when the submission failed: it is not the reason.
var multiQueueWarning = regexp.MustCompile(`(?s)Warning: Use of multiple queue statements in a single submit file is deprecated\..*?convert-multi-queue-statements\s*`)

// terse is condor_submit -terse's answer: "C.P0 - C.PN" per cluster; we
// queue one job, so P0 = PN.
var terse = regexp.MustCompile(`^(\d+)\.(\d+) - (\d+)\.(\d+)$`)

// recordedID is one job's id "C.P", as the helper records it for each job of
// a cluster (SubmitMany).
var recordedID = regexp.MustCompile(`^(\d+)\.(\d+)$`)

// ParseTerse returns the cluster and proc of a one-job submission, or of
// one job of a cluster as recorded ("C.P").
//
// Only the id line counts: a wrapper or a site's submit hook may print
// more around it.
func ParseTerse(out string) (cluster, proc int, err error) {
	for _, line := range strings.Split(out, "\n") {
		if m := recordedID.FindStringSubmatch(strings.TrimSpace(line)); m != nil {
			cluster, _ = strconv.Atoi(m[1])
			proc, _ = strconv.Atoi(m[2])
			return cluster, proc, nil
		}
		m := terse.FindStringSubmatch(strings.TrimSpace(line))
		if m == nil || m[1] != m[3] || m[2] != m[4] {
			continue
		}
		cluster, _ = strconv.Atoi(m[1])
		proc, _ = strconv.Atoi(m[2])
		return cluster, proc, nil
	}
	return 0, 0, fmt.Errorf("htcondor: condor_submit -terse answered %q, not one job id", strings.TrimSpace(out))
}

// Submit implements batch.Backend. The user's helper writes the job
// script and the submit description into the job directory, runs
// condor_submit -terse, and records its answer there before replying, so a
// daemon that dies meanwhile finds it. A submission interrupted before that
// is looked up by its +ReanaJob attribute instead of being made twice.
func (b *Backend) Submit(ctx context.Context, s batch.Spec) (batch.Handle, error) {
	return batch.SubmitPrepared(ctx, b.Runner, Name, s, b.prepare)
}

// SubmitMany implements batch.ManySubmitter: the jobs of one user go to
// the schedd in one condor_submit of a description with one block per job
// (its own executable, log, output and attributes, then queue), which the
// schedd takes as one transaction; jobs whose blocks set different
// commands go in separate clusters (see clusters). The user's helper
// claims every job before the submit and records each job's id in its own
// directory (job.submitcluster), so the crash guarantees are Submit's.
func (b *Backend) SubmitMany(ctx context.Context, specs []batch.Spec) []batch.Submitted {
	return batch.SubmitGroups(ctx, b.Runner, Name, specs, b.prepare, b.submitClusters)
}

// submitArgv is condor_submit with its answer terse, for the description
// in file ("-" for standard input, a group's several descriptions).
func (b *Backend) submitArgv(file string) []string {
	argv := append([]string{b.bin("condor_submit"), "-terse"}, b.scheddArgs()...)
	return append(argv, file)
}

// submitClusters submits one user's prepared jobs, one condor_submit per
// cluster, and answers in their order.
func (b *Backend) submitClusters(ctx context.Context, acct asuser.Account, preps []batch.Prepared) ([]asuser.BatchSubmitOutcome, error) {
	out := make([]asuser.BatchSubmitOutcome, len(preps))
	argv, env := b.submitArgv("-"), b.env()
	groups := clusters(preps)
	for c, idx := range groups {
		args := asuser.BatchSubmitClusterArgs{DescFile: SubmitFile, Argv: argv, Env: env, MaybeSubmitted: maybeSubmitted}
		for _, i := range idx {
			args.Jobs = append(args.Jobs, preps[i].Args)
		}
		res, err := asuser.SubmitCluster(ctx, b.Runner, acct, args)
		if err == nil && len(res) != len(idx) {
			err = fmt.Errorf("the helper answered %d of %d jobs", len(res), len(idx))
		}
		if err != nil && c == 0 {
			return nil, err
		}
		if err != nil {
			// The earlier clusters are queued: their jobs keep their
			// handles, and only the jobs not yet submitted fail with err.
			for _, rest := range groups[c:] {
				for _, i := range rest {
					out[i].Error = asuser.Errorf(asuser.KindInternal, "%v", err)
				}
			}
			return out, nil
		}
		if fall := refused(res); len(fall) > 1 {
			// The schedd takes a cluster whole or not at all, so one bad
			// job refuses the others with it: submit the refused jobs
			// again one condor_submit each, so it fails alone.
			//
			// This is done here rather than in the helper because the
			// daemon is what knows which failures mean an unreachable
			// schedd (unreachable, classify): those are not refusals, and
			// the group backs off whole instead of trying its jobs one by
			// one against a schedd that is not there. The helper's claims
			// were released with the refusal, and job.submitmany claims
			// and records each job as job.submit does. Refusals are rare,
			// so the extra helper start costs nothing in steady state.
			alone := asuser.BatchSubmitManyArgs{Jobs: make([]asuser.BatchSubmitArgs, len(fall))}
			for n, k := range fall {
				alone.Jobs[n] = preps[idx[k]].Args
			}
			one, err := asuser.SubmitJobs(ctx, b.Runner, acct, alone)
			if err == nil && len(one) == len(fall) {
				for n, k := range fall {
					res[k] = one[n]
				}
			}
			// Otherwise (the helper did not answer) each job keeps the
			// group's refusal: the schedd's reason, if not its own.
		}
		for k, i := range idx {
			out[i] = res[k]
		}
	}
	return out, nil
}

// refused are the jobs of a cluster that condor_submit refused (it ran,
// failed, and the schedd is neither unreachable nor maybe holding the
// jobs: those keep their claims and are reported interrupted), by index.
func refused(res []asuser.BatchSubmitOutcome) []int {
	var out []int
	for k, o := range res {
		r := o.Result
		if o.Error == nil && !r.Interrupted && !r.Already && r.ID == "" && r.ExitCode != 0 &&
			!unreachable.MatchString(r.Stderr) && !maybeSubmittedRe.MatchString(r.Stderr) {
			out = append(out, k)
		}
	}
	return out
}

// clusters splits jobs into the groups one description can hold, by
// index. A command in one block of a submit description stays set for
// the blocks after it, so a cluster only holds jobs whose blocks set the
// same commands (each block then sets every one of them again); in
// practice the jobs of one step, or of one workflow, share them all.
func clusters(preps []batch.Prepared) [][]int {
	var order []string
	byKeys := map[string][]int{}
	for i, p := range preps {
		k := commandKeys(p.Args.Files[SubmitFile])
		if _, ok := byKeys[k]; !ok {
			order = append(order, k)
		}
		byKeys[k] = append(byKeys[k], i)
	}
	out := make([][]int, len(order))
	for n, k := range order {
		out[n] = byKeys[k]
	}
	return out
}

// commandKeys is the set of commands a description sets, as one string.
func commandKeys(desc string) string {
	var keys []string
	for _, line := range strings.Split(desc, "\n") {
		if k, _, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(strings.TrimSpace(line), "#") {
			keys = append(keys, strings.ToLower(strings.TrimSpace(k)))
		}
	}
	sort.Strings(keys)
	return strings.Join(keys, "\n")
}

// prepare makes a job's script, submit description and condor_submit
// command, the way to find it in the schedd, and the reading of the answer.
func (b *Backend) prepare(s batch.Spec) (batch.Prepared, error) {
	script, err := jobscript.Render(s, jobscript.Options{Runner: s.Runner, Preamble: s.Preamble})
	if err != nil {
		return batch.Prepared{}, err
	}
	desc, err := SubmitDescription(s, b.Config)
	if err != nil {
		return batch.Prepared{}, err
	}
	argv := b.submitArgv(filepath.Join(s.JobDir, SubmitFile))
	var ad Ad
	return batch.Prepared{
		Args: asuser.BatchSubmitArgs{JobDir: s.JobDir, Script: script, Command: s.Command, Argv: argv,
			Files: map[string]string{SubmitFile: desc}, Env: b.env(), MaybeSubmitted: maybeSubmitted},
		Find: func(ctx context.Context) (bool, error) {
			a, found, err := b.findSubmitted(ctx, s)
			ad = a
			return found, err
		},
		Done: func(ctx context.Context, res asuser.BatchSubmitResult, found bool) (batch.Handle, error) {
			if found {
				return b.handle(s, ad.Cluster, ad.Proc), nil
			}
			if res.ExitCode != 0 || res.ID == "" {
				return batch.Handle{}, classify("condor_submit", multiQueueWarning.ReplaceAllString(res.Stderr, ""), fmt.Errorf("exit status %d", res.ExitCode))
			}
			cluster, proc, err := ParseTerse(res.ID)
			if err != nil {
				// condor_submit succeeded, so the job exists: find it rather
				// than leave it running untracked.
				if a, found, ferr := b.findSubmitted(ctx, s); ferr == nil && found {
					return b.handle(s, a.Cluster, a.Proc), nil
				}
				return batch.Handle{}, err
			}
			return b.handle(s, cluster, proc), nil
		},
	}, nil
}

// alreadyGone is condor_rm's answer for one job id that has left the queue
// or is being removed already (rm.cpp, printNewMessages).
var alreadyGone = regexp.MustCompile(`(?m)^Job \d+\.\d+ (not found|already marked for removal)\s*$`)

// CancelUnrecorded implements batch.UnrecordedCanceller: the user's own
// job carrying our job id is looked up, and removed when found.
func (b *Backend) CancelUnrecorded(ctx context.Context, s batch.Spec) error {
	a, found, err := b.findSubmitted(ctx, s)
	if err != nil || !found {
		return err
	}
	return b.Cancel(ctx, batch.Job{Spec: s, Handle: batch.Handle{Backend: Name, ID: fmt.Sprintf("%d.%d", a.Cluster, a.Proc)}})
}

// Cancel implements batch.Backend: condor_rm as the user, so HTCondor's own
// owner check applies.
func (b *Backend) Cancel(ctx context.Context, j batch.Job) error {
	return b.remove(ctx, j, "stopped by the user with reana-client")
}

func (b *Backend) remove(ctx context.Context, j batch.Job, why string) error {
	argv := append([]string{b.bin("condor_rm")}, b.scheddArgs()...)
	argv = append(argv, "-reason", why, j.Handle.ID)
	res, err := asuser.Exec(ctx, b.Runner, j.Spec.User, asuser.ExecArgs{Argv: argv, Dir: "/", Env: b.env()})
	if err != nil {
		return fmt.Errorf("htcondor: remove job %s: %w", j.Handle.ID, err)
	}
	if res.ExitCode == 0 {
		return nil
	}
	// A job that already left the queue, or is already being removed,
	// is what we wanted (condor_rm's texts, rm.cpp).
	if alreadyGone.MatchString(res.Stderr) {
		return nil
	}
	return classify("condor_rm "+j.Handle.ID, res.Stderr, fmt.Errorf("exit status %d", res.ExitCode))
}

// Logs implements batch.Backend.
func (b *Backend) Logs(ctx context.Context, j batch.Job) (string, error) {
	p, err := decodeProgress(j)
	if err != nil {
		return "", err
	}
	out, err := batch.ReadOutput(ctx, b.Runner, j.Spec.User, p.JobDir)
	if err != nil {
		return "", fmt.Errorf("htcondor: logs of job %s: %w", j.Handle.ID, err)
	}
	return out + runsNote(p), nil
}

// runsNote tells the user, in the step's log, that HTCondor ran the job
// more than once: each run starts the command from the beginning, and the
// output above may hold several runs (or only the last).
func runsNote(p progress) string {
	st := p.Status.load()
	if st.Runs < 2 {
		return ""
	}
	why := "after an eviction or a hold"
	if st.Reruns > 0 {
		why = "on its own, after it lost the job's shadow (condor_shadow)"
	}
	return fmt.Sprintf("\n[reana-site] HTCondor ran job %d.%d %d times: it started the command again from the beginning %s.\n",
		p.Cluster, p.Proc, st.Runs, why)
}
