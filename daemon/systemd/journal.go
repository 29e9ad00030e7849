package systemd

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/coreos/go-systemd/v22/journal"
)

// LogHandler returns the handler for the daemon's log. When systemd
// connected stderr to the journal (JOURNAL_STREAM names stderr's device and
// inode) and the journal's socket answers, records go to the journal with
// their attributes as fields, so that `journalctl WORKFLOW=<id>` or
// `journalctl USER=alice` finds them; otherwise they are text on stderr.
func LogHandler(ident string, level slog.Leveler) slog.Handler {
	text := slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})
	if ok, err := journal.StderrIsJournalStream(); err != nil || !ok || !journal.Enabled() {
		return text
	}
	return NewJournalHandler(ident, level, text)
}

// JournalHandler is a slog.Handler that sends each record to the journal
// as one entry: the message as MESSAGE, the level as PRIORITY and every
// attribute as a field named by its key in upper case, with groups joined
// by '_' (workflow becomes WORKFLOW, a group http with key status becomes
// HTTP_STATUS).
type JournalHandler struct {
	ident    string
	level    slog.Leveler
	prefix   string  // the open groups, as a field name prefix
	fields   []field // from WithAttrs, already named
	fallback slog.Handler
	send     func(msg string, p journal.Priority, fields map[string]string) error
}

type field struct{ name, value string }

// NewJournalHandler returns a handler that tags entries with
// SYSLOG_IDENTIFIER=ident (without it journalctl would name them after the
// process, which is "exe" after the daemon re-executes /proc/self/exe),
// drops records below level (nil means Info) and hands a record to
// fallback when the journal refuses it, so that no record is lost.
func NewJournalHandler(ident string, level slog.Leveler, fallback slog.Handler) *JournalHandler {
	if level == nil {
		level = slog.LevelInfo
	}
	return &JournalHandler{ident: ident, level: level, fallback: fallback, send: journal.Send}
}

// Enabled reports whether records of level l are kept.
func (h *JournalHandler) Enabled(_ context.Context, l slog.Level) bool {
	return l >= h.level.Level()
}

// Handle sends r to the journal.
func (h *JournalHandler) Handle(ctx context.Context, r slog.Record) error {
	fields := make(map[string]string, len(h.fields)+r.NumAttrs()+1)
	for _, f := range h.fields {
		fields[f.name] = f.value
	}
	r.Attrs(func(a slog.Attr) bool {
		for _, f := range appendAttr(nil, h.prefix, a) {
			fields[f.name] = f.value
		}
		return true
	})
	if h.ident != "" {
		fields["SYSLOG_IDENTIFIER"] = h.ident
	}
	err := h.send(r.Message, priority(r.Level), fields)
	if err != nil && h.fallback != nil {
		return h.fallback.Handle(ctx, r)
	}
	return err
}

// WithAttrs returns a handler that adds attrs to every record.
func (h *JournalHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	h2 := *h
	h2.fields = slices.Clone(h.fields)
	for _, a := range attrs {
		h2.fields = appendAttr(h2.fields, h.prefix, a)
	}
	if h.fallback != nil {
		h2.fallback = h.fallback.WithAttrs(attrs)
	}
	return &h2
}

// WithGroup returns a handler that puts later attributes in group name.
func (h *JournalHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	h2 := *h
	h2.prefix = h.prefix + name + "_"
	if h.fallback != nil {
		h2.fallback = h.fallback.WithGroup(name)
	}
	return &h2
}

// appendAttr flattens a into fields, following slog's rules: empty
// attributes and empty groups are dropped, a group with an empty key is
// inlined.
func appendAttr(fields []field, prefix string, a slog.Attr) []field {
	a.Value = a.Value.Resolve()
	if a.Equal(slog.Attr{}) {
		return fields
	}
	if a.Value.Kind() == slog.KindGroup {
		if a.Key != "" {
			prefix += a.Key + "_"
		}
		for _, g := range a.Value.Group() {
			fields = appendAttr(fields, prefix, g)
		}
		return fields
	}
	return append(fields, field{FieldName(prefix + a.Key), escapeControl(valueString(a.Value))})
}

func valueString(v slog.Value) string {
	switch v.Kind() {
	case slog.KindTime:
		return v.Time().Format(time.RFC3339Nano)
	case slog.KindAny:
		if err, ok := v.Any().(error); ok {
			return err.Error()
		}
	}
	return v.String()
}

// escapeControl writes control characters (and bytes that are not UTF-8)
// as Go escapes. Field values carry what users chose (an uploaded file's
// name, a workflow name); raw, a newline or an escape sequence there would
// forge lines in `journalctl -o cat` or repaint the admin's terminal.
func escapeControl(s string) string {
	clean := true
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	var b strings.Builder
	for i, w := 0, 0; i < len(s); i += w {
		r, n := utf8.DecodeRuneInString(s[i:])
		w = n
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case r == utf8.RuneError || unicode.IsControl(r):
			q := strconv.QuoteRune(r)
			b.WriteString(q[1 : len(q)-1])
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// maxFieldName is the journal's limit on field name length.
const maxFieldName = 64

// FieldName turns an attribute key into a journal field name, which may
// hold only A-Z, 0-9 and '_', must not start with a digit or with '_'
// (those are the journal's own trusted fields) and is at most 64 bytes.
func FieldName(key string) string {
	b := make([]byte, 0, len(key))
	for _, c := range []byte(key) {
		switch {
		case c >= 'a' && c <= 'z':
			b = append(b, c-'a'+'A')
		case c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			b = append(b, c)
		default:
			b = append(b, '_')
		}
	}
	name := strings.TrimLeft(string(b), "_")
	switch {
	case name == "":
		name = "ATTR"
	case name[0] >= '0' && name[0] <= '9':
		name = "ATTR_" + name
	case name == "MESSAGE", name == "PRIORITY", name == "SYSLOG_IDENTIFIER":
		// The handler sets these itself; an attribute must not pose as them.
		name = "ATTR_" + name
	}
	if len(name) > maxFieldName {
		name = name[:maxFieldName]
	}
	return name
}

// priority maps slog levels to syslog priorities; levels between the named
// ones take the next lower priority's number (Info+2 is still info).
func priority(l slog.Level) journal.Priority {
	switch {
	case l >= slog.LevelError:
		return journal.PriErr
	case l >= slog.LevelWarn:
		return journal.PriWarning
	case l >= slog.LevelInfo:
		return journal.PriInfo
	}
	return journal.PriDebug
}
