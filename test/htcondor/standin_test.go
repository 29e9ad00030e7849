//go:build e2e

// Package htcondor_test checks the HTCondor stand-in (test/htcondor/standin.py
// behind test/htcondor/bin/condor_*) that the HTCondor backend's tests use in
// place of HTCondor: it must accept what the backend submits, run each job as
// its submitter, write an event log that both HTCondor's own reader
// (htcondor2.JobEventLog) and ours (batch/htcondor) read the same way, and
// answer condor_q, condor_history, condor_rm, condor_hold and condor_release
// with HTCondor's texts and exit codes. It is built only with the e2e tag,
// as root (the tests act as the test users alice and bob).
package htcondor_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/batch/htcondor"
)

// userPath is the PATH the daemon's per-user helpers run with.
const userPath = "/usr/local/bin:/usr/bin:/bin"

// stand is one fresh stand-in installation: its own SPOOL and config.
type stand struct {
	t       *testing.T
	dir     string // parent of everything below, traversable by the test users
	spool   string
	config  string
	bin     string
	python  string // .cache/venv python with htcondor2, or "" when absent
	scheddN string
}

func load(t *testing.T) (bin, python string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatal("must run as root: the tests act as the test users alice and bob")
	}
	vars := map[string]string{}
	if f, err := os.Open(filepath.Join("..", "..", ".cache", "setup.env")); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "="); ok {
				vars[k] = v
			}
		}
		f.Close()
	}
	bin, err := filepath.Abs("bin")
	require.NoError(t, err)
	// A .cache shared by several worktrees names one of them; this tree's
	// stand-in is used all the same.
	if v := vars["HTCONDOR_STANDIN"]; v != "" && v != bin {
		t.Logf(".cache/setup.env has HTCONDOR_STANDIN=%s; testing this tree's stand-in %s", v, bin)
	}
	python = vars["PYTHON"]
	if python != "" {
		if err := exec.Command(python, "-c", "import htcondor2").Run(); err != nil {
			python = ""
		}
	}
	return bin, python
}

// newStand makes a SPOOL (mode 1777, like /tmp) and a CONDOR_CONFIG with
// small delays, in a temporary directory the test users can traverse.
func newStand(t *testing.T, knobs ...string) *stand {
	t.Helper()
	bin, python := load(t)
	dir := t.TempDir()
	// t.TempDir's directories are 0700; the test users must traverse them.
	for d := dir; d != os.TempDir() && d != "/"; d = filepath.Dir(d) {
		require.NoError(t, os.Chmod(d, 0o755))
	}
	s := &stand{t: t, dir: dir, spool: filepath.Join(dir, "spool"), config: filepath.Join(dir, "condor_config"),
		bin: bin, python: python, scheddN: "standin.example.org"}
	require.NoError(t, os.Mkdir(s.spool, 0o755))
	require.NoError(t, os.Chmod(s.spool, 0o1777))
	cfg := "# stand-in configuration written by standin_test.go\n" +
		"SPOOL = " + s.spool + "\n" +
		"SCHEDD_NAME = " + s.scheddN + "\n" +
		"STANDIN_MATCH_DELAY = 0.05\n" +
		"STANDIN_PERIODIC_INTERVAL = 0.2\n" +
		"STANDIN_MAX_VACATE_TIME = 0.5\n" +
		strings.Join(knobs, "\n") + "\n"
	require.NoError(t, os.WriteFile(s.config, []byte(cfg), 0o644))
	t.Cleanup(s.killAll)
	return s
}

// killAll stops every shadow and job still alive, so that the temporary
// directory can be removed (a lost shadow would keep writing into it).
func (s *stand) killAll() {
	recs, _ := filepath.Glob(filepath.Join(s.spool, "cluster*", "proc*.json"))
	for _, p := range recs {
		var r struct {
			Hidden struct {
				ShadowPid int    `json:"shadow_pid"`
				JobPid    int    `json:"job_pid"`
				Where     string `json:"where"`
			} `json:"hidden"`
		}
		data, err := os.ReadFile(p)
		if err != nil || json.Unmarshal(data, &r) != nil {
			continue
		}
		if r.Hidden.Where == "queue" {
			if r.Hidden.ShadowPid > 0 {
				_ = syscall.Kill(r.Hidden.ShadowPid, syscall.SIGKILL)
			}
			if r.Hidden.JobPid > 0 {
				_ = syscall.Kill(-r.Hidden.JobPid, syscall.SIGKILL)
			}
		}
	}
	if len(recs) > 0 {
		time.Sleep(100 * time.Millisecond)
	}
}

// userDir makes <dir>/<name>[/<sub>], the last directory owned by the
// user, for job files.
func (s *stand) userDir(name string, sub ...string) string {
	s.t.Helper()
	d := filepath.Join(append([]string{s.dir, name}, sub...)...)
	require.NoError(s.t, os.MkdirAll(d, 0o755))
	uid, gid := ids(s.t, name)
	require.NoError(s.t, os.Chown(d, uid, gid))
	return d
}

// script writes an executable shell script owned by the user.
func (s *stand) script(owner, dir, name, body string) string {
	s.t.Helper()
	p := filepath.Join(dir, name)
	require.NoError(s.t, os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755))
	uid, gid := ids(s.t, owner)
	require.NoError(s.t, os.Chown(p, uid, gid))
	return p
}

func ids(t *testing.T, name string) (int, int) {
	t.Helper()
	u, err := user.Lookup(name)
	require.NoError(t, err, "test user %s (run test/setup.sh)", name)
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return uid, gid
}

type result struct {
	stdout, stderr string
	code           int
}

// run runs one stand-in command as user ("" = root) in dir, with the
// environment a helper has: PATH and CONDOR_CONFIG only.
func (s *stand) run(who, dir, stdin string, prog string, args ...string) result {
	s.t.Helper()
	return s.runEnv(who, dir, stdin, []string{"PATH=" + userPath, "CONDOR_CONFIG=" + s.config}, prog, args...)
}

func (s *stand) runEnv(who, dir, stdin string, env []string, prog string, args ...string) result {
	s.t.Helper()
	cmd := exec.Command(filepath.Join(s.bin, prog), args...)
	cmd.Dir = dir
	cmd.Env = env
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	if who != "" {
		u, err := user.Lookup(who)
		require.NoError(s.t, err)
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		var groups []uint32
		gids, _ := u.GroupIds()
		for _, g := range gids {
			n, _ := strconv.Atoi(g)
			groups = append(groups, uint32(n))
		}
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups}}
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	done := make(chan error, 1)
	require.NoError(s.t, cmd.Start())
	go func() { done <- cmd.Wait() }()
	var err error
	select {
	case err = <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		s.t.Fatalf("%s %v did not return (a shadow holding its stdout?)", prog, args)
	}
	r := result{stdout: out.String(), stderr: errb.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		r.code = ee.ExitCode()
	default:
		s.t.Fatalf("run %s: %v", prog, err)
	}
	return r
}

func ok(t *testing.T, r result) {
	t.Helper()
	require.Equal(t, 0, r.code, "stdout: %s\nstderr: %s", r.stdout, r.stderr)
}

// submit submits desc (written to <dir>/<name>.sub) with -terse as who and
// returns the cluster id.
func (s *stand) submit(who, dir, desc string) int {
	s.t.Helper()
	f, err := os.CreateTemp(dir, "job-*.sub")
	require.NoError(s.t, err)
	_, err = f.WriteString(desc)
	require.NoError(s.t, err)
	require.NoError(s.t, f.Close())
	require.NoError(s.t, os.Chmod(f.Name(), 0o644))
	r := s.run(who, dir, "", "condor_submit", "-terse", f.Name())
	ok(s.t, r)
	var c, p0, c2, p1 int
	_, err = fmt.Sscanf(r.stdout, "%d.%d - %d.%d\n", &c, &p0, &c2, &p1)
	require.NoError(s.t, err, "condor_submit -terse printed %q", r.stdout)
	require.Equal(s.t, fmt.Sprintf("%d.%d - %d.%d\n", c, p0, c2, p1), r.stdout)
	return c
}

// attr is one attribute of job c.0 from condor_q (as root, all users), or
// from condor_history once it has left the queue; "" when the job is in
// neither.
func (s *stand) attr(c int, name string) string {
	s.t.Helper()
	r := s.run("", "/", "", "condor_q", strconv.Itoa(c)+".0", "-af", name)
	ok(s.t, r)
	if r.stdout == "" {
		r = s.run("", "/", "", "condor_history", strconv.Itoa(c)+".0", "-af", name)
		ok(s.t, r)
	}
	return strings.TrimSuffix(r.stdout, "\n")
}

func (s *stand) inQueue(c int) bool {
	s.t.Helper()
	r := s.run("", "/", "", "condor_q", strconv.Itoa(c), "-af", "ClusterId")
	ok(s.t, r)
	return r.stdout != ""
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *stand) waitStatus(c int, status string) {
	s.t.Helper()
	waitFor(s.t, fmt.Sprintf("job %d.0 to reach JobStatus %s", c, status), 10*time.Second,
		func() bool { return s.attr(c, "JobStatus") == status })
}

func (s *stand) waitGone(c int) {
	s.t.Helper()
	waitFor(s.t, fmt.Sprintf("cluster %d to leave the queue", c), 15*time.Second, func() bool { return !s.inQueue(c) })
}

// ---- event logs: HTCondor's reader and ours must agree -------------------

// oracle prints what htcondor2.JobEventLog reads, one JSON object per event.
const oracle = `
import json, sys, htcondor2
for e in htcondor2.JobEventLog(sys.argv[1]).events(stop_after=0):
    d = {"code": int(e.type), "cluster": e.cluster, "proc": e.proc, "time": e.timestamp}
    for k in ("ReturnValue", "TerminatedNormally", "TerminatedBySignal", "HoldReason",
              "HoldReasonCode", "HoldReasonSubCode", "Reason"):
        if k in e:
            d[k] = e[k]
    print(json.dumps(d))
`

type pyEvent struct {
	Code               int     `json:"code"`
	Cluster            int     `json:"cluster"`
	Proc               int     `json:"proc"`
	Time               int64   `json:"time"`
	ReturnValue        *int    `json:"ReturnValue"`
	TerminatedNormally *bool   `json:"TerminatedNormally"`
	TerminatedBySignal *int    `json:"TerminatedBySignal"`
	HoldReason         *string `json:"HoldReason"`
	HoldReasonCode     *int    `json:"HoldReasonCode"`
	HoldReasonSubCode  *int    `json:"HoldReasonSubCode"`
	Reason             *string `json:"Reason"`
}

// checkLog reads a finished job's event log with both readers, requires that
// they agree event by event and that the event codes are want (ignoring 006
// image-size updates, which come at times of their own, as with HTCondor),
// and returns our reader's events without those.
func (s *stand) checkLog(path string, want ...int) []htcondor.Event {
	s.t.Helper()
	data, err := os.ReadFile(path)
	require.NoError(s.t, err)
	events, consumed := htcondor.Parse(data)
	require.Equal(s.t, len(data), consumed, "our reader left an unfinished event in\n%s", data)
	var codes []int
	var main []htcondor.Event
	for _, e := range events {
		if e.Code != htcondor.EventImageSize {
			codes = append(codes, e.Code)
			main = append(main, e)
		}
	}
	if want != nil {
		require.Equal(s.t, want, codes, "event codes in\n%s", data)
	}
	if s.python == "" {
		s.t.Log("htcondor2 bindings not importable from .cache/venv: event log not checked against HTCondor's reader")
		return main
	}
	cmd := exec.Command(s.python, "-c", oracle, path)
	cmd.Env = append(os.Environ(), "CONDOR_CONFIG=/dev/null")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(s.t, err, "htcondor2.JobEventLog: %s", stderr.String())
	var py []pyEvent
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if l == "" {
			continue
		}
		var e pyEvent
		require.NoError(s.t, json.Unmarshal([]byte(l), &e), l)
		py = append(py, e)
	}
	require.Len(s.t, py, len(events), "htcondor2 read %d events, we read %d, in\n%s", len(py), len(events), data)
	for i, e := range events {
		p := py[i]
		where := fmt.Sprintf("event %d (%03d) of\n%s", i, e.Code, data)
		assert.Equal(s.t, e.Code, p.Code, where)
		assert.Equal(s.t, e.Cluster, p.Cluster, where)
		assert.Equal(s.t, e.Proc, p.Proc, where)
		assert.Equal(s.t, e.Time.Unix(), p.Time, where)
		switch e.Code {
		case htcondor.EventTerminated:
			require.NotNil(s.t, p.TerminatedNormally, where)
			if *p.TerminatedNormally {
				require.NotNil(s.t, e.ReturnValue, where)
				require.NotNil(s.t, p.ReturnValue, where)
				assert.Equal(s.t, *p.ReturnValue, *e.ReturnValue, where)
			} else {
				require.NotNil(s.t, p.TerminatedBySignal, where)
				assert.Nil(s.t, e.ReturnValue, where)
				assert.Equal(s.t, *p.TerminatedBySignal, e.Signal, where)
			}
		case htcondor.EventHeld:
			require.NotNil(s.t, p.HoldReason, where)
			assert.Equal(s.t, *p.HoldReason, e.Reason, where)
			assert.Equal(s.t, *p.HoldReasonCode, e.HoldCode, where)
			assert.Equal(s.t, *p.HoldReasonSubCode, e.HoldSubcode, where)
		case htcondor.EventAborted, htcondor.EventReleased:
			require.NotNil(s.t, p.Reason, where)
			assert.Equal(s.t, *p.Reason, e.Reason, where)
		}
	}
	return main
}

func owner(t *testing.T, path string) string {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	u, err := user.LookupId(strconv.Itoa(int(fi.Sys().(*syscall.Stat_t).Uid)))
	require.NoError(t, err)
	return u.Username
}

// desc is a submit description in the form batch/htcondor renders.
func desc(exe, dir string, extra ...string) string {
	return "universe = vanilla\nexecutable = " + exe + "\ninitialdir = " + dir +
		"\noutput = " + filepath.Join(dir, "output.log") + "\nerror = " + filepath.Join(dir, "output.log") +
		"\nlog = " + filepath.Join(dir, "events.log") + "\ngetenv = false\n" + strings.Join(extra, "\n") + "\nqueue 1\n"
}

// ---- tests -----------------------------------------------------------------

func TestSubmitTerseAndIDs(t *testing.T) {
	s := newStand(t)
	d := s.userDir("alice")
	exe := s.script("alice", d, "true.sh", "exit 0")
	for want := 1; want <= 3; want++ {
		require.Equal(t, want, s.submit("alice", d, "executable = "+exe+"\nqueue\n"))
	}
	// queue N: one cluster, procs 0..N-1, not zero-padded
	r := s.run("alice", d, "", "condor_submit", "-terse", write(d, "three.sub", "executable = "+exe+"\nlog = three.log\nqueue 3\n"))
	ok(t, r)
	assert.Equal(t, "4.0 - 4.2\n", r.stdout)
	// without -terse: the banner on stdout, the V25 hint on stderr
	r = s.run("alice", d, "", "condor_submit", write(d, "banner.sub", "executable = "+exe+"\nqueue 3\n"))
	ok(t, r)
	assert.Equal(t, "Submitting job(s)...\n3 job(s) submitted to cluster 5.\n", r.stdout)
	assert.Contains(t, r.stderr, "To monitor your job(s), run: condor_watch_q -clusters 5")
	// the description on stdin ("-")
	r = s.run("alice", d, "executable = "+exe+"\nqueue\n", "condor_submit", "-terse", "-")
	ok(t, r)
	assert.Equal(t, "6.0 - 6.0\n", r.stdout)
	for c := 1; c <= 6; c++ {
		s.waitGone(c)
	}
	// the procs of one cluster share the log; each has its own life in it
	events := s.checkLog(filepath.Join(d, "three.log"))
	require.Len(t, events, 9)
	for p := 0; p < 3; p++ {
		var codes []int
		for _, e := range htcondor.ForJob(events, 4, p) {
			codes = append(codes, e.Code)
		}
		assert.Equal(t, []int{0, 1, 5}, codes, "job 4.%d", p)
	}
}

// TestSubmitSeveralQueueStatements: a description with one block per job,
// as the HTCondor backend submits a group. As condor_submit 24.0.23 does on
// the real pool, a new executable starts a new cluster (one -terse line
// each), the same one again stays in it, a command set in one block stays
// set for the next, and the deprecation of several queue statements is
// warned about on stderr.
func TestSubmitSeveralQueueStatements(t *testing.T) {
	s := newStand(t)
	d := s.userDir("alice")
	a := s.script("alice", d, "a.sh", "exit 0")
	b := s.script("alice", d, "b.sh", "exit 0")
	text := "executable = " + a + "\n+ReanaJob = \"j1\"\nrequest_memory = 100\nqueue 1\n" +
		"+ReanaJob = \"j2\"\nqueue 1\n" +
		"executable = " + b + "\n+ReanaJob = \"j3\"\nqueue 2\n"
	r := s.run("alice", d, text, "condor_submit", "-terse", "-")
	ok(t, r)
	assert.Equal(t, "1.0 - 1.1\n2.0 - 2.1\n", r.stdout)
	assert.Contains(t, r.stderr, "Use of multiple queue statements in a single submit file is deprecated.")
	assert.Equal(t, "j1", s.attr(1, "ReanaJob"))
	assert.Equal(t, b, s.attr(2, "Cmd"))
	assert.Equal(t, "100", s.attr(2, "RequestMemory"), "carried over from the first block")
	for c := 1; c <= 2; c++ {
		s.waitGone(c)
	}
}

func write(dir, name, text string) string {
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		panic(err)
	}
	return p
}

func TestConcurrentSubmitsGetDistinctIDs(t *testing.T) {
	s := newStand(t)
	dirs := map[string]string{"alice": s.userDir("alice"), "bob": s.userDir("bob")}
	exes := map[string]string{}
	for u, d := range dirs {
		exes[u] = s.script(u, d, "true.sh", "exit 0")
	}
	const each = 6
	var mu sync.Mutex
	got := map[int]string{}
	var wg sync.WaitGroup
	for u := range dirs {
		for i := 0; i < each; i++ {
			wg.Add(1)
			go func(u string) {
				defer wg.Done()
				cmd := exec.Command(filepath.Join(s.bin, "condor_submit"), "-terse", "-")
				cmd.Dir = dirs[u]
				cmd.Env = []string{"PATH=" + userPath, "CONDOR_CONFIG=" + s.config}
				cmd.Stdin = strings.NewReader("executable = " + exes[u] + "\nqueue\n")
				uid, gid := ids(t, u)
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
				out, err := cmd.Output()
				if !assert.NoError(t, err) {
					return
				}
				var c int
				_, err = fmt.Sscanf(string(out), "%d.0 - %d.0", &c, &c)
				assert.NoError(t, err, string(out))
				mu.Lock()
				defer mu.Unlock()
				assert.NotContains(t, got, c, "cluster %d given twice", c)
				got[c] = u
			}(u)
		}
	}
	wg.Wait()
	require.Len(t, got, 2*each)
	for c, u := range got {
		assert.Equal(t, u, owner(t, filepath.Join(s.spool, fmt.Sprintf("cluster%d", c), "proc0.json")), "record of %d", c)
		assert.Equal(t, u, s.attr(c, "Owner"))
	}
	for c := range got {
		s.waitGone(c)
	}
}

func TestSubmitErrors(t *testing.T) {
	s := newStand(t)
	d := s.userDir("alice")
	exe := s.script("alice", d, "true.sh", "exit 0")
	empty := s.script("alice", d, "empty.sh", "")
	require.NoError(t, os.Truncate(empty, 0))
	write := func(name, text string) string {
		p := filepath.Join(d, name)
		require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
		return p
	}
	for _, c := range []struct {
		name, file, stderr string
	}{
		{"no queue statement", write("noq.sub", "executable = "+exe+"\n"),
			"\nERROR: \"" + filepath.Join(d, "noq.sub") + "\" doesn't contain any \"queue\" commands -- no jobs queued\n"},
		{"missing executable", write("noexe.sub", "executable = "+d+"/nope.sh\nqueue\n"),
			"\nERROR: Can't access executable file " + d + "/nope.sh: No such file or directory\n"},
		{"empty executable", write("empty.sub", "executable = "+empty+"\nqueue\n"),
			"\nERROR: Executable file " + empty + " has zero length\n"},
		{"bad line", write("bad.sub", "executable = "+exe+"\n# fine\nthis is not a command\nqueue\n"),
			"\nERROR: on Line 3 of submit file: Macro syntax error: this is not a command\n"},
		{"bad universe", write("univ.sub", "universe = nosuch\nexecutable = "+exe+"\nqueue\n"),
			"\nERROR: I don't know about the 'nosuch' universe.\n"},
		{"unreadable file", filepath.Join(d, "missing.sub"),
			"\nERROR: Failed to open command file (" + filepath.Join(d, "missing.sub") + ") (No such file or directory)\n"},
		{"bad log", write("log.sub", "executable = "+exe+"\nlog = /root/x/events.log\nqueue\n"),
			"\nERROR: Invalid log file: \"/root/x/events.log\" (Permission denied)\n"},
		{"not emulated", write("retry.sub", "executable = "+exe+"\nmax_retries = 3\nqueue\n"),
			"\nERROR: on Line 2 of submit file: stand-in: submit command max_retries is not emulated\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := s.run("alice", d, "", "condor_submit", "-terse", c.file)
			assert.Equal(t, 1, r.code)
			assert.Equal(t, "", r.stdout)
			assert.Equal(t, c.stderr, r.stderr)
		})
	}
	// no job was queued by any of them: the next id is still 1
	assert.Equal(t, 1, s.submit("alice", d, "executable = "+exe+"\nqueue\n"))
	s.waitGone(1)
	// an unknown command is kept with a warning, like condor_submit's
	r := s.run("alice", d, "", "condor_submit", "-terse", write("unused.sub", "executable = "+exe+"\nfoo = bar\nqueue\n"))
	ok(t, r)
	assert.Equal(t, "2.0 - 2.0\n", r.stdout)
	assert.Contains(t, r.stderr, "WARNING: the line 'foo = bar' was unused by condor_submit. Is it a typo?")
	s.waitGone(2)

	// configuration errors (condor_config.cpp), for every tool
	r = s.runEnv("alice", d, "", []string{"PATH=" + userPath}, "condor_q")
	assert.Equal(t, 1, r.code)
	assert.True(t, strings.HasPrefix(r.stderr, "\nNeither the environment variable CONDOR_CONFIG,\n"), r.stderr)
	r = s.runEnv("alice", d, "", []string{"PATH=" + userPath, "CONDOR_CONFIG=" + d + "/none"}, "condor_submit", "x")
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "File specified in CONDOR_CONFIG environment variable:\n\""+d+"/none\" does not exist.\n", r.stderr)
}

func TestJobOutcomes(t *testing.T) {
	s := newStand(t)
	for _, c := range []struct {
		name   string
		body   string
		exit   string // ExitCode, or "undefined"
		signal string // ExitSignal, or "undefined"
		state  batch.State
	}{
		{"exit 0", "echo out; echo err >&2; echo made > made.txt; exit 0", "0", "undefined", batch.Succeeded},
		{"exit 3", "echo out; exit 3", "3", "undefined", batch.Failed},
		{"killed by a signal", "echo out; kill -9 $$", "undefined", "9", batch.Failed},
	} {
		t.Run(c.name, func(t *testing.T) {
			d := s.userDir("alice", strings.ReplaceAll(c.name, " ", "-"))
			exe := s.script("alice", d, "job.sh", c.body)
			cl := s.submit("alice", d, desc(exe, d))
			s.waitGone(cl)
			events := s.checkLog(filepath.Join(d, "events.log"), 0, 1, 5)
			st := htcondor.State(events)
			assert.Equal(t, c.state, st.State)
			assert.Equal(t, c.exit, s.attr(cl, "ExitCode"))
			assert.Equal(t, c.signal, s.attr(cl, "ExitSignal"))
			assert.Equal(t, "4", s.attr(cl, "JobStatus"))
			assert.Equal(t, strconv.FormatBool(c.signal != "undefined"), s.attr(cl, "ExitBySignal"))
			assert.NotEqual(t, "0", s.attr(cl, "CompletionDate"))
			out, err := os.ReadFile(filepath.Join(d, "output.log"))
			require.NoError(t, err)
			assert.True(t, strings.HasPrefix(string(out), "out\n"), "output.log: %q", out)
			for _, f := range []string{"output.log", "events.log"} {
				assert.Equal(t, "alice", owner(t, filepath.Join(d, f)), f)
			}
			if c.state == batch.Succeeded {
				assert.Equal(t, "out\nerr\n", string(out), "stdout and stderr share output.log")
				assert.Equal(t, "alice", owner(t, filepath.Join(d, "made.txt")))
			}
		})
	}
}

func TestEnvironmentAndArguments(t *testing.T) {
	s := newStand(t)
	d := s.userDir("alice")
	exe := s.script("alice", d, "env.sh", `for a in "$@"; do echo "arg=[$a]"; done; echo "FOO=[$FOO]"; echo "HOME=[$HOME]"; echo "SECRET=[$SECRET]"; id -un`)
	// new-syntax arguments and environment (man page condor_submit)
	cl := s.submit("alice", d, desc(exe, d, `arguments = "one ""two"" 'spacey ''quoted'' argument'"`,
		`environment = "FOO='a b' BAR=1"`))
	s.waitGone(cl)
	out, err := os.ReadFile(filepath.Join(d, "output.log"))
	require.NoError(t, err)
	assert.Equal(t, "arg=[one]\narg=[\"two\"]\narg=[spacey 'quoted' argument]\nFOO=[a b]\nHOME=[]\nSECRET=[]\nalice\n", string(out))
	// getenv = true passes the submitter's environment
	r := s.runEnv("alice", d, desc(exe, d, "getenv = true"), []string{"PATH=" + userPath, "CONDOR_CONFIG=" + s.config, "SECRET=s3"},
		"condor_submit", "-terse", "-")
	ok(t, r)
	s.waitGone(cl + 1)
	out, err = os.ReadFile(filepath.Join(d, "output.log"))
	require.NoError(t, err)
	assert.Contains(t, string(out), "SECRET=[s3]")
	s.checkLog(filepath.Join(d, "events.log"), 0, 1, 5, 0, 1, 5)
}

func TestHoldReleaseRunsAgain(t *testing.T) {
	s := newStand(t)
	d := s.userDir("alice")
	// The first run waits for a file that only appears while it is held;
	// the second run finds it and succeeds.
	exe := s.script("alice", d, "job.sh", `echo run >> `+d+`/runs.txt; while [ ! -f `+d+`/go ]; do sleep 0.05; done; exit 0`)
	cl := s.submit("alice", d, desc(exe, d))
	s.waitStatus(cl, "2")
	id := fmt.Sprintf("%d.0", cl)
	r := s.run("alice", d, "", "condor_hold", id)
	ok(t, r)
	assert.Equal(t, "Job "+id+" held\n", r.stdout)
	assert.Equal(t, "5", s.attr(cl, "JobStatus"))
	assert.Equal(t, "via condor_hold (by user alice)", s.attr(cl, "HoldReason"))
	assert.Equal(t, "1", s.attr(cl, "HoldReasonCode"))
	r = s.run("alice", d, "", "condor_hold", id)
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "\nJob "+id+" already held\n", r.stderr)
	require.NoError(t, os.WriteFile(filepath.Join(d, "go"), nil, 0o644))
	time.Sleep(200 * time.Millisecond) // held jobs do not run
	runs, _ := os.ReadFile(filepath.Join(d, "runs.txt"))
	assert.Equal(t, "run\n", string(runs))
	r = s.run("alice", d, "", "condor_release", strconv.Itoa(cl))
	ok(t, r)
	assert.Equal(t, "All jobs in cluster "+strconv.Itoa(cl)+" have been released\n", r.stdout)
	s.waitGone(cl)
	runs, _ = os.ReadFile(filepath.Join(d, "runs.txt"))
	assert.Equal(t, "run\nrun\n", string(runs))
	assert.Equal(t, "2", s.attr(cl, "NumJobStarts"))
	assert.Equal(t, "0", s.attr(cl, "ExitCode"))
	// A real pool logs the eviction of the running job before the hold.
	events := s.checkLog(filepath.Join(d, "events.log"), 0, 1, 4, 12, 13, 1, 5)
	assert.Equal(t, "via condor_hold (by user alice)", events[3].Reason)
	assert.Equal(t, 1, events[3].HoldCode)
	assert.Equal(t, "via condor_release (by user alice)", events[4].Reason)
	assert.Equal(t, batch.Succeeded, htcondor.State(events).State)
	// releasing a job that is not held
	r = s.run("alice", d, "", "condor_release", id)
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "\nJob "+id+" not found\n", r.stderr)
}

func TestRemoveByOwner(t *testing.T) {
	s := newStand(t)
	d := s.userDir("alice")
	exe := s.script("alice", d, "job.sh", "echo started; exec sleep 60")
	c1 := s.submit("alice", d, desc(exe, d))
	s.waitStatus(c1, "2")
	r := s.run("alice", d, "", "condor_rm", strconv.Itoa(c1))
	ok(t, r)
	assert.Equal(t, fmt.Sprintf("All jobs in cluster %d have been marked for removal\n", c1), r.stdout)
	s.waitGone(c1)
	events := s.checkLog(filepath.Join(d, "events.log"), 0, 1, 4, 9)
	assert.Equal(t, "via condor_rm (by user alice)", events[3].Reason)
	assert.Equal(t, batch.Failed, htcondor.State(events).State)
	r = s.run("alice", d, "", "condor_history", strconv.Itoa(c1), "-af", "JobStatus", "RemoveReason")
	ok(t, r)
	assert.Equal(t, "3 via condor_rm (by user alice)\n", r.stdout)

	// by cluster.proc, while still idle (a long match delay), with a reason
	s = newStand(t, "STANDIN_MATCH_DELAY = 30")
	d2 := s.userDir("alice")
	exe = s.script("alice", d2, "job.sh", "exit 0")
	c2 := s.submit("alice", d2, desc(exe, d2, "+ReanaJob = \"j2\""))
	assert.Equal(t, "1", s.attr(c2, "JobStatus"))
	r = s.run("alice", d2, "", "condor_rm", "-reason", "stopped by reana-site", fmt.Sprintf("%d.0", c2))
	ok(t, r)
	assert.Equal(t, fmt.Sprintf("Job %d.0 marked for removal\n", c2), r.stdout)
	s.waitGone(c2)
	events = s.checkLog(filepath.Join(d2, "events.log"), 0, 9)
	assert.Equal(t, "stopped by reana-site (by user alice)", events[1].Reason)
	// gone from the queue: not found, or nothing to act on
	r = s.run("alice", d2, "", "condor_rm", fmt.Sprintf("%d.0", c2))
	assert.Equal(t, 1, r.code)
	assert.Equal(t, fmt.Sprintf("\nJob %d.0 not found\n", c2), r.stderr)
	r = s.run("alice", d2, "", "condor_rm", strconv.Itoa(c2))
	assert.Equal(t, 0, r.code, "an empty queue is not an error for condor_rm (rm.cpp)")
	assert.Equal(t, "condor_rm:0:There are no jobs in the queue\n", r.stderr)
}

func TestOwnershipEnforced(t *testing.T) {
	s := newStand(t)
	d := s.userDir("alice")
	s.userDir("bob")
	exe := s.script("alice", d, "job.sh", "exec sleep 60")
	cl := s.submit("alice", d, desc(exe, d))
	s.waitStatus(cl, "2")
	id, c := fmt.Sprintf("%d.0", cl), strconv.Itoa(cl)
	for _, x := range []struct {
		prog, arg, stderr string
	}{
		{"condor_rm", id, "\nPermission denied to remove job " + id + "\n"},
		{"condor_rm", c, "\nCouldn't find/remove all jobs in cluster " + c + "\n"},
		{"condor_rm", "alice", "\nCouldn't find/remove all jobs of user \"alice\"\n"},
		{"condor_hold", id, "\nPermission denied to hold job " + id + "\n"},
		{"condor_hold", c, "\nCouldn't find/hold all jobs in cluster " + c + "\n"},
		{"condor_release", id, "\nPermission denied to release job " + id + "\n"},
	} {
		r := s.run("bob", "/", "", x.prog, x.arg)
		assert.Equal(t, 1, r.code, "bob: %s %s", x.prog, x.arg)
		assert.Equal(t, "", r.stdout)
		assert.Equal(t, x.stderr, r.stderr, "bob: %s %s", x.prog, x.arg)
	}
	r := s.run("bob", "/", "", "condor_rm", "-constraint", "ClusterId == "+c)
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "\nCouldn't find/remove all jobs matching constraint (ClusterId == "+c+")\n", r.stderr)
	assert.Equal(t, "2", s.attr(cl, "JobStatus"), "bob's attempts changed alice's job")
	// root is a queue superuser
	r = s.run("", "/", "", "condor_hold", id)
	ok(t, r)
	assert.Equal(t, "Job "+id+" held\n", r.stdout)
	// root acts as the condor account, and a real pool says so
	assert.Equal(t, "via condor_hold (by user condor)", s.attr(cl, "HoldReason"))
	r = s.run("", "/", "", "condor_rm", c)
	ok(t, r)
	s.waitGone(cl)
	s.checkLog(filepath.Join(d, "events.log"), 0, 1, 4, 12, 9)
}

func TestQueryScopesConstraintsAndAutoformat(t *testing.T) {
	s := newStand(t)
	da, db := s.userDir("alice"), s.userDir("bob")
	ea := s.script("alice", da, "job.sh", "exec sleep 60")
	eb := s.script("bob", db, "job.sh", "exec sleep 60")
	ca := s.submit("alice", da, desc(ea, da, `+ReanaJob = "job-a"`, "accounting_group = group_u_ATLAS.alice", "request_memory = 2GB"))
	cb := s.submit("bob", db, desc(eb, db, `+ReanaJob = "job-b"`))
	s.waitStatus(ca, "2")
	s.waitStatus(cb, "2")
	q := func(who string, args ...string) string {
		t.Helper()
		r := s.run(who, "/", "", "condor_q", args...)
		ok(t, r)
		return r.stdout
	}
	a, b := strconv.Itoa(ca), strconv.Itoa(cb)
	assert.Equal(t, a+".0 alice job-a\n", q("alice", "-af:j", "Owner", "ReanaJob"))
	assert.Equal(t, b+".0 bob job-b\n", q("bob", "-af:j", "Owner", "ReanaJob"))
	assert.Equal(t, a+".0 alice\n"+b+".0 bob\n", q("alice", "-allusers", "-af:j", "Owner"))
	assert.Equal(t, a+".0 alice\n"+b+".0 bob\n", q("", "-af:j", "Owner"), "root sees every job")
	assert.Equal(t, b+".0\t2\tundefined\n", q("alice", "bob", "-af:jt", "JobStatus", "HoldReasonCode"), "an owner argument")
	assert.Equal(t, b+".0 bob\n", q("alice", b, "-af:j", "Owner"), "a cluster argument")
	assert.Equal(t, a+".0 alice\n"+b+".0 bob\n",
		q("alice", "-allusers", "-constraint", `ReanaJob == "job-b" || ClusterId == `+a, "-af:j", "Owner"))
	assert.Equal(t, a+"\n", q("alice", "-allusers", "-constraint", `Owner == "ALICE" && JobStatus == 2`, "-af", "ClusterId"),
		"== compares strings case-insensitively")
	assert.Equal(t, "", q("alice", "-constraint", `ReanaJob == "job-b"`, "-af", "ClusterId"), "bob's job is not alice's")
	assert.Equal(t, "", q("alice", "-constraint", `NoSuchAttr == 1`, "-af", "ClusterId"), "undefined does not match")
	assert.Equal(t, a+"\n", q("alice", "-constraint", `NoSuchAttr =?= undefined && ReanaJob =!= "x"`, "-af", "ClusterId"))
	assert.Equal(t, "group_u_ATLAS.alice group_u_ATLAS.alice.alice 2048 job-a\n",
		q("alice", "-af", "AcctGroup", "AccountingGroup", "RequestMemory", "ReanaJob"))
	assert.Equal(t, "\"group_u_ATLAS.alice\" \"group_u_ATLAS.alice.alice\" 2048 \"job-a\"\n",
		q("alice", "-af:V", "AcctGroup", "AccountingGroup", "RequestMemory", "ReanaJob"))
	assert.Contains(t, q("alice"), "Total for query: 1 jobs; 0 completed, 0 removed, 0 idle, 1 running, 0 held, 0 suspended")
	r := s.run("alice", "/", "", "condor_q", "-constraint", "ClusterId == ", "-af", "ClusterId")
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "\n-- Parse error in constraint expression \"ClusterId == \"\n", r.stderr)
	r = s.run("alice", "/", "", "condor_q", "-name", "other.example.org")
	assert.Equal(t, 1, r.code)
	ok(t, s.run("alice", "/", "", "condor_q", "-name", s.scheddN, "-pool", "cm.example.org", "-af", "ClusterId"))
	ok(t, s.run("", "/", "", "condor_rm", "-all"))
	s.waitGone(ca)
	s.waitGone(cb)
	// no match is not an error
	r = s.run("alice", "/", "", "condor_q", "-af", "ClusterId")
	ok(t, r)
	assert.Equal(t, "", r.stdout)
	// running when removed: evicted first, as on a real pool
	s.checkLog(filepath.Join(da, "events.log"), 0, 1, 4, 9)
	s.checkLog(filepath.Join(db, "events.log"), 0, 1, 4, 9)
}

func TestHistory(t *testing.T) {
	s := newStand(t)
	da, db := s.userDir("alice"), s.userDir("bob")
	ea := s.script("alice", da, "job.sh", "exit 1")
	eb := s.script("bob", db, "job.sh", "exit 2")
	c1 := s.submit("alice", da, desc(ea, da))
	s.waitGone(c1)
	c2 := s.submit("bob", db, desc(eb, db))
	s.waitGone(c2)
	h := func(who string, args ...string) string {
		t.Helper()
		r := s.run(who, "/", "", "condor_history", args...)
		ok(t, r)
		return r.stdout
	}
	one, two := strconv.Itoa(c1), strconv.Itoa(c2)
	// every user's jobs, newest first
	assert.Equal(t, two+".0 bob 2\n"+one+".0 alice 1\n", h("alice", "-af:j", "Owner", "ExitCode"))
	assert.Equal(t, two+".0 2\n", h("alice", "-limit", "1", "-af:j", "ExitCode"))
	assert.Equal(t, one+".0 1\n", h("bob", one, "-af:j", "ExitCode"))
	assert.Equal(t, one+".0 1\n", h("bob", "alice", "-af:j", "ExitCode"))
	assert.Equal(t, one+".0\t4\n", h("bob", "-constraint", "ExitCode == 1", "-match", "5", "-af:jt", "JobStatus"))
	assert.Equal(t, "", h("bob", "-constraint", "ExitCode == 7", "-af", "ClusterId"))
	assert.Contains(t, h("alice"), one+".0")
	r := s.run("alice", "/", "", "condor_history", "-constraint", "(", "-af", "ClusterId")
	assert.Equal(t, 1, r.code)
	assert.Equal(t, "Error:  could not parse constraint (\n", r.stderr)
	s.checkLog(filepath.Join(da, "events.log"), 0, 1, 5)
	s.checkLog(filepath.Join(db, "events.log"), 0, 1, 5)
}

func TestPeriodicRemove(t *testing.T) {
	s := newStand(t)
	d := s.userDir("alice")
	exe := s.script("alice", d, "job.sh", "exec sleep 60")
	expr := "(JobStatus == 2) && ((time() - EnteredCurrentStatus) > 1)"
	cl := s.submit("alice", d, desc(exe, d, "periodic_remove = "+expr))
	s.waitStatus(cl, "2")
	s.waitGone(cl)
	reason := "The job attribute PeriodicRemove expression '" + expr + "' evaluated to TRUE"
	events := s.checkLog(filepath.Join(d, "events.log"), 0, 1, 9)
	assert.Equal(t, reason, events[2].Reason)
	assert.GreaterOrEqual(t, events[2].Time.Sub(events[1].Time), time.Second, "removed too early")
	assert.Equal(t, reason, s.attr(cl, "RemoveReason"))
	assert.Equal(t, "3", s.attr(cl, "JobStatus"))
}

// The backend's own rendering must be accepted and run as it is.
func TestRealSubmitDescription(t *testing.T) {
	s := newStand(t)
	ws := s.userDir("alice")
	for _, c := range []struct {
		name    string
		hints   batch.Hints
		script  string
		cpus    int
		events  []int
		state   batch.State
		removed bool
	}{
		{"runs", batch.Hints{MemoryLimit: "1Gi", CPURequest: "1500m", HTCondorAccountingGroup: "group_reana"},
			"echo hello; echo oops >&2; echo data > result.txt; exit 0", 2, []int{0, 1, 5}, batch.Succeeded, false},
		{"max runtime", batch.Hints{HTCondorMaxRuntime: "1"},
			"echo long; exec sleep 60", 1, []int{0, 1, 9}, batch.Failed, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			jobDir := s.userDir("alice", strings.ReplaceAll(c.name, " ", "-"), ".reana", "jobs", "j1")
			spec := batch.Spec{
				JobID: "0b5e7a52-5c1e-4c36-9d7e-6f1f2a3b4c5" + strconv.Itoa(len(c.name)%10), WorkflowID: "9f0c1d2e-3a4b-4c5d-8e6f-7a8b9c0d1e2f",
				WorkflowName: `root6 "fit" $x.1`, StepName: "gendata", Command: "true",
				Workspace: ws, JobDir: jobDir, Hints: c.hints,
			}
			text, err := htcondor.SubmitDescription(spec, htcondor.Config{ExtraCommands: []string{"should_transfer_files = NO", `+SiteTag = "reana"`}})
			require.NoError(t, err)
			s.script("alice", jobDir, "job.sh", c.script)
			r := s.run("alice", jobDir, text, "condor_submit", "-terse", "-")
			ok(t, r)
			var cl int
			_, err = fmt.Sscanf(r.stdout, "%d.0 - %d.0\n", &cl, &cl)
			require.NoError(t, err)
			// the job is found again by its custom attribute
			q := s.run("alice", "/", "", "condor_q", "-constraint", `ReanaJob == "`+spec.JobID+`"`, "-af:j", "ReanaRun", "SiteTag", "RequestCpus")
			ok(t, q)
			if q.stdout != "" { // it may already be done
				assert.Equal(t, fmt.Sprintf("%d.0 root6 \"fit\" $x.1 reana %d\n", cl, c.cpus), q.stdout)
			}
			s.waitGone(cl)
			events := s.checkLog(filepath.Join(jobDir, htcondor.EventLogFile), c.events...)
			assert.Equal(t, c.state, htcondor.State(events).State)
			assert.Equal(t, spec.JobID, s.attr(cl, "ReanaJob"))
			assert.Equal(t, ws, s.attr(cl, "Iwd"))
			out, err := os.ReadFile(filepath.Join(jobDir, "output.log"))
			require.NoError(t, err)
			if c.removed {
				assert.Equal(t, "long\n", string(out))
				assert.Contains(t, s.attr(cl, "RemoveReason"), "PeriodicRemove expression '(JobStatus == 2) && ((time() - EnteredCurrentStatus) > 1)'")
			} else {
				assert.Equal(t, "hello\noops\n", string(out))
				assert.Equal(t, "alice", owner(t, filepath.Join(ws, "result.txt")), "initialdir is the workspace")
				assert.Equal(t, "group_reana.alice", s.attr(cl, "AccountingGroup"))
				assert.Equal(t, "1024", s.attr(cl, "RequestMemory"))
			}
		})
	}
}

func TestScheddDown(t *testing.T) {
	s := newStand(t)
	d := s.userDir("alice")
	exe := s.script("alice", d, "job.sh", `while [ ! -f `+d+`/go ]; do sleep 0.05; done; echo done`)
	done := s.script("alice", d, "done.sh", "exit 0")
	c0 := s.submit("alice", d, "executable = "+done+"\nqueue\n")
	s.waitGone(c0)
	cl := s.submit("alice", d, desc(exe, d))
	s.waitStatus(cl, "2")
	down := filepath.Join(s.spool, "schedd_down")
	require.NoError(t, os.WriteFile(down, nil, 0o644))
	id, c := fmt.Sprintf("%d.0", cl), strconv.Itoa(cl)
	// the schedd's address, as the submit event shows it
	logText, err := os.ReadFile(filepath.Join(d, "events.log"))
	require.NoError(t, err)
	_, sinful, _ := strings.Cut(strings.SplitN(string(logText), "\n", 2)[0], "Job submitted from host: ")
	require.True(t, strings.HasPrefix(sinful, "<127.0.0.1:9618?"), sinful)
	for _, x := range []struct {
		prog   string
		args   []string
		prefix string // stderr starts with this
		suffix string // and ends with this
	}{
		{"condor_submit", []string{"-terse", filepath.Join(d, "nothing.sub")}, "\nERROR: Can't find address of local schedd\n", ""},
		// stopped (condor_off): the collector no longer knows the schedd
		{"condor_q", []string{"-af", "ClusterId"}, "Error: Can't find address for schedd " + s.scheddN + "\n", ""},
		{"condor_rm", []string{c}, "condor_rm: Can't find address for schedd " + s.scheddN + "\n", ""},
		{"condor_hold", []string{id}, "condor_hold: Can't find address for schedd " + s.scheddN + "\n", ""},
		{"condor_release", []string{c}, "condor_release: Can't find address for schedd " + s.scheddN + "\n", ""},
		{"condor_history", []string{"-name", s.scheddN, "-af", "ClusterId"}, "Unable to send history command to remote schedd;\n", ""},
		// crashed: its address is known, the connection fails
		{"crashed", nil, "", ""},
		{"condor_q", []string{"-af", "ClusterId"}, "\n-- Failed to fetch ads from: " + sinful, "\nCEDAR:6001:Failed to connect to " + sinful},
		{"condor_rm", []string{c}, "DCSchedd::actOnJobs:6001:Failed to connect to schedd", "\nCouldn't find/remove all jobs in cluster " + c + "\n"},
		{"condor_rm", []string{id}, "DCSchedd::actOnJobs:6001:Failed to connect to schedd", "\nNo result found for job " + id + "\n"},
		{"condor_hold", []string{id}, "DCSchedd::actOnJobs:6001:Failed to connect to schedd", "\nNo result found for job " + id + "\n"},
	} {
		if x.prog == "crashed" {
			require.NoError(t, os.WriteFile(down, []byte("crashed\n"), 0o644))
			continue
		}
		if x.prog == "condor_submit" {
			require.NoError(t, os.WriteFile(x.args[1], []byte("executable = "+exe+"\nqueue\n"), 0o644))
		}
		r := s.run("alice", d, "", x.prog, x.args...)
		assert.Equal(t, 1, r.code, "%s %v", x.prog, x.args)
		assert.Equal(t, "", r.stdout, "%s %v", x.prog, x.args)
		assert.True(t, strings.HasPrefix(r.stderr, x.prefix), "%s %v: stderr %q", x.prog, x.args, r.stderr)
		if x.suffix != "" {
			assert.True(t, strings.HasSuffix(strings.TrimSuffix(r.stderr, "\n"), strings.TrimSuffix(x.suffix, "\n")), "%s %v: stderr %q", x.prog, x.args, r.stderr)
		}
	}
	// the local history file is read without the schedd (history.cpp)
	r := s.run("alice", d, "", "condor_history", "-af", "ClusterId")
	ok(t, r)
	assert.Equal(t, strconv.Itoa(c0)+"\n", r.stdout)
	// the running job is not affected, but as on a real pool its terminate
	// event waits for the schedd, then comes after a disconnect/reconnect
	require.NoError(t, os.WriteFile(filepath.Join(d, "go"), nil, 0o644))
	waitFor(t, "the job to end while the schedd is down", 10*time.Second, func() bool {
		out, _ := os.ReadFile(filepath.Join(d, "output.log"))
		return strings.Contains(string(out), "done")
	})
	time.Sleep(500 * time.Millisecond)
	data, _ := os.ReadFile(filepath.Join(d, "events.log"))
	assert.NotContains(t, string(data), "\n005 (", "no terminate event while the schedd is down")
	require.NoError(t, os.Remove(down))
	s.waitGone(cl)
	s.checkLog(filepath.Join(d, "events.log"), 0, 1, 22, 23, 5)
	assert.Equal(t, "0", s.attr(cl, "ExitCode"))
}

// A shadow that is killed leaves its job as it was, like a lost shadow: the
// record keeps JobStatus 2, the job keeps running, the queue keeps answering.
func TestLostShadow(t *testing.T) {
	s := newStand(t)
	d := s.userDir("alice")
	exe := s.script("alice", d, "job.sh", "exec sleep 60")
	cl := s.submit("alice", d, desc(exe, d))
	s.waitStatus(cl, "2")
	var rec struct {
		Hidden struct {
			ShadowPid int `json:"shadow_pid"`
			JobPid    int `json:"job_pid"`
		} `json:"hidden"`
	}
	data, err := os.ReadFile(filepath.Join(s.spool, fmt.Sprintf("cluster%d", cl), "proc0.json"))
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(data, &rec))
	require.NotZero(t, rec.Hidden.ShadowPid)
	require.NotZero(t, rec.Hidden.JobPid)
	require.NoError(t, syscall.Kill(rec.Hidden.ShadowPid, syscall.SIGKILL))
	time.Sleep(300 * time.Millisecond)
	assert.Equal(t, "2", s.attr(cl, "JobStatus"))
	assert.NoError(t, syscall.Kill(rec.Hidden.JobPid, 0), "the job died with its shadow")
	s.checkLog(filepath.Join(d, "events.log"), 0, 1)
}
