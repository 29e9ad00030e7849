package wsfs

import (
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// ErrUnsafe reports a directory on the way to a workspace that someone
// other than the user could change: owned by another user, or writable by
// others without the sticky bit. Through such a directory another user
// could swap the workspace (or the job directory holding a step's script)
// for one of their own between two operations.
var ErrUnsafe = errors.New("unsafe directory")

// The chain of directories from a trusted prefix (asuser.TrustedPrefix)
// down to a workspace.
//
// Above the prefix is the site's layout (/scratch may be a link, /home an
// automount): it is followed as open(2) does. From the prefix down, each
// component is opened relative to its parent's descriptor without
// following links, and checked before the next is opened: it must be owned
// by the user or root, and not writable by anyone else unless sticky. The
// last (the workspace or job directory itself) must be the user's own.
// Nobody but the user and root can then change what the path means, so
// later lookups by path (a job script's cd) find the same directory.

// walk opens dir through its chain from trusted, making missing
// directories (mode 0700) when create is set, and returns the last one's
// descriptor.
func walk(dir, trusted string, create bool) (int, error) {
	if !filepath.IsAbs(dir) || strings.IndexByte(dir, 0) >= 0 {
		return -1, fmt.Errorf("%q: %w: it must be an absolute path", dir, ErrBadPath)
	}
	dir, trusted = filepath.Clean(dir), filepath.Clean(trusted)
	rel, err := filepath.Rel(trusted, dir)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return -1, fmt.Errorf("%s: %w: it is not below the workspace root %s", dir, ErrBadPath, trusted)
	}
	fd, err := openRetry(trusted, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return -1, resolveErr("open", trusted, err)
	}
	if rel == "." {
		if err := checkDir(fd, dir, true); err != nil {
			unix.Close(fd)
			return -1, err
		}
		return fd, nil
	}
	names := strings.Split(rel, "/")
	at := trusted
	for i, name := range names {
		at = filepath.Join(at, name)
		var nfd int
		if create {
			nfd, err = mkdirAt(fd, name)
		} else {
			nfd, err = openat2(fd, name, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		}
		unix.Close(fd)
		if err != nil {
			return -1, resolveErr("open", at, err)
		}
		fd = nfd
		if err := checkDir(fd, at, i == len(names)-1); err != nil {
			unix.Close(fd)
			return -1, err
		}
	}
	return fd, nil
}

// checkDir applies the chain's rule to one directory.
func checkDir(fd int, path string, last bool) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fmt.Errorf("stat %s: %w", path, err)
	}
	uid := uint32(os.Geteuid())
	switch {
	case last && st.Uid != uid:
		return fmt.Errorf("%s is owned by uid %d, not by uid %d: %w", path, st.Uid, uid, ErrUnsafe)
	case st.Uid != uid && st.Uid != 0:
		return fmt.Errorf("%s is owned by uid %d, neither by uid %d nor by root, so its owner could replace what is inside: %w", path, st.Uid, uid, ErrUnsafe)
	case last || st.Mode&unix.S_ISVTX != 0:
		return nil
	case st.Mode&0o002 != 0 || st.Mode&0o020 != 0 && !privateGroup(st.Gid):
		return fmt.Errorf("%s is writable by others (mode %04o) without the sticky bit, so they could replace what is inside: %w", path, st.Mode&0o7777, ErrUnsafe)
	}
	return nil
}

// privateGroup reports whether gid is the user's own group in the
// user-private-group scheme (EL's default, with umask 002): the primary
// group, named as the user. Group write there gives nobody else a way in.
func privateGroup(gid uint32) bool {
	if int(gid) != os.Getegid() {
		return false
	}
	g, err := user.LookupGroupId(strconv.FormatUint(uint64(gid), 10))
	if err != nil {
		return false
	}
	u, err := user.LookupId(strconv.Itoa(os.Geteuid()))
	return err == nil && g.Name == u.Username
}

// CreateBelow makes the workspace (or job) directory dir and its missing
// parents below trusted, mode 0700, checking the chain (see walk). An
// existing dir is fine if the chain holds.
func CreateBelow(dir, trusted string) error {
	fd, err := walk(dir, trusted, true)
	if err != nil {
		return fmt.Errorf("create %s: %w", dir, err)
	}
	unix.Close(fd)
	return nil
}

// OpenBelow opens the workspace dir through its chain from trusted: the
// descriptor held is the directory that was checked.
func OpenBelow(dir, trusted string) (*FS, error) {
	fd, err := walk(dir, trusted, false)
	if err != nil {
		return nil, fmt.Errorf("open workspace: %w", err)
	}
	return &FS{fd: fd, dir: filepath.Clean(dir)}, nil
}
