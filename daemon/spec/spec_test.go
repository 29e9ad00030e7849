package spec

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// serialDoc wraps step objects (JSON text) in a minimal serial document.
func serialDoc(steps string) string {
	return `{"workflow": {"type": "serial", "specification": {"steps": [` + steps + `]}}}`
}

// stepDoc is a document with one step: a valid step plus extra fields.
func stepDoc(extra string) string {
	return serialDoc(`{"environment": "busybox", "commands": ["true"]` + extra + `}`)
}

const fullDoc = `{
  "version": "0.9.0",
  "inputs": {
    "files": ["code/fit.py", "data/in.csv"],
    "directories": ["data"],
    "parameters": {"n": 10, "f": 1.5, "s": "x", "l": [1, "a"]},
    "options": {"CACHE": "off"}
  },
  "workflow": {
    "type": "serial",
    "resources": {"cvmfs": ["atlas.cern.ch", "sft.cern.ch"], "kerberos": true},
    "specification": {"steps": [
      {
        "name": "fit", "environment": "python:3.12", "commands": ["python fit.py $n", "ls"],
        "compute_backend": "slurmcern",
        "kubernetes_memory_limit": "2Gi", "kubernetes_memory_request": "1Gi",
        "kubernetes_cpu_limit": "2", "kubernetes_cpu_request": "500m",
        "kubernetes_job_timeout": 3600, "kubernetes_uid": 1000,
        "htcondor_max_runtime": "espresso", "htcondor_accounting_group": "group_u",
        "slurm_partition": "short", "slurm_time": "01:00:00",
        "c4p_cpu_cores": "4", "c4p_memory_limit": "8G", "c4p_additional_requirements": "RequestGPUs = 1",
        "unpacked_img": true, "voms_proxy": true, "rucio": true, "kerberos": true
      },
      {"environment": "busybox", "commands": ["echo done"]}
    ]}
  },
  "outputs": {"files": ["plot.png"], "directories": ["results"]},
  "tests": {"files": ["t.feature"]},
  "workspace": {"root_path": "/scratch/reana", "retention_days": {"*.tmp": 1, "logs/**": 30.0}}
}`

func TestParseFull(t *testing.T) {
	s, warn, err := Parse([]byte(fullDoc))
	require.NoError(t, err)
	require.Equal(t, Warnings{WarningAdditionalProperties: {"kubernetes_uid", "slurm_partition", "slurm_time"}}, warn)

	require.Equal(t, "0.9.0", s.Version)
	require.Equal(t, []string{"code/fit.py", "data/in.csv"}, s.Inputs.Files)
	require.Equal(t, []string{"data"}, s.Inputs.Directories)
	require.Equal(t, json.Number("10"), s.Inputs.Parameters["n"])
	require.Equal(t, map[string]any{"CACHE": "off"}, s.Inputs.Options)
	require.Equal(t, "serial", s.Workflow.Type)
	require.Equal(t, Resources{Cvmfs: []string{"atlas.cern.ch", "sft.cern.ch"}, Kerberos: true}, s.Workflow.Resources)
	require.Equal(t, Outputs{Files: []string{"plot.png"}, Directories: []string{"results"}}, s.Outputs)
	require.Equal(t, Workspace{RootPath: "/scratch/reana", RetentionDays: map[string]int{"*.tmp": 1, "logs/**": 30}}, s.Workspace)
	require.Contains(t, s.Raw, "tests")

	steps, err := s.SerialSteps()
	require.NoError(t, err)
	require.Equal(t, []Step{
		{
			Name: "fit", Environment: "python:3.12", Commands: []string{"python fit.py $n", "ls"},
			ComputeBackend:        "slurmcern",
			KubernetesMemoryLimit: "2Gi", KubernetesMemoryRequest: "1Gi",
			KubernetesCPULimit: "2", KubernetesCPURequest: "500m",
			KubernetesJobTimeout: 3600, KubernetesUID: 1000,
			HTCondorMaxRuntime: "espresso", HTCondorAccountingGroup: "group_u",
			SlurmPartition: "short", SlurmTime: "01:00:00",
			C4PCPUCores: "4", C4PMemoryLimit: "8G", C4PAdditionalRequirements: "RequestGPUs = 1",
			UnpackedImg: true, VOMSProxy: true, Rucio: true, Kerberos: true,
		},
		{Environment: "busybox", Commands: []string{"echo done"}},
	}, steps)
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name string
		doc  string
		warn Warnings
	}{
		{"minimal serial", stepDoc(""), nil},
		{"yadage posts a null specification", `{"workflow": {"type": "yadage", "file": "w.yaml", "specification": null}}`, nil},
		{"cwl with file only", `{"workflow": {"type": "cwl", "file": "main.cwl"}}`, nil},
		{"snakemake with both", `{"workflow": {"type": "snakemake", "file": "Snakefile", "specification": {"rules": []}}}`, nil},
		{"our extra backends", serialDoc(`{"environment": "e", "commands": ["a"], "compute_backend": "slurm"},
			{"environment": "e", "commands": ["a"], "compute_backend": "htcondor"},
			{"environment": "e", "commands": ["a"], "compute_backend": "local"}`), nil},
		{"integral float is an integer", stepDoc(`, "kubernetes_job_timeout": 60.0, "kubernetes_uid": 1e3`), Warnings{WarningAdditionalProperties: {"kubernetes_uid"}}},
		{"memory limit forms", serialDoc(`{"environment": "e", "commands": ["a"], "kubernetes_memory_limit": "128974848"},
			{"environment": "e", "commands": ["a"], "kubernetes_memory_limit": "0.5Gi"},
			{"environment": "e", "commands": ["a"], "kubernetes_memory_limit": "129M"}`), nil},
		{"memory limit only checked at its end, like re.search", stepDoc(`, "kubernetes_memory_limit": "lots of 4"`), nil},
		{"htcondor seconds", stepDoc(`, "htcondor_max_runtime": "3600"`), nil},
		{"empty htcondor_max_runtime is skipped", stepDoc(`, "htcondor_max_runtime": ""`), nil},
		{"unknown everywhere", `{"foo": 1, "inputs": {"bar": 1}, "outputs": {"baz": 1}, "tests": {"x": 1},
			"workspace": {"y": 1}, "workflow": {"type": "serial", "z": 1, "resources": {"dask": {}},
			"specification": {"steps": [{"environment": "e", "commands": ["a"], "unpacked_image": true, "foo": 2}], "extra": 1}}}`,
			Warnings{WarningAdditionalProperties: {"foo", "bar", "z", "extra", "unpacked_image", "dask", "baz", "x", "y"}}},
		{"free-form objects do not warn", `{"inputs": {"parameters": {"any": {"thing": 1}}, "options": {"FROM": "a"}}, "workflow": {"type": "cwl", "file": "f"}}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, warn, err := Parse([]byte(tt.doc))
			require.NoError(t, err)
			require.NotNil(t, s)
			require.Equal(t, tt.warn, warn)
		})
	}
}

func TestParseErrors(t *testing.T) {
	const step = `"workflow.specification.steps[0]`
	tests := []struct {
		name string
		doc  string
		msg  string
	}{
		{"not JSON", `{"workflow":`, "specification is not valid JSON: unexpected EOF"},
		{"trailing data", `{} {}`, "specification is not valid JSON: unexpected data after the top-level value"},
		{"array", `[]`, "specification must be a JSON object"},
		{"null", `null`, "specification must be a JSON object"},
		{"no workflow", `{}`, "workflow: is required"},
		{"workflow not object", `{"workflow": []}`, "workflow: must be an object"},
		{"no type", `{"workflow": {"file": "x"}}`, "workflow.type: is required"},
		{"type not string", `{"workflow": {"type": 1, "file": "x"}}`, "workflow.type: must be a string"},
		{"unknown type", `{"workflow": {"type": "airflow", "file": "x"}}`, `workflow.type: "airflow" is not one of cwl, serial, yadage, snakemake`},
		{"file not string", `{"workflow": {"type": "cwl", "file": 1}}`, "workflow.file: must be a string"},
		{"neither file nor specification", `{"workflow": {"type": "cwl"}}`, `workflow: either "file" or "specification" is required`},
		{"null specification only", `{"workflow": {"type": "yadage", "specification": null}}`, `workflow: either "file" or "specification" is required`},
		{"non-serial specification not object", `{"workflow": {"type": "cwl", "specification": "x"}}`, "workflow.specification: must be an object"},
		{"serial from file", `{"workflow": {"type": "serial", "file": "w.yaml"}}`, "workflow.specification: is required for serial workflows"},
		{"serial null specification", `{"workflow": {"type": "serial", "specification": null}}`, "workflow.specification: must be an object"},
		{"no steps", `{"workflow": {"type": "serial", "specification": {}}}`, "workflow.specification.steps: is required"},
		{"empty steps", serialDoc(``), "workflow.specification.steps: must be a non-empty list of steps"},
		{"steps not list", `{"workflow": {"type": "serial", "specification": {"steps": {}}}}`, "workflow.specification.steps: must be a non-empty list of steps"},
		{"step not object", serialDoc(`"echo"`), "workflow.specification.steps[0]: must be an object"},
		{"second step bad", serialDoc(`{"environment": "e", "commands": ["a"]}, {"environment": "e"}`), "workflow.specification.steps[1].commands: is required"},
		{"empty commands", stepDoc(`, "commands": []`), step[1:] + ".commands: must be a non-empty list of strings"},
		{"commands string", stepDoc(`, "commands": "echo"`), step[1:] + ".commands: must be a non-empty list of strings"},
		{"command not string", stepDoc(`, "commands": ["a", 1]`), step[1:] + ".commands[1]: must be a string"},
		{"no environment", serialDoc(`{"commands": ["a"]}`), step[1:] + ".environment: is required"},
		{"environment not string", stepDoc(`, "environment": null`), step[1:] + ".environment: must be a string"},
		{"name not string", stepDoc(`, "name": 1`), step[1:] + ".name: must be a string"},
		{"bad backend", stepDoc(`, "compute_backend": "lsf"`), step[1:] + `.compute_backend: "lsf" is not one of kubernetes, htcondorcern, slurmcern, compute4punch, htcondor, slurm, local`},
		{"backend case", stepDoc(`, "compute_backend": "Kubernetes"`), step[1:] + `.compute_backend: "Kubernetes" is not one of kubernetes, htcondorcern, slurmcern, compute4punch, htcondor, slurm, local`},
		{"empty backend", stepDoc(`, "compute_backend": ""`), ""},
		{"backend not string", stepDoc(`, "compute_backend": true`), step[1:] + ".compute_backend: must be a string"},
		{"timeout string", stepDoc(`, "kubernetes_job_timeout": "60"`), step[1:] + ".kubernetes_job_timeout: must be an integer"},
		{"timeout fraction", stepDoc(`, "kubernetes_job_timeout": 1.5`), step[1:] + ".kubernetes_job_timeout: must be an integer"},
		{"timeout bool", stepDoc(`, "kubernetes_job_timeout": true`), step[1:] + ".kubernetes_job_timeout: must be an integer"},
		{"timeout huge", stepDoc(`, "kubernetes_job_timeout": 99999999999`), step[1:] + ".kubernetes_job_timeout: must be an integer between -2147483648 and 2147483647"},
		{"timeout huge float", stepDoc(`, "kubernetes_job_timeout": 1e10`), step[1:] + ".kubernetes_job_timeout: must be an integer between -2147483648 and 2147483647"},
		{"timeout infinite", stepDoc(`, "kubernetes_job_timeout": 1e999`), step[1:] + ".kubernetes_job_timeout: must be an integer"},
		{"uid string", stepDoc(`, "kubernetes_uid": "1000"`), step[1:] + ".kubernetes_uid: must be an integer"},
		{"bool not bool", stepDoc(`, "voms_proxy": "yes"`), step[1:] + ".voms_proxy: must be a boolean"},
		{"unpacked_image not bool", stepDoc(`, "unpacked_image": 1`), step[1:] + ".unpacked_image: must be a boolean"},
		{"slurm_time not string", stepDoc(`, "slurm_time": 60`), step[1:] + ".slurm_time: must be a string"},
		{"memory request not string", stepDoc(`, "kubernetes_memory_request": 1`), step[1:] + ".kubernetes_memory_request: must be a string"},
		{"memory unit only", stepDoc(`, "kubernetes_memory_limit": "Gi"`), step[1:] + `.kubernetes_memory_limit: "Gi" is not a valid Kubernetes memory value (e.g. 256Mi, 2Gi, 1G)`},
		{"memory lower-case unit", stepDoc(`, "kubernetes_memory_limit": "2gi"`), step[1:] + `.kubernetes_memory_limit: "2gi" is not a valid Kubernetes memory value (e.g. 256Mi, 2Gi, 1G)`},
		{"memory empty", stepDoc(`, "kubernetes_memory_limit": ""`), step[1:] + `.kubernetes_memory_limit: "" is not a valid Kubernetes memory value (e.g. 256Mi, 2Gi, 1G)`},
		{"htcondor flavour", stepDoc(`, "htcondor_max_runtime": "forever"`), step[1:] + ".htcondor_max_runtime: 'forever' is not a valid input for htcondor_max_runtime. " +
			"Inputs must be a digit in the form of a string, or one of the following job flavours: " +
			"'espresso' 'microcentury' 'longlunch' 'workday' 'tomorrow' 'testmatch' 'nextweek'."},
		{"htcondor negative", stepDoc(`, "htcondor_max_runtime": "-1"`), step[1:] + ".htcondor_max_runtime: '-1' is not a valid input for htcondor_max_runtime. " +
			"Inputs must be a digit in the form of a string, or one of the following job flavours: " +
			"'espresso' 'microcentury' 'longlunch' 'workday' 'tomorrow' 'testmatch' 'nextweek'."},
		{"version not string", `{"version": 0.9, "workflow": {"type": "cwl", "file": "f"}}`, "version: must be a string"},
		{"inputs not object", `{"inputs": [], "workflow": {"type": "cwl", "file": "f"}}`, "inputs: must be an object"},
		{"inputs.files not list", `{"inputs": {"files": "a"}, "workflow": {"type": "cwl", "file": "f"}}`, "inputs.files: must be a list of strings"},
		{"inputs.files item", `{"inputs": {"files": ["a", 1]}, "workflow": {"type": "cwl", "file": "f"}}`, "inputs.files[1]: must be a string"},
		{"inputs.directories item", `{"inputs": {"directories": [null]}, "workflow": {"type": "cwl", "file": "f"}}`, "inputs.directories[0]: must be a string"},
		{"parameters not object", `{"inputs": {"parameters": []}, "workflow": {"type": "cwl", "file": "f"}}`, "inputs.parameters: must be an object"},
		{"options not object", `{"inputs": {"options": "CACHE=off"}, "workflow": {"type": "cwl", "file": "f"}}`, "inputs.options: must be an object"},
		{"outputs not object", `{"outputs": 1, "workflow": {"type": "cwl", "file": "f"}}`, "outputs: must be an object"},
		{"outputs.directories item", `{"outputs": {"directories": [[]]}, "workflow": {"type": "cwl", "file": "f"}}`, "outputs.directories[0]: must be a string"},
		{"tests not object", `{"tests": [], "workflow": {"type": "cwl", "file": "f"}}`, "tests: must be an object"},
		{"tests.files item", `{"tests": {"files": [1]}, "workflow": {"type": "cwl", "file": "f"}}`, "tests.files[0]: must be a string"},
		{"workspace not object", `{"workspace": "/x", "workflow": {"type": "cwl", "file": "f"}}`, "workspace: must be an object"},
		{"root_path not string", `{"workspace": {"root_path": 1}, "workflow": {"type": "cwl", "file": "f"}}`, "workspace.root_path: must be a string"},
		{"retention not object", `{"workspace": {"retention_days": []}, "workflow": {"type": "cwl", "file": "f"}}`, "workspace.retention_days: must be an object"},
		{"retention empty", `{"workspace": {"retention_days": {}}, "workflow": {"type": "cwl", "file": "f"}}`, "workspace.retention_days: must have at least one rule"},
		{"retention negative", `{"workspace": {"retention_days": {"*.tmp": -1}}, "workflow": {"type": "cwl", "file": "f"}}`, `workspace.retention_days["*.tmp"]: must be a non-negative integer`},
		{"retention string", `{"workspace": {"retention_days": {"*.tmp": "1"}}, "workflow": {"type": "cwl", "file": "f"}}`, `workspace.retention_days["*.tmp"]: must be an integer`},
		{"retention fraction", `{"workspace": {"retention_days": {"*.tmp": 0.5}}, "workflow": {"type": "cwl", "file": "f"}}`, `workspace.retention_days["*.tmp"]: must be an integer`},
		{"resources not object", `{"workflow": {"type": "cwl", "file": "f", "resources": []}}`, "workflow.resources: must be an object"},
		{"cvmfs not list", `{"workflow": {"type": "cwl", "file": "f", "resources": {"cvmfs": "atlas"}}}`, "workflow.resources.cvmfs: must be a list of strings"},
		{"cvmfs bad name", `{"workflow": {"type": "cwl", "file": "f", "resources": {"cvmfs": ["a b"]}}}`, `workflow.resources.cvmfs[0]: "a b" is not a valid CVMFS repository name`},
		{"cvmfs leading dot", `{"workflow": {"type": "cwl", "file": "f", "resources": {"cvmfs": [".atlas"]}}}`, `workflow.resources.cvmfs[0]: ".atlas" is not a valid CVMFS repository name`},
		{"cvmfs empty", `{"workflow": {"type": "cwl", "file": "f", "resources": {"cvmfs": [""]}}}`, `workflow.resources.cvmfs[0]: "" is not a valid CVMFS repository name`},
		{"cvmfs newline", `{"workflow": {"type": "cwl", "file": "f", "resources": {"cvmfs": ["atlas\n"]}}}`, `workflow.resources.cvmfs[0]: "atlas\n" is not a valid CVMFS repository name`},
		{"cvmfs too long", `{"workflow": {"type": "cwl", "file": "f", "resources": {"cvmfs": ["` + strings.Repeat("a", 61) + `"]}}}`, "workflow.resources.cvmfs[0]: must be at most 60 characters long"},
		{"cvmfs duplicate", `{"workflow": {"type": "cwl", "file": "f", "resources": {"cvmfs": ["atlas", "cms", "atlas"]}}}`, `workflow.resources.cvmfs[2]: "atlas" is listed twice`},
		{"kerberos not bool", `{"workflow": {"type": "cwl", "file": "f", "resources": {"kerberos": "yes"}}}`, "workflow.resources.kerberos: must be a boolean"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, warn, err := Parse([]byte(tt.doc))
			if tt.msg == "" {
				require.NoError(t, err)
				return
			}
			var verr *ValidationError
			require.ErrorAs(t, err, &verr)
			require.Equal(t, tt.msg, verr.Msg)
			require.Nil(t, s)
			require.Nil(t, warn)
		})
	}
}

func TestSpecificationIsReencoded(t *testing.T) {
	s, _, err := Parse([]byte(`{"workflow": {"type": "serial", "specification": {"steps": [{"environment": "a<b", "commands": ["x && y"], "kubernetes_job_timeout": 1.0}]}}}`))
	require.NoError(t, err)
	require.JSONEq(t, `{"steps": [{"environment": "a<b", "commands": ["x && y"], "kubernetes_job_timeout": 1.0}]}`, string(s.Workflow.Specification))
	require.Contains(t, string(s.Workflow.Specification), `"x && y"`, "no HTML escaping")
	require.Contains(t, string(s.Workflow.Specification), `1.0`, "numbers kept as written")
}

func TestSerialSteps(t *testing.T) {
	tests := []struct {
		name string
		spec Spec
		msg  string
	}{
		{"yadage", Spec{Workflow: Workflow{Type: "yadage"}},
			`Workflow type "yadage" is not supported by this server: only serial workflows are supported.`},
		{"no specification", Spec{Workflow: Workflow{Type: "serial"}}, "workflow.specification: is required for serial workflows"},
		{"broken JSON", Spec{Workflow: Workflow{Type: "serial", Specification: json.RawMessage(`{"steps": [`)}},
			"workflow.specification: is not valid JSON: unexpected EOF"},
		{"checked like Parse", Spec{Workflow: Workflow{Type: "serial", Specification: json.RawMessage(`{"steps": [{"commands": ["a"]}]}`)}},
			"workflow.specification.steps[0].environment: is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			steps, err := tt.spec.SerialSteps()
			require.Nil(t, steps)
			var verr *ValidationError
			require.ErrorAs(t, err, &verr)
			require.Equal(t, tt.msg, verr.Msg)
		})
	}
}
