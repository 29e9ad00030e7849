package harness

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func slurmScript(repo string) string { return filepath.Join(repo, "test", "slurm", "slurm.sh") }

// EnsureSlurm makes sure the real single-node Slurm of test/slurm/slurm.sh
// runs (munged, slurmctld, slurmd, node idle); it returns at once when it
// does. With REANA_SITE_SLURM=0 the test is skipped instead.
func EnsureSlurm(t testing.TB, repo string) {
	t.Helper()
	if os.Getenv("REANA_SITE_SLURM") == "0" {
		t.Skip("Slurm tests skipped: REANA_SITE_SLURM=0")
	}
	runSlurmScript(t, repo, "start")
}

// StopController stops slurmctld only: jobs keep running under slurmd and
// the Slurm commands fail as in a controller outage.
func StopController(t testing.TB, repo string) {
	t.Helper()
	runSlurmScript(t, repo, "stop-ctld")
}

// StartController starts slurmctld again, which recovers its jobs, and
// waits until the node answers.
func StartController(t testing.TB, repo string) {
	t.Helper()
	runSlurmScript(t, repo, "start-ctld")
}

func runSlurmScript(t testing.TB, repo, cmd string) {
	t.Helper()
	out, err := exec.Command("bash", slurmScript(repo), cmd).CombinedOutput()
	if err != nil {
		t.Fatalf("test/slurm/slurm.sh %s: %v\n%s", cmd, err, strings.TrimSpace(string(out)))
	}
	t.Logf("%s", strings.TrimSpace(string(out)))
}
