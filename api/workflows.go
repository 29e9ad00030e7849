package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/daemon/engine"
	"github.com/reana-site/reana-site/daemon/spec"
	"github.com/reana-site/reana-site/daemon/store"
)

// maxSpecBytes bounds a reana.yaml sent as JSON.
const maxSpecBytes = 8 << 20

// workflow resolves the {w} path parameter for the caller. Another user's
// workflow is "not found", never "forbidden", so names don't leak.
func (s *Server) workflow(w http.ResponseWriter, r *http.Request, param string) (store.Workflow, bool) {
	name, err := pathParam(r, param)
	if err != nil {
		writeError(w, http.StatusBadRequest, "Malformed workflow name or id.")
		return store.Workflow{}, false
	}
	wf, err := s.DB.ResolveWorkflow(r.Context(), callerOf(r).User.ID, name)
	if errors.Is(err, store.ErrNotFound) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("REANA_WORKON is set to %s, but that workflow does not exist. Please set your REANA_WORKON environment variable appropriately.", name))
		return store.Workflow{}, false
	}
	if err != nil {
		s.internal(w, r, "look up the workflow", err)
		return store.Workflow{}, false
	}
	return wf, true
}

func progress(wf store.Workflow, c store.JobCounts) map[string]any {
	ids := func(v []string) []string {
		if v == nil {
			return []string{}
		}
		return v
	}
	var cmd, step any
	if c.HasCurrent {
		cmd, step = c.CurrentCommand, c.CurrentStep
	}
	if wf.StatusMessage != "" && running(wf.Status) {
		// What the step waits for (a batch system that is down) is what
		// `reana-client status -v` shows in its COMMAND column.
		cmd = wf.StatusMessage
	}
	return map[string]any{
		"total":             map[string]any{"total": wf.ProgressTotal, "job_ids": []string{}},
		"running":           map[string]any{"total": c.Running, "job_ids": ids(c.RunningIDs)},
		"finished":          map[string]any{"total": c.Finished, "job_ids": ids(c.FinishedIDs)},
		"failed":            map[string]any{"total": c.Failed, "job_ids": ids(c.FailedIDs)},
		"current_command":   cmd,
		"current_step_name": step,
		"run_started_at":    reanaTimePtr(wf.StartedAt),
		"run_finished_at":   reanaTimePtr(wf.FinishedAt),
		"run_stopped_at":    reanaTimePtr(wf.StoppedAt),
	}
}

func (s *Server) listWorkflows(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	q := r.URL.Query()
	typ := q.Get("type")
	if typ == "" {
		writeError(w, http.StatusBadRequest, "Missing required query parameter: type.")
		return
	}
	if typ == "interactive" {
		writeJSON(w, http.StatusOK, map[string]any{"items": []any{}, "total": 0})
		return
	}
	if typ != "batch" {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Unknown workflow type %q: use batch or interactive.", typ))
		return
	}
	lq := store.ListQuery{OwnerID: c.User.ID, NameOrID: q.Get("workflow_id_or_name")}
	for _, st := range strings.Split(q.Get("status"), ",") {
		if st = strings.TrimSpace(st); st != "" {
			if !knownStatus(st) {
				writeError(w, http.StatusBadRequest, fmt.Sprintf("Unknown workflow status %q.", st))
				return
			}
			lq.Statuses = append(lq.Statuses, store.WorkflowStatus(st))
		}
	}
	if search := q.Get("search"); search != "" {
		var m map[string][]string
		if err := json.Unmarshal([]byte(search), &m); err != nil {
			// reana-client 0.9 sends a JSON object; a bare string is a name filter.
			lq.Search = search
		} else if names := m["name"]; len(names) > 0 {
			lq.Search = names[0]
		}
	}
	switch q.Get("sort") {
	case "", "desc":
	case "asc":
		lq.SortAsc = true
	default:
		writeError(w, http.StatusBadRequest, "Sort must be asc or desc.")
		return
	}
	page, size, ok := pagination(w, r)
	if !ok {
		return
	}
	if size > 0 {
		lq.Offset, lq.Limit = (page-1)*size, size
	}
	wfs, total, err := s.DB.ListWorkflows(r.Context(), lq)
	if err != nil {
		s.internal(w, r, "list workflows", err)
		return
	}
	ids := make([]string, len(wfs))
	for i, wf := range wfs {
		ids[i] = wf.ID
	}
	counts, err := s.DB.JobCounts(r.Context(), ids)
	if err != nil {
		s.internal(w, r, "list workflows", err)
		return
	}
	withSize := q.Get("include_workspace_size") == "true"
	items := make([]map[string]any, 0, len(wfs))
	for _, wf := range wfs {
		size := map[string]any{"raw": -1, "human_readable": ""}
		if withSize {
			size = sizeObj(wf.DiskUsage)
		}
		items = append(items, map[string]any{
			"id":             wf.ID,
			"name":           wf.FullName(),
			"created":        reanaTime(wf.CreatedAt),
			"status":         string(wf.Status),
			"user":           c.User.ID,
			"progress":       progress(wf, counts[wf.ID]),
			"size":           size,
			"launcher_url":   nil,
			"session_type":   "",
			"session_uri":    "",
			"session_status": "",
		})
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "total": total})
}

func knownStatus(s string) bool {
	switch store.WorkflowStatus(s) {
	case store.StatusCreated, store.StatusQueued, store.StatusPending, store.StatusRunning,
		store.StatusFinished, store.StatusFailed, store.StatusStopped, store.StatusDeleted:
		return true
	}
	return false
}

func pagination(w http.ResponseWriter, r *http.Request) (page, size int, ok bool) {
	q := r.URL.Query()
	page, size = 1, 0
	var err error
	if v := q.Get("page"); v != "" {
		if page, err = strconv.Atoi(v); err != nil || page < 1 {
			writeError(w, http.StatusBadRequest, "Field 'page': Must be at least 1.")
			return 0, 0, false
		}
	}
	if v := q.Get("size"); v != "" {
		if size, err = strconv.Atoi(v); err != nil || size < 1 {
			writeError(w, http.StatusBadRequest, "Field 'size': Must be at least 1.")
			return 0, 0, false
		}
	}
	return page, size, true
}

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
	if sp.Workflow.Type != "serial" {
		writeError(w, http.StatusNotImplemented, fmt.Sprintf("Workflow type %q is not supported by this reana-site server yet; only serial workflows are.", sp.Workflow.Type))
		return
	}
	steps, err := sp.SerialSteps()
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
	if msg, over := s.overQuota(r, c); over {
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
			rr[i] = store.RetentionRule{WorkflowID: wf.ID, Pattern: rule.Pattern, Days: rule.Days, Status: "created"}
		}
		if err := s.DB.CreateRetentionRules(r.Context(), wf.ID, rr); err != nil {
			s.internal(w, r, "store retention rules", err)
			return
		}
	}
	s.Log.Info("workflow created", "user", c.Account.Name, "workflow", wf.ID, "name", wf.FullName())
	writeJSON(w, http.StatusCreated, map[string]any{
		"message":       "Workflow workspace created",
		"workflow_id":   wf.ID,
		"workflow_name": wf.FullName(),
	})
}

// overQuota reports whether the caller has used up their disk quota.
func (s *Server) overQuota(r *http.Request, c caller) (string, bool) {
	lim := s.Config.DiskQuotaBytes
	if lim <= 0 {
		return "", false
	}
	used, err := s.DB.UserDiskUsage(r.Context(), c.User.ID)
	if err != nil || used < lim {
		return "", false
	}
	return fmt.Sprintf("User %s has exceeded the disk quota (%s of %s used).", c.Account.Name, humanBytes(used), humanBytes(lim)), true
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	wf, ok := s.workflow(w, r, "w")
	if !ok {
		return
	}
	counts, err := s.DB.JobCounts(r.Context(), []string{wf.ID})
	if err != nil {
		s.internal(w, r, "read the workflow status", err)
		return
	}
	logs := wf.StatusMessage
	writeJSON(w, http.StatusOK, map[string]any{
		"id":       wf.ID,
		"name":     wf.FullName(),
		"created":  reanaTime(wf.CreatedAt),
		"status":   string(wf.Status),
		"user":     wf.OwnerID,
		"progress": progress(wf, counts[wf.ID]),
		"logs":     logs,
	})
}

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
	if msg, over := s.overQuota(r, c); over {
		writeError(w, http.StatusForbidden, msg)
		return
	}
	doc := wf.Spec
	if req.Restart {
		if wf.Status != store.StatusFinished && wf.Status != store.StatusFailed {
			writeError(w, http.StatusForbidden, "Only finished or failed workflows can be restarted.")
			return
		}
		if len(req.ReanaSpecification) > 0 && string(req.ReanaSpecification) != "null" {
			doc = req.ReanaSpecification
		}
	} else if wf.Status != store.StatusCreated {
		writeError(w, http.StatusForbidden, fmt.Sprintf("Workflow %s is already %s and cannot be started again.", wf.FullName(), wf.Status))
		return
	}
	// Everything is checked before a restart creates its run, so a refused
	// restart leaves no run behind and uses up no run number.
	if status, msg := s.checkStartable(r.Context(), c.Account, wf.WorkspacePath, doc, req); status != 0 {
		writeError(w, status, msg)
		return
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
		if err := asuser.CreateWorkspace(r.Context(), s.Runner, c.Account, asuser.WorkspaceArgs{Workspace: clone.WorkspacePath, JobsDir: clone.JobsPath}); err != nil {
			writeError(w, http.StatusInternalServerError, "Could not prepare the restarted run: "+err.Error())
			return
		}
		if err := s.DB.CreateWorkflow(r.Context(), &clone); err != nil {
			s.internal(w, r, "create the restarted run", err)
			return
		}
		wf = clone
	}
	var err error
	params, _ := json.Marshal(nonNil(req.InputParameters))
	wf, err = s.DB.UpdateWorkflow(r.Context(), wf.ID, func(x *store.Workflow) error {
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
		writeError(w, http.StatusConflict, fmt.Sprintf("Workflow %s was started meanwhile.", wf.FullName()))
		return
	}
	if err != nil {
		s.internal(w, r, "start the workflow", err)
		return
	}
	s.Engine.Wake()
	s.Log.Info("workflow queued", "user", c.Account.Name, "workflow", wf.ID, "name", wf.FullName())
	writeJSON(w, http.StatusOK, map[string]any{
		"message":       "Workflow submitted.",
		"workflow_id":   wf.ID,
		"workflow_name": wf.Name,
		"status":        string(wf.Status),
		"run_number":    wf.RunNumber(),
		"user":          wf.OwnerID,
	})
}

var errAlreadyStarted = errors.New("already started")

// checkStartable validates a specification and the start request against
// it; a non-zero status says how to refuse.
func (s *Server) checkStartable(ctx context.Context, acct asuser.Account, workspace string, doc json.RawMessage, req startRequest) (int, string) {
	sp, _, err := spec.Parse(doc)
	if err != nil {
		return http.StatusBadRequest, "Invalid REANA specification: " + err.Error()
	}
	if sp.Workflow.Type != "serial" {
		return http.StatusNotImplemented, fmt.Sprintf("Workflow type %q is not supported by this reana-site server yet; only serial workflows are.", sp.Workflow.Type)
	}
	steps, err := sp.SerialSteps()
	if err != nil {
		return http.StatusBadRequest, "Invalid REANA specification: " + err.Error()
	}
	if err := s.Engine.CheckBackends(steps); err != nil {
		return http.StatusBadRequest, err.Error()
	}
	if err := s.Engine.CheckPreflight(steps, acct, workspace); err != nil {
		return http.StatusBadRequest, err.Error()
	}
	// With pulls off, a missing image is refused here, before any job of
	// the workflow is submitted.
	if err := s.Engine.CheckImages(ctx, steps, acct); err != nil {
		return http.StatusBadRequest, err.Error()
	}
	if err := spec.ValidateInputParameters(sp.Inputs.Parameters, req.InputParameters); err != nil {
		return http.StatusBadRequest, err.Error()
	}
	if err := spec.ValidateOperationalOptions(sp.Workflow.Type, req.OperationalOptions); err != nil {
		return http.StatusBadRequest, err.Error()
	}
	return 0, ""
}

func nonNil(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
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
	stopped, err := s.Engine.Stop(r.Context(), wf.ID)
	if errors.Is(err, engine.ErrNotRunning) {
		writeError(w, http.StatusConflict, fmt.Sprintf("Workflow %s is not running.", wf.FullName()))
		return
	}
	if err != nil {
		s.internal(w, r, "stop the workflow", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"message":       "Workflow successfully stopped",
		"workflow_id":   stopped.ID,
		"workflow_name": stopped.FullName(),
		"status":        string(stopped.Status),
		"user":          stopped.OwnerID,
	})
}

func running(s store.WorkflowStatus) bool {
	return s == store.StatusRunning || s == store.StatusPending || s == store.StatusQueued
}

func (s *Server) delete(w http.ResponseWriter, r *http.Request, wf store.Workflow, req setStatusRequest) {
	c := callerOf(r)
	if req.Workspace != nil && !*req.Workspace {
		writeError(w, http.StatusBadRequest, "Workspace must always be deleted when deleting a workflow.")
		return
	}
	targets := []store.Workflow{wf}
	if req.AllRuns {
		all, err := s.DB.WorkflowsByName(r.Context(), c.User.ID, wf.Name)
		if err != nil {
			s.internal(w, r, "list the workflow's runs", err)
			return
		}
		targets = targets[:0]
		for _, x := range all {
			if !running(x.Status) {
				targets = append(targets, x)
			}
		}
	} else if running(wf.Status) {
		// REANA answers 500 here; the contract lists 409, which says what it is.
		writeError(w, http.StatusConflict, fmt.Sprintf("Workflow %s cannot be deleted as it is currently %s. Stop it first.", wf.FullName(), wf.Status))
		return
	}
	for _, x := range targets {
		// The status is checked again where it is changed, so a start that
		// slipped in since the check above wins over the delete.
		_, err := s.DB.UpdateWorkflow(r.Context(), x.ID, func(y *store.Workflow) error {
			if running(y.Status) {
				return errStartedMeanwhile
			}
			y.Status = store.StatusDeleted
			y.DiskUsage = 0
			return nil
		})
		if errors.Is(err, errStartedMeanwhile) {
			if x.ID == wf.ID {
				writeError(w, http.StatusConflict, fmt.Sprintf("Workflow %s was started meanwhile. Stop it first.", wf.FullName()))
				return
			}
			continue
		}
		if err != nil {
			s.internal(w, r, "delete the workflow", err)
			return
		}
		if err := asuser.RemoveWorkspace(r.Context(), s.Runner, c.Account, asuser.WorkspaceArgs{Workspace: x.WorkspacePath, JobsDir: x.JobsPath}); err != nil {
			s.internal(w, r, "delete the workspace", err)
			return
		}
	}
	msg := "Workflow successfully deleted."
	if req.AllRuns {
		msg = fmt.Sprintf("All workflows named %s successfully deleted.", wf.Name)
	}
	s.Log.Info("workflow deleted", "user", c.Account.Name, "workflow", wf.ID, "all_runs", req.AllRuns)
	writeJSON(w, http.StatusOK, map[string]any{
		"message":       msg,
		"workflow_id":   wf.ID,
		"workflow_name": wf.FullName(),
		"status":        string(store.StatusDeleted),
		"user":          wf.OwnerID,
	})
}

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

// jobLogEntry is one job in REANA's logs document. reana-client crashes on
// any other truthy key, so it has exactly the documented fields.
type jobLogEntry struct {
	WorkflowUUID   string  `json:"workflow_uuid"`
	JobName        string  `json:"job_name"`
	ComputeBackend string  `json:"compute_backend"`
	BackendJobID   string  `json:"backend_job_id"`
	DockerImg      string  `json:"docker_img"`
	Cmd            string  `json:"cmd"`
	Status         string  `json:"status"`
	Logs           string  `json:"logs"`
	StartedAt      *string `json:"started_at"`
	FinishedAt     *string `json:"finished_at"`
}

// backendDisplay is how a backend is named in a job's log entry.
func backendDisplay(name string) string {
	if k, ok := batch.KindOf(name); ok {
		return k.Display
	}
	return name
}

func timeStr(t *time.Time) *string {
	if t == nil {
		return nil
	}
	s := reanaTime(*t)
	return &s
}

func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	wf, ok := s.workflow(w, r, "w")
	if !ok {
		return
	}
	var steps []string
	if err := readJSONBody(r, &steps); err != nil {
		writeError(w, http.StatusBadRequest, "The body must be a JSON list of step names: "+err.Error())
		return
	}
	page, size, ok := pagination(w, r)
	if !ok {
		return
	}
	jobs, err := s.DB.JobsForWorkflow(r.Context(), wf.ID)
	if err != nil {
		s.internal(w, r, "read the logs", err)
		return
	}
	if len(steps) > 0 {
		want := map[string]bool{}
		for _, st := range steps {
			want[st] = true
		}
		kept := jobs[:0]
		for _, j := range jobs {
			if want[j.StepName] {
				kept = append(kept, j)
			}
		}
		jobs = kept
	}
	if size > 0 {
		lo := min((page-1)*size, len(jobs))
		jobs = jobs[lo:min(lo+size, len(jobs))]
	}
	entries := newOrderedJobLogs()
	for _, j := range jobs {
		text := j.Logs
		if j.Status == store.JobStatus("running") {
			text = s.liveLogs(r, wf, j)
		}
		entries.add(j.ID, jobLogEntry{
			WorkflowUUID: wf.ID, JobName: j.StepName, ComputeBackend: backendDisplay(j.Backend), BackendJobID: j.BackendJobID,
			DockerImg: j.Image, Cmd: j.Command, Status: string(j.Status), Logs: text,
			StartedAt: timeStr(j.StartedAt), FinishedAt: timeStr(j.FinishedAt),
		})
	}
	var wfLogs any = wf.Logs
	if len(steps) > 0 {
		wfLogs = nil
	}
	doc, err := json.Marshal(struct {
		WorkflowLogs   any             `json:"workflow_logs"`
		JobLogs        json.RawMessage `json:"job_logs"`
		EngineSpecific any             `json:"engine_specific"`
	}{wfLogs, entries.json(), nil})
	if err != nil {
		s.internal(w, r, "encode the logs", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"workflow_id": wf.ID, "workflow_name": wf.FullName(), "user": wf.OwnerID, "logs": string(doc),
	})
}

// liveLogs reads a running job's output through its backend (as the user).
func (s *Server) liveLogs(r *http.Request, wf store.Workflow, j store.Job) string {
	be := s.Engine.Backends[j.Backend]
	if be == nil || len(j.Handle) == 0 {
		return j.Logs
	}
	bj, err := s.Engine.BatchJob(r.Context(), wf, j)
	if err != nil {
		return j.Logs
	}
	text, err := be.Logs(r.Context(), bj)
	if err != nil {
		return j.Logs + fmt.Sprintf("reana-site: output not available yet: %v\n", err)
	}
	return text
}

// orderedJobLogs keeps job entries in creation order in the JSON object,
// as REANA does, so the client prints steps in order.
type orderedJobLogs struct {
	keys []string
	vals []jobLogEntry
}

func newOrderedJobLogs() *orderedJobLogs { return &orderedJobLogs{} }

func (o *orderedJobLogs) add(k string, v jobLogEntry) {
	o.keys = append(o.keys, k)
	o.vals = append(o.vals, v)
}

func (o *orderedJobLogs) json() json.RawMessage {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		vb, _ := json.Marshal(o.vals[i])
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return json.RawMessage(b.String())
}

var _ = asuser.KindBadPath

var errStartedMeanwhile = errors.New("workflow started meanwhile")
