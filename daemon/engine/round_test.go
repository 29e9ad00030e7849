package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/daemon/store"
)

// manyFake is the fake backend with SubmitMany: it notes each group's
// size, and refuses the commands starting with "refused".
type manyFake struct {
	*fakeBackend
	groups []int
}

func (m *manyFake) SubmitMany(ctx context.Context, specs []batch.Spec) []batch.Submitted {
	m.mu.Lock()
	m.groups = append(m.groups, len(specs))
	m.mu.Unlock()
	out := make([]batch.Submitted, len(specs))
	for i, s := range specs {
		if strings.HasPrefix(s.Command, "refused") {
			out[i].Err = errors.New("sbatch: invalid partition")
			continue
		}
		out[i].Handle, out[i].Err = m.Submit(ctx, s)
	}
	return out
}

func (m *manyFake) groupSizes() []int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]int(nil), m.groups...)
}

func newManyFixture(t *testing.T, share int) (*fixture, *manyFake, string) {
	t.Helper()
	f := newFixture(t)
	m := &manyFake{fakeBackend: f.be}
	f.eng.Backends["local"] = m
	f.eng.RoundShare = share
	bob, err := f.db.CreateUser(context.Background(), store.User{Name: "bob", UID: 4102})
	require.NoError(t, err)
	return f, m, bob.ID
}

func (f *fixture) queueAs(t *testing.T, owner string, cmds ...string) string {
	t.Helper()
	was := f.owner
	f.owner = owner
	defer func() { f.owner = was }()
	return f.queue(t, [][]string{cmds}, nil, nil)
}

func jobStatus(t *testing.T, db *store.DB, wf string) store.JobStatus {
	t.Helper()
	jobs, err := db.JobStates(context.Background(), wf)
	require.NoError(t, err)
	if len(jobs) == 0 {
		return ""
	}
	return jobs[len(jobs)-1].Status
}

// TestRoundSubmitsGroupsFairly: one round submits each owner's ready jobs
// as one group, at most RoundShare of them per owner, and a user with one
// job is not held up by another with many.
func TestRoundSubmitsGroupsFairly(t *testing.T) {
	f, m, bob := newManyFixture(t, 10)
	var alices []string
	for i := 0; i < 25; i++ {
		alices = append(alices, f.queueAs(t, f.owner, fmt.Sprintf("wait a%d", i)))
	}
	bobs := f.queueAs(t, bob, "wait b")

	f.eng.Tick(context.Background())
	assert.Equal(t, store.JobRunning, jobStatus(t, f.db, bobs), "bob's job went in the first round")
	running := 0
	for _, id := range alices {
		if jobStatus(t, f.db, id) == store.JobRunning {
			running++
		}
	}
	assert.Equal(t, 10, running, "alice's share of one round")
	assert.Equal(t, []int{10}, m.groupSizes(), "alice's ten in one group; bob's one job went through Submit")
	created := map[time.Time]int{}
	for _, id := range append(alices, bobs) {
		jobs, err := f.db.JobsForWorkflow(context.Background(), id)
		require.NoError(t, err)
		for _, j := range jobs {
			created[j.CreatedAt]++
		}
	}
	assert.Len(t, created, 1, "the round's eleven intents were recorded together: %v", created)
	for _, n := range created {
		assert.Equal(t, 11, n, "jobs beyond alice's share are not recorded yet")
	}

	for i := 0; i < 3; i++ {
		f.eng.Tick(context.Background())
	}
	for _, id := range alices {
		assert.Equal(t, store.JobRunning, jobStatus(t, f.db, id))
		wf, err := f.db.GetWorkflow(context.Background(), id)
		require.NoError(t, err)
		assert.Equal(t, store.StatusRunning, wf.Status)
	}
	assert.Len(t, f.be.commands(), 26, "every job submitted once")
}

// TestRoundFailuresStayWithTheirJob: in one group, a refused job fails its
// own workflow, an outage leaves its job waiting, and the others run.
func TestRoundFailuresStayWithTheirJob(t *testing.T) {
	f, m, _ := newManyFixture(t, 0)
	ok := f.queueAs(t, f.owner, "wait ok")
	refused := f.queueAs(t, f.owner, "refused x")
	down := f.queueAs(t, f.owner, "down y")
	f.eng.Tick(context.Background())
	assert.Equal(t, []int{3}, m.groupSizes())

	assert.Equal(t, store.JobRunning, jobStatus(t, f.db, ok))
	assert.Equal(t, store.JobFailed, jobStatus(t, f.db, refused))
	wf, err := f.db.GetWorkflow(context.Background(), refused)
	require.NoError(t, err)
	assert.Equal(t, store.StatusFailed, wf.Status)
	jobs, err := f.db.JobsForWorkflow(context.Background(), refused)
	require.NoError(t, err)
	assert.Contains(t, jobs[0].Logs, "submission failed: sbatch: invalid partition")

	assert.Equal(t, store.JobCreated, jobStatus(t, f.db, down), "an outage is waited out")
	wf, err = f.db.GetWorkflow(context.Background(), down)
	require.NoError(t, err)
	assert.Contains(t, wf.StatusMessage, "unreachable")
}

func TestFairOrderTakesTurns(t *testing.T) {
	wfs := []store.Workflow{{ID: "a1", OwnerID: "a"}, {ID: "a2", OwnerID: "a"}, {ID: "a3", OwnerID: "a"}, {ID: "b1", OwnerID: "b"}, {ID: "c1", OwnerID: "c"}, {ID: "b2", OwnerID: "b"}}
	var ids []string
	for _, wf := range fairOrder(wfs) {
		ids = append(ids, wf.ID)
	}
	assert.Equal(t, []string{"a1", "b1", "c1", "a2", "b2", "a3"}, ids)
}

// TestRoundCutsLargeGroups: one owner's 120 ready jobs go through three
// helpers of at most groupMax jobs each.
func TestRoundCutsLargeGroups(t *testing.T) {
	f, m, _ := newManyFixture(t, 0)
	for i := 0; i < 120; i++ {
		f.queueAs(t, f.owner, fmt.Sprintf("wait %d", i))
	}
	f.eng.Tick(context.Background())
	assert.ElementsMatch(t, []int{groupMax, groupMax, 120 - 2*groupMax}, m.groupSizes())
	assert.Len(t, f.be.commands(), 120)
}

// blockingMany holds every group until release is closed.
type blockingMany struct {
	*manyFake
	entered chan struct{}
	release chan struct{}
}

func (b *blockingMany) SubmitMany(ctx context.Context, specs []batch.Spec) []batch.Submitted {
	close(b.entered)
	<-b.release
	return b.manyFake.SubmitMany(ctx, specs)
}

// TestStopWaitsForTheGroup: a stop that comes while its workflow's job is
// being submitted in a group waits for the group, then finds the job
// submitted and cancels it, instead of marking an unsubmitted job stopped
// that the group then starts.
func TestStopWaitsForTheGroup(t *testing.T) {
	f, m, _ := newManyFixture(t, 0)
	b := &blockingMany{manyFake: m, entered: make(chan struct{}), release: make(chan struct{})}
	f.eng.Backends["local"] = b
	one := f.queueAs(t, f.owner, "wait 1")
	f.queueAs(t, f.owner, "wait 2")

	ticked := make(chan struct{})
	go func() { f.eng.Tick(context.Background()); close(ticked) }()
	<-b.entered
	stopped := make(chan error, 1)
	go func() { _, err := f.eng.Stop(context.Background(), one); stopped <- err }()
	select {
	case err := <-stopped:
		t.Fatalf("stop returned while the group was being submitted: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	close(b.release)
	require.NoError(t, <-stopped)
	<-ticked

	jobs, err := f.db.JobsForWorkflow(context.Background(), one)
	require.NoError(t, err)
	require.Len(t, jobs, 1)
	assert.Equal(t, store.JobStopped, jobs[0].Status)
	f.be.mu.Lock()
	defer f.be.mu.Unlock()
	assert.True(t, f.be.cancelled[jobs[0].ID], "the submitted job was cancelled in the batch system")
}
