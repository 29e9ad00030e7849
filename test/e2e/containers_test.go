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

	"github.com/reana-site/reana-site/containers"
	"github.com/reana-site/reana-site/test/harness"
)

// containerDaemon runs steps in their images through Apptainer (the real
// one when installed, else the stand-in of test/apptainer), finding images
// in the unpacked (CVMFS-style) tree that test/images/build.sh made; this
// site does not pull.
func containerDaemon(t *testing.T, slurm bool, extraEnv ...string) (*Daemon, *User) {
	t.Helper()
	prog := apptainer(t)
	backends := "local"
	if slurm {
		harness.EnsureSlurm(t, env.Repo)
		backends = "local,slurm"
	}
	d := StartDaemon(t, append([]string{
		"REANA_SITE_BACKENDS=" + backends,
		"REANA_SITE_CONTAINERS=apptainer",
		"REANA_SITE_APPTAINER=" + prog,
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

	// The image's /.singularity.d/env (test/images/image-env.sh) sets PATH,
	// and a step's command is found through it.
	assert.True(t, strings.HasPrefix(read("path.txt"), "/opt/reana-test/bin:"), "PATH from the image's environment: %s", read("path.txt"))
	assert.Equal(t, "reana-test-tool", read("tool.txt"), "a command only on the image's PATH")
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
// user, and all three run in it. With the real Apptainer the pull is from
// a real OCI registry (docker-registry on 127.0.0.1, the test image pushed
// with skopeo), and Apptainer's blobs land in the pull cache beside the
// images, the user's own, not in ~/.apptainer/cache.
func TestContainersPullOncePerImage(t *testing.T) {
	src := newPullSource(t)
	cacheRel := ".reana-e2e/" + env.RunID + "-images-" + harness.RandomHex(3)
	d := StartDaemon(t,
		"REANA_SITE_CONTAINERS=apptainer",
		"REANA_SITE_APPTAINER="+src.apptainer,
		"REANA_SITE_IMAGE_CACHE={home}/"+cacheRel,
		"REANA_SITE_IMAGE_ORDER=cache,pull",
		"REANA_SITE_IMAGE_PULL=true",
	)
	alice := d.AddUser(t, "alice")
	dir := alice.WorkDir(t, "container-probe")
	src.patchSpec(t, alice, dir)
	names := []string{"pull-a", "pull-b", "pull-c"}
	for _, n := range names {
		alice.MustClient(t, dir, "create", "-w", n)
		alice.MustClient(t, dir, "upload", "-w", n+".1")
	}
	for _, n := range names {
		st := d.JSON(t, "POST", "/api/workflows/"+n+".1/start", alice.Token, map[string]any{}, nil)
		require.Equal(t, http.StatusOK, st)
	}
	var logs string
	for _, n := range names {
		wf := alice.WaitStatus(t, n+".1", 5*time.Minute, "finished", "failed")
		l := alice.Logs(t, n+".1")
		require.Equal(t, "finished", wf.Status, l)
		logs += l
		tool, err := os.ReadFile(filepath.Join(d.WorkspaceOf(alice, wf.ID), "tool.txt"))
		require.NoError(t, err)
		assert.Equal(t, "reana-test-tool\n", string(tool), "the pulled image's PATH applies")
	}
	b, err := os.ReadFile(src.log)
	require.NoError(t, err)
	assert.Equal(t, 1, strings.Count(string(b), " start\n"), "one pull for the image, whatever the number of steps waiting:\n%s", b)
	assert.Contains(t, string(b), "uid=4101", "the user pulls, not the daemon")
	assert.Contains(t, logs, "pulling image docker://"+src.ref)

	cache := filepath.Join(alice.Home, cacheRel)
	sifs, _ := filepath.Glob(filepath.Join(cache, "*.sif"))
	assert.Len(t, sifs, 1, "the image is in the image cache")
	if env.RealApptainer == "" {
		return
	}
	pullCache := filepath.Join(cache, ".apptainer-cache-"+strconv.Itoa(alice.UID))
	st, err := os.Stat(pullCache)
	require.NoError(t, err, "the pull cache beside the images")
	assert.Equal(t, os.FileMode(0o700), st.Mode().Perm())
	assert.Equal(t, uint32(alice.UID), st.Sys().(*syscall.Stat_t).Uid)
	blobs, _ := filepath.Glob(filepath.Join(pullCache, "cache", "blob", "blobs", "sha256", "*"))
	assert.NotEmpty(t, blobs, "Apptainer's blobs are in the pull cache")
}

// pullSource is where a pull test's image comes from, and the apptainer
// the daemon runs: a wrapper that logs each pull with the uid that runs
// it (helpers get a clean environment, so the wrapper carries what the
// test sets).
type pullSource struct {
	apptainer, log string
	// ref is the image as the workflow names it.
	ref string
}

// newPullSource: with the real Apptainer, a real OCI registry that the
// test image is pushed to, and a wrapper that adds --no-https to pulls
// (the registry speaks plain HTTP; the daemon itself never asks for it);
// with the stand-in, its registry of unpacked test images, pulls slowed
// down so that the three workflows wait for the same one.
func newPullSource(t *testing.T) pullSource {
	t.Helper()
	prog := apptainer(t)
	dir, err := os.MkdirTemp("", "reana-pull-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o777|os.ModeSticky))
	src := pullSource{apptainer: filepath.Join(dir, "apptainer"), log: filepath.Join(dir, "pulls.log"), ref: "docker.io/library/debian:12-slim"}
	script := "#!/bin/sh\n" +
		"REANA_STANDIN_REGISTRY=" + filepath.Join(env.Images, "unpacked") + " REANA_STANDIN_PULL_LOG=" + src.log + " REANA_STANDIN_PULL_DELAY=2 " +
		"exec " + prog + " \"$@\"\n"
	if env.RealApptainer != "" {
		reg := harness.StartRegistry(t)
		// PATH as a Docker ENV, as images such as ROOT's set it (the
		// tree's own env script may not survive the conversion to SIF).
		src.ref = reg.Push(t, filepath.Join(env.Images, "debian-12-slim"), "library/debian:12-slim",
			"PATH=/opt/reana-test/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
		script = "#!/bin/sh\n" +
			`if [ "$1" = pull ]; then echo "$(date +%s.%N) pid=$$ uid=$(id -u) pull start" >>` + src.log + `; shift; exec ` + prog + ` pull --no-https "$@"; fi` + "\n" +
			"exec " + prog + " \"$@\"\n"
	}
	require.NoError(t, os.WriteFile(src.apptainer, []byte(script), 0o755))
	return src
}

// patchSpec makes the reana.yaml of the user's directory dir name the
// source's image.
func (s pullSource) patchSpec(t *testing.T, u *User, dir string) {
	t.Helper()
	const stock = "docker.io/library/debian:12-slim"
	if s.ref == stock {
		return
	}
	spec, err := os.ReadFile(filepath.Join(dir, "reana.yaml"))
	require.NoError(t, err)
	patched := strings.Replace(string(spec), stock, s.ref, 1)
	require.NotEqual(t, string(spec), patched)
	out, code := u.Run(t, dir, nil, "sh", "-c", `printf '%s' "$1" > reana.yaml`, "sh", patched)
	require.Zero(t, code, out)
}

// TestDoctor runs `reana-site doctor` as an admin would after installing:
// a healthy setup passes; a broken one names each problem on its own line
// and exits 1.
func TestDoctor(t *testing.T) {
	prog := apptainer(t)
	harness.EnsureSlurm(t, env.Repo)
	doctor := func(vars ...string) (string, error) {
		base := []string{"env", "REANA_SITE_STATE_DIR=" + t.TempDir(), "REANA_SITE_LISTEN=127.0.0.1:0",
			"REANA_SITE_BACKENDS=local,slurm", "REANA_SITE_CONTAINERS=apptainer", "REANA_SITE_IMAGE_PULL=false"}
		return execCombined(append(append(base, vars...), env.Bin, "doctor")...)
	}
	out, err := doctor("REANA_SITE_APPTAINER="+prog, "REANA_SITE_IMAGE_UNPACKED_ROOTS="+filepath.Join(env.Images, "unpacked"))
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
		"REANA_SITE_CONTAINERS=apptainer", "REANA_SITE_IMAGE_PULL=false", "REANA_SITE_APPTAINER="+prog,
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

// TestContainersSIFInImageCache: a SIF file in the site's image cache,
// under the name the daemon gives the image there, is used as it is (with
// the real Apptainer: mounted, or unpacked where squashfuse cannot run).
func TestContainersSIFInImageCache(t *testing.T) {
	prog := apptainer(t)
	if env.SIF == "" {
		t.Skip("no SIF of the test image: test/setup.sh builds one with the real Apptainer (.cache/images/debian-12-slim.sif)")
	}
	cache, err := os.MkdirTemp("", "reana-sif-cache-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(cache) })
	require.NoError(t, os.Chmod(cache, 0o755))
	img, err := containers.ParseImage("docker.io/library/debian:12-slim")
	require.NoError(t, err)
	require.NoError(t, os.Symlink(env.SIF, filepath.Join(cache, img.CacheName()+".sif")))

	d := StartDaemon(t,
		"REANA_SITE_CONTAINERS=apptainer",
		"REANA_SITE_APPTAINER="+prog,
		"REANA_SITE_IMAGE_CACHE="+cache,
		"REANA_SITE_IMAGE_ORDER=cache",
		"REANA_SITE_IMAGE_PULL=false",
	)
	alice := d.AddUser(t, "alice")
	dir := alice.WorkDir(t, "container-probe")
	alice.MustClient(t, dir, "run", "-w", "sif")
	wf := alice.WaitStatus(t, "sif.1", 3*time.Minute, "finished", "failed")
	logs := alice.Logs(t, "sif.1")
	require.Equal(t, "finished", wf.Status, logs)
	assert.Contains(t, logs, img.CacheName()+".sif, from cache)")
	b, err := os.ReadFile(filepath.Join(d.WorkspaceOf(alice, wf.ID), "who.txt"))
	require.NoError(t, err)
	assert.Equal(t, "alice\n", string(b))
	b, err = os.ReadFile(filepath.Join(d.WorkspaceOf(alice, wf.ID), "tool.txt"))
	require.NoError(t, err)
	assert.Equal(t, "reana-test-tool\n", string(b), "the SIF keeps the image's environment")
}
