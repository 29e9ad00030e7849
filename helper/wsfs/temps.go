package wsfs

import (
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// isTemp reports whether name is an upload's temporary file (CreateTemp).
func isTemp(name string) bool { return strings.HasPrefix(name, tempPrefix) }

// CleanTemps removes the temporary files of uploads whose helper died: a
// live upload holds its file under flock (see CreateTemp), so a file that
// can be locked here, and was not changed in the last minAge (which
// covers the moment between its creation and its lock), has nobody
// writing it. It returns how many it removed.
func (w *FS) CleanTemps(minAge time.Duration) (int, error) {
	removed := 0
	cutoff := time.Now().Add(-minAge)
	err := w.walk(&visitor{withTemps: true, pre: func(n *node) error {
		if !isTemp(n.name) || !isReg(&n.st) || mtime(&n.st).After(cutoff) {
			return nil
		}
		fd, err := openat2(n.dirfd, n.name, unix.O_RDONLY|unix.O_NONBLOCK, 0)
		if err != nil {
			return nil // gone meanwhile, or not ours to judge
		}
		defer unix.Close(fd)
		if unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB) != nil {
			return nil // an upload in progress
		}
		if unix.Unlinkat(n.dirfd, n.name, 0) == nil {
			removed++
		}
		return nil
	}, fail: func(string, error) error { return nil }})
	return removed, err
}
