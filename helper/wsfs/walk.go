package wsfs

import (
	"errors"
	"slices"

	"golang.org/x/sys/unix"
)

// node is an entry met while walking: its parent directory's descriptor
// (valid during the callback only), its name there, its workspace-relative
// path and its lstat.
type node struct {
	dirfd int
	name  string
	rel   string
	st    unix.Stat_t
}

func (n *node) isDir() bool { return isDir(&n.st) }

func (n *node) entry() Entry {
	return Entry{Name: n.rel, Size: n.st.Size, ModTime: mtime(&n.st), IsDir: n.isDir()}
}

// errSkipDir, returned by a pre callback, keeps the walk out of a
// directory (and skips its post callback).
var errSkipDir = errors.New("skip directory")

// visitor walks trees depth first, in name order. Directories are entered
// through openat2 one component at a time, so a directory swapped for a
// link mid-walk is refused by the kernel, and links are never entered.
type visitor struct {
	pre  func(*node) error // every entry, before a directory's contents
	post func(*node) error // directories, after their contents
	// fail decides what an entry that cannot be read or entered does to
	// the walk: nil aborts it with the error.
	fail func(rel string, err error) error
	// withTemps makes the walk meet uploads in progress too. Everything
	// else (listings, du, downloads, deletes) must not see them: they are
	// the helper's, not the user's files yet.
	withTemps bool
}

func (v *visitor) failed(rel string, err error) error {
	if v.fail == nil {
		return err
	}
	return v.fail(rel, err)
}

// visit walks name in dirfd, whose workspace-relative path is rel.
func (v *visitor) visit(dirfd int, name, rel string) error {
	if !v.withTemps && isTemp(name) {
		return nil
	}
	n := node{dirfd: dirfd, name: name, rel: rel}
	if err := unix.Fstatat(dirfd, name, &n.st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if err == unix.ENOENT {
			return nil // removed since the directory was read
		}
		return v.failed(rel, opErr("stat", rel, err))
	}
	if v.pre != nil {
		if err := v.pre(&n); err == errSkipDir {
			return nil
		} else if err != nil {
			return err
		}
	}
	if !n.isDir() {
		return nil
	}
	fd, err := openat2(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		if err == unix.ENOENT {
			return nil
		}
		return v.failed(rel, resolveErr("open directory", rel, err))
	}
	err = v.children(fd, rel)
	unix.Close(fd)
	if err != nil {
		return err
	}
	if v.post != nil {
		return v.post(&n)
	}
	return nil
}

// children walks the contents of the directory dirfd, whose path is rel
// ("" for the root).
func (v *visitor) children(dirfd int, rel string) error {
	names, err := readNames(dirfd)
	if err != nil {
		return v.failed(rel, opErr("read directory", rel, err))
	}
	slices.Sort(names)
	for _, name := range names {
		if err := v.visit(dirfd, name, joinRel(rel, name)); err != nil {
			return err
		}
	}
	return nil
}

// walk walks the whole workspace, root excluded.
func (w *FS) walk(v *visitor) error {
	fd, err := w.openDir("")
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return v.children(fd, "")
}

// walkPath walks rel and, if it is a directory, what it holds.
func (w *FS) walkPath(rel string, v *visitor) error {
	pfd, base, err := w.openParent(rel)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	return v.visit(pfd, base, rel)
}

// readNames lists a directory straight from a borrowed descriptor:
// wrapping it in an os.File would hand its lifetime to a finalizer.
func readNames(fd int) ([]string, error) {
	buf := make([]byte, 32<<10)
	var names []string
	for {
		n, err := unix.Getdents(fd, buf)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, err
		}
		if n <= 0 {
			return names, nil
		}
		_, _, names = unix.ParseDirent(buf[:n], -1, names)
	}
}
