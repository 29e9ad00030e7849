package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"

	"github.com/google/uuid"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/daemon/spec"
	"github.com/reana-site/reana-site/daemon/store"
)

// maxSpecBytes bounds a reana.yaml sent as JSON.
const maxSpecBytes = 8 << 20

func (s *Server) createWorkflow(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	q := r.URL.Query()
	if q.Get("spec") != "" {
		writeError(w, http.StatusNotImplemented, "Creating workflows from a remote specification URL is not supported by this reana-site server.")
		return
	}
	name := q.Get("workflow_name")
	if err := spec.ValidateWorkflowName(name); err != nil {
		status := http.StatusBadRequest
		if errors.Is(err, spec.ErrNameIllegalCharacter) {
			status = http.StatusForbidden // as reana-server answers
		}
		writeError(w, status, err.Error())
		return
	}
	if name == "" {
		name = "workflow"
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxSpecBytes))
	if err != nil {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("The REANA specification could not be read (at most %d bytes): %v", maxSpecBytes, err))
		return
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		writeError(w, http.StatusBadRequest, "Either remote repository or REANA specification needs to be provided.")
		return
	}
	sp, _, err := spec.Parse(body)
	if err != nil {
		writeError(w, http.StatusBadRequest, "Invalid REANA specification: "+err.Error())
		return
	}
	steps, err := workflowSteps(sp)
	if err != nil {
		writeError(w, http.StatusBadRequest, "Invalid REANA specification: "+err.Error())
		return
	}
	if err := spec.ValidateOperationalOptions(sp.Workflow.Type, sp.Inputs.Options); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if err := s.Engine.CheckBackends(steps); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	root := s.workspaceRoot(c)
	if rp := sp.Workspace.RootPath; rp != "" && filepath.Clean(rp) != root && !strings.HasPrefix(filepath.Clean(rp)+"/", root+"/") {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Workspace root path %s is not available; use %s.", rp, root))
		return
	}
	rules, err := spec.RetentionRules(sp, s.Config.RetentionMaxDays)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if msg, over := s.overQuota(r.Context(), c); over {
		writeError(w, http.StatusForbidden, msg)
		return
	}
	opts, _ := json.Marshal(sp.Inputs.Options)
	if len(sp.Inputs.Options) == 0 {
		opts = []byte("{}")
	}
	id := uuid.NewString()
	wf := &store.Workflow{
		ID:                 id,
		OwnerID:            c.User.ID,
		Name:               name,
		Status:             store.StatusCreated,
		Spec:               body,
		InputParameters:    json.RawMessage("{}"),
		OperationalOptions: opts,
		WorkspacePath:      filepath.Join(root, "workflows", id),
		JobsPath:           filepath.Join(root, "jobs", id),
	}
	// The user's own process creates the workspace, mode 0700; nothing is
	// recorded if it cannot.
	if err := asuser.CreateWorkspace(r.Context(), s.Runner, c.Account, asuser.WorkspaceArgs{Workspace: wf.WorkspacePath, JobsDir: wf.JobsPath}); err != nil {
		if tooBusy(w, err) {
			return
		}
		s.Log.Warn("create workspace", "user", c.Account.Name, "path", wf.WorkspacePath, "err", err)
		writeError(w, http.StatusInternalServerError, fmt.Sprintf("Could not create the workspace %s as %s: %v", wf.WorkspacePath, c.Account.Name, err))
		return
	}
	if err := s.DB.CreateWorkflow(r.Context(), wf); err != nil {
		_ = asuser.RemoveWorkspace(r.Context(), s.Runner, c.Account, asuser.WorkspaceArgs{Workspace: wf.WorkspacePath, JobsDir: wf.JobsPath})
		s.internal(w, r, "create the workflow", err)
		return
	}
	if len(rules) > 0 {
		rr := make([]store.RetentionRule, len(rules))
		for i, rule := range rules {
			rr[i] = store.RetentionRule{WorkflowID: wf.ID, Pattern: rule.Pattern, Days: rule.Days, Status: retentionCreated}
		}
		if err := s.DB.CreateRetentionRules(r.Context(), wf.ID, rr); err != nil {
			s.internal(w, r, "store retention rules", err)
			return
		}
	}
	s.Log.Info("workflow created", "user", c.Account.Name, "workflow", wf.ID, "name", wf.FullName())
	writeJSON(w, http.StatusCreated, workflowResponse{
		Message:      "Workflow workspace created",
		WorkflowID:   wf.ID,
		WorkflowName: wf.FullName(),
	})
}

// retentionCreated is the status of a retention rule not yet active
// (REANA's; the store keeps rule statuses as REANA's strings).
const retentionCreated = "created"

// overQuota reports whether the caller has used up their disk quota.
func (s *Server) overQuota(ctx context.Context, c caller) (string, bool) {
	lim := s.Config.DiskQuotaBytes
	if lim <= 0 {
		return "", false
	}
	used, err := s.DB.UserDiskUsage(ctx, c.User.ID)
	if err != nil || used < lim {
		return "", false
	}
	return fmt.Sprintf("User %s has exceeded the disk quota (%s of %s used).", c.Account.Name, HumanBytes(used), HumanBytes(lim)), true
}
