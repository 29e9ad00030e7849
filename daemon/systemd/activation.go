package systemd

import (
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	"github.com/coreos/go-systemd/v22/activation"
	"golang.org/x/sys/unix"
)

// Names of the sockets reana-site.socket and reana-site-token.socket pass
// (FileDescriptorName=).
const (
	HTTPSName = "https"
	TokenName = "token"
)

// firstFD is SD_LISTEN_FDS_START.
const firstFD = 3

// passed is one descriptor of socket activation, not yet taken.
type passed struct {
	fd   int
	name string
}

// inherited reads LISTEN_PID, LISTEN_FDS and LISTEN_FDNAMES without
// touching the descriptors or the environment. Descriptors meant for
// another process (LISTEN_PID is not ours) are not ours to use.
func inherited() []passed {
	pid, err := strconv.Atoi(os.Getenv("LISTEN_PID"))
	if err != nil || pid != os.Getpid() {
		return nil
	}
	n, err := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	if err != nil || n <= 0 {
		return nil
	}
	names := strings.Split(os.Getenv("LISTEN_FDNAMES"), ":")
	p := make([]passed, n)
	for i := range p {
		p[i].fd = firstFD + i
		if i < len(names) {
			p[i].name = names[i]
		}
	}
	return p
}

// httpsIndex picks the HTTPS listener among the passed sockets: the one
// named "https", or else the first TCP listener not named for another use
// (systemd-socket-activate without --fdname, or a site's own socket unit
// that names none). It returns -1 when there is none.
func httpsIndex(p []passed) int {
	for i, s := range p {
		if s.name == HTTPSName {
			return i
		}
	}
	for i, s := range p {
		if s.name != TokenName && isTCPListener(s.fd) {
			return i
		}
	}
	return -1
}

func isTCPListener(fd int) bool {
	listening, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	if err != nil || listening != 1 {
		return false
	}
	domain, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_DOMAIN)
	if err != nil || (domain != unix.AF_INET && domain != unix.AF_INET6) {
		return false
	}
	typ, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_TYPE)
	return err == nil && typ == unix.SOCK_STREAM
}

// Passed reports how many descriptors socket activation passed to this
// process (from 3 on) and whether one of them is the HTTPS listener,
// without taking them: they stay open, inheritable and described in the
// environment, so that they survive the daemon's re-execution
// (daemon/privsep), which keeps the pid LISTEN_PID names.
func Passed() (n int, https bool) {
	p := inherited()
	return len(p), httpsIndex(p) >= 0
}

// Sockets are the sockets taken from socket activation.
type Sockets struct {
	// HTTPS is the listener to serve the API on. Nil means none was
	// passed and the daemon binds REANA_SITE_LISTEN itself.
	HTTPS net.Listener
	// Others are the remaining passed descriptors by name (LISTEN_FD_<n>
	// when unnamed), such as the "token" socket. They stay open so that a
	// later part of the daemon can serve them.
	Others map[string]*os.File
}

// Take takes the sockets of socket activation. It marks every passed
// descriptor close-on-exec, so that no helper or step inherits one, and
// removes LISTEN_* from the environment; call it once, in the process that
// serves (after re-execution). With no socket activation it returns empty
// Sockets.
func Take() (Sockets, error) {
	p := inherited()
	https := httpsIndex(p)
	files := activation.Files(true)
	if len(files) != len(p) {
		// Both read the same environment; a mismatch would mean it changed
		// in between.
		closeAll(files)
		return Sockets{}, fmt.Errorf("socket activation: %d descriptors described, %d taken", len(p), len(files))
	}
	var s Sockets
	for i, f := range files {
		if i != https {
			if s.Others == nil {
				s.Others = map[string]*os.File{}
			}
			if _, dup := s.Others[f.Name()]; dup {
				// Only a misconfigured unit names two sockets alike; the
				// first one is the one served, and closing this copy leaves
				// the service manager's open.
				f.Close()
				continue
			}
			s.Others[f.Name()] = f
			continue
		}
		ln, err := net.FileListener(f)
		f.Close() // FileListener holds its own duplicate
		if err != nil {
			closeAll(files[i+1:])
			return Sockets{}, errors.Join(fmt.Errorf("socket activation: use %q as the HTTPS listener: %w", f.Name(), err), s.Close())
		}
		s.HTTPS = ln
	}
	return s, nil
}

// Close closes every socket; the service manager keeps its own copies, so
// the sockets stay open for the next start.
func (s Sockets) Close() error {
	var errs []error
	if s.HTTPS != nil {
		errs = append(errs, s.HTTPS.Close())
	}
	for _, f := range s.Others {
		errs = append(errs, f.Close())
	}
	return errors.Join(errs...)
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}
