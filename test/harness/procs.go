package harness

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
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

// Every calls fn every interval in a goroutine of its own until the
// returned stop is called; stop returns once fn no longer runs. Tests
// watch a process (its memory, everyone's argv) while something happens.
func Every(interval time.Duration, fn func()) (stop func()) {
	quit, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-quit:
				return
			case <-time.After(interval):
			}
			fn()
		}
	}()
	return func() { close(quit); <-done }
}
