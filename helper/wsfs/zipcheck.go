package wsfs

import (
	"errors"
	"fmt"
	"slices"

	"golang.org/x/sys/unix"
)

// UnreadableError names the entry of a zip request that the user cannot
// read, so the daemon can refuse the download by name.
type UnreadableError struct {
	Path string // workspace-relative
	Err  error
}

func (e *UnreadableError) Error() string {
	// The bare errno reads best ("cannot read data/x: permission denied");
	// the wrapped error repeats the path.
	var errno unix.Errno
	if errors.As(e.Err, &errno) {
		return fmt.Sprintf("cannot read %s: %v", e.Path, errno)
	}
	return fmt.Sprintf("cannot read %s: %v", e.Path, e.Err)
}

func (e *UnreadableError) Unwrap() error { return e.Err }

// CheckZip walks what WriteZip would archive and opens every regular file
// and directory in it, without writing anything. The daemon sends a
// download's status line before the archive, so a file the user cannot
// read must be found first: once streaming has begun, a failure can only
// cut the stream. What changes between the check and the archive is still
// caught by WriteZip, which then fails.
func (w *FS) CheckZip(paths []string) error {
	rels := make([]string, 0, len(paths))
	for _, p := range paths {
		rel, err := cleanPath(p)
		if err != nil {
			return fmt.Errorf("zip: %w", err)
		}
		rels = append(rels, rel)
	}
	slices.Sort(rels)
	v := &visitor{
		pre: func(n *node) error {
			if !isReg(&n.st) {
				return nil // directories are entered by the walk itself; links and specials are left out
			}
			f, err := openReadAt(n.dirfd, n.name, false)
			if errors.Is(err, ErrNotFound) {
				return nil // removed since its directory was read: WriteZip leaves it out too
			}
			if err != nil {
				return &UnreadableError{Path: n.rel, Err: err}
			}
			return f.Close()
		},
		fail: func(rel string, err error) error {
			if errors.Is(err, ErrNotFound) {
				return err
			}
			return &UnreadableError{Path: rel, Err: err}
		},
	}
	rels = outermost(rels)
	for _, rel := range rels {
		if _, err := w.lstat(rel); err != nil {
			return fmt.Errorf("zip: %w", err)
		}
	}
	for _, rel := range rels {
		if err := w.walkPath(rel, v); err != nil {
			return fmt.Errorf("zip: %w", err)
		}
	}
	return nil
}
