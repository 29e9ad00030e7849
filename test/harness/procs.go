package harness

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// MarkedPIDs are the pids whose command line has marker as one whole
// argument: tests start their processes with a marker of their own, so
// they find (and kill) only those, never another test's processes of the
// same user.
func MarkedPIDs(marker string) []int {
	var out []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		for _, arg := range strings.Split(string(b), "\x00") {
			if arg == marker {
				out = append(out, pid)
				break
			}
		}
	}
	return out
}
