package systemd

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-systemd/v22/journal"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFieldName(t *testing.T) {
	tests := []struct{ key, want string }{
		{"workflow", "WORKFLOW"},
		{"user", "USER"},
		{"step", "STEP"},
		{"backend_job_id", "BACKEND_JOB_ID"},
		{"retry-in", "RETRY_IN"},
		{"http.status", "HTTP_STATUS"},
		{"Já", "J__"}, // each byte of a multi-byte rune becomes '_'
		{"_private", "PRIVATE"},
		{"2fa", "ATTR_2FA"},
		{"", "ATTR"},
		{"___", "ATTR"},
		{"message", "ATTR_MESSAGE"},
		{"priority", "ATTR_PRIORITY"},
		{"syslog_identifier", "ATTR_SYSLOG_IDENTIFIER"},
		{strings.Repeat("k", 80), strings.Repeat("K", 64)},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			assert.Equal(t, tt.want, FieldName(tt.key))
		})
	}
}

// sent is one entry as the handler hands it to the journal.
type sent struct {
	msg    string
	pri    journal.Priority
	fields map[string]string
}

func capture(level slog.Leveler, fallback slog.Handler) (*JournalHandler, *[]sent) {
	var got []sent
	h := NewJournalHandler("reana-site", level, fallback)
	h.send = func(msg string, p journal.Priority, fields map[string]string) error {
		got = append(got, sent{msg, p, fields})
		return nil
	}
	return h, &got
}

func TestJournalHandlerFields(t *testing.T) {
	when := time.Date(2026, 11, 25, 10, 0, 0, 5, time.UTC)
	tests := []struct {
		name string
		log  func(*slog.Logger)
		want sent
	}{
		{
			"attributes become upper-case fields",
			func(l *slog.Logger) {
				l.Info("job submitted", "workflow", "0b6e", "user", "alice", "step", "gendata", "backend_job_id", 42)
			},
			sent{"job submitted", journal.PriInfo, map[string]string{
				"WORKFLOW": "0b6e", "USER": "alice", "STEP": "gendata", "BACKEND_JOB_ID": "42",
			}},
		},
		{
			"errors, durations and times are readable",
			func(l *slog.Logger) {
				l.Error("record job end", "err", errors.New("disk full"), "retry_in", 1500*time.Millisecond, "at", when)
			},
			sent{"record job end", journal.PriErr, map[string]string{
				"ERR": "disk full", "RETRY_IN": "1.5s", "AT": "2026-11-25T10:00:00.000000005Z",
			}},
		},
		{
			"With attributes are kept and groups prefix later ones",
			func(l *slog.Logger) {
				l.With("component", "api").WithGroup("http").With("method", "GET").Warn("slow", "status", 200)
			},
			sent{"slow", journal.PriWarning, map[string]string{
				"COMPONENT": "api", "HTTP_METHOD": "GET", "HTTP_STATUS": "200",
			}},
		},
		{
			"group attributes nest; empty ones and empty keys follow slog's rules",
			func(l *slog.Logger) {
				l.Info("g", slog.Group("job", "id", "j1", slog.Group("slurm", "state", "RUNNING")),
					slog.Group("empty"), slog.Group("", "inlined", true), slog.Attr{})
			},
			sent{"g", journal.PriInfo, map[string]string{
				"JOB_ID": "j1", "JOB_SLURM_STATE": "RUNNING", "INLINED": "true",
			}},
		},
		{
			"control characters a user chose are escaped",
			func(l *slog.Logger) {
				l.Info("upload", "path", "a\nUSER=root\x1b[2J\tz\xff.txt", "user", "alice")
			},
			sent{"upload", journal.PriInfo, map[string]string{
				"PATH": `a\nUSER=root\x1b[2J\tz\xff.txt`, "USER": "alice",
			}},
		},
		{
			"an attribute cannot pose as the message or the priority",
			func(l *slog.Logger) { l.Debug("real", "message", "fake", "priority", 0) },
			sent{"real", journal.PriDebug, map[string]string{"ATTR_MESSAGE": "fake", "ATTR_PRIORITY": "0"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, got := capture(slog.LevelDebug, nil)
			tt.log(slog.New(h))
			require.Len(t, *got, 1)
			tt.want.fields["SYSLOG_IDENTIFIER"] = "reana-site"
			assert.Equal(t, tt.want, (*got)[0])
		})
	}
}

func TestJournalHandlerLevels(t *testing.T) {
	tests := []struct {
		level slog.Level
		want  journal.Priority
	}{
		{slog.LevelDebug, journal.PriDebug},
		{slog.LevelInfo, journal.PriInfo},
		{slog.LevelInfo + 2, journal.PriInfo},
		{slog.LevelWarn, journal.PriWarning},
		{slog.LevelError, journal.PriErr},
		{slog.LevelError + 4, journal.PriErr},
	}
	for _, tt := range tests {
		t.Run(tt.level.String(), func(t *testing.T) {
			assert.Equal(t, tt.want, priority(tt.level))
		})
	}

	h, got := capture(slog.LevelWarn, nil)
	l := slog.New(h)
	l.Info("dropped")
	l.Warn("kept")
	require.Len(t, *got, 1)
	assert.Equal(t, "kept", (*got)[0].msg)
}

func TestJournalHandlerFallsBackWhenTheJournalRefuses(t *testing.T) {
	var text bytes.Buffer
	h := NewJournalHandler("reana-site", nil, slog.NewTextHandler(&text, nil))
	h.send = func(string, journal.Priority, map[string]string) error { return errors.New("journal gone") }
	slog.New(h).With("component", "engine").WithGroup("job").Info("job ended", "id", "j1")
	assert.Contains(t, text.String(), `msg="job ended" component=engine job.id=j1`)
}

func TestLogHandlerIsTextOutsideTheJournal(t *testing.T) {
	t.Setenv("JOURNAL_STREAM", "")
	_, isJournal := LogHandler("reana-site", slog.LevelInfo).(*JournalHandler)
	assert.False(t, isJournal)

	// A JOURNAL_STREAM that names another file than stderr (a child whose
	// stderr was redirected) is not the journal either.
	t.Setenv("JOURNAL_STREAM", "1:1")
	_, isJournal = LogHandler("reana-site", slog.LevelInfo).(*JournalHandler)
	assert.False(t, isJournal)
	assert.True(t, LogHandler("x", slog.LevelInfo).Enabled(context.Background(), slog.LevelInfo))
}
