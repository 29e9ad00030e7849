// Package localsock serves and calls HTTP on local Unix sockets, where the
// kernel tells the server who the peer is (SO_PEERCRED). The token socket
// and the admin socket are built on it.
package localsock

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

type peerKey struct{}

// Peer is the kernel's word on who is at the other end of the request's
// connection; ok is false when it could not be had.
func Peer(r *http.Request) (cred *unix.Ucred, ok bool) {
	cred, ok = r.Context().Value(peerKey{}).(*unix.Ucred)
	return cred, ok && cred != nil
}

func connContext(ctx context.Context, c net.Conn) context.Context {
	uc, ok := c.(*net.UnixConn)
	if !ok {
		return ctx
	}
	raw, err := uc.SyscallConn()
	if err != nil {
		return ctx
	}
	_ = raw.Control(func(fd uintptr) {
		if cred, err := unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil {
			ctx = context.WithValue(ctx, peerKey{}, cred)
		}
	})
	return ctx
}

// Serve answers on ln with h until ctx ends, then lets requests in flight
// finish (for a few seconds).
func Serve(ctx context.Context, ln net.Listener, h http.Handler) error {
	hs := &http.Server{Handler: h, ConnContext: connContext, ReadHeaderTimeout: 10 * time.Second}
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = hs.Shutdown(sctx)
	}()
	// The listener may be closed by its owner as the daemon stops, before
	// ctx ends here: that is an end, not a failure.
	if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	}
	return nil
}

// Listen binds a Unix socket at path with the given mode, replacing a
// stale one a previous run left. The mode is set with chmod, not the
// umask: the umask is the process's, and helpers forked meanwhile would
// inherit it. Until the chmod, the socket has the default mode, which
// gives others no write permission and so no way to connect.
func Listen(path string, mode os.FileMode) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create the directory of %s: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("remove the stale socket %s: %w", path, err)
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", path, err)
	}
	if err := os.Chmod(path, mode); err != nil {
		ln.Close()
		return nil, fmt.Errorf("set the mode of %s: %w", path, err)
	}
	return ln, nil
}

// Client talks HTTP to the daemon on socket (any host name in the URL).
func Client(socket string, timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		}},
	}
}
