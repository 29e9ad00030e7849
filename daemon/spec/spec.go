package spec

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
)

// Spec is a validated REANA specification.
type Spec struct {
	Version   string
	Inputs    Inputs
	Workflow  Workflow
	Outputs   Outputs
	Workspace Workspace
	// Raw is the whole document as sent, numbers as json.Number, so that it
	// can be stored and served back (GET .../specification) unchanged.
	Raw map[string]any
}

// Inputs is the reana.yaml "inputs" section.
type Inputs struct {
	Files       []string
	Directories []string
	Parameters  map[string]any // values as decoded: string, bool, nil, json.Number, []any, map[string]any
	Options     map[string]any // operational options; see ValidateOperationalOptions
}

// Workflow is the reana.yaml "workflow" section.
type Workflow struct {
	Type string // cwl, serial, yadage or snakemake
	File string
	// Specification is the engine-specific document, re-encoded from the
	// decoded value (object keys sorted); nil when absent.
	Specification json.RawMessage
	Resources     Resources
}

// Resources is workflow.resources.
type Resources struct {
	Cvmfs    []string
	Kerberos bool
}

// Outputs is the reana.yaml "outputs" section.
type Outputs struct {
	Files       []string
	Directories []string
}

// Workspace is the reana.yaml "workspace" section.
type Workspace struct {
	RootPath      string
	RetentionDays map[string]int // glob -> days; see RetentionRules
}

// Warnings are non-fatal findings, keyed like REANA's validation warnings.
// Under WarningAdditionalProperties are the names of the properties REANA's
// schema does not know, in document-walk order, each name once (REANA lists
// every occurrence with its path). As in REANA, this includes properties
// the serial engine reads: kubernetes_uid, slurm_partition, slurm_time.
type Warnings map[string][]string

// WarningAdditionalProperties is the Warnings key REANA uses for unknown properties.
const WarningAdditionalProperties = "additional_properties"

// ValidationError carries a message meant for the user, worded like REANA's
// where REANA has one.
type ValidationError struct{ Msg string }

func (e *ValidationError) Error() string { return e.Msg }

func invalidf(path, format string, args ...any) *ValidationError {
	return &ValidationError{Msg: path + ": " + fmt.Sprintf(format, args...)}
}

// workflowTypes are the engines reana_analysis_schema.json allows.
func workflowTypes() []string { return []string{"cwl", "serial", "yadage", "snakemake"} }

// Parse validates the JSON document reana-client sent as the body of
// POST /api/workflows and returns it with the warnings REANA would give.
// Every error is a *ValidationError naming the offending field.
func Parse(doc []byte) (*Spec, Warnings, error) {
	v, err := decodeJSON(doc)
	if err != nil {
		return nil, nil, &ValidationError{Msg: "specification is not valid JSON: " + err.Error()}
	}
	root, ok := v.(map[string]any)
	if !ok {
		return nil, nil, &ValidationError{Msg: "specification must be a JSON object"}
	}
	p := &parser{}
	s := &Spec{Raw: root}
	if err := p.parse(root, s); err != nil {
		return nil, nil, err
	}
	return s, p.warnings(), nil
}

// decodeJSON decodes exactly one JSON value, keeping numbers as json.Number.
func decodeJSON(doc []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("unexpected data after the top-level value")
	}
	return v, nil
}

// parser collects warnings while it walks one document.
type parser struct {
	extra []string
	seen  map[string]bool
}

func (p *parser) warnings() Warnings {
	if len(p.extra) == 0 {
		return nil
	}
	return Warnings{WarningAdditionalProperties: p.extra}
}

// warnUnknown records the keys of obj that are not in known, as REANA's
// additionalProperties warnings.
func (p *parser) warnUnknown(obj map[string]any, known ...string) {
	if p == nil {
		return
	}
	if p.seen == nil {
		p.seen = make(map[string]bool)
	}
	for _, k := range sortedKeys(obj) {
		if !slices.Contains(known, k) && !p.seen[k] {
			p.seen[k] = true
			p.extra = append(p.extra, k)
		}
	}
}

func (p *parser) parse(root map[string]any, s *Spec) error {
	p.warnUnknown(root, "version", "inputs", "workflow", "outputs", "tests", "workspace")
	if v, ok := root["version"]; ok {
		str, ok := v.(string)
		if !ok {
			return invalidf("version", "must be a string")
		}
		s.Version = str
	}
	if v, ok := root["inputs"]; ok {
		if err := p.inputs(v, &s.Inputs); err != nil {
			return err
		}
	}
	v, ok := root["workflow"]
	if !ok {
		return invalidf("workflow", "is required")
	}
	if err := p.workflow(v, &s.Workflow); err != nil {
		return err
	}
	if v, ok := root["outputs"]; ok {
		if err := p.outputs(v, &s.Outputs); err != nil {
			return err
		}
	}
	if v, ok := root["tests"]; ok {
		// Not used by the 0.9 client, but part of the schema.
		m, ok := v.(map[string]any)
		if !ok {
			return invalidf("tests", "must be an object")
		}
		p.warnUnknown(m, "files")
		if _, err := stringList(m, "files", "tests.files"); err != nil {
			return err
		}
	}
	if v, ok := root["workspace"]; ok {
		if err := p.workspace(v, &s.Workspace); err != nil {
			return err
		}
	}
	return nil
}

func (p *parser) inputs(v any, in *Inputs) error {
	m, ok := v.(map[string]any)
	if !ok {
		return invalidf("inputs", "must be an object")
	}
	p.warnUnknown(m, "files", "directories", "parameters", "options")
	var err error
	if in.Files, err = stringList(m, "files", "inputs.files"); err != nil {
		return err
	}
	if in.Directories, err = stringList(m, "directories", "inputs.directories"); err != nil {
		return err
	}
	if in.Parameters, err = object(m, "parameters", "inputs.parameters"); err != nil {
		return err
	}
	if in.Options, err = object(m, "options", "inputs.options"); err != nil {
		return err
	}
	return nil
}

func (p *parser) outputs(v any, out *Outputs) error {
	m, ok := v.(map[string]any)
	if !ok {
		return invalidf("outputs", "must be an object")
	}
	p.warnUnknown(m, "files", "directories")
	var err error
	if out.Files, err = stringList(m, "files", "outputs.files"); err != nil {
		return err
	}
	out.Directories, err = stringList(m, "directories", "outputs.directories")
	return err
}

func (p *parser) workspace(v any, ws *Workspace) error {
	m, ok := v.(map[string]any)
	if !ok {
		return invalidf("workspace", "must be an object")
	}
	p.warnUnknown(m, "root_path", "retention_days")
	if v, ok := m["root_path"]; ok {
		str, ok := v.(string)
		if !ok {
			return invalidf("workspace.root_path", "must be a string")
		}
		ws.RootPath = str
	}
	days, err := object(m, "retention_days", "workspace.retention_days")
	if err != nil || days == nil {
		return err
	}
	if len(days) == 0 {
		return invalidf("workspace.retention_days", "must have at least one rule")
	}
	ws.RetentionDays = make(map[string]int, len(days))
	for _, glob := range sortedKeys(days) {
		n, err := asInt(days[glob])
		if err == nil && n < 0 {
			err = errors.New("must be a non-negative integer")
		}
		if err != nil {
			return invalidf(fmt.Sprintf("workspace.retention_days[%q]", glob), "%v", err)
		}
		ws.RetentionDays[glob] = n
	}
	return nil
}

func (p *parser) workflow(v any, w *Workflow) error {
	m, ok := v.(map[string]any)
	if !ok {
		return invalidf("workflow", "must be an object")
	}
	p.warnUnknown(m, "type", "file", "specification", "resources")
	tv, ok := m["type"]
	if !ok {
		return invalidf("workflow.type", "is required")
	}
	if w.Type, ok = tv.(string); !ok {
		return invalidf("workflow.type", "must be a string")
	}
	if !slices.Contains(workflowTypes(), w.Type) {
		return invalidf("workflow.type", "%q is not one of %s", w.Type, strings.Join(workflowTypes(), ", "))
	}
	fv, hasFile := m["file"]
	if hasFile {
		if w.File, ok = fv.(string); !ok {
			return invalidf("workflow.file", "must be a string")
		}
	}
	sv, hasSpec := m["specification"]
	if hasSpec && sv == nil && w.Type != "serial" {
		hasSpec = false
	}
	if w.Type == "serial" && !hasSpec {
		return invalidf("workflow.specification", "is required for serial workflows")
	}
	if !hasFile && !hasSpec {
		return invalidf("workflow", `either "file" or "specification" is required`)
	}
	if hasSpec {
		if _, ok := sv.(map[string]any); !ok {
			return invalidf("workflow.specification", "must be an object")
		}
		if w.Type == "serial" {
			if _, err := parseSerial(sv, p); err != nil {
				return err
			}
		}
		raw, err := encodeJSON(sv)
		if err != nil {
			return invalidf("workflow.specification", "cannot be encoded: %v", err)
		}
		w.Specification = raw
	}
	if rv, ok := m["resources"]; ok {
		if err := p.resources(rv, &w.Resources); err != nil {
			return err
		}
	}
	return nil
}

func (p *parser) resources(v any, r *Resources) error {
	m, ok := v.(map[string]any)
	if !ok {
		return invalidf("workflow.resources", "must be an object")
	}
	p.warnUnknown(m, "cvmfs", "kerberos")
	repos, err := stringList(m, "cvmfs", "workflow.resources.cvmfs")
	if err != nil {
		return err
	}
	seen := make(map[string]bool, len(repos))
	for i, repo := range repos {
		path := fmt.Sprintf("workflow.resources.cvmfs[%d]", i)
		switch {
		case len(repo) > 60:
			return invalidf(path, "must be at most 60 characters long")
		case !validCvmfsRepo(repo):
			return invalidf(path, "%q is not a valid CVMFS repository name", repo)
		case seen[repo]:
			return invalidf(path, "%q is listed twice", repo)
		}
		seen[repo] = true
	}
	r.Cvmfs = repos
	if kv, ok := m["kerberos"]; ok {
		if r.Kerberos, ok = kv.(bool); !ok {
			return invalidf("workflow.resources.kerberos", "must be a boolean")
		}
	}
	return nil
}

// validCvmfsRepo matches the schema's ^[a-zA-Z0-9][a-zA-Z0-9.\-_]*$, but
// without the trailing newline Python's "$" lets through.
func validCvmfsRepo(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '-' && c != '_') {
			return false
		}
	}
	return true
}

// stringList returns m[key] as a list of strings; nil if absent.
func stringList(m map[string]any, key, path string) ([]string, error) {
	v, ok := m[key]
	if !ok {
		return nil, nil
	}
	list, ok := v.([]any)
	if !ok {
		return nil, invalidf(path, "must be a list of strings")
	}
	out := make([]string, len(list))
	for i, item := range list {
		if out[i], ok = item.(string); !ok {
			return nil, invalidf(fmt.Sprintf("%s[%d]", path, i), "must be a string")
		}
	}
	return out, nil
}

// object returns m[key] as an object; nil if absent.
func object(m map[string]any, key, path string) (map[string]any, error) {
	v, ok := m[key]
	if !ok {
		return nil, nil
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, invalidf(path, "must be an object")
	}
	return obj, nil
}

func encodeJSON(v any) (json.RawMessage, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
