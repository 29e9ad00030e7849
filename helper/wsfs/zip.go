package wsfs

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
)

// WriteZip streams to out a zip archive of the given paths, directories
// with everything beneath them, named relative to the workspace. Files are
// copied as they are read, never held in memory. Symbolic links and special
// files are left out: following a link could put in the archive what lies
// outside the workspace, and storing it as a link would plant it on the
// user's machine on extraction. Every path is checked before anything is
// written, so a bad request fails with an error rather than a truncated
// archive.
func (w *FS) WriteZip(out io.Writer, paths []string) error {
	rels := make([]string, 0, len(paths))
	for _, p := range paths {
		rel, err := cleanPath(p)
		if err != nil {
			return fmt.Errorf("zip: %w", err)
		}
		rels = append(rels, rel)
	}
	slices.Sort(rels)
	rels = outermost(rels)
	for _, rel := range rels {
		if _, err := w.lstat(rel); err != nil {
			return fmt.Errorf("zip: %w", err)
		}
	}
	zw := zip.NewWriter(out)
	v := &visitor{pre: func(n *node) error { return addToZip(zw, n) }}
	for _, rel := range rels {
		if err := w.walkPath(rel, v); err != nil {
			return fmt.Errorf("zip: %w", err)
		}
	}
	if err := zw.Close(); err != nil {
		return fmt.Errorf("zip: %w", err)
	}
	return nil
}

func addToZip(zw *zip.Writer, n *node) error {
	perm := fs.FileMode(n.st.Mode & 0o777)
	switch {
	case n.isDir():
		h := &zip.FileHeader{Name: n.rel + "/", Method: zip.Store, Modified: mtime(&n.st)}
		h.SetMode(fs.ModeDir | perm)
		if _, err := zw.CreateHeader(h); err != nil {
			return fmt.Errorf("add %q: %w", n.rel, err)
		}
		return nil
	case !isReg(&n.st):
		return nil
	}
	f, err := openReadAt(n.dirfd, n.name, false)
	if errors.Is(err, ErrNotFound) {
		return nil // removed since its directory was read
	}
	if err != nil {
		return fmt.Errorf("add %q: %w", n.rel, err)
	}
	defer f.Close()
	h := &zip.FileHeader{Name: n.rel, Method: zip.Deflate, Modified: mtime(&n.st)}
	h.SetMode(perm)
	zf, err := zw.CreateHeader(h)
	if err != nil {
		return fmt.Errorf("add %q: %w", n.rel, err)
	}
	if _, err := io.Copy(zf, f); err != nil {
		return fmt.Errorf("add %q: %w", n.rel, err)
	}
	return nil
}
