package store

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func hashOf(s string) []byte { h := sha256.Sum256([]byte(s)); return h[:] }

func TestSessions(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	alice := addUser(t, db, "alice")
	require.NoError(t, db.CreateSession(ctx, hashOf("s1"), alice.ID, "token", time.Now().Add(time.Hour)))
	assert.ErrorIs(t, db.CreateSession(ctx, hashOf("s1"), alice.ID, "token", time.Now().Add(time.Hour)), ErrExists)

	u, s, err := db.SessionUser(ctx, hashOf("s1"))
	require.NoError(t, err)
	assert.Equal(t, alice.ID, u.ID)
	assert.Equal(t, "token", s.Method)
	require.NoError(t, db.TouchSession(ctx, hashOf("s1")))

	_, _, err = db.SessionUser(ctx, hashOf("nope"))
	assert.ErrorIs(t, err, ErrNotFound)

	require.NoError(t, db.CreateSession(ctx, hashOf("old"), alice.ID, "link", time.Now().Add(-time.Second)))
	_, _, err = db.SessionUser(ctx, hashOf("old"))
	assert.ErrorIs(t, err, ErrNotFound, "an expired session signs nobody in")

	require.NoError(t, db.DeleteSession(ctx, hashOf("s1")))
	_, _, err = db.SessionUser(ctx, hashOf("s1"))
	assert.ErrorIs(t, err, ErrNotFound, "logout ends the session")

	require.NoError(t, db.CreateSession(ctx, hashOf("s2"), alice.ID, "token", time.Now().Add(time.Hour)))
	require.NoError(t, db.CreateLoginLink(ctx, hashOf("l-old"), alice.ID, time.Now().Add(-time.Second)))
	n, err := db.DeleteExpiredSessions(ctx)
	require.NoError(t, err)
	assert.Equal(t, 2, n, "the expired session and the expired link")
	_, _, err = db.SessionUser(ctx, hashOf("s2"))
	assert.NoError(t, err, "a live session stays")

	require.NoError(t, db.RemoveUser(ctx, "alice"))
	_, _, err = db.SessionUser(ctx, hashOf("s2"))
	assert.ErrorIs(t, err, ErrNotFound, "a removed user's session ends")
	n, err = db.DeleteUserSessions(ctx, alice.ID)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
}

func TestLoginLinks(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	alice := addUser(t, db, "alice")
	require.NoError(t, db.CreateLoginLink(ctx, hashOf("k"), alice.ID, time.Now().Add(10*time.Minute)))
	assert.ErrorIs(t, db.CreateLoginLink(ctx, hashOf("k"), alice.ID, time.Now().Add(10*time.Minute)), ErrExists)
	u, err := db.UseLoginLink(ctx, hashOf("k"))
	require.NoError(t, err)
	assert.Equal(t, alice.ID, u.ID)
	_, err = db.UseLoginLink(ctx, hashOf("k"))
	assert.ErrorIs(t, err, ErrNotFound, "a link is used once")
	_, err = db.UseLoginLink(ctx, hashOf("unknown"))
	assert.ErrorIs(t, err, ErrNotFound)
	require.NoError(t, db.CreateLoginLink(ctx, hashOf("late"), alice.ID, time.Now().Add(-time.Millisecond)))
	_, err = db.UseLoginLink(ctx, hashOf("late"))
	assert.ErrorIs(t, err, ErrNotFound, "an expired link")
	require.NoError(t, db.CreateLoginLink(ctx, hashOf("removed"), alice.ID, time.Now().Add(time.Minute)))
	require.NoError(t, db.RemoveUser(ctx, "alice"))
	_, err = db.UseLoginLink(ctx, hashOf("removed"))
	assert.ErrorIs(t, err, ErrNotFound, "a removed user's link")
}

func TestListSortByDiskAndDuration(t *testing.T) {
	ctx := context.Background()
	db := openTest(t)
	alice := addUser(t, db, "alice")
	base := time.Now().Add(-time.Hour)
	mk := func(name string, disk int64, dur time.Duration) {
		w := Workflow{OwnerID: alice.ID, Name: name, Spec: json.RawMessage(`{}`), WorkspacePath: "/w/" + name, JobsPath: "/j/" + name}
		require.NoError(t, db.CreateWorkflow(ctx, &w))
		_, err := db.UpdateWorkflow(ctx, w.ID, func(x *Workflow) error {
			x.DiskUsage = disk
			if dur > 0 {
				s, f := base, base.Add(dur)
				x.StartedAt, x.FinishedAt, x.Status = &s, &f, StatusFinished
			}
			return nil
		})
		require.NoError(t, err)
	}
	mk("small-long", 10, 30*time.Minute)
	mk("big-short", 1000, time.Minute)
	mk("mid-none", 100, 0)
	names := func(q ListQuery) []string {
		q.OwnerID = alice.ID
		wfs, _, err := db.ListWorkflows(ctx, q)
		require.NoError(t, err)
		var out []string
		for _, w := range wfs {
			out = append(out, w.Name)
		}
		return out
	}
	assert.Equal(t, []string{"big-short", "mid-none", "small-long"}, names(ListQuery{SortBy: SortDisk}))
	assert.Equal(t, []string{"small-long", "mid-none", "big-short"}, names(ListQuery{SortBy: SortDisk, SortAsc: true}))
	assert.Equal(t, []string{"small-long", "big-short", "mid-none"}, names(ListQuery{SortBy: SortDuration}))
	assert.Equal(t, []string{"mid-none", "big-short", "small-long"}, names(ListQuery{}))
}
