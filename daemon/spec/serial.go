package spec

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"unicode"
)

// Step is one step of a serial workflow. Zero values mean "not given":
// the site default applies. A kubernetes_uid of 0 is treated as unset
// because REANA tests it for truthiness too.
type Step struct {
	Name        string
	Environment string
	Commands    []string
	// ComputeBackend is as written ("" = site default); see CanonicalBackend.
	ComputeBackend string

	KubernetesMemoryLimit   string
	KubernetesMemoryRequest string
	KubernetesCPULimit      string
	KubernetesCPURequest    string
	KubernetesJobTimeout    int // seconds
	KubernetesUID           int

	HTCondorMaxRuntime      string // seconds, or a job flavour such as "espresso"
	HTCondorAccountingGroup string

	SlurmPartition string
	SlurmTime      string

	C4PCPUCores               string
	C4PMemoryLimit            string
	C4PAdditionalRequirements string

	UnpackedImg bool
	VOMSProxy   bool
	Rucio       bool
	Kerberos    bool
}

// SerialSteps decodes workflow.specification.steps of a serial workflow,
// with the same checks as Parse.
func (s *Spec) SerialSteps() ([]Step, error) {
	if s.Workflow.Type != "serial" {
		return nil, &ValidationError{Msg: fmt.Sprintf(
			"Workflow type %q is not supported by this server: only serial workflows are supported.", s.Workflow.Type)}
	}
	if len(s.Workflow.Specification) == 0 {
		return nil, invalidf("workflow.specification", "is required for serial workflows")
	}
	v, err := decodeJSON(s.Workflow.Specification)
	if err != nil {
		return nil, invalidf("workflow.specification", "is not valid JSON: %v", err)
	}
	return parseSerial(v, nil)
}

// parseSerial checks a serial specification against both the analysis
// schema's serial branch and serial_workflow_schema; p (may be nil)
// collects warnings.
func parseSerial(v any, p *parser) ([]Step, error) {
	const base = "workflow.specification"
	m, ok := v.(map[string]any)
	if !ok {
		return nil, invalidf(base, "must be an object")
	}
	p.warnUnknown(m, "steps")
	sv, ok := m["steps"]
	if !ok {
		return nil, invalidf(base+".steps", "is required")
	}
	list, ok := sv.([]any)
	if !ok || len(list) == 0 {
		return nil, invalidf(base+".steps", "must be a non-empty list of steps")
	}
	steps := make([]Step, len(list))
	for i, item := range list {
		if err := parseStep(item, fmt.Sprintf("%s.steps[%d]", base, i), p, &steps[i]); err != nil {
			return nil, err
		}
	}
	return steps, nil
}

func parseStep(v any, path string, p *parser, st *Step) error {
	m, ok := v.(map[string]any)
	if !ok {
		return invalidf(path, "must be an object")
	}
	// The analysis schema's step properties; the engine also reads
	// kubernetes_uid, slurm_partition and slurm_time, which REANA warns about.
	p.warnUnknown(m, "commands", "compute_backend", "environment", "htcondor_accounting_group",
		"htcondor_max_runtime", "kerberos", "kubernetes_job_timeout", "kubernetes_cpu_request",
		"kubernetes_cpu_limit", "kubernetes_memory_request", "kubernetes_memory_limit", "name",
		"rucio", "unpacked_img", "voms_proxy", "c4p_cpu_cores", "c4p_memory_limit",
		"c4p_additional_requirements")

	cv, ok := m["commands"]
	if !ok {
		return invalidf(path+".commands", "is required")
	}
	cmds, ok := cv.([]any)
	if !ok || len(cmds) == 0 {
		return invalidf(path+".commands", "must be a non-empty list of strings")
	}
	st.Commands = make([]string, len(cmds))
	for i, c := range cmds {
		if st.Commands[i], ok = c.(string); !ok {
			return invalidf(fmt.Sprintf("%s.commands[%d]", path, i), "must be a string")
		}
	}
	if _, ok := m["environment"]; !ok {
		return invalidf(path+".environment", "is required")
	}

	strs := []struct {
		key string
		dst *string
	}{
		{"environment", &st.Environment},
		{"name", &st.Name},
		{"compute_backend", &st.ComputeBackend},
		{"kubernetes_memory_limit", &st.KubernetesMemoryLimit},
		{"kubernetes_memory_request", &st.KubernetesMemoryRequest},
		{"kubernetes_cpu_limit", &st.KubernetesCPULimit},
		{"kubernetes_cpu_request", &st.KubernetesCPURequest},
		{"htcondor_max_runtime", &st.HTCondorMaxRuntime},
		{"htcondor_accounting_group", &st.HTCondorAccountingGroup},
		{"slurm_partition", &st.SlurmPartition},
		{"slurm_time", &st.SlurmTime},
		{"c4p_cpu_cores", &st.C4PCPUCores},
		{"c4p_memory_limit", &st.C4PMemoryLimit},
		{"c4p_additional_requirements", &st.C4PAdditionalRequirements},
	}
	for _, f := range strs {
		if v, ok := m[f.key]; ok {
			if *f.dst, ok = v.(string); !ok {
				return invalidf(path+"."+f.key, "must be a string")
			}
		}
	}
	// unpacked_image (sic) is in serial_workflow_schema only; checked, unused.
	var unpackedImage bool
	bools := []struct {
		key string
		dst *bool
	}{
		{"unpacked_img", &st.UnpackedImg},
		{"unpacked_image", &unpackedImage},
		{"voms_proxy", &st.VOMSProxy},
		{"rucio", &st.Rucio},
		{"kerberos", &st.Kerberos},
	}
	for _, f := range bools {
		if v, ok := m[f.key]; ok {
			if *f.dst, ok = v.(bool); !ok {
				return invalidf(path+"."+f.key, "must be a boolean")
			}
		}
	}
	ints := []struct {
		key string
		dst *int
	}{
		{"kubernetes_job_timeout", &st.KubernetesJobTimeout},
		{"kubernetes_uid", &st.KubernetesUID},
	}
	for _, f := range ints {
		if v, ok := m[f.key]; ok {
			n, err := asInt(v)
			if err != nil {
				return invalidf(path+"."+f.key, "%v", err)
			}
			*f.dst = n
		}
	}

	if st.ComputeBackend != "" {
		if _, err := CanonicalBackend(st.ComputeBackend); err != nil {
			return invalidf(path+".compute_backend", "%q is not one of %s",
				st.ComputeBackend, strings.Join(computeBackends(), ", "))
		}
	}
	if hasKey(m, "kubernetes_memory_limit") && !kubernetesMemoryFormat(st.KubernetesMemoryLimit) {
		return invalidf(path+".kubernetes_memory_limit",
			"%q is not a valid Kubernetes memory value (e.g. 256Mi, 2Gi, 1G)", st.KubernetesMemoryLimit)
	}
	if st.HTCondorMaxRuntime != "" && !validHTCondorMaxRuntime(st.HTCondorMaxRuntime) {
		return invalidf(path+".htcondor_max_runtime",
			"'%s' is not a valid input for htcondor_max_runtime. Inputs must be a digit in the form of a string, "+
				"or one of the following job flavours: '%s'.",
			st.HTCondorMaxRuntime, strings.Join(htcondorFlavours(), "' '"))
	}
	return nil
}

func hasKey(m map[string]any, key string) bool {
	_, ok := m[key]
	return ok
}

// kubernetesMemoryFormat reports whether s passes serial_workflow_schema's
// pattern KUBERNETES_MEMORY_FORMAT,
// (?:(\d+)|((\d+[.])?\d+)([EPTGMK])(i?))$, as jsonschema applies it: with
// re.search, so only the end of s is looked at, "$" also matches before a
// final newline and \d is any Unicode decimal digit.
func kubernetesMemoryFormat(s string) bool {
	r := []rune(strings.TrimSuffix(s, "\n"))
	n := len(r)
	isUnit := func(c rune) bool { return strings.ContainsRune("EPTGMK", c) }
	switch {
	case n >= 1 && unicode.IsDigit(r[n-1]):
		return true
	case n >= 2 && isUnit(r[n-1]) && unicode.IsDigit(r[n-2]):
		return true
	case n >= 3 && r[n-1] == 'i' && isUnit(r[n-2]) && unicode.IsDigit(r[n-3]):
		return true
	}
	return false
}

// htcondorFlavours are HTCONDOR_JOB_FLAVOURS, in the order of their run time.
func htcondorFlavours() []string {
	return []string{"espresso", "microcentury", "longlunch", "workday", "tomorrow", "testmatch", "nextweek"}
}

// validHTCondorMaxRuntime mirrors check_htcondor_max_runtime: a number of
// seconds or a job flavour.
func validHTCondorMaxRuntime(s string) bool {
	for _, f := range htcondorFlavours() {
		if s == f {
			return true
		}
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// asInt accepts what JSON Schema draft 6+ calls an integer (so 2.0 too,
// as jsonschema does), within int32.
func asInt(v any) (int, error) {
	errType := errors.New("must be an integer")
	errRange := fmt.Errorf("must be an integer between %d and %d", math.MinInt32, math.MaxInt32)
	fromFloat := func(f float64) (int, error) {
		switch {
		case math.IsInf(f, 0) || math.IsNaN(f) || f != math.Trunc(f):
			return 0, errType
		case f < math.MinInt32 || f > math.MaxInt32:
			return 0, errRange
		}
		return int(f), nil
	}
	switch n := v.(type) {
	case json.Number:
		lit := string(n)
		if !strings.ContainsAny(lit, ".eE") {
			i, err := strconv.ParseInt(lit, 10, 32)
			switch {
			case errors.Is(err, strconv.ErrRange):
				return 0, errRange
			case err != nil:
				return 0, errType
			}
			return int(i), nil
		}
		f, err := strconv.ParseFloat(lit, 64)
		if err != nil && !errors.Is(err, strconv.ErrRange) {
			return 0, errType
		}
		return fromFloat(f)
	case float64:
		return fromFloat(n)
	case int:
		return fromFloat(float64(n))
	}
	return 0, errType
}
