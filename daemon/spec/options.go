package spec

import (
	"encoding/json"
	"fmt"
	"maps"
	"strconv"
	"strings"
)

// MergeParameters returns the parameters a run uses: reana.yaml's
// inputs.parameters overridden by the start request's input_parameters
// (reana-client's -p). Neither argument is modified.
func MergeParameters(specParams, override map[string]any) map[string]any {
	merged := make(map[string]any, len(specParams)+len(override))
	maps.Copy(merged, specParams)
	maps.Copy(merged, override)
	return merged
}

// ValidateInputParameters refuses start-request parameters that reana.yaml
// does not declare, as reana-server does (HTTP 400). With several, the
// first in sorted order is named.
func ValidateInputParameters(specParams, given map[string]any) error {
	for _, k := range sortedKeys(given) {
		if _, ok := specParams[k]; !ok {
			return &ValidationError{Msg: fmt.Sprintf("Input parameter %q is not present in reana.yaml", k)}
		}
	}
	return nil
}

// operationalOptionEngines mirrors available_options of
// reana_commons/validation/operational_options.py: the engines that know
// an option. ok is false for an option no engine knows.
func operationalOptionEngines(option string) (engines []string, ok bool) {
	switch option {
	case "CACHE", "FROM":
		return []string{"serial"}, true
	case "TARGET":
		return []string{"serial", "cwl"}, true
	case "toplevel", "initdir", "initfiles", "accept_metadir":
		return []string{"yadage"}, true
	case "report":
		return []string{"snakemake"}, true
	}
	return nil, false
}

// ValidateOperationalOptions mirrors reana-commons'
// validate_operational_options, with its messages: opts must be an object
// (pass the decoded JSON value as is, so that null is refused as REANA
// refuses None; a nil map is an empty object), and every key must be an
// option the workflow type supports. Serial workflows take CACHE, FROM and
// TARGET. Values are not checked, as in REANA. With several bad keys, the
// first in sorted order is named.
func ValidateOperationalOptions(workflowType string, opts any) error {
	var keys []string
	switch o := opts.(type) {
	case map[string]any:
		keys = sortedKeys(o)
	case map[string]string:
		keys = sortedKeys(o)
	default:
		return &ValidationError{Msg: "==> ERROR: Operational options must be a dictionary."}
	}
	for _, k := range keys {
		engines, known := operationalOptionEngines(k)
		if !known {
			return &ValidationError{Msg: fmt.Sprintf(`==> ERROR: Operational option "%s" not supported.`, k)}
		}
		supported := false
		for _, e := range engines {
			supported = supported || e == workflowType
		}
		if !supported {
			return &ValidationError{Msg: fmt.Sprintf(
				`==> ERROR: Operational option "%s" not supported for %s workflows.`, k, workflowType)}
		}
	}
	return nil
}

// SelectSteps applies the TARGET and FROM operational options the way
// REANA's serial engine does, returning the half-open range [from, to) of
// steps to run:
//   - step names match case-insensitively; the first match wins;
//   - TARGET runs up to and including its step; unknown: to the end;
//   - FROM starts at its step; unknown: at the first step;
//   - FROM after TARGET runs every step, with warning set to REANA's message;
//   - while looking for a name, a step without one fails with "'name'",
//     the KeyError REANA's workflow ends with.
//
// Empty or otherwise false-y option values (Python truthiness) count as
// not given; other non-string values fail as Python's .lower() would.
func SelectSteps(steps []Step, opts map[string]any) (from, to int, warning string, err error) {
	target, err := stepOption(opts, "TARGET")
	if err != nil {
		return 0, 0, "", err
	}
	start, err := stepOption(opts, "FROM")
	if err != nil {
		return 0, 0, "", err
	}
	from, to = 0, len(steps)
	ti, fi := -1, -1
	if target != "" {
		if ti, err = findStep(steps, target); err != nil {
			return 0, 0, "", err
		}
		if ti >= 0 {
			to = ti + 1
		}
	}
	if start != "" {
		if fi, err = findStep(steps, start); err != nil {
			return 0, 0, "", err
		}
		if fi >= 0 {
			from = fi
		}
	}
	if ti >= 0 && fi > ti {
		return 0, len(steps), "From step has to be the same as target or before target step. Executing full workflow.", nil
	}
	return from, to, "", nil
}

// stepOption returns the string value of opts[key], "" if it is false-y
// in Python's sense.
func stepOption(opts map[string]any, key string) (string, error) {
	v := opts[key]
	typ := ""
	switch x := v.(type) {
	case nil:
		return "", nil
	case string:
		return x, nil
	case bool:
		if !x {
			return "", nil
		}
		typ = "bool"
	case json.Number:
		f, err := strconv.ParseFloat(string(x), 64)
		if err == nil && f == 0 {
			return "", nil
		}
		typ = "int"
		if strings.ContainsAny(string(x), ".eE") {
			typ = "float"
		}
	case float64:
		if x == 0 {
			return "", nil
		}
		typ = "float"
	case int:
		if x == 0 {
			return "", nil
		}
		typ = "int"
	case []any:
		if len(x) == 0 {
			return "", nil
		}
		typ = "list"
	case map[string]any:
		if len(x) == 0 {
			return "", nil
		}
		typ = "dict"
	default:
		typ = fmt.Sprintf("%T", v)
	}
	return "", &ValidationError{Msg: fmt.Sprintf("'%s' object has no attribute 'lower'", typ)}
}

// findStep returns the index of the first step named name, compared as
// Python's str.lower() compares them, or -1.
func findStep(steps []Step, name string) (int, error) {
	want := pyLower(name)
	for i, st := range steps {
		if st.Name == "" {
			return -1, &ValidationError{Msg: "'name'"}
		}
		if pyLower(st.Name) == want {
			return i, nil
		}
	}
	return -1, nil
}

// pyLower is Go's lower-casing plus the one unconditional multi-rune
// mapping of Python's str.lower() (U+0130, capital I with dot above).
func pyLower(s string) string {
	return strings.ToLower(strings.ReplaceAll(s, "\u0130", "i\u0307"))
}

// TotalCommands is the number of jobs a run of all steps makes, which
// REANA reports as progress.total even when TARGET or FROM skip steps.
func TotalCommands(steps []Step) int {
	n := 0
	for _, st := range steps {
		n += len(st.Commands)
	}
	return n
}
