package containers

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/reana-site/reana-site/asuser"
	"github.com/stretchr/testify/require"
)

// fakeRunner answers the resolver's "exec" calls from a map of existing
// paths ('f' file, 'd' directory) and records pulls.
type fakeRunner struct {
	mu       sync.Mutex
	files    map[string]byte
	pulls    []string
	pullErr  string
	pullWait time.Duration
	users    []string
	pullEnv  [][]string // the Env of each pull
	ownDirs  []string   // directories made with ownDirScript
}

func (f *fakeRunner) Call(ctx context.Context, acct asuser.Account, op asuser.Op, args, result any) error {
	if op != "exec" {
		return fmt.Errorf("unexpected op %q", op)
	}
	a := args.(asuser.ExecArgs)
	f.mu.Lock()
	f.users = append(f.users, acct.Name)
	f.mu.Unlock()
	var res asuser.ExecResult
	switch {
	case a.Argv[0] == "/bin/sh" && a.Argv[2] == probeScript:
		f.mu.Lock()
		for _, p := range a.Argv[4:] {
			if k, ok := f.files[p]; ok {
				res.Stdout += string(k) + " " + p + "\n"
			}
		}
		f.mu.Unlock()
	case a.Argv[0] == "mkdir":
	case a.Argv[0] == "/bin/sh" && a.Argv[2] == ownDirScript:
		f.mu.Lock()
		f.ownDirs = append(f.ownDirs, a.Argv[4])
		f.mu.Unlock()
	case len(a.Argv) == 4 && a.Argv[1] == "pull":
		time.Sleep(f.pullWait)
		f.mu.Lock()
		f.pulls = append(f.pulls, a.Argv[3])
		f.pullEnv = append(f.pullEnv, a.Env)
		if f.pullErr != "" {
			res.ExitCode, res.Stderr = 255, "INFO:    Converting OCI blobs to SIF format\nFATAL:   "+f.pullErr+"\n"
		} else {
			f.files[a.Argv[2]] = 'f'
			res.Stderr = "INFO:    Creating SIF file...\n"
		}
		f.mu.Unlock()
	default:
		return fmt.Errorf("unexpected argv %q", a.Argv)
	}
	b, _ := json.Marshal(res)
	return json.Unmarshal(b, result)
}

var alice = asuser.Account{Name: "alice", UID: 1001, Home: "/home/alice"}

func TestResolve(t *testing.T) {
	const debianSIF = "/cache/registry.hub.docker.com_library_debian:12-slim.sif"
	const debianCVMFS = "/cvmfs/unpacked.cern.ch/registry.hub.docker.com/library/debian:12-slim"
	base := Config{ImageCache: "/cache", UnpackedRoots: []string{"/cvmfs/unpacked.cern.ch"}, AllowPull: true}
	cases := []struct {
		name       string
		cfg        Config
		files      map[string]byte
		env        string
		pullErr    string
		wantPath   string
		wantSource string
		wantPulls  int
		wantErr    string
		wantLog    string
	}{
		{name: "sif in cache", cfg: base, files: map[string]byte{debianSIF: 'f', debianCVMFS: 'd'},
			env: "debian:12-slim", wantPath: debianSIF, wantSource: SourceCache},
		{name: "unpacked dir in cache", cfg: base, files: map[string]byte{"/cache/registry.hub.docker.com_library_debian:12-slim": 'd'},
			env: "debian:12-slim", wantPath: "/cache/registry.hub.docker.com_library_debian:12-slim", wantSource: SourceCache},
		{name: "cvmfs", cfg: base, files: map[string]byte{debianCVMFS: 'd'},
			env: "docker://docker.io/library/debian:12-slim", wantPath: debianCVMFS, wantSource: SourceUnpacked},
		{name: "order puts unpacked first", cfg: Config{ImageCache: "/cache", UnpackedRoots: []string{"/cvmfs/unpacked.cern.ch"}, Order: []string{"unpacked", "cache"}},
			files: map[string]byte{debianSIF: 'f', debianCVMFS: 'd'}, env: "debian:12-slim", wantPath: debianCVMFS, wantSource: SourceUnpacked},
		{name: "a file where a directory is needed does not count", cfg: Config{UnpackedRoots: []string{"/cvmfs/unpacked.cern.ch"}},
			files: map[string]byte{debianCVMFS: 'f'}, env: "debian:12-slim", wantErr: "not found in " + debianCVMFS + "; this site does not pull images"},
		{name: "pulled when missing", cfg: base, env: "debian:12-slim",
			wantPath: debianSIF, wantSource: SourcePull, wantPulls: 1, wantLog: "pulling image docker://docker.io/library/debian:12-slim into " + debianSIF},
		{name: "per-user cache", cfg: Config{ImageCache: "{home}/.cache/reana-images", AllowPull: true}, env: "debian:12-slim",
			wantPath: "/home/alice/.cache/reana-images/registry.hub.docker.com_library_debian:12-slim.sif", wantSource: SourcePull, wantPulls: 1},
		{name: "pull fails", cfg: base, env: "debian:12-slim", pullErr: "Unable to handle docker://docker.io/library/debian:12-slim uri",
			wantPulls: 1, wantErr: "pull docker://docker.io/library/debian:12-slim as alice: FATAL:   Unable to handle", wantLog: "Converting OCI blobs"},
		{name: "missing and pulls forbidden", cfg: Config{ImageCache: "/cache", UnpackedRoots: []string{"/cvmfs/unpacked.cern.ch"}},
			env: "debian:12-slim", wantErr: `image "registry.hub.docker.com/library/debian:12-slim" not found in ` + debianSIF +
				", /cache/registry.hub.docker.com_library_debian:12-slim, " + debianCVMFS + "; this site does not pull images"},
		{name: "no places at all", cfg: Config{}, env: "debian", wantErr: "no image cache or unpacked image tree; this site does not pull images"},
		{name: "sif path", cfg: base, files: map[string]byte{"/data/root.sif": 'f'}, env: "/data/root.sif", wantPath: "/data/root.sif", wantSource: "path"},
		{name: "missing path is never pulled", cfg: base, env: "/data/none.sif", wantErr: `image "/data/none.sif" not found in /data/none.sif`},
		{name: "bad name", cfg: base, env: "oras://x/y", wantErr: "only docker://"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]byte{}
			for k, v := range tc.files {
				files[k] = v
			}
			fr := &fakeRunner{files: files, pullErr: tc.pullErr}
			r := &Resolver{Config: tc.cfg, Runner: fr}
			var log bytes.Buffer
			got, err := r.Resolve(context.Background(), tc.env, alice, &log)
			require.Len(t, fr.pulls, tc.wantPulls)
			require.Contains(t, log.String(), tc.wantLog)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.wantPath, got.Path)
			require.Equal(t, tc.wantSource, got.Source)
			for _, u := range fr.users {
				require.Equal(t, "alice", u, "every look and pull runs as the user")
			}
		})
	}
}

func TestCheck(t *testing.T) {
	cfg := Config{ImageCache: "/cache"}
	r := &Resolver{Config: cfg, Runner: &fakeRunner{files: map[string]byte{}}}
	err := r.Check(context.Background(), "debian:12-slim", alice)
	require.ErrorIs(t, err, ErrNotFound)
	require.ErrorContains(t, err, "this site does not pull images")

	cfg.AllowPull = true
	fr := &fakeRunner{files: map[string]byte{}}
	r = &Resolver{Config: cfg, Runner: fr}
	require.NoError(t, r.Check(context.Background(), "debian:12-slim", alice), "a pullable image is fine at start")
	require.Empty(t, fr.pulls, "Check never pulls")
	require.Error(t, r.Check(context.Background(), "/no/such.sif", alice))
}

func TestConcurrentResolvePullsOnce(t *testing.T) {
	fr := &fakeRunner{files: map[string]byte{}, pullWait: 50 * time.Millisecond}
	r := &Resolver{Config: Config{ImageCache: "/cache", AllowPull: true}, Runner: fr}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	paths := make([]string, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := r.Resolve(context.Background(), "reanahub/reana-env-root6:6.18.04", alice, nil)
			errs[i], paths[i] = err, res.Path
		}()
	}
	wg.Wait()
	for i := range errs {
		require.NoError(t, errs[i])
		require.Equal(t, "/cache/registry.hub.docker.com_reanahub_reana-env-root6:6.18.04.sif", paths[i])
	}
	require.Len(t, fr.pulls, 1)
}

func TestPullWaitHonoursContext(t *testing.T) {
	fr := &fakeRunner{files: map[string]byte{}, pullWait: 300 * time.Millisecond}
	r := &Resolver{Config: Config{ImageCache: "/cache", AllowPull: true}, Runner: fr}
	go func() { _, _ = r.Resolve(context.Background(), "debian", alice, nil) }()
	time.Sleep(50 * time.Millisecond) // the first caller now holds the pull
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := r.Resolve(ctx, "debian", alice, nil)
	require.True(t, errors.Is(err, context.DeadlineExceeded), "got %v", err)
	require.True(t, strings.Contains(err.Error(), "wait for the pull"))
}

// TestPullCache: pulls keep Apptainer's blobs in the site's pull cache,
// made by the user as their own, never in ~/.apptainer/cache.
func TestPullCache(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"beside the images by default", Config{ImageCache: "/cache", AllowPull: true}, "/cache/.apptainer-cache-1001"},
		{"per-user image cache", Config{ImageCache: "{home}/.cache/reana-images", AllowPull: true}, "/home/alice/.cache/reana-images/.apptainer-cache-1001"},
		{"site setting", Config{ImageCache: "/cache", AllowPull: true, PullCache: "/scratch/apptainer/{user}"}, "/scratch/apptainer/alice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fr := &fakeRunner{files: map[string]byte{}}
			r := &Resolver{Config: tc.cfg, Runner: fr}
			_, err := r.Resolve(context.Background(), "debian:12-slim", alice, nil)
			require.NoError(t, err)
			require.Equal(t, []string{tc.want}, fr.ownDirs)
			require.Equal(t, [][]string{{"APPTAINER_CACHEDIR=" + tc.want}}, fr.pullEnv)
		})
	}
	require.Empty(t, Config{}.PullCacheDir(alice), "no image cache, no pulls, no pull cache")
}
