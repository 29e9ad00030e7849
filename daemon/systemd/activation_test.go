package systemd

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// helperEnv makes the test binary act as a socket-activated daemon:
// socket activation hands descriptors over at exec, so only a fresh
// process can receive them at 3 and up.
const helperEnv = "REANA_SITE_TEST_ACTIVATION_HELPER"

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		os.Exit(activationHelper(mode))
	}
	os.Exit(m.Run())
}

// helperReport is what the helper saw, before and after Take.
type helperReport struct {
	Passed       int
	PassedHTTPS  bool
	InheritableB []bool // per passed descriptor, before Take
	HTTPSAddr    string
	Others       []string
	SafeAfter    []bool // per passed descriptor, after Take: closed or close-on-exec
	EnvAfter     string
	Err          string
}

func activationHelper(mode string) int {
	// systemd sets LISTEN_PID to the pid it forked; a helper learns its
	// own pid only now.
	pid := os.Getpid()
	if mode == "other-pid" {
		pid++
	}
	os.Setenv("LISTEN_PID", strconv.Itoa(pid))
	var r helperReport
	n, _ := strconv.Atoi(os.Getenv("LISTEN_FDS"))
	r.Passed, r.PassedHTTPS = Passed()
	for fd := firstFD; fd < firstFD+n; fd++ {
		flags, _ := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		r.InheritableB = append(r.InheritableB, flags&unix.FD_CLOEXEC == 0)
	}
	s, err := Take()
	if err != nil {
		r.Err = err.Error()
	}
	if s.HTTPS != nil {
		r.HTTPSAddr = s.HTTPS.Addr().String()
	}
	for name := range s.Others {
		r.Others = append(r.Others, name)
	}
	sort.Strings(r.Others)
	for fd := firstFD; fd < firstFD+n; fd++ {
		// The HTTPS descriptor itself is closed: net.FileListener made a
		// close-on-exec duplicate.
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		r.SafeAfter = append(r.SafeAfter, err != nil || flags&unix.FD_CLOEXEC != 0)
	}
	r.EnvAfter = os.Getenv("LISTEN_PID") + os.Getenv("LISTEN_FDS") + os.Getenv("LISTEN_FDNAMES")
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		return 1
	}
	return 0
}

func tcpListener(t *testing.T) (*os.File, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	f, err := ln.(*net.TCPListener).File()
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return f, ln.Addr().String()
}

func unixListener(t *testing.T) *os.File {
	t.Helper()
	ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "token.sock"))
	require.NoError(t, err)
	defer ln.Close()
	f, err := ln.(*net.UnixListener).File()
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

func TestSocketActivation(t *testing.T) {
	exe, err := os.Executable()
	require.NoError(t, err)
	tcp, tcpAddr := tcpListener(t)
	tcp2, _ := tcpListener(t)
	token := unixListener(t)

	tests := []struct {
		name      string
		mode      string
		files     []*os.File
		names     string
		wantHTTPS string
		wantOther []string
	}{
		{"named https after the token socket", "self", []*os.File{token, tcp}, "token:https", tcpAddr, []string{"token"}},
		{"unnamed TCP listener (systemd-socket-activate without --fdname)", "self", []*os.File{tcp}, "", tcpAddr, nil},
		{"first TCP listener when none is named https", "self", []*os.File{token, tcp, tcp2}, "token:a:b", tcpAddr, []string{"b", "token"}},
		{"only the token socket: the daemon binds itself", "self", []*os.File{token}, "token", "", []string{"token"}},
		{"sockets meant for another process are not touched", "other-pid", []*os.File{tcp}, "https", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(exe, "-test.run=^$")
			cmd.Env = append(os.Environ(), helperEnv+"="+tt.mode,
				fmt.Sprintf("LISTEN_FDS=%d", len(tt.files)), "LISTEN_FDNAMES="+tt.names)
			cmd.ExtraFiles = tt.files
			out, err := cmd.Output()
			require.NoError(t, err, "helper: %s", out)
			var r helperReport
			require.NoError(t, json.Unmarshal(out, &r), "%s", out)
			require.Empty(t, r.Err)

			assert.Equal(t, tt.wantHTTPS, r.HTTPSAddr)
			assert.Equal(t, tt.wantOther, r.Others)
			mine := tt.mode == "self"
			if mine {
				assert.Equal(t, len(tt.files), r.Passed)
			} else {
				assert.Zero(t, r.Passed)
			}
			assert.Equal(t, tt.wantHTTPS != "", r.PassedHTTPS, "Passed and Take agree")
			for i := range tt.files {
				assert.True(t, r.InheritableB[i], "descriptor %d inheritable before Take", firstFD+i)
				assert.Equal(t, mine, r.SafeAfter[i], "descriptor %d out of children's reach after Take: only when taken", firstFD+i)
			}
			assert.Empty(t, r.EnvAfter, "LISTEN_* removed from the environment")
		})
	}
}
