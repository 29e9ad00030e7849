package helper

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/reana-site/reana-site/asuser"
)

// claimFile marks a job directory whose step was started or submitted:
// creating it with O_EXCL is what makes a second start of the same job a
// no-op.
const claimFile = "started"

// openJobFile opens a file of a job directory for reading without
// following a link and without blocking on a FIFO a step may have put
// there; only regular files are read.
func openJobFile(path string) (*os.File, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	return f, nil
}

// readJobFile reads a small file of a job directory (pid, exit status).
func readJobFile(path string) ([]byte, error) {
	f, err := openJobFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 4096))
}

// readPID reads the pid the job script recorded for itself.
func readPID(jobDir string) (int, error) {
	b, err := readJobFile(filepath.Join(jobDir, asuser.PIDFile))
	if err != nil {
		return 0, err
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}

// readExit reads the exit status the job script recorded; ok is false
// while the script has not finished.
func readExit(jobDir string) (code int, ok bool, err error) {
	b, err := readJobFile(filepath.Join(jobDir, asuser.ExitFile))
	if errors.Is(err, os.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	code, err = strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, false, fmt.Errorf("malformed exit-status file: %q", string(b))
	}
	return code, true, nil
}

// writeFileAtomic writes a job file under a temporary name and renames it,
// so a reader never sees it half written.
func writeFileAtomic(path string, data []byte, perm os.FileMode) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, perm); err != nil {
		return fmt.Errorf("write %s: %w", filepath.Base(path), err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("rename %s: %w", filepath.Base(path), err)
	}
	return nil
}

// dropJobSecrets removes the copies of the user's secrets a job script
// made in its job directory ($REANA_SECRETS_DIR), for a script that was
// killed before its own cleanup ran. Only call it once the script is dead.
func dropJobSecrets(jobDir string) {
	_ = os.RemoveAll(filepath.Join(jobDir, asuser.SecretsJobDir))
}
