package slurm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
)

func TestParseSqueueOfSlurm2205(t *testing.T) {
	b, err := os.ReadFile("testdata/squeue-states.txt") // squeue -h -a --states=all -o '%i|%T|%r'
	require.NoError(t, err)
	q := ParseSqueue(b)

	tests := []struct {
		id       string
		state    string
		terminal bool
		engine   batch.State
		reason   string
	}{
		{"1", "COMPLETED", true, batch.Succeeded, ""},
		{"2", "TIMEOUT", true, batch.Failed, "time limit"},
		{"3", "FAILED", true, batch.Failed, "failed"},
		{"6", "CANCELLED", true, batch.Failed, "cancelled"},
		{"7", "RUNNING", false, batch.Running, ""},
		{"9", "PENDING", false, batch.Pending, ""}, // "Resources" is no news to the user
	}
	for _, tt := range tests {
		t.Run(tt.id+" "+tt.state, func(t *testing.T) {
			j, ok := q[tt.id]
			require.True(t, ok)
			assert.Equal(t, tt.state, j.State)
			assert.Equal(t, tt.terminal, j.Terminal())
			st := j.Status()
			assert.Equal(t, tt.engine, st.State)
			assert.Contains(t, st.Reason, tt.reason)
			if tt.reason == "" && !tt.terminal {
				assert.Empty(t, st.Reason)
			}
			if tt.engine == batch.Failed {
				assert.Nil(t, st.ExitCode, "squeue does not know exit codes; the exit file or sacct does")
			}
		})
	}
}

func TestParseComments(t *testing.T) {
	jobs := ParseComments([]byte("7|alice|reana-site job=a workflow=b\n8|bob|with|bars\n\n"))
	require.Len(t, jobs, 2)
	assert.Equal(t, QueueJob{ID: "7", User: "alice", Comment: "reana-site job=a workflow=b"}, jobs[0])
	assert.Equal(t, "with|bars", jobs[1].Comment, "the comment is last, so it may hold the separator")
}

func TestEverySlurmStateIsMapped(t *testing.T) {
	for _, s := range []string{"COMPLETED", "FAILED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "CANCELLED", "BOOT_FAIL", "DEADLINE"} {
		st := QueueJob{ID: "1", State: s, ExitCode: 1, HasExit: true}.Status()
		assert.True(t, st.State.Terminal(), s)
		assert.Equal(t, batch.Failed, st.State, s)
		assert.NotEmpty(t, st.Reason, s)
	}
	for _, s := range []string{"PENDING", "RUNNING", "SUSPENDED", "COMPLETING", "CONFIGURING", "REQUEUED"} {
		assert.False(t, QueueJob{State: s}.Terminal(), s)
		assert.False(t, QueueJob{State: s}.Status().State.Terminal(), s)
	}
}

func spec() batch.Spec {
	return batch.Spec{
		JobID: "j-1", WorkflowID: "wf-1", WorkflowName: "root6-fit.2", StepName: "gen data; rm -rf /",
		Command: "echo hi", Workspace: "/home/alice/reana/workflows/wf-1", JobDir: "/home/alice/reana/jobs/wf-1/j-1",
		User: asuser.Account{Name: "alice", UID: 4101, GID: 4101},
	}
}

func TestSbatchArgs(t *testing.T) {
	b := &Backend{Config: Config{BinDir: "/opt/slurm/bin", Partition: "short", Account: "atlas", ExtraArgs: []string{"--qos=normal"}}}
	s := spec()
	s.Hints = batch.Hints{SlurmTime: "2:00:00", MemoryLimit: "2Gi"}
	args, err := b.SbatchArgs(s)
	require.NoError(t, err)
	assert.Equal(t, []string{
		"/opt/slurm/bin/sbatch", "--parsable",
		"--job-name=reana.root6-fit.2.gen_data_rm_-rf_",
		"--comment=reana-site job=j-1 workflow=wf-1",
		"--chdir=/home/alice/reana/workflows/wf-1",
		"--output=/home/alice/reana/jobs/wf-1/j-1/output.log", "--error=/home/alice/reana/jobs/wf-1/j-1/output.log",
		"--open-mode=append",
		"--partition=short", "--account=atlas", "--time=2:00:00", "--mem=2048", "--qos=normal",
		"/home/alice/reana/jobs/wf-1/j-1/job.sh",
	}, args)

	for name, h := range map[string]batch.Hints{
		"partition with a space": {SlurmPartition: "a b"},
		"time with letters":      {SlurmTime: "1h"},
		"option smuggled":        {SlurmTime: "60 --uid=0"},
		"memory garbage":         {MemoryLimit: "much"},
	} {
		t.Run(name, func(t *testing.T) {
			s := spec()
			s.Hints = h
			_, err := b.SbatchArgs(s)
			assert.Error(t, err)
		})
	}
}

// fakeRunner plays the user's helper process.
type fakeRunner struct {
	mu     sync.Mutex
	calls  []string
	submit func(asuser.BatchSubmitArgs) asuser.BatchSubmitResult
	exits  map[string]asuser.ExitInfo
}

func (f *fakeRunner) Call(_ context.Context, acct asuser.Account, op asuser.Op, args, result any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, acct.Name+" "+string(op))
	var out any
	switch op {
	case "job.submit":
		out = f.submit(args.(asuser.BatchSubmitArgs))
	case "job.readexit":
		m := map[string]asuser.ExitInfo{}
		for id := range args.(asuser.JobReadExitArgs).JobDirs {
			m[id] = f.exits[id]
		}
		out = m
	case "exec":
		out = asuser.ExecResult{}
	default:
		return fmt.Errorf("unexpected op %s", op)
	}
	b, _ := json.Marshal(out)
	return json.Unmarshal(b, result)
}

// queueOf is squeue's answer in the status format ("id|STATE|reason") or
// the comment format ("id|user|comment").
func queueOf(lines ...string) string {
	return strings.Join(lines, "\n") + "\n"
}

func TestSubmitIsIdempotentAcrossCrashes(t *testing.T) {
	tests := []struct {
		name      string
		queue     string
		answers   []asuser.BatchSubmitResult
		wantID    string
		wantCalls int
		wantErr   error
	}{
		{"fresh", queueOf(), []asuser.BatchSubmitResult{{ID: "42"}}, "42", 1, nil},
		{"cluster suffix", queueOf(), []asuser.BatchSubmitResult{{ID: "42;cluster1"}}, "42", 1, nil},
		{"recorded before the crash", queueOf(), []asuser.BatchSubmitResult{{ID: "41", Already: true}}, "41", 1, nil},
		{"interrupted, job in queue", queueOf("76|bob|reana-site job=j-1 workflow=wf-1", "77|alice|reana-site job=j-1 workflow=wf-1"),
			[]asuser.BatchSubmitResult{{Interrupted: true}}, "77", 1, nil},
		{"interrupted, job not in queue", queueOf(), []asuser.BatchSubmitResult{{Interrupted: true}, {ID: "78"}}, "78", 2, nil},
		{"controller down", queueOf(), []asuser.BatchSubmitResult{{ExitCode: 1, Stderr: "sbatch: error: Batch job submission failed: Unable to contact slurm controller (connect failure)"}}, "", 1, batch.ErrUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := 0
			r := &fakeRunner{submit: func(a asuser.BatchSubmitArgs) asuser.BatchSubmitResult {
				res := tt.answers[n]
				if n > 0 {
					assert.True(t, a.Force, "the retry after a lookup must force")
				}
				n++
				return res
			}}
			b := &Backend{Runner: r, Query: func(context.Context, []string) ([]byte, []byte, error) { return []byte(tt.queue), nil, nil }}
			h, err := b.Submit(context.Background(), spec())
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantID, h.ID)
			assert.Equal(t, tt.wantCalls, n)
		})
	}
}

func TestStatusIsOneQueryWhateverTheNumberOfJobs(t *testing.T) {
	for _, n := range []int{10, 1000, 10000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			var queued []string
			var jobs []batch.Job
			for i := 0; i < n; i++ {
				queued = append(queued, fmt.Sprintf("%d|RUNNING|None", i+1))
				s := spec()
				s.JobID = fmt.Sprint("j", i)
				jobs = append(jobs, batch.Job{Spec: s, Handle: batch.Handle{Backend: Name, ID: fmt.Sprint(i + 1)}})
			}
			queries := 0
			b := &Backend{Runner: &fakeRunner{}, Query: func(_ context.Context, argv []string) ([]byte, []byte, error) {
				queries++
				return []byte(queueOf(queued...)), nil, nil
			}}
			st, err := b.Status(context.Background(), jobs)
			require.NoError(t, err)
			assert.Len(t, st, n)
			assert.Equal(t, 1, queries)
		})
	}
}

func TestVanishedJobsNeedEvidence(t *testing.T) {
	r := &fakeRunner{exits: map[string]asuser.ExitInfo{
		"ok":   {Present: true, ExitCode: 0},
		"bad":  {Present: true, ExitCode: 2},
		"gone": {},
	}}
	b := &Backend{Runner: r, Query: func(context.Context, []string) ([]byte, []byte, error) {
		return []byte(queueOf("5|COMPLETED|None")), nil, nil
	}}
	job := func(id, slurmID string) batch.Job {
		s := spec()
		s.JobID = id
		return batch.Job{Spec: s, Handle: batch.Handle{ID: slurmID}}
	}
	st, err := b.Status(context.Background(), []batch.Job{job("ok", "1"), job("bad", "2"), job("gone", "3"), job("done", "5")})
	require.NoError(t, err)
	assert.Equal(t, batch.Succeeded, st["ok"].State)
	assert.Equal(t, batch.Failed, st["bad"].State)
	assert.Equal(t, 2, *st["bad"].ExitCode)
	assert.Equal(t, batch.Failed, st["gone"].State, "a job that vanished without evidence never succeeds")
	assert.Contains(t, st["gone"].Reason, "final state unknown")
	assert.Equal(t, batch.Succeeded, st["done"].State, "Slurm's own record is evidence")
}

func TestControllerOutageIsUnavailable(t *testing.T) {
	for name, q := range map[string]QueryFunc{
		"exit 1": func(context.Context, []string) ([]byte, []byte, error) {
			return nil, []byte("slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n"), &exitErr{}
		},
		"recorded 22.05 answer": func(context.Context, []string) ([]byte, []byte, error) {
			b, err := os.ReadFile("testdata/squeue-unreachable.stderr")
			return nil, b, errors.Join(err, &exitErr{})
		},
		"exit 0 with error text": func(context.Context, []string) ([]byte, []byte, error) {
			return []byte(queueOf()), []byte("slurm_load_jobs error: Socket timed out on send/recv operation\n"), nil
		},
	} {
		t.Run(name, func(t *testing.T) {
			b := &Backend{Runner: &fakeRunner{}, Query: q}
			_, err := b.Status(context.Background(), []batch.Job{{Spec: spec(), Handle: batch.Handle{ID: "1"}}})
			assert.ErrorIs(t, err, batch.ErrUnavailable)
		})
	}
}

type exitErr struct{}

func (*exitErr) Error() string { return "exit status 1" }

func TestParseSacct(t *testing.T) {
	q := ParseSacct([]byte("41|COMPLETED|0:0\n42|CANCELLED by 4101|0:15\n43|TIMEOUT|0:15\n44|FAILED|3:0\n\nbad line\n"))
	require.Len(t, q, 4)
	assert.Equal(t, batch.Succeeded, q["41"].Status().State)
	assert.Contains(t, q["42"].Status().Reason, "cancelled (by 4101)")
	assert.Contains(t, q["43"].Status().Reason, "TIMEOUT")
	assert.Equal(t, 3, q["44"].ExitCode)
}

// TestAccountingResolvesJobsTheControllerForgot: a job that left the
// controller's memory without an exit file is settled from sacct, asked
// once for all such jobs; without accounting it fails as unknown.
func TestAccountingResolvesJobsTheControllerForgot(t *testing.T) {
	for name, tt := range map[string]struct {
		sacctOut, sacctErr string
		want               batch.State
		reason             string
	}{
		"with accounting":    {sacctOut: "9|CANCELLED by 0|0:15\n", want: batch.Failed, reason: "cancelled (by 0)"},
		"accounting success": {sacctOut: "9|COMPLETED|0:0\n", want: batch.Succeeded},
		"no accounting":      {sacctErr: "Slurm accounting storage is disabled\n", want: batch.Failed, reason: "final state unknown"},
	} {
		t.Run(name, func(t *testing.T) {
			sacctCalls := 0
			b := &Backend{Runner: &fakeRunner{exits: map[string]asuser.ExitInfo{}}, Query: func(_ context.Context, argv []string) ([]byte, []byte, error) {
				if strings.HasSuffix(argv[0], "sacct") {
					sacctCalls++
					return []byte(tt.sacctOut), []byte(tt.sacctErr), nil
				}
				return []byte(queueOf()), nil, nil
			}}
			st, err := b.Status(context.Background(), []batch.Job{{Spec: spec(), Handle: batch.Handle{ID: "9"}}})
			require.NoError(t, err)
			assert.Equal(t, tt.want, st["j-1"].State)
			assert.Contains(t, st["j-1"].Reason, tt.reason)
			assert.Equal(t, 1, sacctCalls)
		})
	}
}

func TestPendingReasonsWorthShowing(t *testing.T) {
	for reason, want := range map[string]struct{ reason, note string }{
		"None":                     {},
		"Priority":                 {"", "Priority"}, // shown per step only
		"Resources":                {"", "Resources"},
		"JobHeldUser":              {"Slurm job 5 is pending: JobHeldUser", ""},
		"DependencyNeverSatisfied": {"Slurm job 5 is pending: DependencyNeverSatisfied", ""},
	} {
		st := QueueJob{ID: "5", State: "PENDING", Reason: reason}.Status()
		assert.Equal(t, batch.Pending, st.State)
		assert.Equal(t, want.reason, st.Reason, reason)
		assert.Equal(t, want.note, st.Note, reason)
	}
}

func TestCancelUnrecorded(t *testing.T) {
	for _, tt := range []struct {
		name, queue string
		cancels     int
	}{
		{"found by its comment", queueOf("76|bob|reana-site job=j-1 workflow=wf-1", "77|alice|reana-site job=j-1 workflow=wf-1"), 1},
		{"never reached Slurm", queueOf(), 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := &fakeRunner{}
			b := &Backend{Runner: r, Query: func(context.Context, []string) ([]byte, []byte, error) { return []byte(tt.queue), nil, nil }}
			require.NoError(t, b.CancelUnrecorded(context.Background(), spec()))
			n := 0
			for _, c := range r.calls {
				if c == "alice exec" {
					n++
				}
			}
			assert.Equal(t, tt.cancels, n, "scancel as alice")
		})
	}
}
