package wsfs

import (
	"errors"
	"fmt"
	"os"
	"path"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// OpenRead opens the file or directory rel for reading.
func (w *FS) OpenRead(rel string) (*os.File, os.FileInfo, error) {
	rel, err := cleanPath(rel)
	if err != nil {
		return nil, nil, err
	}
	if _, base := splitRel(rel); isTemp(base) {
		return nil, nil, fmt.Errorf("open %q: %w", rel, ErrNotFound) // an upload in progress
	}
	f, err := openReadAt(w.fd, rel, true)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("stat %q: %w", rel, err)
	}
	return f, fi, nil
}

// openReadAt opens p beneath dirfd for reading. It must be a regular file
// (or a directory, if allowed): O_NONBLOCK keeps a FIFO left by a job from
// blocking the open, and such files are then refused.
func openReadAt(dirfd int, p string, allowDir bool) (*os.File, error) {
	fd, err := openat2(dirfd, p, unix.O_RDONLY|unix.O_NONBLOCK, 0)
	if errors.Is(err, unix.ENXIO) {
		// What a socket (or a device without a driver) answers to open.
		return nil, fmt.Errorf("open %q: %w: not a regular file", p, ErrBadPath)
	}
	if err != nil {
		return nil, resolveErr("open", p, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("stat %q: %w", p, err)
	}
	if !isReg(&st) && !(allowDir && isDir(&st)) {
		unix.Close(fd)
		return nil, fmt.Errorf("open %q: %w: not a regular file", p, ErrBadPath)
	}
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("open %q: %w", p, err)
	}
	return os.NewFile(uintptr(fd), p), nil
}

// List lists the workspace as reana-workflow-controller 0.9 does for `ls`:
//   - without a pattern, every file beneath the root, directories left out;
//   - with a pattern naming a directory, everything beneath it, directories
//     included;
//   - with any other pattern, every file and directory matching it.
//
// Symbolic links are listed as files with their own (lstat) size, never
// followed. search is REANA's --filter: each of "name", "size" and
// "last-modified" (as 2006-01-02T15:04:05, local time) must contain every
// value given for it, ignoring case. Entries are sorted by name.
func (w *FS) List(pattern string, search map[string][]string) ([]Entry, error) {
	keep, err := listFilter(search)
	if err != nil {
		return nil, err
	}
	var out []Entry
	add := func(n *node) {
		if e := n.entry(); keep(e) {
			out = append(out, e)
		}
	}
	parts, err := splitPath(pattern)
	if err != nil {
		return nil, err
	}
	if len(parts) == 0 {
		err = w.walk(&visitor{pre: func(n *node) error {
			if !n.isDir() {
				add(n)
			}
			return nil
		}})
	} else {
		err = w.matchEach(strings.Join(parts, "/"), true, add)
	}
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Glob returns the workspace-relative paths of the files and directories
// matching pattern, sorted.
func (w *FS) Glob(pattern string) ([]string, error) {
	rel, err := cleanPath(pattern)
	if err != nil {
		return nil, err
	}
	var out []string
	if err := w.matchEach(rel, false, func(n *node) { out = append(out, n.rel) }); err != nil {
		return nil, err
	}
	slices.Sort(out)
	return out, nil
}

// matchEach calls fn for every entry matching the cleaned pattern pat.
// A plain path is looked up directly rather than by walking the whole
// workspace; with intoDir, a plain path naming a directory stands for
// everything beneath it, as reana-commons' glob_or_walk_directory does.
func (w *FS) matchEach(pat string, intoDir bool, fn func(*node)) error {
	if !hasMeta(pat) {
		err := w.walkPath(pat, &visitor{pre: func(n *node) error {
			switch {
			case !intoDir || !n.isDir():
				fn(n)
				return errSkipDir
			case n.rel != pat:
				fn(n)
			}
			return nil
		}})
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	}
	if intoDir {
		// A directory may well have a name with "[" or "?" in it.
		if st, err := w.lstat(pat); err == nil && isDir(&st) {
			return w.walkPath(pat, &visitor{pre: func(n *node) error {
				if n.rel != pat {
					fn(n)
				}
				return nil
			}})
		}
	}
	p, err := compilePattern(pat)
	if err != nil {
		return err
	}
	return w.walk(&visitor{pre: func(n *node) error {
		if p.match(n.rel) {
			fn(n)
		}
		return nil
	}})
}

// listFilter compiles REANA's ls --filter (reana-workflow-controller
// list_files_filter): every value of every field must be a substring of
// the entry's field, ignoring case.
func listFilter(search map[string][]string) (func(Entry) bool, error) {
	for field := range search {
		switch field {
		case "name", "size", "last-modified":
		default:
			return nil, fmt.Errorf("filter %q: %w: unknown field (use name, size or last-modified)", field, ErrBadPath)
		}
	}
	return func(e Entry) bool {
		fields := map[string]string{
			"name":          e.Name,
			"size":          strconv.FormatInt(e.Size, 10),
			"last-modified": e.ModTime.Local().Format("2006-01-02T15:04:05"),
		}
		for field, values := range search {
			for _, v := range values {
				if !strings.Contains(strings.ToLower(fields[field]), strings.ToLower(v)) {
					return false
				}
			}
		}
		return true
	}, nil
}

// DiskUsage reports allocated bytes (st_blocks*512, hard links counted
// once) as reana-commons get_disk_usage does with `du --block-size=1`.
// With summarize it returns one entry, ".", for the whole workspace;
// otherwise, like `du -a`, one entry per file and directory, the root "."
// included, directories counting everything beneath them.
//
// search may hold "name", glob patterns (as for Glob): an entry is kept if
// it, or a directory holding it, matches one; with summarize, each
// outermost match is reported with its total instead of ".". It may also
// hold "size": the entry's size, in bytes, must equal one of the values.
func (w *FS) DiskUsage(summarize bool, search map[string][]string) ([]Entry, error) {
	var names []pattern
	for field, values := range search {
		switch field {
		case "name":
			for _, v := range values {
				p, err := compilePattern(v)
				if err != nil {
					return nil, err
				}
				names = append(names, p)
			}
		case "size":
		default:
			return nil, fmt.Errorf("filter %q: %w: unknown field (use name or size)", field, ErrBadPath)
		}
	}
	nameFiltered := len(search["name"]) > 0
	sizeOK := func(e Entry) bool {
		sizes := search["size"]
		return len(sizes) == 0 || slices.Contains(sizes, strconv.FormatInt(e.Size, 10))
	}
	matches := func(rel string) bool {
		return slices.ContainsFunc(names, func(p pattern) bool { return p.match(rel) })
	}

	entries, err := w.usage()
	if err != nil {
		return nil, err
	}
	var out []Entry
	switch {
	case summarize && !nameFiltered:
		out = entries[:1]
	case summarize:
		for _, e := range entries[1:] {
			if matches(e.Name) && !underMatch(e.Name, matches) {
				out = append(out, e)
			}
		}
	case !nameFiltered:
		out = entries
	default:
		for _, e := range entries[1:] {
			if matches(e.Name) || underMatch(e.Name, matches) {
				out = append(out, e)
			}
		}
	}
	return slices.DeleteFunc(slices.Clone(out), func(e Entry) bool { return !sizeOK(e) }), nil
}

// underMatch reports whether a directory holding rel matches.
func underMatch(rel string, matches func(string) bool) bool {
	for d := path.Dir(rel); d != "."; d = path.Dir(d) {
		if matches(d) {
			return true
		}
	}
	return false
}

// usage returns every entry of the workspace with its allocated size,
// directories summed, root first and the rest sorted by name.
func (w *FS) usage() ([]Entry, error) {
	var root unix.Stat_t
	if err := unix.Fstat(w.fd, &root); err != nil {
		return nil, fmt.Errorf("stat workspace %s: %w", w.dir, err)
	}
	seen := map[[2]uint64]bool{}
	alloc := func(st *unix.Stat_t) int64 {
		if st.Nlink > 1 && !isDir(st) {
			key := [2]uint64{st.Dev, st.Ino}
			if seen[key] {
				return 0
			}
			seen[key] = true
		}
		return st.Blocks * 512
	}
	entries := []Entry{{Name: ".", Size: alloc(&root), ModTime: mtime(&root), IsDir: true}}
	err := w.walk(&visitor{pre: func(n *node) error {
		entries = append(entries, Entry{Name: n.rel, Size: alloc(&n.st), ModTime: mtime(&n.st), IsDir: n.isDir()})
		return nil
	}})
	if err != nil {
		return nil, err
	}
	index := make(map[string]int, len(entries))
	own := make([]int64, len(entries))
	for i, e := range entries {
		index[e.Name] = i
		own[i] = e.Size
	}
	for i := 1; i < len(entries); i++ {
		for d := path.Dir(entries[i].Name); ; d = path.Dir(d) {
			entries[index[d]].Size += own[i]
			if d == "." {
				break
			}
		}
	}
	slices.SortFunc(entries[1:], func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return entries, nil
}
