package helper_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/test/helpertest"
)

// The round-trip tests start this test binary as the helper, so every
// operation crosses the real process boundary: JSON on stdin and stdout,
// descriptors over the socket, error kinds in the reply.
func TestMain(m *testing.M) {
	helpertest.MaybeRunHelper()
	os.Exit(m.Run())
}

// workspace creates a workspace and its jobs directory through the helper.
func workspace(t *testing.T) (*asuser.Runner, asuser.Account, string, string) {
	t.Helper()
	r, acct, dir := helpertest.Runner(t)
	ws, jobs := filepath.Join(dir, "ws"), filepath.Join(dir, "jobs")
	require.NoError(t, asuser.CreateWorkspace(context.Background(), r, acct, asuser.WorkspaceArgs{Workspace: ws, JobsDir: jobs}))
	return r, acct, ws, jobs
}

func upload(t *testing.T, r *asuser.Runner, acct asuser.Account, ws, path, content string) {
	t.Helper()
	s, err := asuser.OpenUpload(context.Background(), r, acct, asuser.WorkspaceArgs{Workspace: ws, Path: path})
	require.NoError(t, err)
	_, err = io.WriteString(s.File, content)
	require.NoError(t, err)
	var res asuser.UploadResult
	require.NoError(t, s.End(true, &res))
	assert.Equal(t, int64(len(content)), res.Size)
}

func TestRoundTripFiles(t *testing.T) {
	ctx := context.Background()
	r, acct, ws, _ := workspace(t)
	upload(t, r, acct, ws, "data/in.txt", "hello")
	upload(t, r, acct, ws, "notes.md", "# notes\n")

	entries, err := asuser.List(ctx, r, acct, asuser.ListArgs{Workspace: ws})
	require.NoError(t, err)
	names := map[string]int64{}
	for _, e := range entries {
		names[e.Name] = e.Size
	}
	assert.Equal(t, map[string]int64{"data/in.txt": 5, "notes.md": 8}, names)

	s, err := asuser.OpenFile(ctx, r, acct, asuser.WorkspaceArgs{Workspace: ws, Path: "data/in.txt"})
	require.NoError(t, err)
	b, err := io.ReadAll(s.File)
	require.NoError(t, err)
	var open asuser.OpenResult
	require.NoError(t, s.End(true, &open))
	assert.Equal(t, "hello", string(b))
	assert.Equal(t, asuser.OpenResult{Size: 5}, open)

	require.NoError(t, asuser.Move(ctx, r, acct, asuser.MoveArgs{Workspace: ws, Source: "data/in.txt", Target: "data/out.txt"}))
	matches, err := asuser.Glob(ctx, r, acct, asuser.WorkspaceArgs{Workspace: ws, Path: "**/*.txt"})
	require.NoError(t, err)
	assert.Equal(t, []string{"data/out.txt"}, matches)

	used, err := asuser.Usage(ctx, r, acct, asuser.UsageArgs{Paths: []string{ws}})
	require.NoError(t, err)
	assert.Positive(t, used)

	del, err := asuser.Delete(ctx, r, acct, asuser.WorkspaceArgs{Workspace: ws, Path: "data/out.txt"})
	require.NoError(t, err)
	assert.Contains(t, del.Deleted, "data/out.txt")
	assert.Empty(t, del.Failed)
	matches, err = asuser.Glob(ctx, r, acct, asuser.WorkspaceArgs{Workspace: ws, Path: "**/*.txt"})
	require.NoError(t, err)
	assert.Empty(t, matches)
}

func TestRoundTripErrorKinds(t *testing.T) {
	ctx := context.Background()
	r, acct, ws, _ := workspace(t)
	upload(t, r, acct, ws, "a.txt", "a")
	upload(t, r, acct, ws, "b.txt", "b")

	tests := []struct {
		name string
		call func() error
		kind string
	}{
		{"open a missing file", func() error {
			s, err := asuser.OpenFile(ctx, r, acct, asuser.WorkspaceArgs{Workspace: ws, Path: "missing.txt"})
			if err == nil {
				_ = s.End(false, nil)
			}
			return err
		}, asuser.KindNotFound},
		{"list a missing workspace", func() error {
			_, err := asuser.List(ctx, r, acct, asuser.ListArgs{Workspace: filepath.Join(ws, "none")})
			return err
		}, asuser.KindNotFound},
		{"delete outside the workspace", func() error {
			_, err := asuser.Delete(ctx, r, acct, asuser.WorkspaceArgs{Workspace: ws, Path: "../jobs"})
			return err
		}, asuser.KindBadPath},
		{"create a relative workspace", func() error {
			return asuser.CreateWorkspace(ctx, r, acct, asuser.WorkspaceArgs{Workspace: "relative/ws"})
		}, asuser.KindBadPath},
		{"start a job in a relative directory", func() error {
			_, err := asuser.StartJob(ctx, r, acct, asuser.JobStartArgs{JobDir: "relative", Script: "true"})
			return err
		}, asuser.KindBadPath},
		{"move onto an existing file", func() error {
			return asuser.Move(ctx, r, acct, asuser.MoveArgs{Workspace: ws, Source: "a.txt", Target: "b.txt"})
		}, asuser.KindExists},
		{"an unknown operation", func() error {
			return r.Call(ctx, acct, asuser.Op("no.such.op"), struct{}{}, nil)
		}, asuser.KindInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			require.Error(t, err)
			var e *asuser.Error
			require.ErrorAs(t, err, &e, "the error crossed the boundary as an *asuser.Error")
			assert.True(t, asuser.IsKind(err, tt.kind), "kind %q, want %q: %v", e.Kind, tt.kind, err)
		})
	}
}

func TestRoundTripExec(t *testing.T) {
	r, acct, _, jobs := workspace(t)
	tests := []struct {
		name string
		args asuser.ExecArgs
		want asuser.ExecResult
	}{
		{"output and exit status", asuser.ExecArgs{Argv: []string{"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}},
			asuser.ExecResult{ExitCode: 3, Stdout: "out\n", Stderr: "err\n"}},
		{"stdin", asuser.ExecArgs{Argv: []string{"cat"}, Stdin: "abc"}, asuser.ExecResult{Stdout: "abc"}},
		{"as the user", asuser.ExecArgs{Argv: []string{"id", "-u"}}, asuser.ExecResult{Stdout: strconv.Itoa(int(acct.UID)) + "\n"}},
		{"in a directory, with extra environment", asuser.ExecArgs{Argv: []string{"/bin/sh", "-c", `echo "$PWD $X"`}, Dir: jobs, Env: []string{"X=y"}},
			asuser.ExecResult{Stdout: jobs + " y\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, err := asuser.Exec(context.Background(), r, acct, tt.args)
			require.NoError(t, err)
			assert.Equal(t, tt.want, res)
		})
	}
}

func TestRoundTripLocalJob(t *testing.T) {
	ctx := context.Background()
	r, acct, _, jobs := workspace(t)
	dir := filepath.Join(jobs, "sleeper")
	// The last command is not the sleep, so the shell stays the job's
	// process instead of exec'ing sleep, and is found as the job script.
	start := asuser.JobStartArgs{JobDir: dir, Script: "sleep 60\nexit 0\n", Command: "sleep 60", Detach: true}
	res, err := asuser.StartJob(ctx, r, acct, start)
	require.NoError(t, err)
	require.Positive(t, res.PID)
	assert.False(t, res.Already)
	ref := asuser.JobRef{ID: "j", JobDir: dir, PID: res.PID}
	t.Cleanup(func() { _ = asuser.CancelJob(ctx, r, acct, asuser.JobCancelArgs{Job: ref}) })

	again, err := asuser.StartJob(ctx, r, acct, start)
	require.NoError(t, err)
	assert.True(t, again.Already, "a second start of the same job is a no-op")

	st, err := asuser.JobStatus(ctx, r, acct, asuser.JobStatusArgs{Jobs: []asuser.JobRef{ref}})
	require.NoError(t, err)
	assert.Equal(t, asuser.JobState{Alive: true, Started: true}, st["j"])

	require.NoError(t, asuser.CancelJob(ctx, r, acct, asuser.JobCancelArgs{Job: ref, Grace: time.Second}))
	require.Eventually(t, func() bool {
		st, err := asuser.JobStatus(ctx, r, acct, asuser.JobStatusArgs{Jobs: []asuser.JobRef{ref}})
		return err == nil && !st["j"].Alive
	}, 5*time.Second, 50*time.Millisecond, "the cancelled job is gone")
	st, err = asuser.JobStatus(ctx, r, acct, asuser.JobStatusArgs{Jobs: []asuser.JobRef{ref}})
	require.NoError(t, err)
	assert.Equal(t, asuser.JobState{Started: true}, st["j"], "killed before it recorded an exit status")

	logs, err := asuser.JobLogs(ctx, r, acct, asuser.JobLogsArgs{Path: filepath.Join(dir, asuser.CommandFile), MaxBytes: 5})
	require.NoError(t, err)
	assert.Equal(t, asuser.JobLogsResult{Text: "ep 60", Truncated: true}, logs)
}

func TestRoundTripSubmit(t *testing.T) {
	ctx := context.Background()
	r, acct, _, jobs := workspace(t)
	tests := []struct {
		name  string
		args  asuser.BatchSubmitArgs
		first asuser.BatchSubmitResult
		// next is the answer to the same submission made again.
		next asuser.BatchSubmitResult
	}{
		{"submitted", asuser.BatchSubmitArgs{Argv: []string{"/bin/echo", "123"}},
			asuser.BatchSubmitResult{ID: "123"}, asuser.BatchSubmitResult{ID: "123", Already: true}},
		{"refused: the next attempt starts afresh", asuser.BatchSubmitArgs{Argv: []string{"/bin/sh", "-c", "echo refused >&2; exit 1"}},
			asuser.BatchSubmitResult{ExitCode: 1, Stderr: "refused\n"}, asuser.BatchSubmitResult{ExitCode: 1, Stderr: "refused\n"}},
		{"timed out, maybe submitted: the next attempt is interrupted", asuser.BatchSubmitArgs{
			Argv: []string{"/bin/sh", "-c", "echo timed out >&2; exit 1"}, MaybeSubmitted: "timed out"},
			asuser.BatchSubmitResult{ExitCode: 1, Stderr: "timed out\n"}, asuser.BatchSubmitResult{Interrupted: true}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.args.JobDir = filepath.Join(jobs, "job"+strconv.Itoa(i))
			tt.args.Script, tt.args.Command = "true\n", "true"
			got, err := asuser.SubmitJob(ctx, r, acct, tt.args)
			require.NoError(t, err)
			assert.Equal(t, tt.first, got)
			got, err = asuser.SubmitJob(ctx, r, acct, tt.args)
			require.NoError(t, err)
			assert.Equal(t, tt.next, got)
		})
	}
}

func TestRoundTripFollowLogs(t *testing.T) {
	ctx := context.Background()
	r, acct, _, jobs := workspace(t)
	dir := filepath.Join(jobs, "followed")
	_, err := asuser.SubmitJob(ctx, r, acct, asuser.BatchSubmitArgs{
		JobDir: dir, Script: "true\n", Command: "true", Argv: []string{"/bin/echo", "7"},
		Files: map[string]string{"events.log": "0123456789", asuser.ExitFile: "4\n"},
	})
	require.NoError(t, err)
	got, err := asuser.FollowLogs(ctx, r, acct, asuser.JobFollowArgs{MaxBytes: 3, Logs: []asuser.FollowRef{
		{ID: "log", Path: filepath.Join(dir, "events.log"), Offset: 4, JobDir: dir},
		{ID: "missing", Path: filepath.Join(dir, "none.log")},
	}})
	require.NoError(t, err)
	assert.Equal(t, map[string]asuser.FollowResult{
		"log":     {Exists: true, Size: 10, Data: []byte("456"), Exit: asuser.ExitInfo{Present: true, ExitCode: 4}},
		"missing": {},
	}, got)
}
