package htcondor

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/batch"
)

// utc parses times as UTC, whatever the machine running the tests uses,
// with a fixed "now" for the year of legacy times.
func utc() Parser {
	return Parser{Location: time.UTC, Now: func() time.Time { return time.Date(2026, 9, 30, 0, 0, 0, 0, time.UTC) }}
}

func intp(v int) *int { return &v }

func readLog(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

func at(s string) time.Time {
	t, err := time.Parse("2006-01-02 15:04:05", s)
	if err != nil {
		panic(err)
	}
	return t
}

func TestParseSamples(t *testing.T) {
	cases := []struct {
		file   string
		events []Event
		state  batch.Status
		held   bool
	}{
		{
			file: "terminated-iso.log",
			events: []Event{
				{Code: EventSubmit, Cluster: 42, Time: at("2025-11-25 10:00:00")},
				{Code: EventFileTransfer, Cluster: 42, Time: at("2025-11-25 10:00:02")},
				{Code: EventExecute, Cluster: 42, Time: at("2025-11-25 10:00:05")},
				{Code: EventImageSize, Cluster: 42, Time: at("2025-11-25 10:00:10")},
				{Code: EventTerminated, Cluster: 42, Time: at("2025-11-25 10:01:00"), ReturnValue: intp(0)},
				{Code: EventJobAdInfo, Cluster: 42, Time: at("2025-11-25 10:01:00")},
			},
			state: batch.Status{State: batch.Succeeded, ExitCode: intp(0)},
		},
		{
			file: "exit-legacy.log",
			events: []Event{
				{Code: EventSubmit, Cluster: 16091, Time: at("2026-01-22 12:09:19")},
				{Code: EventExecute, Cluster: 16091, Time: at("2026-01-22 12:09:21")},
				{Code: EventTerminated, Cluster: 16091, Time: at("2026-01-22 12:10:02"), ReturnValue: intp(3)},
			},
			state: batch.Status{State: batch.Failed, ExitCode: intp(3), Reason: "command exited with status 3 (HTCondor job 16091.0)"},
		},
		{
			file: "signal.log",
			events: []Event{
				{Code: EventSubmit, Cluster: 7, Time: at("2026-03-01 08:00:00")},
				{Code: EventExecute, Cluster: 7, Time: at("2026-03-01 08:00:01")},
				{Code: EventTerminated, Cluster: 7, Time: at("2026-03-01 08:00:30"), Signal: 9},
			},
			state: batch.Status{State: batch.Failed, Signal: 9, Reason: "HTCondor job 7.0 was killed by signal 9"},
		},
		{
			file: "held-released.log",
			events: []Event{
				{Code: EventSubmit, Cluster: 1234, Time: at("2026-03-01 09:00:00")},
				{Code: EventHeld, Cluster: 1234, Time: at("2026-03-01 09:00:10"), HoldCode: 6, HoldSubcode: 13,
					Reason: "Error from slot1@wn01: Failed to execute '/w/job.sh': (errno=13: 'Permission denied')"},
				{Code: EventReleased, Cluster: 1234, Time: at("2026-03-01 09:05:00"), Reason: "via condor_release (by user alice)"},
				{Code: EventExecute, Cluster: 1234, Time: at("2026-03-01 09:05:03")},
				{Code: EventTerminated, Cluster: 1234, Time: at("2026-03-01 09:06:00"), ReturnValue: intp(0)},
			},
			state: batch.Status{State: batch.Succeeded, ExitCode: intp(0)},
		},
		{
			file: "held.log",
			events: []Event{
				{Code: EventSubmit, Cluster: 1235, Time: at("2026-03-01 09:00:00")},
				{Code: EventHeld, Cluster: 1235, Time: at("2026-03-01 09:00:10"), HoldCode: 13, HoldSubcode: 2,
					Reason: "Transfer input files failure at execution point slot1@wn01 while receiving files from access point ap01. Details: reading from file /w/in.dat: (errno 2) No such file or directory"},
			},
			state: batch.Status{State: batch.Pending, Reason: "held: Transfer input files failure at execution point slot1@wn01 while receiving files from access point ap01. Details: reading from file /w/in.dat: (errno 2) No such file or directory"},
			held:  true,
		},
		{
			file: "removed.log",
			events: []Event{
				{Code: EventSubmit, Cluster: 55, Time: at("2026-03-01 10:00:00")},
				{Code: EventExecute, Cluster: 55, Time: at("2026-03-01 10:00:02")},
				{Code: EventAborted, Cluster: 55, Time: at("2026-03-01 10:03:00"), Reason: "via condor_rm (by user alice)"},
			},
			state: batch.Status{State: batch.Failed, Reason: "HTCondor job 55.0 was removed (via condor_rm (by user alice))"},
		},
		{
			file: "shadow-evict.log",
			events: []Event{
				{Code: EventSubmit, Cluster: 60, Time: at("2026-03-01 11:00:00")},
				{Code: EventExecute, Cluster: 60, Time: at("2026-03-01 11:00:02")},
				{Code: EventShadowException, Cluster: 60, Time: at("2026-03-01 11:00:30"), Reason: "Error from slot1@wn01: Starter lost connection to shadow"},
				{Code: EventExecute, Cluster: 60, Time: at("2026-03-01 11:01:00")},
				{Code: EventEvicted, Cluster: 60, Time: at("2026-03-01 11:02:00")},
			},
			// No reason line: a hold or removal logs the same 004 first.
			state: batch.Status{State: batch.Pending, Reason: "HTCondor job 60.0 was stopped on its machine"},
		},
		{
			file: "partial.log", // a terminate event without its "..." yet
			events: []Event{
				{Code: EventSubmit, Cluster: 7, Time: at("2026-03-01 08:00:00")},
				{Code: EventExecute, Cluster: 7, Time: at("2026-03-01 08:00:01")},
			},
			state: batch.Status{State: batch.Running},
		},
	}
	for _, tc := range cases {
		t.Run(tc.file, func(t *testing.T) {
			data := readLog(t, tc.file)
			events, consumed := utc().Parse(data)
			assert.Equal(t, tc.events, events)
			st := State(events)
			assert.Equal(t, tc.state, st.Status)
			assert.Equal(t, tc.held, st.Held)
			if tc.file == "partial.log" {
				assert.Less(t, consumed, len(data))
				assert.Equal(t, "005 (", string(data[consumed:consumed+5]), "the partial event is left for later")
			} else {
				assert.Equal(t, len(data), consumed)
			}
		})
	}
}

func TestParseMultipleJobs(t *testing.T) {
	events, _ := utc().Parse(readLog(t, "multi.log"))
	require.Len(t, events, 7)
	a, b := ForJob(events, 100, 0), ForJob(events, 101, 0)
	require.Len(t, a, 4)
	require.Len(t, b, 3)
	// 010/011 (suspend, unsuspend) are unknown to the backend: kept with
	// their code, and they change nothing.
	assert.Equal(t, []int{0, 1, 10, 11}, []int{a[0].Code, a[1].Code, a[2].Code, a[3].Code})
	assert.Equal(t, batch.Running, State(a).State)
	st := State(b)
	assert.Equal(t, batch.Failed, st.State)
	assert.Equal(t, intp(1), st.ExitCode)
}

// TestParseEveryCut reads each sample cut at every byte, as a follower
// would find it while HTCondor is writing, then resumes from the offset
// Parse returned: the events must come out exactly once and unchanged.
func TestParseEveryCut(t *testing.T) {
	files, err := filepath.Glob("testdata/*.log")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data := readLog(t, filepath.Base(f))
			whole, wholeN := utc().Parse(data)
			for cut := 0; cut <= len(data); cut++ {
				first, n := utc().Parse(data[:cut])
				require.LessOrEqual(t, n, cut)
				rest, m := utc().Parse(data[n:])
				got := append(append([]Event{}, first...), rest...)
				require.Equal(t, whole, got, "cut at %d", cut)
				require.Equal(t, wholeN, n+m, "cut at %d", cut)
			}
		})
	}
}

func TestParseHeaders(t *testing.T) {
	cases := []struct {
		name string
		line string
		want Event
		ok   bool
	}{
		{"iso", "001 (123.004.000) 2025-11-25 01:58:05 Job executing on host: <h>", Event{Code: 1, Cluster: 123, Proc: 4, Time: at("2025-11-25 01:58:05")}, true},
		{"long cluster", "000 (1234567.000.000) 2025-11-25 01:58:05 Job submitted from host: <h>", Event{Code: 0, Cluster: 1234567, Time: at("2025-11-25 01:58:05")}, true},
		{"sub-second utc", "000 (1.000.000) 2025-11-25 01:58:05.250Z Job submitted from host: <h>", Event{Code: 0, Cluster: 1, Time: at("2025-11-25 01:58:05").Add(250 * time.Millisecond)}, true},
		{"offset", "000 (1.000.000) 2025-11-25 02:58:05+01:00 Job submitted from host: <h>", Event{Code: 0, Cluster: 1, Time: at("2025-11-25 01:58:05")}, true},
		{"T separator", "000 (1.000.000) 2025-11-25T01:58:05 Job submitted from host: <h>", Event{Code: 0, Cluster: 1, Time: at("2025-11-25 01:58:05")}, true},
		{"legacy", "000 (1.000.000) 09/29 23:00:00 Job submitted from host: <h>", Event{Code: 0, Cluster: 1, Time: at("2026-09-29 23:00:00")}, true},
		{"legacy from last year", "000 (1.000.000) 12/31 23:00:00 Job submitted from host: <h>", Event{Code: 0, Cluster: 1, Time: at("2025-12-31 23:00:00")}, true},
		{"executable error", "002 (1.000.000) 2025-11-25 01:58:05 (22) Job file not executable.", Event{Code: 2, Cluster: 1, Time: at("2025-11-25 01:58:05"), Reason: "(22) Job file not executable."}, true},
		{"two-digit code", "05 (1.000.000) 2025-11-25 01:58:05 Job terminated.", Event{}, false},
		{"bad time", "005 (1.000.000) yesterday Job terminated.", Event{}, false},
		{"no ids", "005 2025-11-25 01:58:05 Job terminated.", Event{}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			events, n := utc().Parse([]byte(tc.line + "\n...\n"))
			assert.Equal(t, len(tc.line)+5, n, "a terminated block is consumed either way")
			if !tc.ok {
				assert.Empty(t, events)
				return
			}
			require.Len(t, events, 1)
			assert.True(t, tc.want.Time.Equal(events[0].Time), "time %s, want %s", events[0].Time, tc.want.Time)
			tc.want.Time = events[0].Time
			assert.Equal(t, tc.want, events[0])
		})
	}
}

func TestParseCRLFAndBlankLines(t *testing.T) {
	data := []byte("000 (5.000.000) 2026-01-01 00:00:00 Job submitted from host: <h>\r\n...\r\n\n001 (5.000.000) 2026-01-01 00:00:01 Job executing on host: <h>\n...\n")
	events, n := utc().Parse(data)
	assert.Equal(t, len(data), n)
	require.Len(t, events, 2)
	assert.Equal(t, EventExecute, events[1].Code)
}

func TestApply(t *testing.T) {
	t0 := at("2026-03-01 09:00:00")
	held := func(ts time.Time, reason string) Event {
		return Event{Code: EventHeld, Cluster: 9, Time: ts, Reason: reason, HoldCode: 26}
	}
	cases := []struct {
		name   string
		events []Event
		want   JobStatus
	}{
		{"no events", nil, JobStatus{}},
		{"submitted", []Event{{Code: EventSubmit}}, JobStatus{Status: batch.Status{State: batch.Pending}}},
		{"held", []Event{{Code: EventSubmit}, held(t0, "over quota")},
			JobStatus{Status: batch.Status{State: batch.Pending, Reason: "held: over quota"}, Held: true, HeldSince: t0, HoldCode: 26}},
		{"held twice keeps the first time", []Event{held(t0, "a"), held(t0.Add(time.Hour), "b")},
			JobStatus{Status: batch.Status{State: batch.Pending, Reason: "held: b"}, Held: true, HeldSince: t0, HoldCode: 26}},
		{"released", []Event{held(t0, "a"), {Code: EventReleased}}, JobStatus{Status: batch.Status{State: batch.Pending}}},
		{"held while running", []Event{{Code: EventExecute}, held(t0, "a")},
			JobStatus{Status: batch.Status{State: batch.Pending, Reason: "held: a"}, Held: true, HeldSince: t0, HoldCode: 26, Runs: 1}},
		{"removed while held", []Event{held(t0, "a"), {Code: EventAborted, Cluster: 9, Reason: "via condor_rm (by user alice)"}},
			JobStatus{Status: batch.Status{State: batch.Failed, Reason: "HTCondor job 9.0 was removed (via condor_rm (by user alice))"}}},
		{"removed without a reason", []Event{{Code: EventAborted, Cluster: 9}},
			JobStatus{Status: batch.Status{State: batch.Failed, Reason: "HTCondor job 9.0 was removed"}}},
		{"shadow exception waits", []Event{{Code: EventExecute}, {Code: EventShadowException, Cluster: 9, Reason: "x"}},
			JobStatus{Status: batch.Status{State: batch.Pending, Reason: "HTCondor job 9.0 lost its shadow (shadow exception) and waits to run again: x"}, Runs: 1}},
		{"executable error", []Event{{Code: EventExecutableError, Cluster: 9, Reason: "(22) Job file not executable."}},
			JobStatus{Status: batch.Status{State: batch.Pending, Reason: "HTCondor job 9.0 could not start its executable: (22) Job file not executable."}}},
		{"ignored events keep the state", []Event{{Code: EventExecute}, {Code: EventImageSize}, {Code: EventFileTransfer}, {Code: EventJobAdInfo}, {Code: 33}},
			JobStatus{Status: batch.Status{State: batch.Running}, Runs: 1}},
		{"terminated without detail", []Event{{Code: EventTerminated, Cluster: 9}},
			JobStatus{Status: batch.Status{State: batch.Failed, Reason: "HTCondor job 9.0 terminated without a return value or signal in its event log"}, Ended: true}},
		{"events after the end keep it ended", []Event{{Code: EventTerminated, Cluster: 9, ReturnValue: new(int)}, {Code: EventJobAdInfo}, {Code: EventImageSize}},
			JobStatus{Status: batch.Status{State: batch.Succeeded, ExitCode: new(int)}, Ended: true}},
		{"run again after the end", []Event{{Code: EventTerminated, Cluster: 9, ReturnValue: new(int)}, {Code: EventExecute}},
			JobStatus{Status: batch.Status{State: batch.Running}, Runs: 1}},
		// What a 24.0 pool logged:
		{"held while running: 004 first, without waits to run again", []Event{{Code: EventExecute}, {Code: EventEvicted, Cluster: 9}},
			JobStatus{Status: batch.Status{State: batch.Pending, Reason: "HTCondor job 9.0 was stopped on its machine"}, Runs: 1}},
		{"held while running: then 012", []Event{{Code: EventExecute}, {Code: EventEvicted, Cluster: 9}, held(t0, "via condor_hold (by user alice)")},
			JobStatus{Status: batch.Status{State: batch.Pending, Reason: "held: via condor_hold (by user alice)"}, Held: true, HeldSince: t0, HoldCode: 26, Runs: 1}},
		{"a real eviction keeps its reason", []Event{{Code: EventExecute}, {Code: EventEvicted, Cluster: 9, Reason: "PREEMPT"}},
			JobStatus{Status: batch.Status{State: batch.Pending, Reason: "HTCondor job 9.0 was evicted from its machine and waits to run again: PREEMPT"}, Runs: 1}},
		{"removal that raced the end", []Event{{Code: EventExecute}, {Code: EventTerminated, Cluster: 9, ReturnValue: new(int)},
			{Code: EventAborted, Cluster: 9, Reason: "via condor_rm (by user alice)"}},
			JobStatus{Status: batch.Status{State: batch.Succeeded, ExitCode: new(int)}, Ended: true, Runs: 1}},
		{"root's hold", []Event{{Code: EventExecute}, held(t0, "via condor_hold (by user condor)")},
			JobStatus{Status: batch.Status{State: batch.Pending, Reason: "held: via condor_hold (by an HTCondor administrator)"}, Held: true, HeldSince: t0, HoldCode: 26, Runs: 1}},
		{"root's removal", []Event{{Code: EventAborted, Cluster: 9, Reason: "via condor_rm (by user condor)"}},
			JobStatus{Status: batch.Status{State: batch.Failed, Reason: "HTCondor job 9.0 was removed (via condor_rm (by an HTCondor administrator))"}}},
		{"killed shadow: HTCondor runs it again", []Event{{Code: EventSubmit}, {Code: EventExecute}, {Code: EventImageSize}, {Code: EventExecute},
			{Code: EventTerminated, Cluster: 9, ReturnValue: new(int)}},
			JobStatus{Status: batch.Status{State: batch.Succeeded, ExitCode: new(int)}, Ended: true, Runs: 2, Reruns: 1}},
		{"released and run again is no rerun of HTCondor's own", []Event{{Code: EventExecute}, held(t0, "a"), {Code: EventReleased}, {Code: EventExecute}},
			JobStatus{Status: batch.Status{State: batch.Running}, Runs: 2}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, State(tc.events))
		})
	}
}

// TestParseAgainstHTCondor reads every sample with HTCondor's own reader
// (htcondor2.JobEventLog) and checks that it finds the same events, so the
// samples are faithful to the format and the parser agrees with HTCondor.
func TestParseAgainstHTCondor(t *testing.T) {
	py := condorPython(t)
	files, err := filepath.Glob("testdata/*.log")
	require.NoError(t, err)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			out, err := exec.Command(py, "testdata/check_eventlog.py", f).Output()
			require.NoError(t, err)
			var theirs []struct {
				Code               int    `json:"code"`
				Cluster            int    `json:"cluster"`
				Proc               int    `json:"proc"`
				Time               int64  `json:"time"`
				ReturnValue        *int   `json:"ReturnValue"`
				TerminatedBySignal int    `json:"TerminatedBySignal"`
				HoldReason         string `json:"HoldReason"`
				HoldReasonCode     int    `json:"HoldReasonCode"`
				HoldReasonSubCode  int    `json:"HoldReasonSubCode"`
				Reason             string `json:"Reason"`
			}
			require.NoError(t, json.Unmarshal(out, &theirs))
			// The Python reader runs in the machine's time zone, as the
			// zero Parser does.
			ours, _ := Parse(readLog(t, filepath.Base(f)))
			require.Len(t, ours, len(theirs))
			for i, e := range ours {
				th := theirs[i]
				assert.Equal(t, th.Code, e.Code, "event %d", i)
				assert.Equal(t, th.Cluster, e.Cluster, "event %d", i)
				assert.Equal(t, th.Proc, e.Proc, "event %d", i)
				// Legacy times have no year, and each reader supplies its own
				// (HTCondor's is always the current one), so compare the rest.
				const noYear = "01-02 15:04:05"
				assert.Equal(t, time.Unix(th.Time, 0).Format(noYear), e.Time.Format(noYear), "event %d time", i)
				if filepath.Base(f) != "exit-legacy.log" {
					assert.Equal(t, th.Time, e.Time.Unix(), "event %d time", i)
				}
				if e.Code == EventTerminated {
					assert.Equal(t, th.ReturnValue, e.ReturnValue, "event %d", i)
					assert.Equal(t, th.TerminatedBySignal, e.Signal, "event %d", i)
				}
				if e.Code == EventHeld {
					assert.Equal(t, th.HoldReason, e.Reason, "event %d", i)
					assert.Equal(t, th.HoldReasonCode, e.HoldCode, "event %d", i)
					assert.Equal(t, th.HoldReasonSubCode, e.HoldSubcode, "event %d", i)
				}
				if e.Code == EventAborted || e.Code == EventReleased {
					assert.Equal(t, th.Reason, e.Reason, "event %d", i)
				}
			}
		})
	}
}
