// Package privsep narrows the daemon's power to what it needs: starting
// processes as other users. Started as root, the daemon re-executes itself
// with a capability bounding set of only CAP_SETUID and CAP_SETGID, so the
// serving process is uid 0 with no power over anybody's files
// (no CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER, CAP_CHOWN). A
// 0700 workspace owned by alice is unreadable to it; only a process running
// as alice can open it.
//
// Staying uid 0 (rather than switching to a service account with ambient
// capabilities) is deliberate: when a uid-0 process changes all its uids to
// a non-zero uid, the kernel clears every capability from the permitted,
// effective and ambient sets (capabilities(7), "Effect of user ID changes on
// capabilities"). Each per-user child therefore starts with no capabilities
// at all, without relying on our own code to drop them, and the reduced
// bounding set means no descendant can ever regain more than these two.
package privsep

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Kept is the capability mask the serving daemon keeps.
const Kept uint64 = 1<<unix.CAP_SETUID | 1<<unix.CAP_SETGID

// markerEnv tells the re-executed daemon that the bounding set was already
// narrowed, so it never loops.
const markerEnv = "REANA_SITE_PRIVSEP"

// Caps are the capability sets of a process, as in /proc/PID/status.
type Caps struct {
	Effective, Permitted, Inheritable, Bounding, Ambient uint64
}

// ReadCaps reads the capability sets of a process (pid 0 means self).
func ReadCaps(pid int) (Caps, error) {
	path := "/proc/self/status"
	if pid != 0 {
		path = "/proc/" + strconv.Itoa(pid) + "/status"
	}
	f, err := os.Open(path)
	if err != nil {
		return Caps{}, fmt.Errorf("read capabilities: %w", err)
	}
	defer f.Close()
	return parseCaps(f)
}

// parseCaps reads the Cap* lines of a /proc/PID/status; a set the kernel
// does not report (CapAmb before Linux 4.3) stays empty.
func parseCaps(r io.Reader) (Caps, error) {
	var c Caps
	fields := map[string]*uint64{"CapEff:": &c.Effective, "CapPrm:": &c.Permitted, "CapInh:": &c.Inheritable, "CapBnd:": &c.Bounding, "CapAmb:": &c.Ambient}
	s := bufio.NewScanner(r)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), "\t")
		if p, known := fields[k]; ok && known {
			var err error
			if *p, err = strconv.ParseUint(strings.TrimSpace(v), 16, 64); err != nil {
				return Caps{}, fmt.Errorf("parse %s %q: %w", k, v, err)
			}
		}
	}
	return c, s.Err()
}

// NeedsReexec reports whether this process runs as root with more
// capabilities than it should keep.
func NeedsReexec() bool {
	if os.Geteuid() != 0 {
		return false
	}
	c, err := ReadCaps(0)
	return err != nil || c.Permitted&^Kept != 0 || c.Bounding&^Kept != 0
}

// Reexec replaces the current process image with itself (same pid, so
// systemd's MAINPID and any LISTEN_PID stay valid), after narrowing the
// capability bounding set of the calling thread to Kept. Inherited file
// descriptors without close-on-exec (listeners) survive. It returns only on
// error.
//
// The bounding set is per thread; execve takes the calling thread's, which
// is why the goroutine is locked to its thread before it is narrowed.
func Reexec(args []string) error {
	if os.Getenv(markerEnv) != "" {
		return errors.New("privsep: re-executed daemon still holds more than CAP_SETUID and CAP_SETGID; refusing to run")
	}
	runtime.LockOSThread()
	last, err := lastCap()
	if err != nil {
		return err
	}
	for c := 0; c <= last; c++ {
		if Kept&(1<<uint(c)) != 0 {
			continue
		}
		if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("privsep: drop capability %d from the bounding set: %w", c, err)
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return fmt.Errorf("privsep: find own executable: %w", err)
	}
	env := append(os.Environ(), markerEnv+"=1")
	return fmt.Errorf("privsep: re-execute %s: %w", exe, syscall.Exec("/proc/self/exe", args, env))
}

// Verify checks, in the re-executed daemon, that the narrowing worked.
func Verify() error {
	if os.Geteuid() != 0 {
		return nil
	}
	c, err := ReadCaps(0)
	if err != nil {
		return err
	}
	if c.Effective&^Kept != 0 || c.Permitted&^Kept != 0 || c.Bounding&^Kept != 0 || c.Ambient != 0 {
		return fmt.Errorf("privsep: capabilities not narrowed: eff=%x prm=%x bnd=%x amb=%x", c.Effective, c.Permitted, c.Bounding, c.Ambient)
	}
	return nil
}

// CanSwitchUser reports whether this process can start processes as other
// users.
func CanSwitchUser() bool {
	c, err := ReadCaps(0)
	return err == nil && c.Effective&Kept == Kept
}

func lastCap() (int, error) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 0, fmt.Errorf("privsep: %w", err)
	}
	return strconv.Atoi(strings.TrimSpace(string(b)))
}
