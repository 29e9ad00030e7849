//go:build bench

package bench

import (
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/batch/jobscript"
	"github.com/reana-site/reana-site/containers"
	"github.com/reana-site/reana-site/test/harness"
)

// How many times each trivial step runs; the median is reported, after
// one run to warm the page cache. A SIF step unpacks the whole image when
// squashfuse cannot run (seconds each), so it runs fewer times.
const (
	containerRuns = 7
	sifRuns       = 3
)

// TestBenchContainerStepOverhead: what running a step in its image adds,
// as the job script every backend runs, as alice: a trivial step (`true`)
// in the test image, unpacked (sandbox) and as a SIF file, minus the same
// step on the host. For the real Apptainer when test/setup.sh installed
// it, and for the stand-in, whose figures say how far the timed tests on
// it are from real ones.
func TestBenchContainerStepOverhead(t *testing.T) {
	if env.Standin == "" || env.Images == "" {
		t.Skip("no Apptainer stand-in or test images: run test/setup.sh")
	}
	j := harness.NewJobDirs(t, "alice", ".reana-bench-container-")
	spec := batch.Spec{JobID: "j1", WorkflowName: "bench.1", StepName: "s", Workspace: j.Workspace, JobDir: j.JobDir,
		Env: map[string]string{"REANA_WORKSPACE": j.Workspace}}

	// step runs the job script with runner (nil: the host shell) runs
	// times and returns the median wall time.
	step := func(runner []string, runs int) time.Duration {
		t.Helper()
		script, err := jobscript.Render(spec, jobscript.Options{Runner: runner})
		require.NoError(t, err)
		j.WriteJob(t, script, "true")
		var took []time.Duration
		for i := 0; i <= runs; i++ {
			cmd := j.Command()
			start := time.Now()
			out, err := cmd.CombinedOutput()
			if i > 0 {
				took = append(took, time.Since(start))
			}
			require.NoError(t, err, "%s", out)
			exit, err := os.ReadFile(filepath.Join(j.JobDir, asuser.ExitFile))
			require.NoError(t, err)
			require.Equal(t, "0\n", string(exit), "%s", out)
		}
		sort.Slice(took, func(i, j int) bool { return took[i] < took[j] })
		return took[len(took)/2]
	}
	inImage := func(prog, image string) []string {
		runner, err := containers.ExecArgs(containers.Config{Apptainer: prog}, containers.Resolved{Path: image}, spec)
		require.NoError(t, err)
		return runner
	}

	host := step(nil, containerRuns)
	t.Logf("host step: %v", host)
	sandbox := filepath.Join(env.Images, "debian-12-slim")
	programs := []struct{ suffix, prog string }{{"", env.RealApptainer}, {"_standin", env.Standin}}
	if env.RealApptainer == "" {
		t.Logf("no real Apptainer (%s): the stand-in's figures only", env.ApptainerNote)
		programs = programs[1:]
	}
	for _, p := range programs {
		report("container_step_overhead"+p.suffix+"_ms", durMS(step(inImage(p.prog, sandbox), containerRuns)-host), "ms", "< 1000 (own goal)")
		if env.SIF == "" {
			t.Log("no SIF of the test image (test/setup.sh builds it with the real Apptainer): no SIF figure")
			continue
		}
		// Without a squashfuse users can run, Apptainer unpacks the whole
		// SIF into a temporary sandbox on every step.
		report("container_step_overhead_sif"+p.suffix+"_ms", durMS(step(inImage(p.prog, env.SIF), sifRuns)-host), "ms", "< 10000 (own goal)")
	}
}
