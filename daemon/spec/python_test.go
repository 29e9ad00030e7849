package spec

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// This file checks our results against the real REANA code: reana-client
// 0.9.6 and reana-commons 0.9.11 in a Python virtualenv. It is skipped when
// there is none; REANA_SITE_TEST_PYTHON names its interpreter.

const defaultTestPython = "/tmp/venvtest/v/bin/python"

// crossCheckScript reads the cases as JSON on stdin and prints what REANA
// makes of them. Where the deciding code is in a REANA service that is not
// installed (reana-server, reana-workflow-controller), it repeats the few
// lines of that code on top of the real library calls they make.
const crossCheckScript = `
import contextlib, io, json, pathlib, sys
import jsonschema
from jsonschema.validators import validator_for
from reana_commons.config import reana_yaml_schema_file_path
from reana_commons.errors import REANAValidationError
from reana_commons.serial import _expand_parameters, check_htcondor_max_runtime, serial_workflow_schema
from reana_commons.validation.operational_options import validate_operational_options
from reana_commons.validation.utils import _get_schema_validation_warnings, validate_workflow_name
from reana_client.utils import is_uuid_v4

req = json.load(sys.stdin)

def expand(case):
    try:
        spec = _expand_parameters({"steps": [{"commands": case["commands"]}]}, case["params"])
        return {"out": spec["steps"][0]["commands"]}
    except jsonschema.ValidationError as e:
        return {"err": e.message}
    except ValueError as e:
        return {"err": str(e)}

def options(case):
    try:
        validate_operational_options(case["type"], case["options"])
        return {}
    except REANAValidationError as e:
        return {"err": str(e)}

def name(n):
    # reana-server create_workflow, then reana-workflow-controller.
    try:
        validate_workflow_name(n)
    except ValueError as e:
        return {"err": str(e), "status": 403}
    if is_uuid_v4(n):
        return {"err": "Workflow name cannot be a valid UUIDv4.", "status": 400}
    try:
        n.encode("ascii")
    except UnicodeEncodeError:
        return {"err": "Workflow name {} is not valid.".format(n), "status": 400}
    return {}

def rule(r):
    # reana-server validate_retention_rule.
    p = pathlib.Path(r)
    if p.is_absolute():
        return {"err": f"Retention rule {r} cannot be an absolute path"}
    if not p.parts:
        return {"err": f"Retention rule {r} cannot be empty"}
    if ".." in p.parts:
        return {"err": f"Retention rule {r} cannot contain '..'"}
    return {}

with open(reana_yaml_schema_file_path) as f:
    schema = json.load(f)
validator = validator_for(schema)(schema)

def doc(d):
    errors = list(validator.iter_errors(d))
    critical = [e.message for e in errors if e.validator != "additionalProperties"]
    warnings = _get_schema_validation_warnings([e for e in errors if e.validator == "additionalProperties"])
    props = sorted({w["property"] for w in warnings.get("additional_properties", [])})
    # What reana-client's load_reana_spec runs for serial workflows.
    serial = []
    wf = d.get("workflow") if isinstance(d, dict) else None
    if isinstance(wf, dict) and wf.get("type") == "serial":
        spec = wf.get("specification")
        try:
            with contextlib.redirect_stdout(io.StringIO()):
                if not check_htcondor_max_runtime(spec):
                    serial.append("Invalid input in htcondor_max_runtime.")
            jsonschema.validate(spec, serial_workflow_schema)
        except Exception as e:
            serial.append(type(e).__name__ + ": " + str(e).splitlines()[0])
    return {"schema": critical, "serial": serial, "warnings": props}

out = {
    "expand": [expand(c) for c in req["expand"]],
    "options": [options(c) for c in req["options"]],
    "names": [name(n) for n in req["names"]],
    "rules": [rule(r) for r in req["rules"]],
    "docs": [doc(d) for d in req["docs"]],
}
print(json.dumps(out))
`

func testPython(t *testing.T) string {
	t.Helper()
	py := os.Getenv("REANA_SITE_TEST_PYTHON")
	if py == "" {
		py = defaultTestPython
	}
	if _, err := os.Stat(py); err != nil {
		t.Skipf("no Python with reana-client to cross-check against (%v); set REANA_SITE_TEST_PYTHON", err)
	}
	return py
}

type pyResult struct {
	Out    []string `json:"out"`
	Err    *string  `json:"err"`
	Status int      `json:"status"`
}

type pyDocResult struct {
	Schema   []string `json:"schema"`
	Serial   []string `json:"serial"`
	Warnings []string `json:"warnings"`
}

type pyResults struct {
	Expand  []pyResult    `json:"expand"`
	Options []pyResult    `json:"options"`
	Names   []pyResult    `json:"names"`
	Rules   []pyResult    `json:"rules"`
	Docs    []pyDocResult `json:"docs"`
}

type expandCase struct {
	Commands []string        `json:"commands"`
	Params   json.RawMessage `json:"params"`
}

type optionsCase struct {
	Type    string          `json:"type"`
	Options json.RawMessage `json:"options"`
}

// docCase is a document and, when we knowingly differ from REANA, why.
type docCase struct {
	doc       string
	deviation string
}

func TestCrossCheckWithREANA(t *testing.T) {
	py := testPython(t)

	params := `{"a": "x", "aBc": "long", "n": 10, "neg": -3, "big": 123456789012345678901234567890,
		"f": 1.0, "fe": 1e2, "tiny": 0.00001, "small": 0.0001, "e16": 1e16, "e15": 1e15, "third": 0.3333333333333333,
		"huge": 1.5e300, "nzero": -0.0, "t": true, "no": false, "none": null, "empty": "", "dollar": "$a",
		"list": [1, "a", null, true, 1.5, {"k": "v"}, [], "it's", "a'b\"c", "tab\t", "é", "\u00a0", "\u0000", "\u200b", "\ud83d\ude00", "back\\slash"],
		"dict": {"a": [1, 2], "b": {"c": null}}}`
	expandCases := []expandCase{}
	for _, cmds := range [][]string{
		{"echo hello"},
		{"echo $a ${a}", "$$a $${a} $$ $$$a"},
		{"$aBc ${a}Bc"},
		{"$dollar [$empty]"},
		{"$n $neg $big"},
		{"$f $fe $tiny $small"},
		{"$e16 $e15 $third $huge $nzero"},
		{"$t $no $none"},
		{"$list"},
		{"$dict"},
		{"python fit.py --n ${n} --out results/$a.root", "ls"},
		{"echo $HOME"},
		{"echo ${REANA_WORKSPACE}"},
		{"echo $X"},
		{"echo $ab"},
		{"$(date)"},
		{"echo $((1+2))"},
		{"echo $1"},
		{"abc$"},
		{"${a b}"},
		{"${}"},
		{"${a"},
		{"${1a}"},
		{"$é"},
		{"echo $a\n  ls $@"},
		{"a\r\nb\rc\n\n é $-"},
		{"a\vb\fc\x1cd\u2028e\u0085f $"},
		{"ok $a", "$nope $(", "$("},
		{"$( $nope"},
		{"cd $$REANA_WORKSPACE && echo $$(date) > out-${n}.txt"},
	} {
		expandCases = append(expandCases, expandCase{Commands: cmds, Params: json.RawMessage(params)})
	}

	optionsCases := []optionsCase{
		{"serial", json.RawMessage(`{"CACHE": "off", "FROM": "a", "TARGET": "b"}`)},
		{"serial", json.RawMessage(`{}`)},
		{"serial", json.RawMessage(`{"foo": "1"}`)},
		{"serial", json.RawMessage(`{"target": "1"}`)},
		{"serial", json.RawMessage(`{"report": "r.html"}`)},
		{"serial", json.RawMessage(`{"toplevel": "x"}`)},
		{"serial", json.RawMessage(`{"accept_metadir": true}`)},
		{"cwl", json.RawMessage(`{"FROM": "x"}`)},
		{"cwl", json.RawMessage(`{"TARGET": "x"}`)},
		{"yadage", json.RawMessage(`{"CACHE": "on"}`)},
		{"", json.RawMessage(`{"CACHE": "on"}`)},
		{"serial", json.RawMessage(`{"CACHE": 1, "TARGET": null}`)},
		{"serial", json.RawMessage(`null`)},
		{"serial", json.RawMessage(`["CACHE"]`)},
		{"serial", json.RawMessage(`"CACHE=off"`)},
	}

	names := []string{
		"", "myanalysis", "my-analysis_2 with spaces", "v1.2", "é.x", "analyse-données",
		"8f3b7a5e-1c2d-4e5f-9a0b-1c2d3e4f5a6b", "8f3b7a5e1c2d4e5f9a0b1c2d3e4f5a6b",
		"8f3b-7a5e1c2d4e5f9a0b1c2d3e4f5a6b-", "8F3B7A5E-1C2D-4E5F-9A0B-1C2D3E4F5A6B",
		"8f3b7a5e-1c2d-1e5f-9a0b-1c2d3e4f5a6b", "8f3b7a5e-1c2d-4e5f-ca0b-1c2d3e4f5a6b",
		"{8f3b7a5e-1c2d-4e5f-9a0b-1c2d3e4f5a6b}", "urn:uuid:8f3b7a5e-1c2d-4e5f-9a0b-1c2d3e4f5a6b",
		"00000000-0000-4000-8000-000000000000",
	}

	rules := []string{
		"*.tmp", "a/**", "./a/./b", "a..b/...", "**/*", "/etc/*", "//x", "", ".", "./", "./.", "a/../../b", "a/..", "..", "a//b/",
	}

	docs := []docCase{
		{doc: fullDoc},
		{doc: stepDoc("")},
		{doc: `{}`},
		{doc: `[]`},
		{doc: `{"workflow": {"type": "airflow", "file": "x"}}`},
		{doc: `{"workflow": {"type": "cwl"}}`},
		{doc: `{"workflow": {"type": "cwl", "file": "main.cwl"}}`},
		{doc: `{"workflow": {"type": "serial", "file": "w.yaml"}}`},
		{doc: `{"workflow": {"type": "serial", "specification": {}}}`},
		{doc: serialDoc(``)},
		{doc: serialDoc(`"echo"`)},
		{doc: serialDoc(`{"commands": ["a"]}`)},
		{doc: stepDoc(`, "commands": []`)},
		{doc: stepDoc(`, "commands": ["a", 1]`)},
		{doc: stepDoc(`, "compute_backend": "kubernetes"`)},
		{doc: stepDoc(`, "compute_backend": "lsf"`)},
		{doc: stepDoc(`, "compute_backend": "slurm"`), deviation: "we accept slurm, htcondor and local as compute backends"},
		{doc: stepDoc(`, "kubernetes_job_timeout": "60"`)},
		{doc: stepDoc(`, "kubernetes_job_timeout": 60.0`)},
		{doc: stepDoc(`, "kubernetes_job_timeout": 99999999999`), deviation: "integers must fit in int32"},
		{doc: stepDoc(`, "kubernetes_uid": "1000"`)},
		{doc: stepDoc(`, "kubernetes_uid": 1000, "slurm_partition": "short", "unpacked_image": true`)},
		{doc: stepDoc(`, "slurm_time": 60`)},
		{doc: stepDoc(`, "kubernetes_memory_limit": "lots of 4"`)},
		{doc: stepDoc(`, "kubernetes_memory_limit": "1Gi\n"`)},
		{doc: stepDoc(`, "kubernetes_memory_limit": "Gi"`)},
		{doc: stepDoc(`, "kubernetes_memory_limit": ""`)},
		{doc: stepDoc(`, "htcondor_max_runtime": "forever"`)},
		{doc: stepDoc(`, "htcondor_max_runtime": "3600"`)},
		{doc: stepDoc(`, "htcondor_max_runtime": "workday", "voms_proxy": true`)},
		{doc: stepDoc(`, "rucio": "yes"`)},
		{doc: `{"workflow": {"type": "serial", "specification": {"steps": [{"environment": "e", "commands": ["a"]}], "extra": 1}}, "foo": 1, "inputs": {"bar": 2}}`},
		{doc: `{"workflow": {"type": "cwl", "file": "f"}, "workspace": {"retention_days": {}}}`},
		{doc: `{"workflow": {"type": "cwl", "file": "f"}, "workspace": {"retention_days": {"a": -1}}}`},
		{doc: `{"workflow": {"type": "cwl", "file": "f"}, "workspace": {"retention_days": {"a": 1.0, "b": 0}}}`},
		{doc: `{"workflow": {"type": "cwl", "file": "f"}, "workspace": {"retention_days": {"a": "1"}}}`},
		{doc: `{"workflow": {"type": "cwl", "file": "f", "resources": {"cvmfs": ["atlas", "atlas"]}}}`},
		{doc: `{"workflow": {"type": "cwl", "file": "f", "resources": {"cvmfs": ["a b"]}}}`},
		{doc: `{"workflow": {"type": "cwl", "file": "f", "resources": {"cvmfs": ["atlas.cern.ch"], "kerberos": "x"}}}`},
		{doc: `{"workflow": {"type": "cwl", "file": "f", "resources": {"cvmfs": ["atlas\n"]}}}`, deviation: "no trailing newline in CVMFS names"},
		{doc: `{"workflow": {"type": "yadage", "file": "w.yaml", "specification": null}}`, deviation: "reana-client posts a null yadage specification"},
		{doc: `{"workflow": {"type": "cwl", "file": "f"}, "inputs": {"parameters": []}}`},
		{doc: `{"workflow": {"type": "cwl", "file": "f"}, "inputs": {"files": ["a", 1]}}`},
		{doc: `{"workflow": {"type": "cwl", "file": "f"}, "version": 1}`},
		{doc: `{"workflow": {"type": "cwl", "file": "f"}, "tests": {"files": [1]}}`},
		{doc: `{"workflow": {"type": "cwl", "file": "f"}, "outputs": {"directories": "results"}}`},
	}

	var rawDocs []json.RawMessage
	for _, d := range docs {
		rawDocs = append(rawDocs, json.RawMessage(d.doc))
	}
	input, err := json.Marshal(map[string]any{
		"expand": expandCases, "options": optionsCases, "names": names, "rules": rules, "docs": rawDocs,
	})
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, py, "-c", crossCheckScript)
	cmd.Stdin = bytes.NewReader(input)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "python: %s", stderr.String())
	var want pyResults
	require.NoError(t, json.Unmarshal(out, &want), "python output: %s", out)

	t.Run("Expand", func(t *testing.T) {
		require.Len(t, want.Expand, len(expandCases))
		for i, c := range expandCases {
			v, err := decodeJSON(c.Params)
			require.NoError(t, err)
			got, err := Expand([]Step{{Commands: c.Commands}}, v.(map[string]any))
			py := want.Expand[i]
			if py.Err != nil {
				require.EqualError(t, err, *py.Err, "%q", c.Commands)
				continue
			}
			require.NoError(t, err, "%q", c.Commands)
			require.Equal(t, py.Out, got[0].Commands, "%q", c.Commands)
		}
	})

	t.Run("ValidateOperationalOptions", func(t *testing.T) {
		require.Len(t, want.Options, len(optionsCases))
		for i, c := range optionsCases {
			v, err := decodeJSON(c.Options)
			require.NoError(t, err)
			err = ValidateOperationalOptions(c.Type, v)
			if py := want.Options[i]; py.Err != nil {
				require.EqualError(t, err, *py.Err, "%s %s", c.Type, c.Options)
			} else {
				require.NoError(t, err, "%s %s", c.Type, c.Options)
			}
		}
	})

	t.Run("ValidateWorkflowName", func(t *testing.T) {
		require.Len(t, want.Names, len(names))
		for i, name := range names {
			err := ValidateWorkflowName(name)
			py := want.Names[i]
			if py.Err == nil {
				require.NoError(t, err, "%q", name)
				continue
			}
			require.EqualError(t, err, *py.Err, "%q", name)
			kind := ErrNameInvalid
			if py.Status == 403 {
				kind = ErrNameIllegalCharacter
			}
			require.ErrorIs(t, err, kind, "%q", name)
		}
	})

	t.Run("RetentionRules", func(t *testing.T) {
		require.Len(t, want.Rules, len(rules))
		for i, r := range rules {
			err := validateRetentionRule(r, 1, 0)
			if py := want.Rules[i]; py.Err != nil {
				require.EqualError(t, err, *py.Err, "%q", r)
			} else {
				require.NoError(t, err, "%q", r)
			}
		}
	})

	t.Run("Parse", func(t *testing.T) {
		require.Len(t, want.Docs, len(docs))
		for i, d := range docs {
			py := want.Docs[i]
			pyRejects := len(py.Schema) > 0 || len(py.Serial) > 0
			_, warn, err := Parse([]byte(d.doc))
			var verr *ValidationError
			if err != nil {
				require.True(t, errors.As(err, &verr), "%v", err)
			}
			if d.deviation != "" {
				require.NotEqual(t, pyRejects, err != nil,
					"documented deviation (%s) no longer holds for %s: REANA schema %q, serial_load %q, ours %v",
					d.deviation, d.doc, py.Schema, py.Serial, err)
				continue
			}
			require.Equal(t, pyRejects, err != nil,
				"%s: REANA schema %q, serial_load %q, ours %v", d.doc, py.Schema, py.Serial, err)
			if err == nil {
				got := slices.Clone(warn[WarningAdditionalProperties])
				slices.Sort(got)
				if len(py.Warnings) == 0 {
					py.Warnings = nil
				}
				require.Equal(t, py.Warnings, got, d.doc)
			}
		}
	})
}
