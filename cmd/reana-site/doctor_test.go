package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/daemon/config"
)

func fakeEnv(t *testing.T, paths map[string]string) doctorEnv {
	proc := t.TempDir()
	return doctorEnv{
		Proc: proc,
		LookPath: func(name string) (string, error) {
			if p, ok := paths[name]; ok {
				return p, nil
			}
			return "", errors.New("executable file not found in $PATH")
		},
		Run: func(_ context.Context, argv ...string) (string, error) {
			switch strings.Join(argv[1:], " ") {
			case "--version":
				return "apptainer version 1.3.6\n", nil
			case "buildcfg APPTAINER_SUID_INSTALL":
				return paths["suid"] + "\n", nil
			}
			return "", errors.New("unexpected")
		},
		LookupGroup: func(g string) error {
			if g == "physics" {
				return nil
			}
			return errors.New("group: unknown group " + g)
		},
		Listen: func(string) (net.Listener, error) { return nil, &net.OpError{Op: "listen", Err: syscall.EADDRINUSE} },
		Now:    time.Now,
		Dev:    t.TempDir(),
		TryImage: func(context.Context, config.Config, string, string) (string, string, error) {
			return "", "", errors.New("unexpected TryImage")
		},
	}
}

func writeSysctl(t *testing.T, proc string, kv map[string]string) {
	for k, v := range kv {
		p := filepath.Join(proc, "sys", k)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, []byte(v+"\n"), 0o644))
	}
}

func TestCheckApptainer(t *testing.T) {
	cases := []struct {
		name  string
		paths map[string]string
		want  string
	}{
		{"present", map[string]string{"apptainer": "/usr/bin/apptainer"}, "ok: apptainer: /usr/bin/apptainer is apptainer version 1.3.6"},
		{"missing", nil, `problem: apptainer: "apptainer" is not installed or not in PATH`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := fakeEnv(t, tc.paths).checkApptainer(context.Background(), "apptainer")
			require.Len(t, got, 1)
			require.Contains(t, got[0].String(), tc.want)
		})
	}
}

func TestCheckUserNamespaces(t *testing.T) {
	cases := []struct {
		name   string
		sysctl map[string]string
		suid   string
		want   string
	}{
		{"enabled", map[string]string{"user/max_user_namespaces": "63000", "kernel/unprivileged_userns_clone": "1"}, "", "ok: user namespaces: unprivileged user namespaces are enabled"},
		{"max zero", map[string]string{"user/max_user_namespaces": "0"}, "", "problem: user namespaces: apptainer cannot start containers as users: user.max_user_namespaces is 0"},
		{"debian knob off", map[string]string{"user/max_user_namespaces": "100", "kernel/unprivileged_userns_clone": "0"}, "", "problem: user namespaces: apptainer cannot start containers as users: kernel.unprivileged_userns_clone is 0"},
		{"apparmor", map[string]string{"user/max_user_namespaces": "100", "kernel/apparmor_restrict_unprivileged_userns": "1"}, "", "apparmor_restrict_unprivileged_userns is 1"},
		{"setuid install", map[string]string{"user/max_user_namespaces": "0"}, "1", "ok: user namespaces: unavailable (user.max_user_namespaces is 0 or unreadable), but apptainer is a setuid install"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := fakeEnv(t, map[string]string{"apptainer": "/usr/bin/apptainer", "suid": tc.suid})
			writeSysctl(t, env.Proc, tc.sysctl)
			require.Contains(t, env.checkUserNamespaces(context.Background(), "apptainer").String(), tc.want)
		})
	}
}

func TestCheckImageCache(t *testing.T) {
	dir := t.TempDir()
	mk := func(name string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.Mkdir(p, 0o700))
		require.NoError(t, os.Chmod(p, mode))
		return p
	}
	readonly, shared, noSticky := mk("ro", 0o755), mk("shared", os.ModeSticky|0o777), mk("nosticky", 0o777)
	groupw := mk("groupw", 0o775)
	file := filepath.Join(dir, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	cases := []struct {
		name  string
		dir   string
		pulls bool
		want  string
	}{
		{"read-only without pulls", readonly, false, "ok: image cache: " + readonly},
		{"group-writable without pulls", groupw, false, "problem: image cache: " + groupw + " (mode drwxrwxr-x) is writable by group or others"},
		{"read-only with pulls", readonly, true, "problem: image cache: " + readonly + " (mode drwxr-xr-x) is not writable by users"},
		{"shared with pulls", shared, true, "ok: image cache: " + shared},
		{"no sticky bit", noSticky, true, "without the sticky bit"},
		{"missing", filepath.Join(dir, "none"), false, "problem: image cache: " + filepath.Join(dir, "none")},
		{"not a directory", file, false, "is not a directory"},
		{"none and no pulls", "", false, "ok: image cache: none configured"},
		{"none with pulls", "", true, "problem: image cache: pulls are on"},
		{"per user", "{home}/.cache/images", true, "ok: image cache: per user"},
		{"per user, base missing", filepath.Join(dir, "none", "{user}"), true, "problem: image cache: " + filepath.Join(dir, "none", "{user}") + " is per user, but its base"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			require.Contains(t, checkImageCache(tc.dir, tc.pulls).String(), tc.want)
		})
	}
}

func TestCheckBatchCommands(t *testing.T) {
	cfg := config.Config{Backends: []string{"local", "slurm"}}
	got := fakeEnv(t, map[string]string{"sbatch": "/usr/bin/sbatch", "squeue": "/usr/bin/squeue"}).checkBatchCommands(cfg)
	require.Equal(t, []string{"ok: slurm: sbatch is /usr/bin/sbatch", "ok: slurm: squeue is /usr/bin/squeue",
		"problem: slurm: scancel not found (PATH or REANA_SITE_SLURM_BIN_DIR): executable file not found in $PATH"}, strings_(got))
	cfg.Backends = []string{"local"}
	require.Empty(t, fakeEnv(t, nil).checkBatchCommands(cfg), "no batch commands without slurm")
	cfg = config.Config{Backends: []string{"slurm"}, SlurmBinDir: "/opt/slurm/bin"}
	got = fakeEnv(t, map[string]string{"/opt/slurm/bin/sbatch": "/opt/slurm/bin/sbatch"}).checkBatchCommands(cfg)
	require.True(t, got[0].OK())
	require.False(t, got[1].OK())
}

func strings_(fs []finding) []string {
	var out []string
	for _, f := range fs {
		out = append(out, f.String())
	}
	return out
}

func TestCheckWorkspaceRoot(t *testing.T) {
	dir := t.TempDir()
	open := filepath.Join(dir, "open")
	require.NoError(t, os.Mkdir(open, 0o700))
	require.NoError(t, os.Chmod(open, 0o777))
	shared := filepath.Join(dir, "shared")
	require.NoError(t, os.Mkdir(shared, 0o700))
	require.NoError(t, os.Chmod(shared, os.ModeSticky|0o777))
	cases := []struct{ template, want string }{
		{filepath.Join(dir, "{user}"), "ok: workspace root: " + filepath.Join(dir, "{user}") + " (base " + dir},
		{filepath.Join(open, "{user}"), "problem: workspace root: " + filepath.Join(open, "{user}") + ": " + open + " is writable by every user without the sticky bit"},
		{filepath.Join(shared, "{user}"), "shared): each user's root below it must be made by that user's helper"},
		{filepath.Join(dir, "reana-{uid}"), "(base " + dir},
		{filepath.Join(dir, "missing", "{user}"), "problem: workspace root"},
	}
	for _, tc := range cases {
		t.Run(tc.template, func(t *testing.T) {
			require.Contains(t, checkWorkspaceRoot(tc.template).String(), tc.want)
		})
	}
	require.Equal(t, "/home", staticBase("{home}/reana"))
}

func TestCheckUIDPolicy(t *testing.T) {
	got := strings_(fakeEnv(t, nil).checkUIDPolicy(config.Config{MinUID: 1000, AllowedGroups: []string{"physics", "ghosts"}}))
	require.Equal(t, []string{"ok: uid policy: uids from 1000, members of physics, ghosts; uid 0 and primary gid 0 never",
		`problem: uid policy: REANA_SITE_ALLOWED_GROUPS names "ghosts", which does not exist: group: unknown group ghosts`}, got)
}

func TestCheckListen(t *testing.T) {
	state := t.TempDir()
	env := fakeEnv(t, nil)
	cfg := config.Config{Listen: "localhost:8443", StateDir: state}
	require.Equal(t, "problem: listen: localhost:8443 is in use by another program", env.checkListen(cfg).String())

	require.NoError(t, os.WriteFile(filepath.Join(state, "reana-site.pid"), []byte("4242\n"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(env.Proc, "4242"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(env.Proc, "4242", "comm"), []byte("reana-site\n"), 0o644))
	require.Equal(t, "ok: listen: localhost:8443 is in use by reana-site (pid 4242)", env.checkListen(cfg).String())

	env.Listen = func(string) (net.Listener, error) { return nil, &net.OpError{Op: "listen", Err: syscall.EACCES} }
	require.Contains(t, env.checkListen(cfg).String(), "problem: listen: cannot bind localhost:8443")

	env.Listen = func(string) (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
	require.Equal(t, "ok: listen: localhost:8443 is free", env.checkListen(cfg).String())
}

func writeCert(t *testing.T, dir string, notAfter time.Time) (string, string) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "localhost"},
		NotBefore: notAfter.Add(-365 * 24 * time.Hour), NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	kder, err := x509.MarshalECPrivateKey(key)
	require.NoError(t, err)
	cert, keyf := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	require.NoError(t, os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644))
	require.NoError(t, os.WriteFile(keyf, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600))
	return cert, keyf
}

func TestCheckTLS(t *testing.T) {
	now := time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC)
	cases := []struct {
		name     string
		notAfter time.Time // zero: no certificate at all
		explicit bool
		want     string
	}{
		{"to be generated", time.Time{}, false, "ok: tls: no certificate configured; a self-signed one will be generated"},
		{"generated and valid", now.Add(365 * 24 * time.Hour), false, "ok: tls: "},
		{"configured and valid", now.Add(365 * 24 * time.Hour), true, "is valid until 2027-06-01"},
		{"expires soon", now.Add(10 * 24 * time.Hour), true, "expires soon"},
		{"expired", now.Add(-24 * time.Hour), true, "problem: tls: "},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			state := t.TempDir()
			cfg := config.Config{StateDir: state}
			if !tc.notAfter.IsZero() {
				cert, key := writeCert(t, state, tc.notAfter)
				if tc.explicit {
					cfg.TLSCert, cfg.TLSKey = cert, key
				}
			}
			env := fakeEnv(t, nil)
			env.Now = func() time.Time { return now }
			require.Contains(t, env.checkTLS(cfg).String(), tc.want)
		})
	}
	env := fakeEnv(t, nil)
	got := env.checkTLS(config.Config{TLSCert: "/no/cert", TLSKey: "/no/key"})
	require.False(t, got.OK())
}

// TestRunDoctor runs the whole report on a healthy and a broken setup
// and checks the exit status.
func TestRunDoctor(t *testing.T) {
	state := t.TempDir()
	cache := filepath.Join(state, "images")
	require.NoError(t, os.Mkdir(cache, 0o755))
	t.Setenv("REANA_SITE_STATE_DIR", state)
	t.Setenv("REANA_SITE_WORKSPACE_ROOT", filepath.Join(state, "{user}"))
	t.Setenv("REANA_SITE_CONTAINERS", "apptainer")
	t.Setenv("REANA_SITE_IMAGE_CACHE", cache)
	t.Setenv("REANA_SITE_IMAGE_PULL", "false")

	env := fakeEnv(t, map[string]string{"apptainer": "/usr/bin/apptainer"})
	writeSysctl(t, env.Proc, map[string]string{"user/max_user_namespaces": "100"})
	env.Listen = func(string) (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
	var out strings.Builder
	require.Equal(t, 0, runDoctor(context.Background(), &out, env, doctorOptions{}), out.String())
	require.NotContains(t, out.String(), "problem:")

	// Broken: no apptainer, a cache others can write, no sbatch.
	require.NoError(t, os.Chmod(cache, 0o777))
	t.Setenv("REANA_SITE_BACKENDS", "local,slurm")
	env.LookPath = func(string) (string, error) { return "", errors.New("not found") }
	out.Reset()
	require.Equal(t, 1, runDoctor(context.Background(), &out, env, doctorOptions{}))
	for _, want := range []string{"problem: apptainer:", "problem: image cache:", "problem: slurm: sbatch not found", "ok: uid policy"} {
		require.Contains(t, out.String(), want)
	}

	// A configuration that does not load is reported line by line.
	t.Setenv("REANA_SITE_LISTEN", "nonsense")
	out.Reset()
	require.Equal(t, 1, runDoctor(context.Background(), &out, env, doctorOptions{}))
	require.Contains(t, out.String(), "problem: configuration: REANA_SITE_LISTEN")
}

func TestCheckSIFTools(t *testing.T) {
	cases := []struct {
		name  string
		paths map[string]string
		fuse  os.FileMode // 0: no /dev/fuse
		want  []string
	}{
		{"all there", map[string]string{"squashfuse_ll": "/usr/bin/squashfuse_ll", "gocryptfs": "/usr/bin/gocryptfs"}, 0o666,
			[]string{"ok: sif: squashfuse_ll is /usr/bin/squashfuse_ll", "ok: sif: "}},
		{"nothing there", nil, 0, []string{"warning: sif: squashfuse_ll is not installed", "warning: sif: gocryptfs is not installed"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := fakeEnv(t, tc.paths)
			if tc.fuse != 0 {
				// A character device cannot be made without privileges in a
				// test; /dev/null is one, so its mode is what is looked at.
				if tc.fuse == 0o666 {
					require.NoError(t, os.Symlink("/dev/null", filepath.Join(env.Dev, "fuse")))
				} else {
					require.NoError(t, os.WriteFile(filepath.Join(env.Dev, "fuse"), nil, tc.fuse))
				}
			}
			var lines []string
			for _, f := range env.checkSIFTools() {
				if tc.paths == nil {
					require.NotContains(t, f.String(), "fuse:", "without squashfuse_ll, /dev/fuse does not matter")
				}
				require.True(t, f.OK(), "a missing SIF tool is a warning, never a problem: %s", f)
				lines = append(lines, f.String())
			}
			text := strings.Join(lines, "\n")
			for _, w := range tc.want {
				require.Contains(t, text, w)
			}
		})
	}
}

// TestCheckSIFFuseClosed: squashfuse_ll with a /dev/fuse users cannot
// open makes every SIF step fail (seen with Apptainer 1.4.5): a problem.
func TestCheckSIFFuseClosed(t *testing.T) {
	env := fakeEnv(t, map[string]string{"squashfuse_ll": "/usr/bin/squashfuse_ll", "gocryptfs": "/usr/bin/gocryptfs"})
	require.NoError(t, os.WriteFile(filepath.Join(env.Dev, "fuse"), nil, 0o600))
	got := env.checkSIFTools()
	require.Len(t, got, 2)
	require.False(t, got[1].OK(), got[1].String())
	require.Contains(t, got[1].String(), "cannot be opened by users, so apptainer fails every SIF step")
	require.Contains(t, got[0].String(), "ok: sif: squashfuse_ll")
}

func TestCheckImage(t *testing.T) {
	cases := []struct {
		name     string
		opt      doctorOptions
		out      string
		err      error
		want     string
		wantExit int
	}{
		{"runs", doctorOptions{Image: "debian:12-slim", User: "alice"}, "", nil, "ok: image: debian:12-slim (/img) runs as alice", 0},
		{"runs with output", doctorOptions{Image: "debian:12-slim", User: "alice"}, "INFO:    gocryptfs not found", nil, "warning: image: debian:12-slim (/img) runs as alice, with output: INFO:    gocryptfs", 0},
		{"fails", doctorOptions{Image: "debian:12-slim", User: "alice"}, "FATAL:   boom", errors.New("exit status 255"), "problem: image: debian:12-slim as alice: exit status 255: FATAL:   boom", 1},
		{"no user", doctorOptions{Image: "debian:12-slim"}, "", nil, "problem: image: -image and -user go together", 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			state := t.TempDir()
			t.Setenv("REANA_SITE_STATE_DIR", state)
			t.Setenv("REANA_SITE_WORKSPACE_ROOT", filepath.Join(state, "{user}"))
			t.Setenv("REANA_SITE_CONTAINERS", "apptainer")
			t.Setenv("REANA_SITE_IMAGE_PULL", "false")
			env := fakeEnv(t, map[string]string{"apptainer": "/usr/bin/apptainer", "squashfuse_ll": "/x", "gocryptfs": "/y"})
			require.NoError(t, os.Symlink("/dev/null", filepath.Join(env.Dev, "fuse")))
			writeSysctl(t, env.Proc, map[string]string{"user/max_user_namespaces": "100"})
			env.Listen = func(string) (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }
			var asked []string
			env.TryImage = func(_ context.Context, _ config.Config, user, image string) (string, string, error) {
				asked = append(asked, user+" "+image)
				return "/img", tc.out, tc.err
			}
			var out strings.Builder
			require.Equal(t, tc.wantExit, runDoctor(context.Background(), &out, env, tc.opt), out.String())
			require.Contains(t, out.String(), tc.want)
			if tc.opt.User != "" {
				require.Equal(t, []string{"alice debian:12-slim"}, asked)
			}
		})
	}
}

func TestCheckKubernetes(t *testing.T) {
	cfg := config.Config{Backends: []string{"local", "kubernetes"}, KubernetesNamespace: "reana", KubernetesClaim: "ws"}
	cases := []struct {
		name string
		err  error
		want string
	}{
		{"admitted", nil, "ok: kubernetes: namespace reana would admit a step pod, and claim ws is bound"},
		{"refused", errors.New(`preflight: pods "p" is forbidden: violates PodSecurity "restricted:latest"`),
			`problem: kubernetes: preflight: pods "p" is forbidden: violates PodSecurity "restricted:latest"`},
		{"the backend's own prefix is not repeated", errors.Join(
			errors.New(`kubernetes: the workspace volume claim "ws" does not exist in namespace reana`),
			errors.New(`kubernetes: preflight: refused`)),
			"problem: kubernetes: the workspace volume claim \"ws\" does not exist in namespace reana\npreflight: refused"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := fakeEnv(t, nil)
			env.KubePreflight = func(context.Context, config.Config) error { return tc.err }
			require.Equal(t, tc.want, env.checkKubernetes(context.Background(), cfg).String())
		})
	}
}
