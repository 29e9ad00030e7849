package helper

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/reana-site/reana-site/asuser"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFollowOne(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "events.log")
	require.NoError(t, os.WriteFile(log, []byte("0123456789"), 0o600))
	fifo := filepath.Join(dir, "fifo")
	require.NoError(t, syscall.Mkfifo(fifo, 0o600))
	link := filepath.Join(dir, "link")
	require.NoError(t, os.Symlink(log, link))

	tests := []struct {
		name   string
		path   string
		offset int64
		max    int64
		exists bool
		data   string
		err    bool
	}{
		{"from the start", log, 0, 100, true, "0123456789", false},
		{"from an offset", log, 4, 100, true, "456789", false},
		{"capped", log, 2, 3, true, "234", false},
		{"nothing new", log, 10, 100, true, "", false},
		{"shrunk", log, 20, 100, true, "", false},
		{"missing", filepath.Join(dir, "none"), 0, 100, false, "", false},
		{"a FIFO is not read (and does not block)", fifo, 0, 100, true, "", true},
		{"a symlink is not followed", link, 0, 100, true, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := followOne(asuser.FollowRef{Path: tt.path, Offset: tt.offset}, tt.max)
			assert.Equal(t, tt.data, string(r.Data))
			assert.Equal(t, tt.err, r.Error != "", r.Error)
			if !tt.err {
				assert.Equal(t, tt.exists, r.Exists)
			}
		})
	}
}

func TestSubmitKeepsTheClaimWhenTheJobMayExist(t *testing.T) {
	tests := []struct {
		name, stderr string
		kept         bool
	}{
		{"refused outright", "ERROR: Can't find address of local schedd", false},
		{"timed out after sending", "ERROR: Failed to commit job submission: SECMAN:2007:Failed to end classad message", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "job")
			args := asuser.BatchSubmitArgs{JobDir: dir, Script: "#!/bin/sh\n", Command: "true",
				Argv: []string{"/bin/sh", "-c", `echo "$0" >&2; exit 1`, tt.stderr}, MaybeSubmitted: `SECMAN:2007`}
			raw, err := json.Marshal(args)
			require.NoError(t, err)
			res, err := jobSubmit(context.Background(), raw, nil)
			require.NoError(t, err)
			assert.Equal(t, 1, res.(asuser.BatchSubmitResult).ExitCode)
			_, err = os.Stat(filepath.Join(dir, claimFile))
			assert.Equal(t, tt.kept, err == nil, "claim kept")
			// The next attempt is told about the earlier one, or starts afresh.
			res, err = jobSubmit(context.Background(), raw, nil)
			require.NoError(t, err)
			assert.Equal(t, tt.kept, res.(asuser.BatchSubmitResult).Interrupted)
		})
	}
}

// TestSubmitManyKeepsEachJobsOwnClaim: one helper submits several jobs,
// each with its own outcome; submitting the same group again (a daemon that
// died before recording the answers) submits none of them twice.
func TestSubmitManyKeepsEachJobsOwnClaim(t *testing.T) {
	root := t.TempDir()
	count := filepath.Join(root, "count")
	job := func(name, script string) asuser.BatchSubmitArgs {
		return asuser.BatchSubmitArgs{JobDir: filepath.Join(root, name), Script: "#!/bin/sh\n", Command: "true",
			Argv: []string{"/bin/sh", "-c", `echo x >>"$1"; ` + script, "sh", count}}
	}
	interrupted := job("interrupted", "echo 3")
	require.NoError(t, os.MkdirAll(interrupted.JobDir, 0o700))
	require.NoError(t, os.WriteFile(filepath.Join(interrupted.JobDir, claimFile), nil, 0o600))
	args := asuser.BatchSubmitManyArgs{Jobs: []asuser.BatchSubmitArgs{
		job("ok", "echo 1"),
		job("refused", "echo no >&2; exit 1"),
		{JobDir: "relative", Argv: []string{"true"}},
		interrupted,
		job("also-ok", "echo 2"),
	}}
	raw, err := json.Marshal(args)
	require.NoError(t, err)

	res, err := jobSubmitMany(context.Background(), raw, nil)
	require.NoError(t, err)
	out := res.([]asuser.BatchSubmitOutcome)
	require.Len(t, out, 5)
	assert.Equal(t, asuser.BatchSubmitResult{ID: "1"}, out[0].Result)
	assert.Equal(t, 1, out[1].Result.ExitCode)
	assert.Contains(t, out[1].Result.Stderr, "no")
	require.NotNil(t, out[2].Error)
	assert.Equal(t, asuser.KindBadPath, out[2].Error.Kind)
	assert.True(t, out[3].Result.Interrupted, "a claimed job is not submitted again")
	assert.Equal(t, asuser.BatchSubmitResult{ID: "2"}, out[4].Result)

	res, err = jobSubmitMany(context.Background(), raw, nil)
	require.NoError(t, err)
	again := res.([]asuser.BatchSubmitOutcome)
	assert.Equal(t, asuser.BatchSubmitResult{ID: "1", Already: true}, again[0].Result)
	assert.Equal(t, asuser.BatchSubmitResult{ID: "2", Already: true}, again[4].Result)
	b, err := os.ReadFile(count)
	require.NoError(t, err)
	assert.Equal(t, 4, strings.Count(string(b), "x"), "ok, refused (twice, it left no claim) and also-ok ran; ok and also-ok once")
}
