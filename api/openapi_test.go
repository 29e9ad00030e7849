package api_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// The contract: reana-server's OpenAPI 2.0 specification as reana-commons
// ships it, found next to the Python that REANA_SITE_TEST_PYTHON names or
// in the module's .cache/venv (make venv).
const specInVenv = "lib/python3*/site-packages/reana_commons/openapi_specifications/reana_server.json"

type openAPI struct {
	Paths       map[string]map[string]operation `json:"paths"`
	Definitions map[string]schema               `json:"definitions"`
}

type operation struct {
	Responses map[string]struct {
		Schema *schema `json:"schema"`
	} `json:"responses"`
}

type schema struct {
	Ref                  string            `json:"$ref"`
	Type                 string            `json:"type"`
	Nullable             bool              `json:"x-nullable"`
	Properties           map[string]schema `json:"properties"`
	Required             []string          `json:"required"`
	Items                *schema           `json:"items"`
	AdditionalProperties json.RawMessage   `json:"additionalProperties"`
}

var loadContract = sync.OnceValues(func() (*openAPI, error) {
	var venvs []string
	if py := os.Getenv("REANA_SITE_TEST_PYTHON"); py != "" {
		venvs = append(venvs, filepath.Dir(filepath.Dir(py)))
	}
	if root, err := moduleRoot(); err == nil {
		venvs = append(venvs, filepath.Join(root, ".cache", "venv"))
	}
	for _, v := range venvs {
		matches, _ := filepath.Glob(filepath.Join(v, specInVenv))
		if len(matches) == 0 {
			continue
		}
		b, err := os.ReadFile(matches[0])
		if err != nil {
			return nil, err
		}
		var doc openAPI
		if err := json.Unmarshal(b, &doc); err != nil {
			return nil, fmt.Errorf("%s: %w", matches[0], err)
		}
		return &doc, nil
	}
	return nil, fmt.Errorf("no reana_server.json in %v (set REANA_SITE_TEST_PYTHON or make venv)", venvs)
})

func moduleRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}

// contract returns the specification, or skips the test without one.
func contract(t *testing.T) *openAPI {
	t.Helper()
	doc, err := loadContract()
	if err != nil {
		t.Skipf("the OpenAPI contract is not available, so responses are not checked against it: %v", err)
	}
	return doc
}

// findOperation matches a request path (without its query) to a path
// template of the contract; a {file_name} takes the rest of the path.
func (doc *openAPI) findOperation(method, path string) (string, operation, bool) {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	for tmpl, ops := range doc.Paths {
		op, ok := ops[strings.ToLower(method)]
		if ok && templateMatches(strings.Split(strings.Trim(tmpl, "/"), "/"), segs) {
			return tmpl, op, true
		}
	}
	return "", operation{}, false
}

func templateMatches(tmpl, segs []string) bool {
	for i, part := range tmpl {
		if i >= len(segs) {
			return false
		}
		switch {
		case part == "{file_name}":
			return true
		case strings.HasPrefix(part, "{"):
		case part != segs[i]:
			return false
		}
	}
	return len(tmpl) == len(segs)
}

// checkContract checks that the contract lists the response's status for
// the operation and, where it documents the body, that the body has its
// shape.
func checkContract(t *testing.T, method, target string, res response) {
	t.Helper()
	doc, err := loadContract()
	if err != nil {
		return // reported once by TestContractAvailable
	}
	path, _, _ := strings.Cut(target, "?")
	tmpl, op, ok := doc.findOperation(method, path)
	if !ok {
		t.Errorf("%s %s: no operation of the contract matches", method, path)
		return
	}
	resp, ok := op.Responses[strconv.Itoa(res.Status)]
	if !ok {
		t.Errorf("%s %s answered %d, which the contract does not list (it lists %v)", method, tmpl, res.Status, statuses(op))
		return
	}
	if resp.Schema == nil || res.JSON == nil {
		return
	}
	var body any
	if err := json.Unmarshal(res.Body, &body); err != nil {
		t.Errorf("%s %s: %v", method, tmpl, err)
		return
	}
	for _, p := range doc.violations(*resp.Schema, body, "") {
		t.Errorf("%s %s %d: %s; body %s", method, tmpl, res.Status, p, res.Body)
	}
}

func statuses(op operation) []string {
	var out []string
	for k := range op.Responses {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// violations lists where v departs from s: a type other than declared, a
// required property missing, a property the schema does not declare where
// it allows no others. Like the client's validator (JSON Schema), it takes
// undeclared properties as allowed unless additionalProperties is false;
// the handler tests pin the exact keys themselves.
func (doc *openAPI) violations(s schema, v any, at string) []string {
	if s.Ref != "" {
		name := strings.TrimPrefix(s.Ref, "#/definitions/")
		def, ok := doc.Definitions[name]
		if !ok {
			return []string{fmt.Sprintf("%s: unresolved $ref %s", at, s.Ref)}
		}
		return doc.violations(def, v, at)
	}
	if v == nil {
		if s.Nullable || s.Type == "" {
			return nil
		}
		return []string{fmt.Sprintf("%s: null, but the contract says %s", at, s.Type)}
	}
	var out []string
	switch s.Type {
	case "object", "":
		m, ok := v.(map[string]any)
		if !ok {
			if s.Type == "" {
				return nil
			}
			return []string{fmt.Sprintf("%s: %T, but the contract says object", at, v)}
		}
		for _, r := range s.Required {
			if _, ok := m[r]; !ok {
				out = append(out, fmt.Sprintf("%s: required property %q missing", at, r))
			}
		}
		for k, val := range m {
			ps, ok := s.Properties[k]
			if !ok {
				if string(s.AdditionalProperties) == "false" {
					out = append(out, fmt.Sprintf("%s: property %q not in the contract", at, k))
				}
				continue
			}
			out = append(out, doc.violations(ps, val, at+"."+k)...)
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			return []string{fmt.Sprintf("%s: %T, but the contract says array", at, v)}
		}
		if s.Items != nil {
			for i, x := range a {
				out = append(out, doc.violations(*s.Items, x, fmt.Sprintf("%s[%d]", at, i))...)
			}
		}
	case "string":
		if _, ok := v.(string); !ok {
			out = append(out, fmt.Sprintf("%s: %T, but the contract says string", at, v))
		}
	case "integer", "number":
		if _, ok := v.(float64); !ok {
			out = append(out, fmt.Sprintf("%s: %T, but the contract says %s", at, v, s.Type))
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			out = append(out, fmt.Sprintf("%s: %T, but the contract says boolean", at, v))
		}
	}
	return out
}

func TestContractAvailable(t *testing.T) {
	doc := contract(t)
	_, _, ok := doc.findOperation("GET", "/api/workflows/wf/workspace/a/b.txt")
	if !ok {
		t.Fatal("the contract has no GET /api/workflows/{workflow_id_or_name}/workspace/{file_name}")
	}
}

func TestViolations(t *testing.T) {
	doc := &openAPI{Definitions: map[string]schema{"Size": {Type: "object", Properties: map[string]schema{"raw": {Type: "integer"}}, AdditionalProperties: json.RawMessage("false")}}}
	s := schema{Type: "object", Required: []string{"id"}, Properties: map[string]schema{
		"id":   {Type: "string"},
		"note": {Type: "string", Nullable: true},
		"size": {Ref: "#/definitions/Size"},
		"tags": {Type: "array", Items: &schema{Type: "string"}},
	}}
	tests := []struct {
		name string
		body string
		want int
	}{
		{"conforming", `{"id": "x", "note": null, "size": {"raw": 1}, "tags": ["a"]}`, 0},
		{"required missing", `{"note": "n"}`, 1},
		{"undeclared property is allowed", `{"id": "x", "extra": 1}`, 0},
		{"undeclared property where none are allowed", `{"id": "x", "size": {"raw": 1, "extra": 1}}`, 1},
		{"wrong type through a ref", `{"id": "x", "size": {"raw": "1"}}`, 1},
		{"null where not nullable", `{"id": null}`, 1},
		{"wrong item type", `{"id": "x", "tags": [1, "b"]}`, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v any
			if err := json.Unmarshal([]byte(tt.body), &v); err != nil {
				t.Fatal(err)
			}
			if got := doc.violations(s, v, ""); len(got) != tt.want {
				t.Errorf("violations = %v, want %d", got, tt.want)
			}
		})
	}
}
