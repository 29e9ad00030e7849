package workflowengine

import (
	"encoding/json"
	"fmt"

	"github.com/reana-site/reana-site/daemon/spec"
)

// Steps are the rules (snakemake) or steps (cwl) of a specification as the
// client sent it, with the compute backend each names, so the API can
// refuse a backend this site does not offer before anything runs, as
// reana-commons' validate_compute_backends does. A yadage specification
// arrives empty (reana-client sends null) and its stages are checked by
// the engine when it loads them; so is anything the client could not
// know statically.
func Steps(s *spec.Spec) ([]spec.Step, error) {
	if len(s.Workflow.Specification) == 0 {
		return nil, nil
	}
	switch s.Workflow.Type {
	case "snakemake":
		var doc struct {
			Steps []struct {
				Name           string `json:"name"`
				ComputeBackend string `json:"compute_backend"`
			} `json:"steps"`
		}
		if err := json.Unmarshal(s.Workflow.Specification, &doc); err != nil {
			return nil, fmt.Errorf("workflow.specification: %w", err)
		}
		out := make([]spec.Step, 0, len(doc.Steps))
		for _, st := range doc.Steps {
			out = append(out, spec.Step{Name: st.Name, ComputeBackend: st.ComputeBackend})
		}
		return out, nil
	case "cwl":
		return cwlSteps(s.Workflow.Specification)
	}
	return nil, nil
}

// cwlSteps walks a packed CWL document ($graph) or a single process.
func cwlSteps(doc json.RawMessage) ([]spec.Step, error) {
	var top struct {
		Graph []json.RawMessage `json:"$graph"`
	}
	if err := json.Unmarshal(doc, &top); err != nil {
		return nil, fmt.Errorf("workflow.specification: %w", err)
	}
	procs := top.Graph
	if procs == nil {
		procs = []json.RawMessage{doc}
	}
	var out []spec.Step
	for _, p := range procs {
		var proc struct {
			Steps json.RawMessage `json:"steps"`
		}
		if json.Unmarshal(p, &proc) != nil || len(proc.Steps) == 0 {
			continue
		}
		for name, hints := range cwlStepHints(proc.Steps) {
			for _, h := range hints {
				if h.Class == "reana" {
					out = append(out, spec.Step{Name: name, ComputeBackend: h.ComputeBackend})
				}
			}
		}
	}
	return out, nil
}

// cwlTotal is REANA's job count of a packed CWL document: its processes
// less the main workflow.
func cwlTotal(doc json.RawMessage) int {
	var top struct {
		Graph []json.RawMessage `json:"$graph"`
	}
	if json.Unmarshal(doc, &top) != nil || len(top.Graph) == 0 {
		return 1
	}
	return max(len(top.Graph)-1, 1)
}

type cwlHint struct {
	Class          string `json:"class"`
	ComputeBackend string `json:"compute_backend"`
}

// cwlStepHints reads steps given as a list (with ids) or a map, and hints
// given as a list or a map by class.
func cwlStepHints(raw json.RawMessage) map[string][]cwlHint {
	type step struct {
		ID    string          `json:"id"`
		Hints json.RawMessage `json:"hints"`
	}
	steps := map[string]step{}
	var list []step
	if json.Unmarshal(raw, &list) == nil {
		for _, st := range list {
			steps[st.ID] = st
		}
	} else {
		_ = json.Unmarshal(raw, &steps)
	}
	out := map[string][]cwlHint{}
	for name, st := range steps {
		var hs []cwlHint
		if json.Unmarshal(st.Hints, &hs) != nil {
			var byClass map[string]cwlHint
			_ = json.Unmarshal(st.Hints, &byClass)
			for c, h := range byClass {
				h.Class = c
				hs = append(hs, h)
			}
		}
		out[name] = hs
	}
	return out
}
