package spec

import (
	"encoding/json"
	"math"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestExpand(t *testing.T) {
	params := map[string]any{
		"a":      "x",
		"aBc":    "long",
		"_u1":    "under",
		"n":      json.Number("10"),
		"neg0":   json.Number("-0"),
		"big":    json.Number("123456789012345678901234567890"),
		"f":      json.Number("1.0"),
		"fe":     json.Number("1e2"),
		"tiny":   json.Number("0.00001"),
		"small":  json.Number("0.0001"),
		"e16":    json.Number("1e16"),
		"e15":    json.Number("1e15"),
		"huge":   json.Number("1E400"),
		"nzero":  json.Number("-0.0"),
		"pi":     json.Number("3.14159"),
		"g":      float64(0.1),
		"i":      7,
		"t":      true,
		"no":     false,
		"none":   nil,
		"list":   []any{json.Number("1"), "a", nil, true, json.Number("1.5"), map[string]any{"k": "v"}},
		"dict":   map[string]any{"b": json.Number("2"), "a": []any{}},
		"strs":   []string{"it's", `a'b"c`, "tab\t", "é", "\u00a0", "\x00", "\u200b", "\U0001F600", `back\slash`},
		"empty":  "",
		"dollar": "$a",
	}
	tests := []struct {
		name string
		cmd  string
		want string
	}{
		{"no placeholder", "echo hello", "echo hello"},
		{"both forms", "echo $a ${a}", "echo x x"},
		{"escapes", "echo $$a $${a} $$ $$$a", "echo $a ${a} $ $x"},
		{"greedy name", "$aBc ${a}Bc", "long xBc"},
		{"underscore and digits", "$_u1.txt", "under.txt"},
		{"value not re-expanded", "$dollar", "$a"},
		{"empty value", "[$empty]", "[]"},
		{"int", "$n", "10"},
		{"negative zero int", "$neg0", "0"},
		{"big int", "$big", "123456789012345678901234567890"},
		{"float", "$f", "1.0"},
		{"float from exponent", "$fe", "100.0"},
		{"tiny float", "$tiny", "1e-05"},
		{"small float", "$small", "0.0001"},
		{"1e16", "$e16", "1e+16"},
		{"1e15", "$e15", "1000000000000000.0"},
		{"overflow", "$huge", "inf"},
		{"negative zero float", "$nzero", "-0.0"},
		{"pi", "$pi", "3.14159"},
		{"float64", "$g", "0.1"},
		{"Go int", "$i", "7"},
		{"bools", "$t $no", "True False"},
		{"None", "$none", "None"},
		{"list", "$list", "[1, 'a', None, True, 1.5, {'k': 'v'}]"},
		{"dict sorted", "$dict", "{'a': [], 'b': 2}"},
		{"string reprs", "$strs", `["it's", 'a\'b"c', 'tab\t', 'é', '\xa0', '\x00', '\u200b', '` + "\U0001F600" + `', 'back\\slash']`},
		{"multi-line", "echo $a\necho ${a}", "echo x\necho x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Expand([]Step{{Name: "s", Commands: []string{tt.cmd}}}, params)
			require.NoError(t, err)
			require.Equal(t, []Step{{Name: "s", Commands: []string{tt.want}}}, got)
		})
	}
}

func TestExpandErrors(t *testing.T) {
	params := map[string]any{"x": "1"}
	tests := []struct {
		name string
		cmds []string
		msg  string
	}{
		{"unknown", []string{"echo $HOME"}, "Workflow parameter(s) could not be expanded. Please take a look to 'HOME'"},
		{"unknown braced", []string{"echo ${missing}"}, "Workflow parameter(s) could not be expanded. Please take a look to 'missing'"},
		{"case-sensitive", []string{"echo $X"}, "Workflow parameter(s) could not be expanded. Please take a look to 'X'"},
		{"greedy", []string{"echo $xy"}, "Workflow parameter(s) could not be expanded. Please take a look to 'xy'"},
		{"command substitution", []string{"$(date)"}, "Invalid placeholder in string: line 1, col 1"},
		{"arithmetic", []string{"echo $((1+2))"}, "Invalid placeholder in string: line 1, col 6"},
		{"positional", []string{"echo $1"}, "Invalid placeholder in string: line 1, col 6"},
		{"trailing", []string{"abc$"}, "Invalid placeholder in string: line 1, col 4"},
		{"space in braces", []string{"${a b}"}, "Invalid placeholder in string: line 1, col 1"},
		{"empty braces", []string{"${}"}, "Invalid placeholder in string: line 1, col 1"},
		{"unclosed brace", []string{"${x"}, "Invalid placeholder in string: line 1, col 1"},
		{"digit in braces", []string{"${1x}"}, "Invalid placeholder in string: line 1, col 1"},
		{"non-ASCII name", []string{"$é"}, "Invalid placeholder in string: line 1, col 1"},
		{"later line", []string{"echo $x\n  ls $@"}, "Invalid placeholder in string: line 2, col 6"},
		{"CRLF is one break", []string{"a\r\nb\rc\n\n é $-"}, "Invalid placeholder in string: line 5, col 4"},
		{"other line breaks", []string{"a\vb\fc\x1cd\u2028e $"}, "Invalid placeholder in string: line 5, col 3"},
		{"first failure wins", []string{"ok $x", "$nope $(", "$("}, "Workflow parameter(s) could not be expanded. Please take a look to 'nope'"},
		{"left to right", []string{"$( $nope"}, "Invalid placeholder in string: line 1, col 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := []Step{{Commands: tt.cmds}}
			got, err := Expand(in, params)
			require.Nil(t, got)
			var verr *ValidationError
			require.ErrorAs(t, err, &verr)
			require.Equal(t, tt.msg, verr.Msg)
		})
	}
}

func TestExpandDoesNotModifyInput(t *testing.T) {
	in := []Step{{Name: "a", Commands: []string{"$x"}}, {Name: "b", Commands: []string{"${x}", "y"}}}
	out, err := Expand(in, map[string]any{"x": "1"})
	require.NoError(t, err)
	require.Equal(t, []Step{{Name: "a", Commands: []string{"$x"}}, {Name: "b", Commands: []string{"${x}", "y"}}}, in)
	require.Equal(t, []Step{{Name: "a", Commands: []string{"1"}}, {Name: "b", Commands: []string{"1", "y"}}}, out)
}

func TestPyFloat(t *testing.T) {
	tests := []struct {
		f    float64
		want string
	}{
		{0, "0.0"},
		{math.Copysign(0, -1), "-0.0"},
		{1, "1.0"},
		{-2.5, "-2.5"},
		{0.1, "0.1"},
		{1.0 / 3, "0.3333333333333333"},
		{123456789.123, "123456789.123"},
		{1e22, "1e+22"},
		{1.5e300, "1.5e+300"},
		{-1.5e-7, "-1.5e-07"},
		{5e-324, "5e-324"},
		{9999999999999998, "9999999999999998.0"},
		{math.Inf(-1), "-inf"},
		{math.NaN(), "nan"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, pyFloat(tt.f), "%v", tt.f)
	}
}

func TestExpandLimit(t *testing.T) {
	big := strings.Repeat("x", 1<<20)
	params := map[string]any{"a": big}
	_, err := Expand([]Step{{Commands: []string{strings.Repeat("$a", 17)}}}, params)
	require.EqualError(t, err, "Workflow parameter(s) could not be expanded: the commands would exceed 16777216 bytes")

	// The budget is shared by all commands.
	many := make([]string, 17)
	for i := range many {
		many[i] = "$a"
	}
	_, err = Expand([]Step{{Commands: many[:8]}, {Commands: many[8:]}}, params)
	require.EqualError(t, err, "Workflow parameter(s) could not be expanded: the commands would exceed 16777216 bytes")

	out, err := Expand([]Step{{Commands: many[:16]}}, params)
	require.NoError(t, err)
	require.Len(t, out[0].Commands, 16)
}
