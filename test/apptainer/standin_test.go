//go:build e2e

// Package apptainer_test checks the Apptainer stand-in (test/apptainer/apptainer)
// that the container tests use in place of Apptainer: it must run a command
// in an unpacked image as the calling user, show only what was bound, and
// refuse what it does not emulate the way Apptainer refuses things
// ("FATAL:   ..." on stderr, exit 255). It is built only with the e2e tag,
// as root, after test/setup.sh (which writes .cache/setup.env).
package apptainer_test

import (
	"bufio"
	"bytes"
	"errors"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/reana-site/reana-site/test/harness"
)

type setup struct {
	standin, image, registry string
	// real is the real Apptainer when test/setup.sh installed it (see
	// harness.ChooseApptainer), sif a SIF file of the test image; both
	// may be empty.
	real, sif string
}

func load(t *testing.T) setup {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("must run as root: the tests act as the test user alice")
	}
	f, err := os.Open(filepath.Join("..", "..", ".cache", "setup.env"))
	if err != nil {
		t.Fatalf("read .cache/setup.env (run test/setup.sh first): %v", err)
	}
	defer f.Close()
	vars := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "="); ok {
			vars[k] = v
		}
	}
	s := setup{standin: vars["APPTAINER_STANDIN"], image: filepath.Join(vars["IMAGES_DIR"], "debian-12-slim"),
		registry: filepath.Join(vars["IMAGES_DIR"], "unpacked")}
	if s.standin == "" || vars["IMAGES_DIR"] == "" {
		t.Fatal(".cache/setup.env lacks APPTAINER_STANDIN or IMAGES_DIR: run test/setup.sh")
	}
	// The stand-in under test is the one beside this file, not the one of
	// the checkout that ran test/setup.sh (.cache may be shared).
	own, err := filepath.Abs("apptainer")
	if err != nil {
		t.Fatal(err)
	}
	s.standin = own
	a := harness.ChooseApptainer(filepath.Join("..", ".."), vars, os.Getenv("REANA_SITE_TEST_APPTAINER"))
	s.real, s.sif = a.RealApptainer, a.SIF
	return s
}

// userDir makes a fresh directory owned by name in its home.
func userDir(t *testing.T, name string) string {
	t.Helper()
	u, err := user.Lookup(name)
	if err != nil {
		t.Fatalf("test user %s: %v (run test/setup.sh)", name, err)
	}
	dir, err := os.MkdirTemp(u.HomeDir, ".standin-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	if err := os.Chown(dir, uid, gid); err != nil {
		t.Fatal(err)
	}
	return dir
}

type result struct {
	stdout, stderr string
	code           int
}

// run runs argv as user (root when user is ""), from dir, with extra env.
func run(t *testing.T, user, dir string, env []string, argv ...string) result {
	t.Helper()
	full := argv
	if user != "" {
		full = append([]string{"setpriv", "--reuid=" + user, "--regid=" + user, "--init-groups", "--reset-env", "env"}, env...)
		full = append(full, argv...)
	}
	cmd := exec.Command(full[0], full[1:]...)
	cmd.Dir = dir
	if user == "" {
		cmd.Env = append(os.Environ(), env...)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		t.Fatalf("run %v: %v", full, err)
	}
	return r
}

func wantOK(t *testing.T, r result) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("exit %d, want 0\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
}

func wantFatal(t *testing.T, r result, substr string) {
	t.Helper()
	if r.code != 255 || !strings.HasPrefix(r.stderr, "FATAL:   ") || !strings.Contains(r.stderr, substr) {
		t.Fatalf("want exit 255 and stderr \"FATAL:   ...%s...\"; got exit %d\nstderr: %s", substr, r.code, r.stderr)
	}
}

func TestVersion(t *testing.T) {
	s := load(t)
	r := run(t, "alice", "/", nil, s.standin, "--version")
	wantOK(t, r)
	if r.stdout != "apptainer version 1.3.4-standin\n" {
		t.Fatalf("--version printed %q", r.stdout)
	}
}

func TestRunsInImageAsUser(t *testing.T) {
	s := load(t)
	ws := userDir(t, "alice")
	r := run(t, "alice", "/", nil, s.standin, "exec", "--cleanenv", "--pwd", "/work", "--bind", ws+":/work",
		s.image, "bash", "-c", "id -un; id -u; pwd; cat /etc/debian_version; echo hi > out.txt; exit 3")
	if r.code != 3 {
		t.Fatalf("exit %d, want the payload's 3\nstderr: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	want, _ := os.ReadFile(filepath.Join(s.image, "etc", "debian_version"))
	if len(lines) != 4 || lines[0] != "alice" || lines[1] != "4101" || lines[2] != "/work" || lines[3] != strings.TrimSpace(string(want)) {
		t.Fatalf("inside the container: %q", lines)
	}
	fi, err := os.Stat(filepath.Join(ws, "out.txt"))
	if err != nil {
		t.Fatal(err)
	}
	u, _ := user.Lookup("alice")
	if st := fi.Sys().(*syscall.Stat_t); strconv.Itoa(int(st.Uid)) != u.Uid || strconv.Itoa(int(st.Gid)) != u.Gid {
		t.Fatalf("out.txt is owned by %d:%d, want alice's %s:%s", st.Uid, st.Gid, u.Uid, u.Gid)
	}
}

func TestUnboundPathsInvisible(t *testing.T) {
	s := load(t)
	ws := userDir(t, "alice")
	bobDir := userDir(t, "bob")
	r := run(t, "alice", "/", nil, s.standin, "exec", "--cleanenv", "--no-home", "--pwd", "/work", "--bind", ws+":/work",
		s.image, "sh", "-c", "for p in "+bobDir+" /home/bob /home/alice /usr/bin/bwrap /etc/slurm "+ws+"; do "+
			"if [ -e $p ]; then echo visible $p; fi; done; touch /etc/x 2>/dev/null && echo wrote /etc/x; true")
	wantOK(t, r)
	if strings.TrimSpace(r.stdout) != "" {
		t.Fatalf("host paths that were not bound are visible or writable:\n%s", r.stdout)
	}
}

func TestReadOnlyBind(t *testing.T) {
	s := load(t)
	ws := userDir(t, "alice")
	r := run(t, "alice", "/", nil, s.standin, "exec", "--cleanenv", "--bind", ws+":/data:ro", "--pwd", "/data",
		s.image, "touch", "/data/nope")
	if r.code == 0 || !strings.Contains(r.stderr, "Read-only file system") {
		t.Fatalf("write to a :ro bind: exit %d, stderr %s", r.code, r.stderr)
	}
	if _, err := os.Stat(filepath.Join(ws, "nope")); err == nil {
		t.Fatal("file written through a :ro bind")
	}
}

// TestCleanenv checks what reaches the payload with --cleanenv, and that
// SINGULARITYENV_/APPTAINERENV_/--env variables arrive only in images whose
// /.singularity.d/env has 99-base.sh, after which Apptainer injects them
// (the test image has env scripts but no 99-base.sh). Each case runs
// against the stand-in and, when installed, the real Apptainer.
func TestCleanenv(t *testing.T) {
	s := load(t)
	progs := map[string]string{"standin": s.standin}
	if s.real != "" {
		progs["apptainer"] = s.real
	}
	images := map[string]struct {
		path   string
		inject bool
	}{
		"no 99-base.sh":   {s.image, false},
		"with 99-base.sh": {imageWithBase(t, s.image), true},
	}
	env := []string{"SECRET_HOST_VAR=1", "APPTAINERENV_FROM_PREFIX=p"}
	for pname, prog := range progs {
		for iname, img := range images {
			t.Run(pname+"/"+iname, func(t *testing.T) {
				r := run(t, "alice", "/", env, prog, "exec", "--cleanenv", "--no-home", "--env", "STEP=fit", "--env", "A=1,B=2",
					img.path, "env")
				wantOK(t, r)
				got := map[string]string{}
				for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
					k, v, _ := strings.Cut(l, "=")
					got[k] = v
				}
				want := map[string]string{"LANG": "C",
					"PATH": "/opt/reana-test/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/home/alice",
					"APPTAINER_CONTAINER": img.path}
				for _, k := range []string{"STEP", "A", "B", "FROM_PREFIX"} {
					want[k] = ""
				}
				if img.inject {
					want["STEP"], want["A"], want["B"], want["FROM_PREFIX"] = "fit", "1", "2", "p"
				}
				for k, v := range want {
					if got[k] != v {
						t.Errorf("%s=%q inside, want %q", k, got[k], v)
					}
				}
				if _, ok := got["SECRET_HOST_VAR"]; ok {
					t.Error("--cleanenv passed a host variable")
				}
			})
		}
	}
	// Without --cleanenv host variables pass, but never the host PATH.
	r := run(t, "alice", "/", env, s.standin, "exec", "--no-home", s.image, "env")
	wantOK(t, r)
	if !strings.Contains(r.stdout, "SECRET_HOST_VAR=1\n") {
		t.Error("without --cleanenv a host variable did not pass")
	}
}

// imageWithBase is a copy of the image tree (hard links, so it is quick
// and small) whose /.singularity.d/env also has an empty 99-base.sh, as
// images built by Apptainer have.
func imageWithBase(t *testing.T, image string) string {
	t.Helper()
	dir, err := os.MkdirTemp(filepath.Dir(image), ".with-base-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	copied := filepath.Join(dir, "image")
	if out, err := exec.Command("cp", "-al", image, copied).CombinedOutput(); err != nil {
		t.Fatalf("cp -al %s: %v: %s", image, err, out)
	}
	if err := os.WriteFile(filepath.Join(copied, ".singularity.d", "env", "99-base.sh"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	return copied
}

func TestRefusals(t *testing.T) {
	s := load(t)
	ws := userDir(t, "alice")
	sif := filepath.Join(ws, "img.sif")
	if err := os.WriteFile(sif, []byte("not really a SIF"), 0o644); err != nil {
		t.Fatal(err)
	}
	a := func(args ...string) []string { return append([]string{s.standin}, args...) }
	for _, c := range []struct {
		name string
		argv []string
		want string
	}{
		{"writable-tmpfs", a("exec", "--writable-tmpfs", s.image, "true"), "not supported by the test stand-in"},
		{"fakeroot", a("exec", "--fakeroot", s.image, "true"), "not supported by the test stand-in"},
		{"not a sif", a("exec", sif, "true"), "image format not recognized"},
		{"missing image", a("exec", filepath.Join(ws, "none"), "true"), "could not open image"},
		{"docker offline", a("exec", "docker://python:3.12-slim", "true"), "failed to get checksum"},
		{"pull offline", a("pull", filepath.Join(ws, "p.sif"), "docker://python:3.12-slim"), "While making image from oci registry"},
		{"missing bind source", a("exec", "-B", "/nonexistent:/x", s.image, "true"), "mount source /nonexistent doesn't exist"},
		{"missing pwd", a("exec", "--pwd", "/nonexistent", s.image, "true"), "failed to set working directory"},
		{"command not found", a("exec", s.image, "nosuchcmd"), `"nosuchcmd": executable file not found in $PATH`},
		{"run command", a("run", s.image), "not supported by the test stand-in"},
	} {
		t.Run(c.name, func(t *testing.T) { wantFatal(t, run(t, "alice", "/", nil, c.argv...), c.want) })
	}
	// A flag Apptainer does not have at all is a CLI parse error: exit 1.
	r := run(t, "alice", "/", nil, s.standin, "exec", "--no-such-flag", s.image, "true")
	if r.code != 1 || !strings.Contains(r.stderr, `Error for command "exec": unknown flag: --no-such-flag`) {
		t.Fatalf("unknown flag: exit %d, stderr %s", r.code, r.stderr)
	}
	// APPTAINER_* variables would act as flags in real Apptainer.
	wantFatal(t, run(t, "alice", "/", []string{"APPTAINER_BIND=/tmp"}, s.standin, "exec", s.image, "true"), "APPTAINER_BIND")
	// --nv: a warning, then the run goes on.
	r = run(t, "alice", "/", nil, s.standin, "exec", "--nv", s.image, "true")
	wantOK(t, r)
	if !strings.Contains(r.stderr, "WARNING: Could not find any nv files on this host!") {
		t.Fatalf("--nv stderr: %s", r.stderr)
	}
}

func TestRootRefused(t *testing.T) {
	s := load(t)
	wantFatal(t, run(t, "", "/", nil, s.standin, "exec", s.image, "true"), "refusing to run as root")
}

func TestPullSandboxOnce(t *testing.T) {
	s := load(t)
	ws := userDir(t, "alice")
	log := filepath.Join(ws, "pulls.log")
	env := []string{"REANA_STANDIN_REGISTRY=" + s.registry, "REANA_STANDIN_PULL_LOG=" + log}
	dest := filepath.Join(ws, "debian_12-slim")
	r := run(t, "alice", "/", env, s.standin, "pull", "--sandbox", dest, "docker://debian:12-slim")
	wantOK(t, r)
	if !strings.Contains(r.stderr, "INFO:    Converting OCI blobs to SIF format") {
		t.Errorf("pull progress: %s", r.stderr)
	}
	wantFatal(t, run(t, "alice", "/", env, s.standin, "pull", "--sandbox", dest, "docker://debian:12-slim"), "Image file already exists")
	wantOK(t, run(t, "alice", "/", nil, s.standin, "exec", "--no-home", dest, "awk", "BEGIN { exit 0 }"))
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(b), " start\n"); n != 1 {
		t.Fatalf("pull log has %d pull attempts, want 1:\n%s", n, b)
	}
}

// TestSignals: a SIGTERM to apptainer reaches the payload, whose TERM trap
// runs (real Apptainer passes it on); the payload's children outlive it
// unless --pid gave the step a PID namespace, which ends with the payload.
func TestSignals(t *testing.T) {
	s := load(t)
	for _, c := range []struct {
		name     string
		flags    []string
		leftOver int
	}{
		{"no pid namespace", nil, 2},
		{"pid namespace", []string{"--pid"}, 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			marker := "3600." + strconv.Itoa(os.Getpid()) + strconv.Itoa(len(c.flags))
			argv := append([]string{"setpriv", "--reuid=alice", "--regid=alice", "--init-groups", "--reset-env",
				s.standin, "exec", "--cleanenv", "--no-home"}, c.flags...)
			argv = append(argv, s.image, "/bin/sh", "-c", "trap 'echo trapped; exit 5' TERM; sleep "+marker+" & sleep "+marker+" & wait")
			cmd := exec.Command(argv[0], argv[1:]...)
			// A file, not a pipe: the children left over would hold a pipe
			// open and keep Wait waiting.
			out, err := os.CreateTemp(t.TempDir(), "stdout")
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stdout = out
			cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				for _, p := range harness.MarkedPIDs(marker) {
					_ = syscall.Kill(p, syscall.SIGKILL)
				}
			})
			deadline := time.Now().Add(20 * time.Second)
			for len(harness.MarkedPIDs(marker)) < 2 {
				if time.Now().After(deadline) {
					t.Fatal("the payload did not start")
				}
				time.Sleep(50 * time.Millisecond)
			}
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Fatal(err)
			}
			err = cmd.Wait()
			stdout, _ := os.ReadFile(out.Name())
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 5 || string(stdout) != "trapped\n" {
				t.Fatalf("after SIGTERM: %v, stdout %q; want exit 5 from the payload's trap", err, stdout)
			}
			time.Sleep(300 * time.Millisecond)
			if n := len(harness.MarkedPIDs(marker)); n != c.leftOver {
				t.Fatalf("%d of the payload's children are left, want %d", n, c.leftOver)
			}
		})
	}
}

// sharedTempDir is a temporary directory the test users can read
// (t.TempDir's parent is root's alone).
func sharedTempDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "standin-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

// programs are the stand-in and, when installed, the real Apptainer,
// whose behaviour the stand-in's is checked against side by side.
func programs(s setup) map[string]string {
	out := map[string]string{"standin": s.standin}
	if s.real != "" {
		out["apptainer"] = s.real
	}
	return out
}

// TestImageEnvironment: the image's /.singularity.d/env scripts apply
// (test/images/image-env.sh gives the test image one), the host's
// resolv.conf is bound over the image's, no LD_LIBRARY_PATH is set for a
// sandbox without /.singularity.d, and ~/.apptainer is made (0700) in the
// host home even with --no-home; all as real Apptainer 1.4.5 does.
func TestImageEnvironment(t *testing.T) {
	s := load(t)
	if _, err := os.Stat(filepath.Join(s.image, ".singularity.d", "env", "90-environment.sh")); err != nil {
		t.Fatalf("the test image has no environment script (run test/setup.sh, which runs test/images/image-env.sh): %v", err)
	}
	// The same image without /.singularity.d.
	bare := filepath.Join(sharedTempDir(t), "bare")
	if out, err := exec.Command("cp", "-a", s.image+"/.", bare).CombinedOutput(); err != nil {
		t.Fatalf("copy the image: %v: %s", err, out)
	}
	if err := os.RemoveAll(filepath.Join(bare, ".singularity.d")); err != nil {
		t.Fatal(err)
	}
	hostResolv, err := os.ReadFile("/etc/resolv.conf")
	if err != nil {
		t.Fatal(err)
	}
	u, _ := user.Lookup("alice")
	for name, prog := range programs(s) {
		t.Run(name, func(t *testing.T) {
			_ = os.RemoveAll(filepath.Join(u.HomeDir, ".apptainer"))
			r := run(t, "alice", "/", nil, prog, "exec", "--cleanenv", "--no-home", "--pwd", "/", s.image,
				"sh", "-c", `echo "PATH=$PATH"; echo "LD_LIBRARY_PATH=$LD_LIBRARY_PATH"; echo "IMG=$REANA_TEST_IMAGE_ENV"; reana-test-tool; cat /etc/resolv.conf`)
			wantOK(t, r)
			for _, want := range []string{"PATH=/opt/reana-test/bin:/usr/local/sbin:", "LD_LIBRARY_PATH=/opt/reana-test/lib\n",
				"IMG=1\n", "reana-test-tool\n", string(hostResolv)} {
				if !strings.Contains(r.stdout, want) {
					t.Errorf("inside the image, want %q in:\n%s", want, r.stdout)
				}
			}
			fi, err := os.Stat(filepath.Join(u.HomeDir, ".apptainer"))
			if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o700 {
				t.Errorf("~/.apptainer after an exec with --no-home: %v %v", fi, err)
			}

			r = run(t, "alice", "/", nil, prog, "exec", "--cleanenv", "--no-home", "--pwd", "/", bare, "env")
			wantOK(t, r)
			if strings.Contains(r.stdout, "LD_LIBRARY_PATH=") || strings.Contains(r.stdout, "REANA_TEST_IMAGE_ENV") {
				t.Errorf("a sandbox without /.singularity.d got an image environment:\n%s", r.stdout)
			}
		})
	}
}

// TestSIF: a SIF file runs; without squashfuse it is unpacked into a
// temporary sandbox first. The SIF is the one test/setup.sh built with
// the real Apptainer, so the test needs it to have been installed.
func TestSIF(t *testing.T) {
	s := load(t)
	if s.sif == "" {
		t.Skip("no SIF of the test image: test/setup.sh builds one with the real Apptainer")
	}
	sif := s.sif
	for name, prog := range programs(s) {
		t.Run(name, func(t *testing.T) {
			r := run(t, "alice", "/", nil, prog, "exec", "--cleanenv", "--no-home", "--pwd", "/", sif,
				"sh", "-c", `cat /etc/debian_version; echo "IMG=$REANA_TEST_IMAGE_ENV"; exit 4`)
			if r.code != 4 || !strings.Contains(r.stdout, "IMG=1") {
				t.Fatalf("exit %d, want the payload's 4, and the image's environment\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
			}
			if _, err := exec.LookPath("squashfuse_ll"); err != nil && !strings.Contains(r.stderr, "Converting SIF file to temporary sandbox") {
				t.Errorf("without squashfuse the SIF is unpacked first; stderr:\n%s", r.stderr)
			}
		})
	}
}
