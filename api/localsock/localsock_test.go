package localsock_test

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/api/localsock"
)

func TestListenSetsTheModeAndReplacesAStaleSocket(t *testing.T) {
	tests := []struct {
		name string
		mode os.FileMode
	}{
		{"owner only", 0o600},
		{"everyone", 0o666},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "sub", "s.sock")
			require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
			require.NoError(t, os.WriteFile(path, nil, 0o644)) // left by a previous run
			ln, err := localsock.Listen(path, tt.mode)
			require.NoError(t, err)
			defer ln.Close()
			fi, err := os.Stat(path)
			require.NoError(t, err)
			assert.Equal(t, os.ModeSocket, fi.Mode().Type())
			assert.Equal(t, tt.mode, fi.Mode().Perm())
		})
	}
}

func TestListenRefusesAPathItCannotUse(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	_, err := localsock.Listen(filepath.Join(file, "s.sock"), 0o600)
	assert.Error(t, err)
}

// TestPeerAndClient serves on a socket and calls it with Client: the
// handler sees the kernel's word on the caller, this process.
func TestPeerAndClient(t *testing.T) {
	path := filepath.Join(t.TempDir(), "s.sock")
	ln, err := localsock.Listen(path, 0o600)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- localsock.Serve(ctx, ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			cred, ok := localsock.Peer(r)
			if !ok {
				http.Error(w, "no peer", http.StatusForbidden)
				return
			}
			fmt.Fprintf(w, "%d %d %d", cred.Uid, cred.Gid, cred.Pid)
		}))
	}()
	res, err := localsock.Client(path, 5*time.Second).Get("http://anything/peer")
	require.NoError(t, err)
	b, err := io.ReadAll(res.Body)
	res.Body.Close()
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, res.StatusCode, "%s", b)
	assert.Equal(t, fmt.Sprintf("%d %d %d", os.Getuid(), os.Getgid(), os.Getpid()), string(b))

	cancel()
	select {
	case err := <-done:
		assert.NoError(t, err, "an ended context is an end, not a failure")
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its context ended")
	}
}

func TestPeerWithoutASocket(t *testing.T) {
	r, err := http.NewRequest("GET", "/", nil)
	require.NoError(t, err)
	_, ok := localsock.Peer(r)
	assert.False(t, ok)
}

func TestServeReturnsWhenTheListenerIsClosed(t *testing.T) {
	ln, err := localsock.Listen(filepath.Join(t.TempDir(), "s.sock"), 0o600)
	require.NoError(t, err)
	done := make(chan error, 1)
	go func() { done <- localsock.Serve(context.Background(), ln, http.NotFoundHandler()) }()
	ln.Close()
	select {
	case err := <-done:
		assert.NoError(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return after its listener closed")
	}
}
