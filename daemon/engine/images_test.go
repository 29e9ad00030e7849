package engine

import (
	"context"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/containers"
	"github.com/reana-site/reana-site/daemon/spec"
	"github.com/reana-site/reana-site/daemon/store"
)

const imgCVMFS = "/cvmfs/unpacked.cern.ch/registry.hub.docker.com/library/img:latest"

// imageRunner answers the resolver's probes: only imgCVMFS exists.
type imageRunner struct{}

func (imageRunner) Call(_ context.Context, _ asuser.Account, op asuser.Op, args, result any) error {
	a := args.(asuser.ExecArgs)
	var res asuser.ExecResult
	for _, p := range a.Argv[4:] {
		if p == imgCVMFS {
			res.Stdout += "d " + p + "\n"
		}
	}
	b, _ := json.Marshal(res)
	return json.Unmarshal(b, result)
}

// recordingBackend keeps the specs submitted.
type recordingBackend struct {
	*fakeBackend
	mu    sync.Mutex
	specs []batch.Spec
}

func (r *recordingBackend) Submit(ctx context.Context, s batch.Spec) (batch.Handle, error) {
	r.mu.Lock()
	r.specs = append(r.specs, s)
	r.mu.Unlock()
	return r.fakeBackend.Submit(ctx, s)
}

func TestStepsRunInTheirImage(t *testing.T) {
	cases := []struct {
		name       string
		roots      []string
		wantStatus store.WorkflowStatus
		wantReason string
	}{
		{name: "image found", roots: []string{"/cvmfs/unpacked.cern.ch"}, wantStatus: store.StatusFinished},
		{name: "image missing, no pulls", roots: nil, wantStatus: store.StatusFailed,
			wantReason: `cannot run in the step's image: image "registry.hub.docker.com/library/img:latest" not found: this site has no image cache or unpacked image tree; this site does not pull images`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			rb := &recordingBackend{fakeBackend: f.be}
			f.eng.Backends["local"] = rb
			f.eng.Images = &containers.Resolver{Config: containers.Config{Enabled: true, UnpackedRoots: tc.roots}, Runner: imageRunner{}}
			id := f.queue(t, [][]string{{"ok a"}}, nil, nil)
			ctx := context.Background()
			var wf store.Workflow
			require.Eventually(t, func() bool {
				f.eng.Tick(ctx)
				var err error
				wf, err = f.db.GetWorkflow(ctx, id)
				require.NoError(t, err)
				return wf.Status == tc.wantStatus
			}, 5*time.Second, 5*time.Millisecond)
			if tc.wantReason != "" {
				jobs, err := f.db.JobStates(ctx, id)
				require.NoError(t, err)
				require.Len(t, jobs, 1)
				require.Equal(t, tc.wantReason, jobs[0].Reason)
				require.Empty(t, rb.specs, "nothing is submitted")
				return
			}
			require.Len(t, rb.specs, 1)
			s := rb.specs[0]
			require.Equal(t, []string{"apptainer", "exec", "--cleanenv", "--no-home", "--pid"}, s.Runner[:5])
			require.Contains(t, s.Runner, imgCVMFS)
			require.Contains(t, s.Runner, "--pwd")
			require.Contains(t, s.Preamble, "reana-site: running in image img ("+imgCVMFS+", from unpacked)")
		})
	}
}

func TestCheckImages(t *testing.T) {
	f := newFixture(t)
	steps := []spec.Step{{Name: "a", Environment: "img"}, {Name: "b", Environment: "other:1"}}
	acct := asuser.Account{Name: "alice", UID: 4101}
	require.NoError(t, f.eng.CheckImages(context.Background(), steps, acct), "containers off: nothing to check")

	f.eng.Images = &containers.Resolver{Config: containers.Config{Enabled: true, UnpackedRoots: []string{"/cvmfs/unpacked.cern.ch"}}, Runner: imageRunner{}}
	err := f.eng.CheckImages(context.Background(), steps, acct)
	require.Error(t, err)
	require.True(t, strings.HasPrefix(err.Error(), "step b: "), err.Error())
	require.Contains(t, err.Error(), "this site does not pull images")
	require.NoError(t, f.eng.CheckImages(context.Background(), steps[:1], acct))
}
