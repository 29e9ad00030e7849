package htcondor

import (
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/reana-site/reana-site/batch"
)

// Event codes of the user event log this package acts on (HTCondor manual,
// "Job Event Log Codes"). Other codes are kept with their number and do
// not change a job's state.
const (
	EventSubmit          = 0
	EventExecute         = 1
	EventExecutableError = 2
	EventEvicted         = 4
	EventTerminated      = 5
	EventImageSize       = 6
	EventShadowException = 7
	EventAborted         = 9
	EventHeld            = 12
	EventReleased        = 13
	EventJobAdInfo       = 28
	EventFileTransfer    = 40
)

// Event is one event of a user event log, reduced to what deciding a job's
// state needs.
type Event struct {
	Code    int
	Cluster int
	Proc    int
	Time    time.Time
	// ReturnValue is set by a terminate event for a normal termination.
	ReturnValue *int
	// Signal is the killing signal of an abnormal termination.
	Signal int
	// Reason is the event's explanation where it has one: the hold reason
	// (012), the removal reason (009), the release reason (013), the shadow
	// exception message (007), the eviction reason (004) or the executable
	// error (002).
	Reason string
	// HoldCode and HoldSubcode are HoldReasonCode and HoldReasonSubCode of
	// a hold event.
	HoldCode, HoldSubcode int
}

// Parser reads the text format of the user event log. Its zero value reads
// times in the local time zone, as HTCondor writes them by default.
type Parser struct {
	// Location is the time zone of the daemons that write the log; nil
	// means time.Local. Times that carry their own zone ("Z", "+01:00")
	// ignore it.
	Location *time.Location
	// Now gives the year for legacy "MM/DD HH:MM:SS" times, which have
	// none; nil means time.Now.
	Now func() time.Time
}

// Parse reads the complete events at the start of data with the zero
// Parser.
func Parse(data []byte) (events []Event, consumed int) {
	return Parser{}.Parse(data)
}

var (
	// header is "NNN (cluster.proc.subproc) <time> <text>": the event
	// number has exactly three digits; the ids are zero-padded to at least
	// three.
	header = regexp.MustCompile(`^(\d{3}) \((\d+)\.(\d+)\.(\d+)\) (.*)$`)
	normal = regexp.MustCompile(`Normal termination \(return value (-?\d+)\)`)
	signal = regexp.MustCompile(`Abnormal termination \(signal (\d+)\)`)
	code   = regexp.MustCompile(`^Code (-?\d+) Subcode (-?\d+)$`)
)

// Parse reads the complete events at the start of data and returns them
// with the number of bytes they took. An event is complete once its
// terminating line "..." has been written with its newline; a trailing
// event that has not (the log read while HTCondor writes it, possibly cut
// in the middle of a line) is left for the next call, so the caller keeps
// consumed as its offset and later calls Parse on what follows it.
//
// A terminated block whose first line is not an event header (which a
// correct log never has) is consumed and skipped rather than stopping the
// reader on it for ever.
func (p Parser) Parse(data []byte) (events []Event, consumed int) {
	var lines []string
	start := 0
	for pos := 0; pos < len(data); {
		nl := bytes.IndexByte(data[pos:], '\n')
		if nl < 0 {
			break // a line still being written
		}
		line := strings.TrimSuffix(string(data[pos:pos+nl]), "\r")
		pos += nl + 1
		if line != "..." {
			lines = append(lines, line)
			continue
		}
		if e, ok := p.event(lines); ok {
			events = append(events, e)
		}
		lines, start = lines[:0], pos
	}
	return events, start
}

// event decodes one terminated block of lines (without its "...").
func (p Parser) event(lines []string) (Event, bool) {
	for len(lines) > 0 && strings.TrimSpace(lines[0]) == "" {
		lines = lines[1:]
	}
	if len(lines) == 0 {
		return Event{}, false
	}
	m := header.FindStringSubmatch(lines[0])
	if m == nil {
		return Event{}, false
	}
	var e Event
	e.Code, _ = strconv.Atoi(m[1])
	var err error
	if e.Cluster, err = strconv.Atoi(m[2]); err != nil {
		return Event{}, false
	}
	if e.Proc, err = strconv.Atoi(m[3]); err != nil {
		return Event{}, false
	}
	t, text, err := p.timestamp(m[5])
	if err != nil {
		return Event{}, false
	}
	e.Time = t
	body := make([]string, 0, len(lines)-1)
	for _, l := range lines[1:] {
		body = append(body, strings.TrimSpace(l))
	}
	first := ""
	if len(body) > 0 {
		first = body[0]
	}
	switch e.Code {
	case EventTerminated:
		for _, l := range body {
			if m := normal.FindStringSubmatch(l); m != nil {
				v, _ := strconv.Atoi(m[1])
				e.ReturnValue = &v
				break
			}
			if m := signal.FindStringSubmatch(l); m != nil {
				e.Signal, _ = strconv.Atoi(m[1])
				break
			}
		}
	case EventHeld:
		e.Reason = first
		for _, l := range body {
			if m := code.FindStringSubmatch(l); m != nil {
				e.HoldCode, _ = strconv.Atoi(m[1])
				e.HoldSubcode, _ = strconv.Atoi(m[2])
			}
		}
		if e.Reason == "" || code.MatchString(e.Reason) {
			e.Reason = "Reason unspecified"
		}
	case EventAborted, EventReleased, EventShadowException:
		e.Reason = first
	case EventEvicted:
		for _, l := range body {
			if r, ok := strings.CutPrefix(l, "Reason: "); ok {
				e.Reason = r
			}
		}
	case EventExecutableError:
		// "(N) Job file not executable." and the like, on the header line.
		e.Reason = text
	}
	return e, true
}

// timestamp splits the event time from the header's text. HTCondor writes
// "YYYY-MM-DD HH:MM:SS" since 8.9.3 and "MM/DD HH:MM:SS" before (or with
// DEFAULT_USERLOG_FORMAT_OPTIONS = LEGACY), optionally with ".mmm" and, in
// UTC, "Z"; its reader also takes full ISO 8601 with a 'T'.
func (p Parser) timestamp(s string) (time.Time, string, error) {
	loc := p.Location
	if loc == nil {
		loc = time.Local
	}
	date, rest, _ := strings.Cut(s, " ")
	if strings.Contains(date, "T") {
		t, err := parseISO(date, loc)
		return t, rest, err
	}
	clock, text, _ := strings.Cut(rest, " ")
	if strings.Contains(date, "/") {
		now := time.Now
		if p.Now != nil {
			now = p.Now
		}
		year := now().In(loc).Year()
		t, err := time.ParseInLocation("2006/01/02 15:04:05", fmt.Sprintf("%d/%s %s", year, date, clock), loc)
		if err != nil {
			return time.Time{}, "", fmt.Errorf("event time %q: %w", date+" "+clock, err)
		}
		// A log begun in December and read in January: a time more than a
		// day ahead must be from last year.
		if t.After(now().Add(24 * time.Hour)) {
			t = t.AddDate(-1, 0, 0)
		}
		return t, text, nil
	}
	t, err := parseISO(date+"T"+clock, loc)
	return t, text, err
}

func parseISO(s string, loc *time.Location) (time.Time, error) {
	for _, layout := range []string{"2006-01-02T15:04:05.999999999Z07:00", "2006-01-02T15:04:05.999999999"} {
		if t, err := time.ParseInLocation(layout, s, loc); err == nil {
			return t, nil
		}
	}
	return time.Time{}, fmt.Errorf("event time %q is neither YYYY-MM-DD HH:MM:SS nor MM/DD HH:MM:SS", s)
}

// JobStatus is what a job's events say about it: the engine's status plus
// whether the job is held, and since when, which the engine's hold timeout
// needs and batch.Status does not carry.
type JobStatus struct {
	batch.Status
	Held      bool
	HeldSince time.Time // the time of the hold event that holds it now
	HoldCode  int       // HoldReasonCode of that hold
	// Ended is set by a terminate event (005), as opposed to a removal,
	// and stays set through the events that do not change the job's state
	// (image size, job ad, file transfer).
	Ended bool
	// Runs counts execute events (001): HTCondor starts a job again from
	// the beginning after an eviction, a release, or a lost shadow, and
	// the step's log says so when it ran more than once.
	Runs int
	// Reruns counts the runs HTCondor began with no eviction, shadow
	// exception, hold or release before them (a killed condor_shadow):
	// HTCondor's own rerun, which nothing else in the log announces.
	Reruns int
}

// State folds one job's events, oldest first, into its status. With no
// events it is Unknown: the log has nothing yet.
func State(events []Event) JobStatus {
	var s JobStatus
	for _, e := range events {
		s = s.Apply(e)
	}
	return s
}

// Apply returns the status after one more event, so a follower that reads
// a log a piece at a time keeps its status and applies only the new events.
//
// Events follow one another literally rather than a terminal state being
// final: a job whose terminate event is followed by a new execute event
// did run again. (The backend keeps max_retries and on_exit_remove, which
// would make HTCondor do so, out of the site's extra commands.)
func (s JobStatus) Apply(e Event) JobStatus {
	n := s.apply(e)
	// The run counts survive every event but a new submission.
	if e.Code != EventSubmit {
		n.Runs, n.Reruns = s.Runs, s.Reruns
	}
	if e.Code == EventExecute {
		n.Runs++
		if s.State == batch.Running {
			// Running, and started again with nothing in between: the
			// schedd lost the job's shadow and ran it from the start.
			n.Reruns++
		}
	}
	return n
}

func (s JobStatus) apply(e Event) JobStatus {
	id := fmt.Sprintf("HTCondor job %d.%d", e.Cluster, e.Proc)
	switch e.Code {
	case EventSubmit:
		return JobStatus{Status: batch.Status{State: batch.Pending}}
	case EventExecute:
		return JobStatus{Status: batch.Status{State: batch.Running}}
	case EventExecutableError:
		// HTCondor puts the job on hold after this; until that event is
		// read the job is waiting, with the reason already known.
		return JobStatus{Status: batch.Status{State: batch.Pending, Reason: id + " could not start its executable: " + e.Reason}}
	case EventEvicted:
		if e.Reason == "" {
			// A hold or removal of a running job logs this, without a
			// reason line, just before its 012 or 009 (seen on a 24.0
			// pool): the job is off its machine, and the next event says
			// why; "waits to run again" would be wrong for a moment.
			return JobStatus{Status: batch.Status{State: batch.Pending, Reason: id + " was stopped on its machine"}}
		}
		fallthrough
	case EventShadowException:
		// Both send a vanilla-universe job back to idle: it will be
		// matched and run again, so it is neither over nor failed.
		what := "was evicted from its machine"
		if e.Code == EventShadowException {
			what = "lost its shadow (shadow exception)"
		}
		r := id + " " + what + " and waits to run again"
		if e.Reason != "" {
			r += ": " + e.Reason
		}
		return JobStatus{Status: batch.Status{State: batch.Pending, Reason: r}}
	case EventTerminated:
		switch {
		case e.ReturnValue != nil && *e.ReturnValue == 0:
			zero := 0
			return JobStatus{Status: batch.Status{State: batch.Succeeded, ExitCode: &zero}, Ended: true}
		case e.ReturnValue != nil:
			v := *e.ReturnValue
			return JobStatus{Status: batch.Status{State: batch.Failed, ExitCode: &v,
				Reason: fmt.Sprintf("command exited with status %d (%s)", v, id)}, Ended: true}
		case e.Signal != 0:
			return JobStatus{Status: batch.Status{State: batch.Failed, Signal: e.Signal,
				Reason: fmt.Sprintf("%s was killed by signal %d", id, e.Signal)}, Ended: true}
		}
		return JobStatus{Status: batch.Status{State: batch.Failed,
			Reason: id + " terminated without a return value or signal in its event log"}, Ended: true}
	case EventAborted:
		if s.Ended {
			// condor_rm raced the job's end: HTCondor logs 005, then 009.
			// The job had finished; the removal found nothing to stop.
			return s
		}
		// Removal by the user's stop, by the max-runtime policy or by an
		// admin all look alike here; the engine, which knows whether it
		// asked, turns its own stops into Stopped.
		r := id + " was removed"
		if e.Reason != "" {
			r += " (" + ByWhom(e.Reason) + ")"
		}
		if strings.Contains(e.Reason, "PeriodicRemove") {
			// The only periodic_remove we write enforces the step's
			// htcondor_max_runtime.
			r = id + " ran longer than its htcondor_max_runtime and was removed (" + e.Reason + ")"
		}
		return JobStatus{Status: batch.Status{State: batch.Failed, Reason: r}}
	case EventHeld:
		if s.Ended {
			return s // a hold that raced the end, as a removal can
		}
		since := e.Time
		if s.Held {
			since = s.HeldSince // held again while held: the wait began earlier
		}
		return JobStatus{
			Status: batch.Status{State: batch.Pending, Reason: "held: " + ByWhom(e.Reason)},
			Held:   true, HeldSince: since, HoldCode: e.HoldCode,
		}
	case EventReleased:
		return JobStatus{Status: batch.Status{State: batch.Pending}}
	}
	return s // image size, job ad, file transfer and unknown events
}

// byCondor is how the schedd signs what root (or another queue super user
// acting through the condor account) did: a 24.0 pool wrote "via
// condor_hold (by user condor)" for root's condor_hold.
const byCondor = "(by user condor)"

// ByWhom rewrites the schedd's "(by user condor)" so a user is not told
// that someone called condor held or removed their job.
func ByWhom(reason string) string {
	return strings.Replace(reason, byCondor, "(by an HTCondor administrator)", 1)
}

// ForJob returns the events of one job, in order. A job's log normally
// holds only its own events, but a log named by several jobs holds them
// interleaved.
func ForJob(events []Event, cluster, proc int) []Event {
	var out []Event
	for _, e := range events {
		if e.Cluster == cluster && e.Proc == proc {
			out = append(out, e)
		}
	}
	return out
}
