package spec

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestMergeParameters(t *testing.T) {
	specParams := map[string]any{"a": json.Number("1"), "b": "spec"}
	override := map[string]any{"b": "cli", "c": "new"}
	got := MergeParameters(specParams, override)
	require.Equal(t, map[string]any{"a": json.Number("1"), "b": "cli", "c": "new"}, got)
	require.Equal(t, map[string]any{"a": json.Number("1"), "b": "spec"}, specParams, "inputs untouched")
	require.Equal(t, map[string]any{}, MergeParameters(nil, nil))
}

func TestValidateInputParameters(t *testing.T) {
	specParams := map[string]any{"a": 1, "b": 2}
	tests := []struct {
		name  string
		given map[string]any
		msg   string
	}{
		{"none", nil, ""},
		{"declared", map[string]any{"a": "5", "b": "6"}, ""},
		{"undeclared", map[string]any{"a": "5", "undeclared": "1"}, `Input parameter "undeclared" is not present in reana.yaml`},
		{"first in sorted order", map[string]any{"z": "1", "m": "1", "a": "1"}, `Input parameter "m" is not present in reana.yaml`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateInputParameters(specParams, tt.given)
			if tt.msg == "" {
				require.NoError(t, err)
				return
			}
			var verr *ValidationError
			require.ErrorAs(t, err, &verr)
			require.Equal(t, tt.msg, verr.Msg)
		})
	}
	require.EqualError(t, ValidateInputParameters(nil, map[string]any{"x": 1}), `Input parameter "x" is not present in reana.yaml`)
}

func TestValidateOperationalOptions(t *testing.T) {
	var nilMap map[string]any
	tests := []struct {
		name string
		typ  string
		opts any
		msg  string
	}{
		{"serial options", "serial", map[string]any{"CACHE": "off", "FROM": "a", "TARGET": "b"}, ""},
		{"string map", "serial", map[string]string{"TARGET": "b"}, ""},
		{"empty", "serial", map[string]any{}, ""},
		{"absent", "serial", nilMap, ""},
		{"empty for any type", "nonsense", map[string]any{}, ""},
		{"unknown option", "serial", map[string]any{"foo": "1"}, `==> ERROR: Operational option "foo" not supported.`},
		{"case matters", "serial", map[string]any{"target": "1"}, `==> ERROR: Operational option "target" not supported.`},
		{"snakemake option", "serial", map[string]any{"report": "r.html"}, `==> ERROR: Operational option "report" not supported for serial workflows.`},
		{"yadage option", "serial", map[string]any{"toplevel": "x"}, `==> ERROR: Operational option "toplevel" not supported for serial workflows.`},
		{"FROM on cwl", "cwl", map[string]any{"FROM": "x"}, `==> ERROR: Operational option "FROM" not supported for cwl workflows.`},
		{"TARGET on cwl", "cwl", map[string]any{"TARGET": "x"}, ""},
		{"unknown type", "", map[string]any{"CACHE": "on"}, `==> ERROR: Operational option "CACHE" not supported for  workflows.`},
		{"sorted order", "serial", map[string]any{"zz": 1, "CACHE": "on", "aa": 1}, `==> ERROR: Operational option "aa" not supported.`},
		{"null", "serial", nil, "==> ERROR: Operational options must be a dictionary."},
		{"list", "serial", []any{"CACHE"}, "==> ERROR: Operational options must be a dictionary."},
		{"string", "serial", "CACHE=off", "==> ERROR: Operational options must be a dictionary."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateOperationalOptions(tt.typ, tt.opts)
			if tt.msg == "" {
				require.NoError(t, err)
				return
			}
			var verr *ValidationError
			require.ErrorAs(t, err, &verr)
			require.Equal(t, tt.msg, verr.Msg)
		})
	}
}

func TestSelectSteps(t *testing.T) {
	named := []Step{{Name: "Gen"}, {Name: "fit"}, {Name: "plot"}, {Name: "FIT"}}
	const conflict = "From step has to be the same as target or before target step. Executing full workflow."
	tests := []struct {
		name     string
		steps    []Step
		opts     map[string]any
		from, to int
		warning  string
		msg      string
	}{
		{"no options", named, nil, 0, 4, "", ""},
		{"CACHE only", named, map[string]any{"CACHE": "off"}, 0, 4, "", ""},
		{"target", named, map[string]any{"TARGET": "plot"}, 0, 3, "", ""},
		{"target case-insensitive, first match", named, map[string]any{"TARGET": "Fit"}, 0, 2, "", ""},
		{"target first step", named, map[string]any{"TARGET": "gen"}, 0, 1, "", ""},
		{"unknown target runs all", named, map[string]any{"TARGET": "nope"}, 0, 4, "", ""},
		{"from", named, map[string]any{"FROM": "PLOT"}, 2, 4, "", ""},
		{"unknown from starts at 0", named, map[string]any{"FROM": "nope"}, 0, 4, "", ""},
		{"from and target", named, map[string]any{"FROM": "fit", "TARGET": "plot"}, 1, 3, "", ""},
		{"same step", named, map[string]any{"FROM": "plot", "TARGET": "plot"}, 2, 3, "", ""},
		{"from after target", named, map[string]any{"FROM": "plot", "TARGET": "fit"}, 0, 4, conflict, ""},
		{"unknown from with target", named, map[string]any{"FROM": "nope", "TARGET": "fit"}, 0, 2, "", ""},
		{"empty values are not given", named, map[string]any{"FROM": "", "TARGET": ""}, 0, 4, "", ""},
		{"false-y values are not given", named, map[string]any{"FROM": json.Number("0"), "TARGET": false}, 0, 4, "", ""},
		{"null values are not given", named, map[string]any{"FROM": nil, "TARGET": []any{}}, 0, 4, "", ""},
		{"no steps", nil, map[string]any{"TARGET": "x"}, 0, 0, "", ""},
		{"nameless step before match is scanned", []Step{{}, {Name: "a"}}, map[string]any{"TARGET": "a"}, 0, 0, "", "'name'"},
		{"nameless step after match is not", []Step{{Name: "a"}, {}}, map[string]any{"TARGET": "a"}, 0, 1, "", ""},
		{"nameless steps without options", []Step{{}, {}}, nil, 0, 2, "", ""},
		{"nameless step, unknown from", []Step{{Name: "a"}, {}}, map[string]any{"FROM": "b"}, 0, 0, "", "'name'"},
		{"int target", named, map[string]any{"TARGET": json.Number("2")}, 0, 0, "", "'int' object has no attribute 'lower'"},
		{"float from", named, map[string]any{"FROM": json.Number("2.5")}, 0, 0, "", "'float' object has no attribute 'lower'"},
		{"bool target", named, map[string]any{"TARGET": true}, 0, 0, "", "'bool' object has no attribute 'lower'"},
		{"list target", named, map[string]any{"TARGET": []any{"a"}}, 0, 0, "", "'list' object has no attribute 'lower'"},
		{"dict target", named, map[string]any{"TARGET": map[string]any{"a": 1}}, 0, 0, "", "'dict' object has no attribute 'lower'"},
		{"dotted capital I", []Step{{Name: "İx"}, {Name: "ix"}}, map[string]any{"TARGET": "ix"}, 0, 2, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			from, to, warning, err := SelectSteps(tt.steps, tt.opts)
			if tt.msg != "" {
				var verr *ValidationError
				require.ErrorAs(t, err, &verr)
				require.Equal(t, tt.msg, verr.Msg)
				return
			}
			require.NoError(t, err)
			require.Equal(t, []any{tt.from, tt.to, tt.warning}, []any{from, to, warning})
		})
	}
}

func TestTotalCommands(t *testing.T) {
	require.Equal(t, 0, TotalCommands(nil))
	require.Equal(t, 4, TotalCommands([]Step{{Commands: []string{"a", "b", "c"}}, {Commands: []string{"d"}}, {}}))
}
