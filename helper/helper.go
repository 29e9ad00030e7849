// Package helper is the user side of the asuser protocol: the code that
// runs in `reana-site worker`, a short-lived process with one user's uid,
// gid and groups. It refuses to run with any privilege left, then performs one
// operation on that user's workspace or jobs and exits.
package helper

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/daemon/privsep"
)

// handler performs one operation. conn is the fd-passing socket (nil when
// the daemon did not provide one).
type handler func(ctx context.Context, args json.RawMessage, conn *net.UnixConn) (any, error)

func handlers() map[asuser.Op]handler {
	return map[asuser.Op]handler{
		asuser.OpFSCreate:         fsCreate,
		asuser.OpFSRemove:         fsRemove,
		asuser.OpFSUpload:         fsUpload,
		asuser.OpFSOpen:           fsOpen,
		asuser.OpFSZip:            fsZip,
		asuser.OpFSList:           fsList,
		asuser.OpFSDiskUsage:      fsDiskUsage,
		asuser.OpFSDelete:         fsDelete,
		asuser.OpFSMove:           fsMove,
		asuser.OpFSGlob:           fsGlob,
		asuser.OpFSUsage:          fsUsage,
		asuser.OpFSPrune:          fsPrune,
		asuser.OpFSCleanTemps:     fsCleanTemps,
		asuser.OpSecretsWrite:     secretsWrite,
		asuser.OpSecretsDelete:    secretsDelete,
		asuser.OpSecretsRemove:    secretsRemove,
		asuser.OpSecretsRead:      secretsRead,
		asuser.OpJobStart:         jobStart,
		asuser.OpJobStatus:        jobStatus,
		asuser.OpJobCancel:        jobCancel,
		asuser.OpJobLogs:          jobLogs,
		asuser.OpJobReadExit:      jobReadExit,
		asuser.OpJobSubmit:        jobSubmit,
		asuser.OpJobSubmitMany:    jobSubmitMany,
		asuser.OpJobSubmitCluster: jobSubmitCluster,
		asuser.OpJobFollow:        jobFollow,
		asuser.OpExec:             execCommand,
	}
}

// Main is the entry point of `reana-site worker`. It returns the process
// exit code.
func Main(ctx context.Context, stdin io.Reader, stdout io.Writer) int {
	reply := run(ctx, stdin)
	if err := json.NewEncoder(stdout).Encode(reply); err != nil {
		fmt.Fprintln(os.Stderr, "reana-site worker:", err)
		return 1
	}
	if reply.Error != nil {
		return 1
	}
	return 0
}

func run(ctx context.Context, stdin io.Reader) asuser.Reply {
	// The user owns this process: keep them from attaching to it or reading
	// its memory, where the daemon's requests and replies pass.
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	if err := checkUnprivileged(); err != nil {
		return asuser.Reply{Error: asuser.Errorf(asuser.KindInternal, "%v", err)}
	}
	var req asuser.Request
	if err := json.NewDecoder(io.LimitReader(stdin, 64<<20)).Decode(&req); err != nil {
		return asuser.Reply{Error: asuser.Errorf(asuser.KindInternal, "worker: decode request: %v", err)}
	}
	h, ok := handlers()[req.Op]
	if !ok {
		return asuser.Reply{Error: asuser.Errorf(asuser.KindInternal, "worker: unknown operation %q", req.Op)}
	}
	var conn *net.UnixConn
	if f := socketFile(); f != nil {
		if c, err := net.FileConn(f); err == nil {
			conn, _ = c.(*net.UnixConn)
		}
		f.Close()
	}
	if conn != nil {
		defer conn.Close()
	}
	res, err := h(ctx, req.Args, conn)
	if err != nil {
		return asuser.Reply{Error: protocolError(err)}
	}
	raw, err := json.Marshal(res)
	if err != nil {
		return asuser.Reply{Error: asuser.Errorf(asuser.KindInternal, "worker: encode result: %v", err)}
	}
	return asuser.Reply{Result: raw}
}

// protocolError is err as it crosses back to the daemon.
func protocolError(err error) *asuser.Error {
	var ue *asuser.Error
	if !errors.As(err, &ue) {
		ue = classify(err)
	}
	return ue
}

// checkUnprivileged refuses to touch user data with any privilege left.
// The kernel clears all capabilities when a uid-0 process becomes a
// non-root user; this checks that it did, and that root cannot be regained.
func checkUnprivileged() error {
	if os.Getuid() == 0 || os.Geteuid() == 0 || os.Getgid() == 0 || os.Getegid() == 0 {
		return errors.New("worker: refusing to run as root")
	}
	c, err := privsep.ReadCaps(0)
	if err != nil {
		return err
	}
	if c.Effective != 0 || c.Permitted != 0 || c.Ambient != 0 {
		return fmt.Errorf("worker: refusing to run with capabilities (eff=%x prm=%x amb=%x)", c.Effective, c.Permitted, c.Ambient)
	}
	// The raw syscall changes only this thread; if it succeeded the process
	// is compromised and must not continue.
	if _, _, errno := unix.RawSyscall(unix.SYS_SETUID, 0, 0, 0); errno == 0 {
		os.Exit(125)
	}
	return nil
}

// socketFile is the daemon's socket, when the daemon passed one.
func socketFile() *os.File {
	if os.Getenv(asuser.SocketEnv) != "3" {
		return nil
	}
	return os.NewFile(3, "daemon-socket")
}

func classify(err error) *asuser.Error {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return asuser.Errorf(asuser.KindNotFound, "%v", err)
	case errors.Is(err, os.ErrPermission), errors.Is(err, syscall.EACCES), errors.Is(err, syscall.EPERM):
		return asuser.Errorf(asuser.KindDenied, "%v", err)
	case errors.Is(err, os.ErrExist):
		return asuser.Errorf(asuser.KindExists, "%v", err)
	}
	return asuser.Errorf(asuser.KindInternal, "%v", err)
}

func decode[T any](raw json.RawMessage) (T, error) {
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, asuser.Errorf(asuser.KindInternal, "worker: decode arguments: %v", err)
	}
	return v, nil
}
