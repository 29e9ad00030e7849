//go:build e2e

package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/test/harness"
)

// containerDaemon runs steps in their images through the Apptainer stand-in
// (test/apptainer), finding images in the unpacked (CVMFS-style) tree that
// test/images/build.sh made; this site does not pull.
func containerDaemon(t *testing.T, slurm bool, extraEnv ...string) (*Daemon, *User) {
	t.Helper()
	if env.Apptainer == "" || env.Images == "" {
		t.Skip("no Apptainer stand-in or test images: run test/setup.sh")
	}
	backends := "local"
	if slurm {
		harness.EnsureSlurm(t, env.Repo)
		backends = "local,slurm"
	}
	d := StartDaemon(t, append([]string{
		"REANA_SITE_BACKENDS=" + backends,
		"REANA_SITE_CONTAINERS=apptainer",
		"REANA_SITE_APPTAINER=" + env.Apptainer,
		"REANA_SITE_IMAGE_UNPACKED_ROOTS=" + filepath.Join(env.Images, "unpacked"),
		"REANA_SITE_IMAGE_PULL=false",
	}, extraEnv...)...)
	return d, d.AddUser(t, "alice")
}

func TestContainersRoot6FitInImages(t *testing.T) {
	for _, tt := range []struct {
		backend, file string
	}{
		{"local", "reana.yaml"},
		{"slurm", "reana-slurm.yaml"},
	} {
		t.Run(tt.backend, func(t *testing.T) {
			d, alice := containerDaemon(t, tt.backend == "slurm")
			dir := alice.WorkDir(t, "root6-fit")
			alice.MustClient(t, dir, "run", "-w", "boxed", "-f", tt.file, "-p", "events=1000")
			wf := alice.WaitStatus(t, "boxed.1", 3*time.Minute, "finished")
			logs := alice.Logs(t, "boxed.1")
			assert.Contains(t, logs, "running in image")
			assert.Contains(t, logs, "debian:12-slim")

			assertDownloadedPlot(t, alice, dir, "boxed.1", "1000")
			assertOwnedBy(t, d.WorkspaceOf(alice, wf.ID), alice)
		})
	}
}

func TestContainersSeeOnlyWhatIsBound(t *testing.T) {
	d, alice := containerDaemon(t, false)
	dir := alice.WorkDir(t, "container-probe")
	alice.MustClient(t, dir, "run", "-w", "probe")
	wf := alice.WaitStatus(t, "probe.1", 2*time.Minute, "finished")
	ws := d.WorkspaceOf(alice, wf.ID)

	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(ws, name))
		require.NoError(t, err)
		return strings.TrimSpace(string(b))
	}
	assert.Equal(t, "alice", read("who.txt"), "the step runs as the user inside the container")
	assert.Equal(t, "image", read("where.txt"), "the step sees the image's system, not the host's")
	home := read("home.txt")
	assert.NotContains(t, home, ".bashrc", "bob's home must not be visible: %s", home)
	assert.Contains(t, home, "No such file", "bob's home must not exist in the container: %s", home)

	st, err := os.Stat(filepath.Join(ws, "made-inside.txt"))
	require.NoError(t, err)
	assert.Equal(t, uint32(alice.UID), st.Sys().(*syscall.Stat_t).Uid, "a file made in the container is the user's on the host")
}

func TestContainersMissingImageRefusedAtStart(t *testing.T) {
	d, alice := containerDaemon(t, false)
	dir := alice.WorkDir(t, "container-probe")
	out, code := alice.Client(t, dir, "run", "-w", "noimage", "-f", "reana-missing.yaml")
	assert.NotZero(t, code, out)
	assert.Contains(t, out, "no-such-image")

	var st struct {
		Message string `json:"message"`
	}
	code = d.JSON(t, "POST", "/api/workflows/noimage.1/start", alice.Token, map[string]any{}, &st)
	assert.Equal(t, http.StatusBadRequest, code)
	assert.Contains(t, st.Message, "not found")
	w, _ := alice.Status(t, "noimage.1")
	assert.Equal(t, "created", w.Status, "nothing was submitted")
}

// TestContainersPullOncePerImage: three workflows start together and need
// the same image, which is in no cache; the daemon pulls it once, as the
// user, and all three run in it.
func TestContainersPullOncePerImage(t *testing.T) {
	if env.Apptainer == "" || env.Images == "" {
		t.Skip("no Apptainer stand-in or test images: run test/setup.sh")
	}
	// The stand-in "pulls" from the unpacked test images; a wrapper hands
	// it that registry and a log of pulls (helpers get a clean environment).
	dir, err := os.MkdirTemp("", "reana-pull-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o777|os.ModeSticky))
	pullLog := filepath.Join(dir, "pulls.log")
	wrapper := filepath.Join(dir, "apptainer")
	require.NoError(t, os.WriteFile(wrapper, []byte("#!/bin/sh\n"+
		"REANA_STANDIN_REGISTRY="+filepath.Join(env.Images, "unpacked")+" REANA_STANDIN_PULL_LOG="+pullLog+" REANA_STANDIN_PULL_DELAY=2 "+
		"exec "+env.Apptainer+" \"$@\"\n"), 0o755))

	d := StartDaemon(t,
		"REANA_SITE_CONTAINERS=apptainer",
		"REANA_SITE_APPTAINER="+wrapper,
		"REANA_SITE_IMAGE_CACHE={home}/.reana-e2e/"+env.RunID+"-images-"+harness.RandomHex(3),
		"REANA_SITE_IMAGE_ORDER=cache,pull",
		"REANA_SITE_IMAGE_PULL=true",
	)
	alice := d.AddUser(t, "alice")
	src := alice.WorkDir(t, "container-probe")
	names := []string{"pull-a", "pull-b", "pull-c"}
	for _, n := range names {
		alice.MustClient(t, src, "create", "-w", n)
		alice.MustClient(t, src, "upload", "-w", n+".1")
	}
	for _, n := range names {
		st := d.JSON(t, "POST", "/api/workflows/"+n+".1/start", alice.Token, map[string]any{}, nil)
		require.Equal(t, http.StatusOK, st)
	}
	for _, n := range names {
		alice.WaitStatus(t, n+".1", 3*time.Minute, "finished")
	}
	b, err := os.ReadFile(pullLog)
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(string(b), " start\n"), "one pull for the image, whatever the number of steps waiting:\n%s", b)
	assert.Contains(t, string(b), "uid=4101", "the user pulls, not the daemon")
	assert.Contains(t, alice.Logs(t, "pull-a.1")+alice.Logs(t, "pull-b.1")+alice.Logs(t, "pull-c.1"), "pulling image")
}

// TestDoctor runs `reana-site doctor` as an admin would after installing:
// a healthy setup passes; a broken one names each problem on its own line
// and exits 1.
func TestDoctor(t *testing.T) {
	if env.Apptainer == "" || env.Images == "" {
		t.Skip("no Apptainer stand-in or test images: run test/setup.sh")
	}
	harness.EnsureSlurm(t, env.Repo)
	doctor := func(vars ...string) (string, error) {
		base := []string{"env", "REANA_SITE_STATE_DIR=" + t.TempDir(), "REANA_SITE_LISTEN=127.0.0.1:0",
			"REANA_SITE_BACKENDS=local,slurm", "REANA_SITE_CONTAINERS=apptainer", "REANA_SITE_IMAGE_PULL=false"}
		return execCombined(append(append(base, vars...), env.Bin, "doctor")...)
	}
	out, err := doctor("REANA_SITE_APPTAINER="+env.Apptainer, "REANA_SITE_IMAGE_UNPACKED_ROOTS="+filepath.Join(env.Images, "unpacked"))
	require.NoError(t, err, "a healthy setup must pass:\n%s", out)
	assert.NotContains(t, out, "problem:")
	assert.Contains(t, out, "ok: apptainer")
	assert.Contains(t, out, "ok: slurm: sbatch")
	assert.Regexp(t, `(?m)^(ok|warning): sif: squashfuse_ll`, out)

	// -image runs the image as the user, through the helper, as a step.
	for name, prog := range apptainers(t) {
		out, err := execCombined("env", "REANA_SITE_STATE_DIR="+t.TempDir(), "REANA_SITE_LISTEN=127.0.0.1:0",
			"REANA_SITE_CONTAINERS=apptainer", "REANA_SITE_IMAGE_PULL=false", "REANA_SITE_APPTAINER="+prog,
			"REANA_SITE_IMAGE_UNPACKED_ROOTS="+filepath.Join(env.Images, "unpacked"),
			env.Bin, "doctor", "-image", "debian:12-slim", "-user", "alice")
		require.NoError(t, err, "%s: the image must run as alice:\n%s", name, out)
		assert.Regexp(t, `(?m)^(ok|warning): image: debian:12-slim \(.*\) runs as alice`, out, name)
	}
	out, err = execCombined("env", "REANA_SITE_STATE_DIR="+t.TempDir(), "REANA_SITE_LISTEN=127.0.0.1:0",
		"REANA_SITE_CONTAINERS=apptainer", "REANA_SITE_IMAGE_PULL=false", "REANA_SITE_APPTAINER="+env.Apptainer,
		env.Bin, "doctor", "-image", "debian:12-slim", "-user", "alice")
	require.Error(t, err, "an image that is nowhere is a problem:\n%s", out)
	assert.Contains(t, out, "problem: image: debian:12-slim as alice")

	shared := t.TempDir()
	require.NoError(t, os.Chmod(shared, 0o777))
	out, err = doctor("REANA_SITE_APPTAINER=/nonexistent/apptainer", "REANA_SITE_IMAGE_CACHE="+shared, "REANA_SITE_SLURM_BIN_DIR=/nonexistent")
	require.Error(t, err)
	var exitErr interface{ ExitCode() int }
	require.ErrorAs(t, err, &exitErr)
	assert.Equal(t, 1, exitErr.ExitCode())
	for _, want := range []string{"problem: apptainer", "problem: image cache", "problem: slurm: sbatch"} {
		assert.Contains(t, out, want)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		assert.Regexp(t, `^(ok|warning|problem): `, line, "one line per check")
	}
}

// TestContainersPullFromRegistry: a step whose image is in no cache is
// pulled by the real Apptainer, as the user, from a real OCI registry
// (docker-registry on 127.0.0.1, the test image pushed with skopeo), and
// Apptainer's blobs land in the pull cache beside the images, the user's
// own, not in ~/.apptainer/cache.
func TestContainersPullFromRegistry(t *testing.T) {
	if env.Images == "" {
		t.Skip("no test images: run test/setup.sh")
	}
	if _, err := os.Stat(realApptainer); err != nil {
		t.Skip("pulls from a registry need the real Apptainer kit at " + realApptainer)
	}
	reg := harness.StartRegistry(t)
	ref := reg.Push(t, filepath.Join(env.Images, "debian-12-slim"), "library/debian:12-slim")

	// The registry speaks plain HTTP: a wrapper adds --no-https to pulls
	// (the daemon itself never does).
	dir, err := os.MkdirTemp("", "reana-pull-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	wrapper := filepath.Join(dir, "apptainer")
	require.NoError(t, os.WriteFile(wrapper, []byte("#!/bin/sh\n"+
		`if [ "$1" = pull ]; then shift; exec `+realApptainer+` pull --no-https "$@"; fi`+"\n"+
		"exec "+realApptainer+" \"$@\"\n"), 0o755))

	cacheRel := ".reana-e2e/" + env.RunID + "-images-" + harness.RandomHex(3)
	d := StartDaemon(t,
		"REANA_SITE_CONTAINERS=apptainer",
		"REANA_SITE_APPTAINER="+wrapper,
		"REANA_SITE_IMAGE_CACHE={home}/"+cacheRel,
		"REANA_SITE_IMAGE_ORDER=cache,pull",
		"REANA_SITE_IMAGE_PULL=true",
	)
	alice := d.AddUser(t, "alice")
	src := alice.WorkDir(t, "container-probe")
	spec, err := os.ReadFile(filepath.Join(src, "reana.yaml"))
	require.NoError(t, err)
	patched := strings.Replace(string(spec), "docker.io/library/debian:12-slim", ref, 1)
	require.NotEqual(t, string(spec), patched)
	out, code := alice.Run(t, src, nil, "sh", "-c", `printf '%s' "$1" > reana.yaml`, "sh", patched)
	require.Zero(t, code, out)

	alice.MustClient(t, src, "run", "-w", "pulled")
	wf := alice.WaitStatus(t, "pulled.1", 5*time.Minute, "finished", "failed")
	logs := alice.Logs(t, "pulled.1")
	require.Equal(t, "finished", wf.Status, logs)
	assert.Contains(t, logs, "pulling image docker://"+ref)

	cache := filepath.Join(alice.Home, cacheRel)
	pullCache := filepath.Join(cache, ".apptainer-cache-"+strconv.Itoa(alice.UID))
	st, err := os.Stat(pullCache)
	require.NoError(t, err, "the pull cache beside the images")
	assert.Equal(t, os.FileMode(0o700), st.Mode().Perm())
	assert.Equal(t, uint32(alice.UID), st.Sys().(*syscall.Stat_t).Uid)
	blobs, _ := filepath.Glob(filepath.Join(pullCache, "cache", "blob", "blobs", "sha256", "*"))
	assert.NotEmpty(t, blobs, "Apptainer's blobs are in the pull cache")
	sifs, _ := filepath.Glob(filepath.Join(cache, "*.sif"))
	assert.Len(t, sifs, 1, "the image is in the image cache")
}
