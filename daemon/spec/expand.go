package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
)

// MaxExpandedBytes bounds the total size of the expanded commands of a
// workflow. Expansion multiplies sizes: a 2 MB body can reference a 1 MB
// value a million times. Real commands are far smaller; Linux refuses a
// single argument above 128 KiB anyway (MAX_ARG_STRLEN).
const MaxExpandedBytes = 16 << 20

// Expand substitutes parameters into every command, as REANA's serial
// engine does with Python's string.Template(command).substitute(params):
// $name and ${name} (name = [_a-zA-Z][_a-zA-Z0-9]*, taken greedily) are
// replaced by str(value), $$ becomes $, and anything else after a $ is an
// error. Only commands are expanded. The first failure, in step and
// command order, is returned with REANA's message; steps are not modified.
// Unlike REANA, the expanded commands may not exceed MaxExpandedBytes.
func Expand(steps []Step, params map[string]any) ([]Step, error) {
	out := make([]Step, len(steps))
	budget := MaxExpandedBytes
	for i, st := range steps {
		cmds := make([]string, len(st.Commands))
		for j, c := range st.Commands {
			s, err := substitute(c, params, budget)
			if err != nil {
				return nil, err
			}
			cmds[j] = s
			budget -= len(s)
		}
		st.Commands = cmds
		out[i] = st
	}
	return out, nil
}

// substitute expands one command, failing once the result exceeds limit bytes.
func substitute(tmpl string, params map[string]any, limit int) (string, error) {
	var b strings.Builder
	pos := 0
	for {
		i := strings.IndexByte(tmpl[pos:], '$')
		if i < 0 {
			b.WriteString(tmpl[pos:])
			if b.Len() > limit {
				return "", errTooLong()
			}
			return b.String(), nil
		}
		d := pos + i
		b.WriteString(tmpl[pos:d])
		rest := tmpl[d+1:]
		var name string
		switch n := identLen(rest); {
		case strings.HasPrefix(rest, "$"):
			b.WriteByte('$')
			pos = d + 2
			continue
		case n > 0:
			name, pos = rest[:n], d+1+n
		case strings.HasPrefix(rest, "{") && identLen(rest[1:]) > 0 &&
			strings.HasPrefix(rest[1+identLen(rest[1:]):], "}"):
			n = identLen(rest[1:])
			name, pos = rest[1:1+n], d+3+n
		default:
			line, col := pyLineCol(tmpl[:d+1])
			return "", &ValidationError{Msg: fmt.Sprintf("Invalid placeholder in string: line %d, col %d", line, col)}
		}
		v, ok := params[name]
		if !ok {
			// REANA formats the KeyError, whose str() is the quoted key.
			return "", &ValidationError{Msg: "Workflow parameter(s) could not be expanded. Please take a look to '" + name + "'"}
		}
		b.WriteString(pyStr(v))
		if b.Len() > limit {
			return "", errTooLong()
		}
	}
}

func errTooLong() error {
	return &ValidationError{Msg: fmt.Sprintf(
		"Workflow parameter(s) could not be expanded: the commands would exceed %d bytes", MaxExpandedBytes)}
}

// identLen is the length of the ASCII identifier at the start of s.
func identLen(s string) int {
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if !letter && (i == 0 || c < '0' || c > '9') {
			return i
		}
	}
	return len(s)
}

// pyLineCol is where string.Template reports an invalid placeholder whose
// "$" ends prefix: the line count and the length of the last line of
// prefix.splitlines(), in code points.
func pyLineCol(prefix string) (line, col int) {
	line = 1
	prevCR := false
	for _, r := range prefix {
		switch {
		case r == '\n' && prevCR: // \r\n is one line break
		case strings.ContainsRune("\n\r\v\f\x1c\x1d\x1e\u0085\u2028\u2029", r):
			line++
			col = 0
		default:
			col++
		}
		prevCR = r == '\r'
	}
	return line, col
}

// pyStr is Python's str(v) for a value decoded from JSON.
func pyStr(v any) string {
	if s, ok := v.(string); ok {
		return s
	}
	return pyRepr(v)
}

// pyRepr is Python's repr(v) for a value decoded from JSON. Go maps have
// no order, so dict keys come out sorted rather than in document order.
func pyRepr(v any) string {
	switch x := v.(type) {
	case nil:
		return "None"
	case bool:
		if x {
			return "True"
		}
		return "False"
	case string:
		return pyStrRepr(x)
	case json.Number:
		return pyNumber(x)
	case float64:
		return pyFloat(x)
	case float32:
		return pyFloat(float64(x))
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return fmt.Sprint(x)
	case []any:
		items := make([]string, len(x))
		for i, item := range x {
			items[i] = pyRepr(item)
		}
		return "[" + strings.Join(items, ", ") + "]"
	case []string:
		items := make([]string, len(x))
		for i, item := range x {
			items[i] = pyStrRepr(item)
		}
		return "[" + strings.Join(items, ", ") + "]"
	case map[string]any:
		items := make([]string, 0, len(x))
		for _, k := range sortedKeys(x) {
			items = append(items, pyStrRepr(k)+": "+pyRepr(x[k]))
		}
		return "{" + strings.Join(items, ", ") + "}"
	case map[string]string:
		items := make([]string, 0, len(x))
		for _, k := range sortedKeys(x) {
			items = append(items, pyStrRepr(k)+": "+pyStrRepr(x[k]))
		}
		return "{" + strings.Join(items, ", ") + "}"
	}
	return fmt.Sprint(v)
}

// pyNumber formats a JSON number the way Python prints what json.loads
// makes of it: an int if the literal has no fraction or exponent, else a float.
func pyNumber(n json.Number) string {
	lit := string(n)
	if !strings.ContainsAny(lit, ".eE") {
		if lit == "-0" {
			return "0"
		}
		return lit
	}
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return lit
	}
	return pyFloat(f)
}

// pyFloat is Python's repr(float): the shortest round-tripping digits, in
// positional notation when the decimal exponent is in [-4, 16), else in
// exponent notation with at least two exponent digits.
func pyFloat(f float64) string {
	switch {
	case math.IsNaN(f):
		return "nan"
	case math.IsInf(f, 1):
		return "inf"
	case math.IsInf(f, -1):
		return "-inf"
	}
	s := strconv.FormatFloat(f, 'e', -1, 64) // [-]d[.ddd]e±XX
	sign := ""
	if s[0] == '-' {
		sign, s = "-", s[1:]
	}
	mant, exp, _ := strings.Cut(s, "e")
	digits := strings.Replace(mant, ".", "", 1)
	e, _ := strconv.Atoi(exp)
	if decpt := e + 1; decpt > -4 && decpt <= 16 { // decpt: digits before the point
		switch {
		case decpt <= 0:
			return sign + "0." + strings.Repeat("0", -decpt) + digits
		case decpt >= len(digits):
			return sign + digits + strings.Repeat("0", decpt-len(digits)) + ".0"
		default:
			return sign + digits[:decpt] + "." + digits[decpt:]
		}
	}
	out := sign + digits[:1]
	if len(digits) > 1 {
		out += "." + digits[1:]
	}
	esign := "+"
	if e < 0 {
		esign, e = "-", -e
	}
	return fmt.Sprintf("%se%s%02d", out, esign, e)
}

// pyStrRepr is Python's repr(str).
func pyStrRepr(s string) string {
	quote := '\''
	if strings.ContainsRune(s, '\'') && !strings.ContainsRune(s, '"') {
		quote = '"'
	}
	var b strings.Builder
	b.WriteRune(quote)
	for _, r := range s {
		switch {
		case r == quote || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r < ' ' || r == 0x7f:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r < 0x7f || unicode.IsPrint(r):
			b.WriteRune(r)
		case r <= 0xff:
			fmt.Fprintf(&b, `\x%02x`, r)
		case r <= 0xffff:
			fmt.Fprintf(&b, `\u%04x`, r)
		default:
			fmt.Fprintf(&b, `\U%08x`, r)
		}
	}
	b.WriteRune(quote)
	return b.String()
}
