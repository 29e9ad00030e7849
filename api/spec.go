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
	writeJSON(w, http.StatusOK, parametersResponse{
		ID:         wf.ID,
		Name:       wf.FullName(),
		Type:       sp.Workflow.Type,
		Parameters: nonNil(sp.Inputs.Parameters),
	})
}

// parametersResponse is the specification's input parameters.
type parametersResponse struct {
	ID         string         `json:"id"`
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Parameters map[string]any `json:"parameters"`
}

// specificationResponse is the stored specification, and the parameters
// the run was started with.
type specificationResponse struct {
	Specification any `json:"specification"`
	Parameters    any `json:"parameters"`
}

// retentionRulesResponse lists a workflow's retention rules.
type retentionRulesResponse struct {
	WorkflowID     string          `json:"workflow_id"`
	WorkflowName   string          `json:"workflow_name"`
	RetentionRules []retentionRule `json:"retention_rules"`
}

type retentionRule struct {
	ID             string  `json:"id"`
	WorkspaceFiles string  `json:"workspace_files"`
	RetentionDays  int     `json:"retention_days"`
	ApplyOn        *string `json:"apply_on"`
	Status         string  `json:"status"`
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
	writeJSON(w, http.StatusOK, specificationResponse{Specification: doc, Parameters: params})
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
	out := make([]retentionRule, 0, len(rules))
	for _, rule := range rules {
		out = append(out, retentionRule{
			ID:             strconv.FormatInt(rule.ID, 10),
			WorkspaceFiles: rule.Pattern,
			RetentionDays:  rule.Days,
			ApplyOn:        timeStr(rule.ApplyOn),
			Status:         rule.Status,
		})
	}
	writeJSON(w, http.StatusOK, retentionRulesResponse{WorkflowID: wf.ID, WorkflowName: wf.FullName(), RetentionRules: out})
}
