package api

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/reana-site/reana-site/daemon/spec"
)

func (s *Server) parameters(w http.ResponseWriter, r *http.Request) {
	wf, ok := s.workflow(w, r, "w")
	if !ok {
		return
	}
	sp, _, err := spec.Parse(wf.Spec)
	if err != nil {
		s.internal(w, r, "read the specification", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"id":         wf.ID,
		"name":       wf.FullName(),
		"type":       sp.Workflow.Type,
		"parameters": nonNil(sp.Inputs.Parameters),
	})
}

func (s *Server) specification(w http.ResponseWriter, r *http.Request) {
	wf, ok := s.workflow(w, r, "w")
	if !ok {
		return
	}
	var doc, params any
	if err := json.Unmarshal(wf.Spec, &doc); err != nil {
		s.internal(w, r, "read the specification", err)
		return
	}
	_ = json.Unmarshal(wf.InputParameters, &params)
	if params == nil {
		params = map[string]any{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"specification": doc, "parameters": params})
}

func (s *Server) retentionRules(w http.ResponseWriter, r *http.Request) {
	wf, ok := s.workflow(w, r, "w")
	if !ok {
		return
	}
	rules, err := s.DB.RetentionRules(r.Context(), wf.ID)
	if err != nil {
		s.internal(w, r, "read retention rules", err)
		return
	}
	out := make([]map[string]any, 0, len(rules))
	for _, rule := range rules {
		out = append(out, map[string]any{
			"id":              strconv.FormatInt(rule.ID, 10),
			"workspace_files": rule.Pattern,
			"retention_days":  rule.Days,
			"apply_on":        reanaTimePtr(rule.ApplyOn),
			"status":          rule.Status,
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"workflow_id": wf.ID, "workflow_name": wf.FullName(), "retention_rules": out})
}
