package spec

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRetentionRules(t *testing.T) {
	withDays := func(days map[string]int) *Spec { return &Spec{Workspace: Workspace{RetentionDays: days}} }
	tests := []struct {
		name    string
		days    map[string]int
		maxDays int
		want    []Rule
		msg     string
	}{
		{"none", nil, 0, []Rule{}, ""},
		{"none with a maximum", nil, 30, []Rule{{"**/*", 30}}, ""},
		{"sorted", map[string]int{"z/*.log": 2, "*.tmp": 1, "a/**": 0}, 0,
			[]Rule{{"*.tmp", 1}, {"a/**", 0}, {"z/*.log", 2}}, ""},
		{"default appended", map[string]int{"*.tmp": 1}, 30, []Rule{{"*.tmp", 1}, {"**/*", 30}}, ""},
		{"user default kept", map[string]int{"**/*": 5, "*.tmp": 1}, 30, []Rule{{"**/*", 5}, {"*.tmp", 1}}, ""},
		{"dot components are fine", map[string]int{"./a/./b": 1}, 0, []Rule{{"./a/./b", 1}}, ""},
		{"dots in names are fine", map[string]int{"a..b/...": 1}, 0, []Rule{{"a..b/...", 1}}, ""},
		{"at the maximum", map[string]int{"*.tmp": 30}, 30, nil, "Maximum workflow retention period was reached. Please use less than 30 days."},
		{"unlimited", map[string]int{"*.tmp": 100000}, 0, []Rule{{"*.tmp", 100000}}, ""},
		{"absolute", map[string]int{"/etc/*": 1}, 0, nil, "Retention rule /etc/* cannot be an absolute path"},
		{"double slash", map[string]int{"//x": 1}, 0, nil, "Retention rule //x cannot be an absolute path"},
		{"empty", map[string]int{"": 1}, 0, nil, "Retention rule  cannot be empty"},
		{"dot", map[string]int{"./": 1}, 0, nil, "Retention rule ./ cannot be empty"},
		{"parent", map[string]int{"a/../../b": 1}, 0, nil, "Retention rule a/../../b cannot contain '..'"},
		{"parent at end", map[string]int{"a/..": 1}, 0, nil, "Retention rule a/.. cannot contain '..'"},
		{"negative", map[string]int{"a": -1}, 0, nil, "Retention rule a must have a non-negative number of days"},
		{"first error in sorted order", map[string]int{"/b": 1, "../a": 1}, 0, nil, "Retention rule ../a cannot contain '..'"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := RetentionRules(withDays(tt.days), tt.maxDays)
			if tt.msg != "" {
				var verr *ValidationError
				require.ErrorAs(t, err, &verr)
				require.Equal(t, tt.msg, verr.Msg)
				require.Nil(t, got)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestRetentionRulesFromParse(t *testing.T) {
	s, _, err := Parse([]byte(`{"workflow": {"type": "cwl", "file": "f"}, "workspace": {"retention_days": {"**/*.root": 7, "tmp/": 0}}}`))
	require.NoError(t, err)
	rules, err := RetentionRules(s, 0)
	require.NoError(t, err)
	require.Equal(t, []Rule{{"**/*.root", 7}, {"tmp/", 0}}, rules)
}
