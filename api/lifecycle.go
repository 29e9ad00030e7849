package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"

	"github.com/google/uuid"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/daemon/engine"
	"github.com/reana-site/reana-site/daemon/spec"
	"github.com/reana-site/reana-site/daemon/store"
	"github.com/reana-site/reana-site/daemon/workflowengine"
)

// startRequest is the body of start and of PUT status=start.
type startRequest struct {
	InputParameters    map[string]any  `json:"input_parameters"`
	OperationalOptions map[string]any  `json:"operational_options"`
	ReanaSpecification json.RawMessage `json:"reana_specification"`
	Restart            bool            `json:"restart"`
}

func (s *Server) start(w http.ResponseWriter, r *http.Request) {
	wf, ok := s.workflow(w, r, "w")
	if !ok {
		return
	}
	var req startRequest
	if err := readJSONBody(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, "Malformed request body: "+err.Error())
		return
	}
	s.startWorkflow(w, r, wf, req)
}

func (s *Server) startWorkflow(w http.ResponseWriter, r *http.Request, wf store.Workflow, req startRequest) {
	c := callerOf(r)
	wf, err := s.startRun(r.Context(), c, wf, req)
	if err != nil {
		s.actionError(w, r, "start the workflow", err)
		return
	}
	writeJSON(w, http.StatusOK, startResponse{
		Message:      "Workflow submitted.",
		WorkflowID:   wf.ID,
		WorkflowName: wf.Name,
		Status:       string(wf.Status),
		RunNumber:    wf.RunNumber(),
		User:         wf.OwnerID,
	})
}

// startRun queues wf, or with req.Restart a new run of it, and returns
// the queued run. A refusal is a *Refusal.
func (s *Server) startRun(ctx context.Context, c caller, wf store.Workflow, req startRequest) (store.Workflow, error) {
	if msg, over := s.overQuota(ctx, c); over {
		return wf, refuse(http.StatusForbidden, "%s", msg)
	}
	doc := wf.Spec
	if req.Restart {
		if wf.Status != store.StatusFinished && wf.Status != store.StatusFailed {
			return wf, refuse(http.StatusForbidden, "Only finished or failed workflows can be restarted.")
		}
		if len(req.ReanaSpecification) > 0 && string(req.ReanaSpecification) != "null" {
			doc = req.ReanaSpecification
		}
	} else if wf.Status != store.StatusCreated {
		return wf, refuse(http.StatusForbidden, "Workflow %s is already %s and cannot be started again.", wf.FullName(), wf.Status)
	}
	// Everything is checked before a restart creates its run, so a refused
	// restart leaves no run behind and uses up no run number.
	if status, msg := s.checkStartable(ctx, c.Account, wf.WorkspacePath, doc, req); status != 0 {
		return wf, refuse(status, "%s", msg)
	}
	if req.Restart {
		clone := wf
		clone.ID = uuid.NewString()
		clone.Restart = true
		clone.Status = store.StatusCreated
		clone.Spec = doc
		clone.InputParameters = json.RawMessage("{}")
		clone.OperationalOptions = json.RawMessage("{}")
		clone.JobsPath = filepath.Join(filepath.Dir(wf.JobsPath), clone.ID)
		clone.StartedAt, clone.FinishedAt, clone.StoppedAt = nil, nil, nil
		clone.Logs, clone.StatusMessage = "", ""
		clone.ProgressTotal, clone.CPUMillis = 0, 0
		clone.StopRequested = false
		if err := asuser.CreateWorkspace(ctx, s.Runner, c.Account, asuser.WorkspaceArgs{Workspace: clone.WorkspacePath, JobsDir: clone.JobsPath}); err != nil {
			var busy *asuser.BusyError
			if errors.As(err, &busy) {
				return wf, err
			}
			return wf, refuse(http.StatusInternalServerError, "Could not prepare the restarted run: %v", err)
		}
		if err := s.DB.CreateWorkflow(ctx, &clone); err != nil {
			return wf, fmt.Errorf("create the restarted run: %w", err)
		}
		wf = clone
	}
	var err error
	params, _ := json.Marshal(nonNil(req.InputParameters))
	wf, err = s.DB.UpdateWorkflow(ctx, wf.ID, func(x *store.Workflow) error {
		if x.Status != store.StatusCreated {
			return errAlreadyStarted
		}
		x.Status = store.StatusQueued
		x.InputParameters = params
		var opts map[string]any
		_ = json.Unmarshal(x.OperationalOptions, &opts)
		if opts == nil {
			opts = map[string]any{}
		}
		for k, v := range req.OperationalOptions {
			opts[k] = v
		}
		x.OperationalOptions, _ = json.Marshal(opts)
		return nil
	})
	if errors.Is(err, errAlreadyStarted) {
		return wf, refuse(http.StatusConflict, "Workflow %s was started meanwhile.", wf.FullName())
	}
	if err != nil {
		return wf, fmt.Errorf("start the workflow: %w", err)
	}
	s.Engine.Wake()
	s.Log.Info("workflow queued", "user", c.Account.Name, "workflow", wf.ID, "name", wf.FullName())
	return wf, nil
}

// startResponse answers a start and a restart. run_number is not in the
// contract; reana-client prints it for restarts.
type startResponse struct {
	Message      string `json:"message"`
	WorkflowID   string `json:"workflow_id"`
	WorkflowName string `json:"workflow_name"`
	Status       string `json:"status"`
	RunNumber    string `json:"run_number"`
	User         string `json:"user"`
}

var errAlreadyStarted = errors.New("already started")

// checkStartable validates a specification and the start request against
// it; a non-zero status says how to refuse.
func (s *Server) checkStartable(ctx context.Context, acct asuser.Account, workspace string, doc json.RawMessage, req startRequest) (int, string) {
	sp, _, err := spec.Parse(doc)
	if err != nil {
		return http.StatusBadRequest, "Invalid REANA specification: " + err.Error()
	}
	if err := s.Engines.Available(sp.Workflow.Type); err != nil {
		return http.StatusNotImplemented, err.Error()
	}
	steps, err := workflowSteps(sp)
	if err != nil {
		return http.StatusBadRequest, "Invalid REANA specification: " + err.Error()
	}
	if err := s.Engine.CheckBackends(steps); err != nil {
		return http.StatusBadRequest, err.Error()
	}
	if sp.Workflow.Type != "serial" {
		// The engine process decides each job's image and resources;
		// they are checked as it asks for them.
		return s.checkRequest(sp, req)
	}
	if err := s.Engine.CheckPreflight(steps, acct, workspace); err != nil {
		return http.StatusBadRequest, err.Error()
	}
	// With pulls off, a missing image is refused here, before any job of
	// the workflow is submitted.
	if err := s.Engine.CheckImages(ctx, steps, acct); err != nil {
		return http.StatusBadRequest, err.Error()
	}
	return s.checkRequest(sp, req)
}

// checkRequest checks a start request's parameters and options against
// the specification.
func (s *Server) checkRequest(sp *spec.Spec, req startRequest) (int, string) {
	if err := spec.ValidateInputParameters(sp.Inputs.Parameters, req.InputParameters); err != nil {
		return http.StatusBadRequest, err.Error()
	}
	if err := spec.ValidateOperationalOptions(sp.Workflow.Type, req.OperationalOptions); err != nil {
		return http.StatusBadRequest, err.Error()
	}
	return 0, ""
}

// workflowSteps are a specification's steps: the serial ones, or the
// rules or steps of an engine's specification with the backend each
// names (daemon/workflowengine).
func workflowSteps(sp *spec.Spec) ([]spec.Step, error) {
	if sp.Workflow.Type == "serial" {
		return sp.SerialSteps()
	}
	return workflowengine.Steps(sp)
}

type setStatusRequest struct {
	startRequest
	AllRuns   bool  `json:"all_runs"`
	Workspace *bool `json:"workspace"`
	ForceStop bool  `json:"force_stop"`
}

func (s *Server) setStatus(w http.ResponseWriter, r *http.Request) {
	wf, ok := s.workflow(w, r, "w")
	if !ok {
		return
	}
	var req setStatusRequest
	if err := readJSONBody(r, &req); err != nil {
		writeError(w, http.StatusBadRequest, "Malformed request body: "+err.Error())
		return
	}
	switch r.URL.Query().Get("status") {
	case "start":
		s.startWorkflow(w, r, wf, req.startRequest)
	case "stop":
		s.stop(w, r, wf)
	case "deleted":
		s.delete(w, r, wf, req)
	default:
		writeError(w, http.StatusBadRequest, "Status must be one of start, stop, deleted.")
	}
}

func (s *Server) stop(w http.ResponseWriter, r *http.Request, wf store.Workflow) {
	stopped, err := s.StopRun(r.Context(), wf)
	if err != nil {
		s.actionError(w, r, "stop the workflow", err)
		return
	}
	writeJSON(w, http.StatusOK, statusChangeResponse{
		Message:      "Workflow successfully stopped",
		WorkflowID:   stopped.ID,
		WorkflowName: stopped.FullName(),
		Status:       string(stopped.Status),
		User:         stopped.OwnerID,
	})
}

// StopRun stops a running run. One that is not running is a *Refusal.
func (s *Server) StopRun(ctx context.Context, wf store.Workflow) (store.Workflow, error) {
	s.defaults()
	stopped, err := s.Engine.Stop(ctx, wf.ID)
	if errors.Is(err, engine.ErrNotRunning) {
		return wf, refuse(http.StatusConflict, "Workflow %s is not running.", wf.FullName())
	}
	if err != nil {
		return wf, fmt.Errorf("stop the workflow: %w", err)
	}
	return stopped, nil
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request, wf store.Workflow, req setStatusRequest) {
	if req.Workspace != nil && !*req.Workspace {
		writeError(w, http.StatusBadRequest, "Workspace must always be deleted when deleting a workflow.")
		return
	}
	if err := s.deleteRun(r.Context(), callerOf(r), wf, req.AllRuns); err != nil {
		s.actionError(w, r, "delete the workflow", err)
		return
	}
	msg := "Workflow successfully deleted."
	if req.AllRuns {
		msg = fmt.Sprintf("All workflows named %s successfully deleted.", wf.Name)
	}
	writeJSON(w, http.StatusOK, statusChangeResponse{
		Message:      msg,
		WorkflowID:   wf.ID,
		WorkflowName: wf.FullName(),
		Status:       string(store.StatusDeleted),
		User:         wf.OwnerID,
	})
}

// DeleteRun deletes wf (with allRuns, every run of its name that is not
// active) and its workspace, as acct. A refusal is a *Refusal.
func (s *Server) DeleteRun(ctx context.Context, u store.User, acct asuser.Account, wf store.Workflow, allRuns bool) error {
	s.defaults()
	return s.deleteRun(ctx, caller{User: u, Account: acct}, wf, allRuns)
}

// RestartRun starts a new run of a finished or failed run, in its
// workspace, as acct, and returns it. A refusal is a *Refusal.
func (s *Server) RestartRun(ctx context.Context, u store.User, acct asuser.Account, wf store.Workflow) (store.Workflow, error) {
	s.defaults()
	return s.startRun(ctx, caller{User: u, Account: acct}, wf, startRequest{Restart: true})
}

func (s *Server) deleteRun(ctx context.Context, c caller, wf store.Workflow, allRuns bool) error {
	targets := []store.Workflow{wf}
	if allRuns {
		all, err := s.DB.WorkflowsByName(ctx, c.User.ID, wf.Name)
		if err != nil {
			return fmt.Errorf("list the workflow's runs: %w", err)
		}
		targets = targets[:0]
		for _, x := range all {
			if !running(x.Status) {
				targets = append(targets, x)
			}
		}
	} else if running(wf.Status) {
		// REANA answers 500 here; the contract lists 409, which says what it is.
		return refuse(http.StatusConflict, "Workflow %s cannot be deleted as it is currently %s. Stop it first.", wf.FullName(), wf.Status)
	} else if other, ok, err := s.sharingRun(ctx, wf); err != nil {
		return fmt.Errorf("list the runs sharing the workspace: %w", err)
	} else if ok {
		return refuse(http.StatusConflict, "Workflow %s cannot be deleted: its workspace is shared with %s, which is %s. Stop it first, or delete it when it ends.", wf.FullName(), other.FullName(), other.Status)
	}
	for _, x := range targets {
		// The files go first and the status after: a helper that dies
		// half way leaves the workflow as it was, with the error, and
		// deleting it again finishes the job; the other order left
		// "deleted" runs with their files on disk and nothing to retry.
		// A restart (name.N.M) runs in the workspace of the run it restarts:
		// while one that shares it is active, the files stay.
		other, shared, err := s.sharingRun(ctx, x)
		if err != nil {
			return fmt.Errorf("list the runs sharing the workspace: %w", err)
		}
		if shared {
			s.Log.Info("workspace kept for a run that shares it", "workflow", x.ID, "active", other.ID)
		} else if err := asuser.RemoveWorkspace(ctx, s.Runner, c.Account, asuser.WorkspaceArgs{Workspace: x.WorkspacePath, JobsDir: x.JobsPath}); err != nil {
			return fmt.Errorf("delete the workspace: %w", err)
		}
		// The status is checked again where it is changed, so a start that
		// slipped in since the check above is refused its delete.
		_, err = s.DB.UpdateWorkflow(ctx, x.ID, func(y *store.Workflow) error {
			if running(y.Status) {
				return errStartedMeanwhile
			}
			y.Status = store.StatusDeleted
			y.DiskUsage = 0
			return nil
		})
		if errors.Is(err, errStartedMeanwhile) {
			if x.ID == wf.ID {
				return refuse(http.StatusConflict, "Workflow %s was started meanwhile. Stop it first.", wf.FullName())
			}
			continue
		}
		if err != nil {
			return fmt.Errorf("delete the workflow: %w", err)
		}
	}
	s.Log.Info("workflow deleted", "user", c.Account.Name, "workflow", wf.ID, "all_runs", allRuns)
	return nil
}

var errStartedMeanwhile = errors.New("workflow started meanwhile")

// sharingRun finds an active run, other than x, that uses x's workspace
// (restarts share the workspace of the run they restart).
func (s *Server) sharingRun(ctx context.Context, x store.Workflow) (store.Workflow, bool, error) {
	runs, err := s.DB.WorkflowsByName(ctx, x.OwnerID, x.Name)
	if err != nil {
		return store.Workflow{}, false, err
	}
	for _, o := range runs {
		if o.ID != x.ID && o.WorkspacePath == x.WorkspacePath && running(o.Status) {
			return o, true, nil
		}
	}
	return store.Workflow{}, false, nil
}
