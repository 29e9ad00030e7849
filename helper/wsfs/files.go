package wsfs

import (
	"errors"
	"fmt"
	"sort"

	"golang.org/x/sys/unix"
)

// Files lists the names of the regular files directly in the directory
// rel ("" for the root), leaving out uploads in progress and anything
// else (links, directories, FIFOs). A missing directory has none.
func (w *FS) Files(rel string) ([]string, error) {
	fd, err := w.openDir(rel)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	names, err := readNames(fd)
	if err != nil {
		return nil, fmt.Errorf("list %q: %w", rel, err)
	}
	var out []string
	for _, n := range names {
		var st unix.Stat_t
		if n == "." || n == ".." || isTemp(n) || unix.Fstatat(fd, n, &st, unix.AT_SYMLINK_NOFOLLOW) != nil || !isReg(&st) {
			continue
		}
		out = append(out, n)
	}
	sort.Strings(out)
	return out, nil
}

// Exists reports whether rel names an entry; a link counts, unfollowed.
func (w *FS) Exists(rel string) (bool, error) {
	rel, err := cleanPath(rel)
	if err != nil {
		return false, err
	}
	_, err = w.lstat(rel)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	return err == nil, err
}

// RemoveFile unlinks rel itself (a link is removed, never followed); it
// must not be a directory.
func (w *FS) RemoveFile(rel string) error {
	rel, err := cleanPath(rel)
	if err != nil {
		return err
	}
	pfd, base, err := w.openParent(rel)
	if err != nil {
		return err
	}
	defer unix.Close(pfd)
	if err := unix.Unlinkat(pfd, base, 0); err != nil {
		return opErr("remove", rel, err)
	}
	return nil
}

// MakePrivate gives the root directory mode 0700 if anyone but its owner
// has any access to it (a secret directory the user made by hand).
func (w *FS) MakePrivate() error {
	var st unix.Stat_t
	if err := unix.Fstat(w.fd, &st); err != nil {
		return fmt.Errorf("stat %s: %w", w.dir, err)
	}
	if st.Mode&0o077 == 0 {
		return nil
	}
	if err := unix.Fchmod(w.fd, dirMode); err != nil {
		return fmt.Errorf("make %s private: %w", w.dir, err)
	}
	return nil
}
