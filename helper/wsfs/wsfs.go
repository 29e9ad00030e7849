// Package wsfs performs the file operations on one workflow workspace.
//
// It runs in the worker process, which already has the workspace owner's
// uid, gid and groups, so the kernel's permission checks are the user's.
// What it adds is containment: jobs write whatever they like into a
// workspace, symbolic links included, and a request naming a path must
// never reach outside it. Every path below the workspace root is therefore
// resolved with openat2(2) relative to the root's descriptor, with
// RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_MAGICLINKS, and entries
// found while walking are opened one component at a time the same way. A
// symbolic link in a workspace is an entry like any other: it is listed,
// deleted or moved itself, and never followed.
package wsfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

var (
	// ErrBadPath reports a path or pattern that is malformed: a NUL byte, a
	// backslash, a ".." component, or nothing left once cleaned.
	ErrBadPath = errors.New("invalid workspace path")
	// ErrEscape reports a path the kernel refused to resolve because it
	// crosses a symbolic link or would leave the workspace.
	ErrEscape = errors.New("path crosses a symbolic link or leaves the workspace")
	// ErrNotFound reports a missing workspace, file or directory. It also
	// matches fs.ErrNotExist.
	ErrNotFound error = notFound{}
)

// notFound is ErrNotFound's type, so that code which only knows the os
// package's errors still recognises a missing path.
type notFound struct{}

func (notFound) Error() string        { return "no such file or directory" }
func (notFound) Is(target error) bool { return target == fs.ErrNotExist }

// Entry is one file or directory of a listing or a disk usage report.
// Name is relative to the workspace root, without a leading slash; the
// root itself is ".".
type Entry struct {
	Name    string
	Size    int64
	ModTime time.Time
	IsDir   bool
}

// FS is an open workspace. Its methods may be called concurrently (each
// opens its own descriptors beneath the root), but not with Close.
type FS struct {
	fd  int
	dir string
}

// resolve is how every path beneath a workspace root is looked up.
const resolve = unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS

// dirMode is the mode of every directory this package creates: workspaces
// hold unpublished analysis data.
const dirMode = 0o700

// Create makes the workspace directory dir (an absolute path) with mode
// 0700, and its missing parents with the same mode. The directories it
// creates are opened without following symbolic links, so a link planted
// where one of them should be is refused rather than written through. An
// existing dir is fine if it is a directory owned by the caller.
func Create(dir string) error {
	if !filepath.IsAbs(dir) || strings.IndexByte(dir, 0) >= 0 {
		return fmt.Errorf("create %q: %w: it must be an absolute path", dir, ErrBadPath)
	}
	dir = filepath.Clean(dir)
	// Components that already exist are followed as usual: sites put
	// workspaces under paths like /scratch that are often links.
	existing, missing := dir, []string(nil)
	for {
		_, err := os.Lstat(existing)
		if err == nil {
			break
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("create %s: %w", dir, err)
		}
		missing = append(missing, filepath.Base(existing))
		existing = filepath.Dir(existing)
	}
	flags := unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC
	if len(missing) == 0 {
		flags |= unix.O_NOFOLLOW // the workspace itself must not be a link
	}
	fd, err := openRetry(existing, flags)
	if err != nil {
		return resolveErr("create", dir, err)
	}
	for i := len(missing) - 1; i >= 0; i-- {
		nfd, err := mkdirAt(fd, missing[i])
		unix.Close(fd)
		if err != nil {
			return resolveErr("create", dir, err)
		}
		fd = nfd
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	if uid := os.Geteuid(); int(st.Uid) != uid {
		return fmt.Errorf("create %s: it is owned by uid %d, not by uid %d: %w", dir, st.Uid, uid, fs.ErrPermission)
	}
	return nil
}

// Open opens the workspace directory dir. The directory itself must not be
// a symbolic link.
func Open(dir string) (*FS, error) {
	if dir == "" || strings.IndexByte(dir, 0) >= 0 {
		return nil, fmt.Errorf("open workspace %q: %w", dir, ErrBadPath)
	}
	fd, err := openRetry(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC)
	if err != nil {
		return nil, resolveErr("open workspace", dir, err)
	}
	return &FS{fd: fd, dir: filepath.Clean(dir)}, nil
}

// Close releases the workspace directory.
func (w *FS) Close() error {
	if w.fd < 0 {
		return nil
	}
	err := unix.Close(w.fd)
	w.fd = -1
	if err != nil {
		return fmt.Errorf("close workspace %s: %w", w.dir, err)
	}
	return nil
}

// splitPath validates a workspace-relative path or pattern as reana-client
// sends it and returns its components, with empty and "." ones dropped (so
// a leading "/" means the workspace root). The HTTP layer has already
// decoded percent escapes, so what is checked here is what the kernel sees.
func splitPath(p string) ([]string, error) {
	if strings.IndexByte(p, 0) >= 0 {
		return nil, fmt.Errorf("%q: %w: it contains a NUL byte", p, ErrBadPath)
	}
	if strings.ContainsRune(p, '\\') {
		return nil, fmt.Errorf("%q: %w: it contains a backslash", p, ErrBadPath)
	}
	var parts []string
	for _, c := range strings.Split(p, "/") {
		switch c {
		case "", ".":
			continue
		case "..":
			return nil, fmt.Errorf("%q: %w: it contains a '..' component", p, ErrBadPath)
		}
		parts = append(parts, c)
	}
	return parts, nil
}

// cleanPath is splitPath for a path that must name something inside the
// workspace, not the root itself.
func cleanPath(p string) (string, error) {
	parts, err := splitPath(p)
	if err != nil {
		return "", err
	}
	if len(parts) == 0 {
		return "", fmt.Errorf("%q: %w: it names no file in the workspace", p, ErrBadPath)
	}
	return strings.Join(parts, "/"), nil
}

// splitRel returns the parent directory ("" for the root) and last
// component of a cleaned path.
func splitRel(rel string) (dir, base string) {
	dir, base = path.Split(rel)
	return strings.TrimSuffix(dir, "/"), base
}

// joinRel joins a cleaned directory path ("" for the root) and a name.
func joinRel(dir, name string) string {
	if dir == "" {
		return name
	}
	return dir + "/" + name
}

// openat2 opens p beneath dirfd, never following a symbolic link. It
// retries EAGAIN, which the kernel returns when a concurrent rename makes
// a RESOLVE_BENEATH lookup unsafe to complete. O_NOFOLLOW is left out on
// purpose: RESOLVE_NO_SYMLINKS already refuses a trailing link, with ELOOP,
// where O_NOFOLLOW|O_DIRECTORY would turn that into ENOTDIR.
func openat2(dirfd int, p string, flags int, mode uint32) (int, error) {
	how := unix.OpenHow{
		Flags:   uint64(flags | unix.O_CLOEXEC),
		Mode:    uint64(mode),
		Resolve: resolve,
	}
	for i := 0; ; i++ {
		fd, err := unix.Openat2(dirfd, p, &how)
		if (err == unix.EINTR || err == unix.EAGAIN) && i < 64 {
			continue
		}
		return fd, err
	}
}

// openRetry opens p as open(2) does. With O_NOFOLLOW|O_DIRECTORY the
// kernel reports a trailing link as ENOTDIR; that is turned back into
// ELOOP so that callers see ErrEscape, as for links beneath the root.
func openRetry(p string, flags int) (int, error) {
	for {
		fd, err := unix.Open(p, flags, 0)
		if err == unix.EINTR {
			continue
		}
		if err == unix.ENOTDIR && flags&unix.O_NOFOLLOW != 0 {
			if fi, lerr := os.Lstat(p); lerr == nil && fi.Mode()&fs.ModeSymlink != 0 {
				err = unix.ELOOP
			}
		}
		return fd, err
	}
}

// openDir opens the directory rel ("" for the root) beneath the root.
func (w *FS) openDir(rel string) (int, error) {
	if rel == "" {
		rel = "."
	}
	fd, err := openat2(w.fd, rel, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return -1, resolveErr("open directory", rel, err)
	}
	return fd, nil
}

// openParent opens the directory holding rel and returns it with rel's
// last component.
func (w *FS) openParent(rel string) (int, string, error) {
	dir, base := splitRel(rel)
	fd, err := w.openDir(dir)
	return fd, base, err
}

// lstat describes rel itself, a link included.
func (w *FS) lstat(rel string) (unix.Stat_t, error) {
	var st unix.Stat_t
	pfd, base, err := w.openParent(rel)
	if err != nil {
		return st, err
	}
	defer unix.Close(pfd)
	if err := unix.Fstatat(pfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return st, resolveErr("stat", rel, err)
	}
	return st, nil
}

// mkdirAt makes (if missing) and opens the directory name in dirfd. What it
// creates gets mode 0700 whatever the umask.
func mkdirAt(dirfd int, name string) (int, error) {
	err := unix.Mkdirat(dirfd, name, dirMode)
	created := err == nil
	if err != nil && err != unix.EEXIST {
		return -1, err
	}
	fd, err := openat2(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		return -1, err
	}
	if created {
		if err := unix.Fchmod(fd, dirMode); err != nil {
			unix.Close(fd)
			return -1, err
		}
	}
	return fd, nil
}

// mkdirAll makes the directory rel ("" for the root) and its missing
// parents beneath the root, and opens it.
func (w *FS) mkdirAll(rel string) (int, error) {
	fd, err := w.openDir("")
	if err != nil {
		return -1, err
	}
	if rel == "" {
		return fd, nil
	}
	for _, name := range strings.Split(rel, "/") {
		nfd, err := mkdirAt(fd, name)
		unix.Close(fd)
		if err != nil {
			return -1, resolveErr("make directory", rel, err)
		}
		fd = nfd
	}
	return fd, nil
}

// resolveErr wraps an error from looking up what, translating the errnos
// callers act on into this package's errors. ELOOP and EXDEV come from
// RESOLVE_NO_SYMLINKS/O_NOFOLLOW and RESOLVE_BENEATH.
func resolveErr(op, what string, err error) error {
	switch {
	case errors.Is(err, unix.ELOOP), errors.Is(err, unix.EXDEV):
		return fmt.Errorf("%s %q: %w", op, what, ErrEscape)
	}
	return opErr(op, what, err)
}

// opErr wraps an error from an operation on what. A missing component, or
// a file where a directory should be, means the path does not exist.
func opErr(op, what string, err error) error {
	switch {
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("%s %q: %w", op, what, ErrNotFound)
	case errors.Is(err, unix.ENOTDIR):
		return fmt.Errorf("%s %q: %w (not a directory)", op, what, ErrNotFound)
	case errors.Is(err, unix.ENAMETOOLONG):
		return fmt.Errorf("%s: %w: a name in it is too long", shorten(what), ErrBadPath)
	}
	return fmt.Errorf("%s %q: %w", op, what, err)
}

func isDir(st *unix.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFDIR }
func isReg(st *unix.Stat_t) bool { return st.Mode&unix.S_IFMT == unix.S_IFREG }

func mtime(st *unix.Stat_t) time.Time { return time.Unix(st.Mtim.Unix()) }

// shorten keeps an over-long name readable in a message.
func shorten(s string) string {
	if len(s) <= 80 {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q...", s[:77])
}
