package spec

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// FuzzParse feeds arbitrary bodies through everything a create and a start
// request do with them: nothing may panic, and failures must be
// *ValidationError so that the API answers 400, not 500.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		fullDoc,
		stepDoc(`, "name": "a", "kubernetes_memory_limit": "1Gi"`),
		`{"workflow": {"type": "yadage", "file": "w.yaml", "specification": null}}`,
		`{"workflow": {"type": "serial", "specification": {"steps": [{"commands": [1]}]}}}`,
		`{"workspace": {"retention_days": {"../x": 1e400}}, "workflow": []}`,
		`[1, {"a": null}]`,
		`{"inputs": {"options": {"TARGET": 5, "FROM": "a"}, "parameters": {"a": [1.5e300, {"b": "$"}]}}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		s, warn, err := Parse(doc)
		if err != nil {
			var verr *ValidationError
			require.ErrorAs(t, err, &verr)
			require.Nil(t, s)
			return
		}
		require.NotNil(t, s)
		for _, w := range warn {
			require.NotEmpty(t, w)
		}
		_, _ = RetentionRules(s, 30)
		_ = ValidateOperationalOptions(s.Workflow.Type, s.Inputs.Options)
		steps, err := s.SerialSteps()
		if err != nil {
			require.NotEqual(t, "serial", s.Workflow.Type, "Parse accepted what SerialSteps refuses: %v", err)
			return
		}
		_, _, _, _ = SelectSteps(steps, s.Inputs.Options)
		expanded, err := Expand(steps, s.Inputs.Parameters)
		if err == nil {
			require.Equal(t, TotalCommands(steps), TotalCommands(expanded))
		}
	})
}

// FuzzExpand checks the template scanner on arbitrary commands.
func FuzzExpand(f *testing.F) {
	for _, seed := range []string{"echo $a ${b}", "$$", "$", "${", "${a", "a\r\n$(", "$é", "$$$a$", "plain"} {
		f.Add(seed, "value")
	}
	f.Fuzz(func(t *testing.T, cmd, value string) {
		params := map[string]any{"a": value, "b": json.Number("1.5"), "c": []any{value, nil}}
		out, err := Expand([]Step{{Commands: []string{cmd}}}, params)
		if err != nil {
			msg := err.Error()
			require.True(t, strings.HasPrefix(msg, "Invalid placeholder in string: line ") ||
				strings.HasPrefix(msg, "Workflow parameter(s) could not be expanded. Please take a look to '"), msg)
			return
		}
		require.Len(t, out, 1)
		if !strings.Contains(cmd, "$") {
			require.Equal(t, cmd, out[0].Commands[0])
		}
	})
}
