//go:build e2e

package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestUsersAreIsolated(t *testing.T) {
	d, alice, bob := shared(t)
	dir := alice.WorkDir(t, "sleepy")
	alice.MustClient(t, dir, "run", "-w", "private", "-p", "seconds=120")
	wf := alice.WaitStatus(t, "private.1", time.Minute, "running")

	// Through the API: bob sees nothing of alice's, by name or by id — 404,
	// not 403, so names do not leak.
	for _, ref := range []string{"private", "private.1", wf.ID} {
		for _, req := range []struct{ method, path string }{
			{"GET", "/status"}, {"GET", "/logs"}, {"GET", "/workspace"}, {"GET", "/workspace/awake.txt"},
			{"GET", "/parameters"}, {"GET", "/specification"}, {"GET", "/disk_usage"},
			{"PUT", "/status?status=stop"}, {"PUT", "/status?status=deleted"}, {"POST", "/start"},
			{"DELETE", "/workspace/reana.yaml"}, {"GET", "/retention_rules"},
		} {
			st, body, err := d.Do(req.method, "/api/workflows/"+url.PathEscape(ref)+req.path, bob.Token, strings.NewReader("{}"), "Content-Type", "application/json")
			require.NoError(t, err)
			assert.Equal(t, http.StatusNotFound, st, "bob %s %s%s: %s", req.method, ref, req.path, body)
		}
		st, body := upload(bob, ref, "planted.txt", []byte("bob was here"))
		assert.Equal(t, http.StatusNotFound, st, "%s", body)
	}
	var list struct {
		Items []Workflow `json:"items"`
		Total int        `json:"total"`
	}
	require.Equal(t, http.StatusOK, d.JSON(t, "GET", "/api/workflows?type=batch", bob.Token, nil, &list))
	for _, it := range list.Items {
		assert.NotEqual(t, wf.ID, it.ID, "bob's list shows alice's workflow")
	}
	out, code := bob.Client(t, bob.WorkDir(t, ""), "stop", "-w", "private.1", "--force")
	assert.NotZero(t, code, out)
	w, _ := alice.Status(t, "private.1")
	assert.Equal(t, "running", w.Status, "bob's stop must not touch alice's workflow")

	// Through the kernel: alice's workspace is hers alone.
	ws := d.WorkspaceOf(alice, wf.ID)
	out, code = bob.Run(t, "/", nil, "cat", filepath.Join(ws, "reana.yaml"))
	assert.NotZero(t, code)
	assert.Contains(t, out, "Permission denied")
	out, code = bob.Run(t, "/", nil, "ls", ws)
	assert.NotZero(t, code)
	assert.Contains(t, out, "Permission denied")
	out, code = bob.Run(t, "/", nil, "touch", filepath.Join(ws, "planted"))
	assert.NotZero(t, code, out)

	// The step runs as alice, with her groups, not the daemon's.
	procs := stepProcesses(t, alice.UID, "sleep 120")
	require.NotEmpty(t, procs, "the step's sleep must run as alice")
	for _, pid := range procs {
		st := procStatus(t, pid)
		assert.Equal(t, fmt.Sprint(alice.UID), strings.Fields(st["Uid"])[0])
		assert.Equal(t, fmt.Sprint(alice.GID), strings.Fields(st["Gid"])[0])
		assert.Equal(t, "0000000000000000", st["CapEff"], "a step must hold no capabilities")
		assert.Contains(t, strings.Fields(st["Groups"]), groupID(t, "reana-testers"))
	}
	alice.MustClient(t, dir, "stop", "-w", "private.1", "--force")
	alice.WaitStatus(t, "private.1", time.Minute, "stopped")
}

func groupID(t *testing.T, name string) string {
	t.Helper()
	out, err := execCombined("getent", "group", name)
	require.NoError(t, err, out)
	return strings.Split(strings.TrimSpace(out), ":")[2]
}

// stepProcesses finds processes of uid whose command line contains match.
func stepProcesses(t *testing.T, uid int, match string) []int {
	t.Helper()
	var pids []int
	ents, err := os.ReadDir("/proc")
	require.NoError(t, err)
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil || !strings.Contains(strings.ReplaceAll(string(cmd), "\x00", " "), match) {
			continue
		}
		st := procStatusMaybe(pid)
		if st != nil && strings.Fields(st["Uid"])[0] == strconv.Itoa(uid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func procStatusMaybe(pid int) map[string]string {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return nil
	}
	defer f.Close()
	m := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok {
			m[k] = strings.TrimSpace(v)
		}
	}
	return m
}

func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	m := procStatusMaybe(pid)
	require.NotNil(t, m, "read /proc/%d/status", pid)
	return m
}

// TestDaemonKeepsOnlySetuidSetgid reads the running daemon's capabilities
// from the kernel: it keeps uid 0 but only CAP_SETUID and CAP_SETGID, so
// it cannot read or write user files itself.
func TestDaemonKeepsOnlySetuidSetgid(t *testing.T) {
	d := StartDaemon(t)
	b, err := os.ReadFile(filepath.Join(d.StateDir, "reana-site.pid"))
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	assert.Equal(t, d.Pid(), pid)
	st := procStatus(t, pid)
	const setuidSetgid = "00000000000000c0" // CAP_SETGID (6) | CAP_SETUID (7)
	assert.Equal(t, setuidSetgid, st["CapEff"])
	assert.Equal(t, setuidSetgid, st["CapPrm"])
	assert.Equal(t, setuidSetgid, st["CapBnd"])
	assert.Equal(t, "0000000000000000", st["CapInh"])
	assert.Equal(t, "0000000000000000", st["CapAmb"])

	// And so root's power over files is gone: the daemon process cannot
	// read a user's private file (checked through its own /proc view:
	// a file opened by path as the daemon would need CAP_DAC_OVERRIDE).
	alice := d.AddUser(t, "alice")
	secret := filepath.Join(alice.Home, ".reana-e2e", env.RunID+"-capcheck")
	out, code := alice.Run(t, "/", nil, "/bin/sh", "-c", "umask 077; echo private > \"$1\"", "x", secret)
	require.Zero(t, code, out)
	out, code = runWithDaemonCaps(t, "cat", secret)
	assert.NotZero(t, code, "a process with the daemon's capabilities read a user's private file: %s", out)
}

// runWithDaemonCaps runs argv as uid 0 with the daemon's capability set.
func runWithDaemonCaps(t *testing.T, argv ...string) (string, int) {
	t.Helper()
	args := append([]string{"--inh-caps=-all", "--bounding-set=-all,+setuid,+setgid", "--"}, argv...)
	out, err := execCombined(append([]string{"setpriv"}, args...)...)
	if err != nil {
		return out, 1
	}
	return out, 0
}
