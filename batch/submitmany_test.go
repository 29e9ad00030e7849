package batch

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/asuser"
)

// manyHelper answers job.submitmany with an outcome per job from its
// script (by job directory) and counts the helpers started per user.
type manyHelper struct {
	outcomes map[string]asuser.BatchSubmitOutcome
	calls    map[string][]asuser.Op
	fail     error
}

func (h *manyHelper) Call(_ context.Context, acct asuser.Account, op asuser.Op, args, result any) error {
	h.calls[acct.Name] = append(h.calls[acct.Name], op)
	if h.fail != nil {
		return h.fail
	}
	var out any
	switch a := args.(type) {
	case asuser.BatchSubmitManyArgs:
		var res []asuser.BatchSubmitOutcome
		for _, j := range a.Jobs {
			res = append(res, h.outcomes[j.JobDir])
		}
		out = res
	case asuser.BatchSubmitArgs:
		if !a.Force {
			return fmt.Errorf("a second job.submit without Force for %s", a.JobDir)
		}
		out = asuser.BatchSubmitResult{ID: "forced-" + a.JobDir}
	}
	b, _ := json.Marshal(out)
	return json.Unmarshal(b, result)
}

func TestSubmitManyPrepared(t *testing.T) {
	alice := asuser.Account{Name: "alice", UID: 4101, GID: 4101}
	bob := asuser.Account{Name: "bob", UID: 4102, GID: 4102}
	specs := []Spec{
		{JobID: "a1", JobDir: "a1", User: alice},
		{JobID: "b1", JobDir: "b1", User: bob},
		{JobID: "a2", JobDir: "a2", User: alice},
		{JobID: "a3", JobDir: "a3", User: alice},
		{JobID: "a4", JobDir: "a4", User: alice},
		{JobID: "bad", JobDir: "bad", User: alice},
		{JobID: "gone", JobDir: "gone", User: alice},
	}
	found := map[string]bool{"a4": true}
	prepare := func(s Spec) (Prepared, error) {
		if s.JobID == "bad" {
			return Prepared{}, errors.New("bad partition")
		}
		return Prepared{
			Args: asuser.BatchSubmitArgs{JobDir: s.JobDir},
			Find: func(context.Context) (bool, error) { return found[s.JobID], nil },
			Done: func(_ context.Context, res asuser.BatchSubmitResult, wasFound bool) (Handle, error) {
				if wasFound {
					return Handle{ID: "found-" + s.JobID}, nil
				}
				if res.ExitCode != 0 {
					return Handle{}, fmt.Errorf("exit %d", res.ExitCode)
				}
				return Handle{ID: res.ID}, nil
			},
		}, nil
	}
	h := &manyHelper{calls: map[string][]asuser.Op{}, outcomes: map[string]asuser.BatchSubmitOutcome{
		"a1":   {Result: asuser.BatchSubmitResult{ID: "1"}},
		"b1":   {Result: asuser.BatchSubmitResult{ID: "2"}},
		"a2":   {Result: asuser.BatchSubmitResult{ExitCode: 1}},
		"a3":   {Error: asuser.Errorf(asuser.KindDenied, "permission denied")},
		"a4":   {Result: asuser.BatchSubmitResult{Interrupted: true}},
		"gone": {Result: asuser.BatchSubmitResult{Interrupted: true}},
	}}
	out := SubmitManyPrepared(context.Background(), h, "slurm", specs, prepare)
	require.Len(t, out, len(specs))
	assert.Equal(t, "1", out[0].Handle.ID)
	assert.Equal(t, "2", out[1].Handle.ID)
	assert.EqualError(t, out[2].Err, "exit 1", "one failure fails that job only")
	assert.ErrorContains(t, out[3].Err, "slurm: submit job a3: permission denied")
	assert.Equal(t, "found-a4", out[4].Handle.ID, "an interrupted job that exists is not submitted again")
	assert.EqualError(t, out[5].Err, "bad partition")
	assert.Equal(t, "forced-gone", out[6].Handle.ID, "an interrupted job that is not there is submitted")
	assert.Equal(t, []asuser.Op{asuser.OpJobSubmitMany, asuser.OpJobSubmit}, h.calls["alice"], "one helper for alice's group, one more for the job to force")
	assert.Equal(t, []asuser.Op{asuser.OpJobSubmitMany}, h.calls["bob"])

	h.fail = errors.New("helper killed")
	for i, o := range SubmitManyPrepared(context.Background(), h, "slurm", specs[:2], prepare) {
		assert.ErrorContains(t, o.Err, "helper killed", "job %d", i)
	}
}
