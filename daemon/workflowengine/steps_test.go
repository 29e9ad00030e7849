package workflowengine

import (
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/daemon/spec"
)

func TestSteps(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		want []spec.Step
	}{
		{"snakemake rules", `{"workflow": {"type": "snakemake", "file": "Snakefile", "specification": {"job_dependencies": {}, "steps": [{"name": "gendata", "compute_backend": "slurmcern"}, {"name": "fitdata"}]}}}`,
			[]spec.Step{{Name: "gendata", ComputeBackend: "slurmcern"}, {Name: "fitdata"}}},
		{"packed cwl, hints as a list", `{"workflow": {"type": "cwl", "file": "w.cwl", "specification": {"$graph": [{"class": "CommandLineTool", "id": "#gendata.cwl"}, {"class": "Workflow", "id": "#main", "steps": [{"id": "#main/gendata", "hints": [{"class": "reana", "compute_backend": "htcondorcern"}]}]}]}}}`,
			[]spec.Step{{Name: "#main/gendata", ComputeBackend: "htcondorcern"}}},
		{"cwl steps as a map, hints by class", `{"workflow": {"type": "cwl", "file": "w.cwl", "specification": {"class": "Workflow", "steps": {"fit": {"hints": {"reana": {"compute_backend": "kubernetes"}}}}}}}`,
			[]spec.Step{{Name: "fit", ComputeBackend: "kubernetes"}}},
		{"yadage sends no specification", `{"workflow": {"type": "yadage", "file": "workflow.yaml", "specification": null}}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _, err := spec.Parse([]byte(tt.doc))
			require.NoError(t, err)
			got, err := Steps(s)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestAvailable(t *testing.T) {
	tests := []struct {
		name string
		l    *Launcher
		typ  string
		msg  string
	}{
		{"serial always", nil, "serial", ""},
		{"no interpreter", &Launcher{}, "cwl", "REANA_SITE_ENGINE_PYTHON"},
		{"engine missing", &Launcher{Python: "/p", Versions: map[string]string{"cwl": "3.1"}}, "yadage", "yadage==0.20.1"},
		{"engine present", &Launcher{Python: "/p", Versions: map[string]string{"snakemake": "7.32.4"}}, "snakemake", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.l.Available(tt.typ)
			if tt.msg == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.msg)
		})
	}
}

func TestTypedLike(t *testing.T) {
	declared := map[string]any{"events": json.Number("20000"), "fast": false, "name": "x"}
	got := typedLike(declared, map[string]any{"events": "2000", "fast": "true", "name": "y", "bad": "3", "nan": "x"})
	assert.Equal(t, map[string]any{"events": json.Number("2000"), "fast": true, "name": "y", "bad": "3", "nan": "x"}, got)
	assert.Equal(t, "2k", typedLike(declared, map[string]any{"events": "2k"})["events"], "kept when it does not read as a number")
}

func TestCWLTotal(t *testing.T) {
	assert.Equal(t, 2, cwlTotal(json.RawMessage(`{"$graph": [{"id": "#main"}, {"id": "#a"}, {"id": "#b"}]}`)))
	assert.Equal(t, 1, cwlTotal(json.RawMessage(`{"class": "CommandLineTool"}`)))
	assert.Equal(t, 1, cwlTotal(nil))
}
