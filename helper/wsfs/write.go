package wsfs

import (
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// tempPrefix starts the names of uploads in progress.
const tempPrefix = ".reana-upload-"

// CreateTemp prepares an upload to rel: it makes the missing parent
// directories (mode 0700) and creates an empty temporary file (mode 0600)
// beside the target. commit renames it over the target, replacing a file or
// a symbolic link there (never what a link points to); abort removes it.
// Only the first of commit and abort has any effect; a failed commit
// removes the temporary file too. commit reports the size of the regular
// file it replaced (0 if none), so that quota accounting charges only the
// difference.
//
// The temporary file is held under an exclusive flock(2) for as long as
// any descriptor of it is open (the helper's, and the copy the daemon was
// handed), so CleanTemps can tell an upload in progress from one whose
// helper died.
func (w *FS) CreateTemp(rel string) (f *os.File, commit func() (replaced int64, err error), abort func(), err error) {
	rel, err = cleanPath(rel)
	if err != nil {
		return nil, nil, nil, err
	}
	dir, base := splitRel(rel)
	dfd, err := w.mkdirAll(dir)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("upload %q: %w", rel, err)
	}
	// Refuse now what the rename would refuse after the whole upload.
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, base, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil && isDir(&st) {
		unix.Close(dfd)
		return nil, nil, nil, fmt.Errorf("upload %q: %w: it is a directory", rel, ErrBadPath)
	}
	var tmp string
	fd := -1
	for range 16 {
		tmp = tempPrefix + rand.Text()
		fd, err = openat2(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, 0o600)
		if err != unix.EEXIST {
			break
		}
	}
	if err != nil {
		unix.Close(dfd)
		return nil, nil, nil, resolveErr("upload", rel, err)
	}
	if err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB); err != nil {
		_ = unix.Unlinkat(dfd, tmp, 0)
		unix.Close(fd)
		unix.Close(dfd)
		return nil, nil, nil, fmt.Errorf("upload %q: lock the temporary file: %w", rel, err)
	}

	done := false
	finish := func(keep bool) {
		if !keep {
			_ = unix.Unlinkat(dfd, tmp, 0)
		}
		unix.Close(dfd)
		done = true
	}
	commit = func() (int64, error) {
		if done {
			return 0, fmt.Errorf("commit upload %q: already committed or aborted", rel)
		}
		var old unix.Stat_t
		var replaced int64
		if unix.Fstatat(dfd, base, &old, unix.AT_SYMLINK_NOFOLLOW) == nil && isReg(&old) {
			replaced = old.Size
		}
		err := unix.Renameat(dfd, tmp, dfd, base)
		finish(err == nil)
		if err == unix.EISDIR {
			return 0, fmt.Errorf("upload %q: %w: it is a directory", rel, ErrBadPath)
		}
		if err != nil {
			return 0, opErr("commit upload", rel, err)
		}
		return replaced, nil
	}
	abort = func() {
		if !done {
			finish(false)
		}
	}
	return os.NewFile(uintptr(fd), rel), commit, abort, nil
}

// Move renames src to dst within the workspace. If dst is an existing
// directory (not a link to one), src moves into it, as reana-commons
// workspace.move does. Missing parents of the destination are made. Unlike
// REANA, an existing destination is never replaced: the error then matches
// os.ErrExist.
func (w *FS) Move(src, dst string) error {
	s, err := cleanPath(src)
	if err != nil {
		return fmt.Errorf("move: %w", err)
	}
	d, err := cleanPath(dst)
	if err != nil {
		return fmt.Errorf("move: %w", err)
	}
	if _, err := w.lstat(s); err != nil {
		return fmt.Errorf("move: %w", err)
	}
	if st, err := w.lstat(d); err == nil && isDir(&st) {
		d = joinRel(d, path.Base(s))
	}
	if d == s {
		return nil
	}
	if strings.HasPrefix(d, s+"/") {
		return fmt.Errorf("move %q to %q: %w: a directory cannot move inside itself", s, d, ErrBadPath)
	}
	sfd, sbase, err := w.openParent(s)
	if err != nil {
		return fmt.Errorf("move: %w", err)
	}
	defer unix.Close(sfd)
	ddir, dbase := splitRel(d)
	dfd, err := w.mkdirAll(ddir)
	if err != nil {
		return fmt.Errorf("move %q to %q: %w", s, d, err)
	}
	defer unix.Close(dfd)
	if err := renameNoReplace(sfd, sbase, dfd, dbase); err != nil {
		if err == unix.EEXIST || err == unix.ENOTEMPTY {
			return fmt.Errorf("move %q to %q: it already exists: %w", s, d, unix.EEXIST)
		}
		return opErr(fmt.Sprintf("move %q to", s), d, err)
	}
	return nil
}

// renameNoReplace is renameat2(RENAME_NOREPLACE), with a check-then-rename
// fallback for file systems without it (EINVAL), such as NFS.
func renameNoReplace(olddir int, oldname string, newdir int, newname string) error {
	err := unix.Renameat2(olddir, oldname, newdir, newname, unix.RENAME_NOREPLACE)
	if err != unix.EINVAL {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstatat(newdir, newname, &st, unix.AT_SYMLINK_NOFOLLOW); err == nil {
		return unix.EEXIST
	}
	return unix.Renameat(olddir, oldname, newdir, newname)
}

// Delete removes every file and directory matching pattern, as REANA's rm
// does, except that a matching directory goes with everything beneath it
// (REANA would leave the emptied directory, or fail on a non-empty one). A
// symbolic link is removed itself. deleted maps each removed path to its
// size, failed each path that could not be removed to why. A pattern
// matching nothing is not an error.
func (w *FS) Delete(pattern string) (deleted map[string]int64, failed map[string]string, err error) {
	matches, err := w.Glob(pattern)
	if err != nil {
		return nil, nil, fmt.Errorf("delete: %w", err)
	}
	deleted, failed = map[string]int64{}, map[string]string{}
	rm := remover{
		removed: func(n *node) { deleted[n.rel] = n.st.Size },
		failed: func(rel string, err error) error {
			failed[rel] = err.Error()
			return nil
		},
	}
	for _, rel := range outermost(matches) {
		if err := w.walkPath(rel, rm.visitor(nil)); err != nil {
			failed[rel] = err.Error()
		}
	}
	return deleted, failed, nil
}

// outermost drops from sorted paths those beneath another of them.
func outermost(paths []string) []string {
	set := make(map[string]bool, len(paths))
	for _, p := range paths {
		set[p] = true
	}
	var out []string
	for _, p := range paths {
		if !underMatch(p, func(d string) bool { return set[d] }) && (len(out) == 0 || out[len(out)-1] != p) {
			out = append(out, p)
		}
	}
	return out
}

// remover removes trees bottom up with unlinkat, never following links.
type remover struct {
	removed func(*node)                       // after each removal
	failed  func(rel string, err error) error // as visitor.fail
}

// visitor returns a walk that removes what it meets, except what keep (if
// not nil) says to keep, with the directories holding it.
func (r *remover) visitor(keep func(rel string) bool) *visitor {
	return &visitor{
		pre: func(n *node) error {
			if keep != nil && keep(n.rel) {
				return errSkipDir
			}
			if n.isDir() {
				// The owner may have made a directory unwritable; as the
				// owner we may undo that, and need to, to empty it.
				if perm := n.st.Mode & 0o7777; perm&0o700 != 0o700 {
					_ = unix.Fchmodat(n.dirfd, n.name, perm|0o700, 0)
				}
				return nil
			}
			return r.unlink(n, 0)
		},
		post: func(n *node) error {
			err := r.unlink(n, unix.AT_REMOVEDIR)
			if keep != nil && (errors.Is(err, unix.ENOTEMPTY) || errors.Is(err, unix.EEXIST)) {
				return nil // it holds something kept
			}
			return err
		},
		fail: r.failed,
	}
}

func (r *remover) unlink(n *node, flags int) error {
	err := unix.Unlinkat(n.dirfd, n.name, flags)
	switch {
	case err == nil:
		if r.removed != nil {
			r.removed(n)
		}
		return nil
	case err == unix.ENOENT:
		return nil
	}
	err = fmt.Errorf("remove %q: %w", n.rel, err)
	if r.failed != nil {
		return r.failed(n.rel, err)
	}
	return err
}

// Prune removes every file that is neither an input nor an output of the
// workflow, as reana-server's prune does: inputs and outputs are the
// specification's files and directories, kept with everything beneath
// them unless includeInputs or includeOutputs says to remove those too.
// Directories left empty are removed as well. It returns how many
// non-directories it removed.
func (w *FS) Prune(inputs, outputs []string, includeInputs, includeOutputs bool) (int, error) {
	var keep []string
	if !includeInputs {
		keep = append(keep, inputs...)
	}
	if !includeOutputs {
		keep = append(keep, outputs...)
	}
	kept := map[string]bool{}
	for _, k := range keep {
		if strings.TrimSpace(k) == "" {
			continue
		}
		parts, err := splitPath(k)
		if err != nil {
			continue // cannot name anything in the workspace
		}
		if len(parts) == 0 {
			return 0, nil // "." keeps the whole workspace
		}
		kept[strings.Join(parts, "/")] = true
	}
	isKept := func(rel string) bool {
		return kept[rel] || underMatch(rel, func(d string) bool { return kept[d] })
	}
	n := 0
	rm := remover{removed: func(nd *node) {
		if !nd.isDir() {
			n++
		}
	}}
	if err := w.walk(rm.visitor(isKept)); err != nil {
		return n, fmt.Errorf("prune: %w", err)
	}
	return n, nil
}

// RemoveAll removes everything in the workspace, then the workspace
// directory itself, provided the path still names the directory that was
// opened.
func (w *FS) RemoveAll() error {
	parent, base := filepath.Dir(w.dir), filepath.Base(w.dir)
	if parent == w.dir {
		return fmt.Errorf("remove workspace %s: %w: it is the file system root", w.dir, ErrBadPath)
	}
	var rm remover
	v := rm.visitor(nil)
	v.withTemps = true // the workspace goes, and everything in it
	if err := w.walk(v); err != nil {
		return fmt.Errorf("remove workspace %s: %w", w.dir, err)
	}
	pfd, err := openRetry(parent, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return fmt.Errorf("remove workspace %s: %w", w.dir, err)
	}
	defer unix.Close(pfd)
	var opened, named unix.Stat_t
	if err := unix.Fstat(w.fd, &opened); err != nil {
		return fmt.Errorf("remove workspace %s: %w", w.dir, err)
	}
	if err := unix.Fstatat(pfd, base, &named, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return opErr("remove workspace", w.dir, err)
	}
	if opened.Dev != named.Dev || opened.Ino != named.Ino {
		return fmt.Errorf("remove workspace %s: the path no longer names the opened directory", w.dir)
	}
	if err := unix.Unlinkat(pfd, base, unix.AT_REMOVEDIR); err != nil {
		return opErr("remove workspace", w.dir, err)
	}
	return nil
}
