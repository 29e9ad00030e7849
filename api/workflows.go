package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/reana-site/reana-site/daemon/store"
)

// workflow resolves the {w} path parameter for the caller. Another user's
// workflow is "not found", never "forbidden", so names don't leak.
func (s *Server) workflow(w http.ResponseWriter, r *http.Request, param string) (store.Workflow, bool) {
	name, err := PathParam(r, param)
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

// progressResponse is the progress object of a workflow's status and of
// its list item.
type progressResponse struct {
	Total           jobProgress `json:"total"`
	Running         jobProgress `json:"running"`
	Finished        jobProgress `json:"finished"`
	Failed          jobProgress `json:"failed"`
	CurrentCommand  *string     `json:"current_command"`
	CurrentStepName *string     `json:"current_step_name"`
	RunStartedAt    *string     `json:"run_started_at"`
	RunFinishedAt   *string     `json:"run_finished_at"`
	RunStoppedAt    *string     `json:"run_stopped_at"`
}

// jobProgress counts the jobs in one state; JobIDs is never null.
type jobProgress struct {
	Total  int      `json:"total"`
	JobIDs []string `json:"job_ids"`
}

func progress(wf store.Workflow, c store.JobCounts) progressResponse {
	ids := func(v []string) []string {
		if v == nil {
			return []string{}
		}
		return v
	}
	var cmd, step *string
	if c.HasCurrent {
		cmd, step = &c.CurrentCommand, &c.CurrentStep
	}
	if wf.StatusMessage != "" && running(wf.Status) {
		// What the step waits for (a batch system that is down) is what
		// `reana-client status -v` shows in its COMMAND column.
		cmd = &wf.StatusMessage
	}
	return progressResponse{
		Total:           jobProgress{Total: wf.ProgressTotal, JobIDs: []string{}},
		Running:         jobProgress{Total: c.Running, JobIDs: ids(c.RunningIDs)},
		Finished:        jobProgress{Total: c.Finished, JobIDs: ids(c.FinishedIDs)},
		Failed:          jobProgress{Total: c.Failed, JobIDs: ids(c.FailedIDs)},
		CurrentCommand:  cmd,
		CurrentStepName: step,
		RunStartedAt:    timeStr(wf.StartedAt),
		RunFinishedAt:   timeStr(wf.FinishedAt),
		RunStoppedAt:    timeStr(wf.StoppedAt),
	}
}

// workflowResponse answers a create, a move and a prune.
type workflowResponse struct {
	Message      string `json:"message"`
	WorkflowID   string `json:"workflow_id"`
	WorkflowName string `json:"workflow_name"`
}

// statusChangeResponse answers a stop and a delete.
type statusChangeResponse struct {
	Message      string `json:"message"`
	WorkflowID   string `json:"workflow_id"`
	WorkflowName string `json:"workflow_name"`
	Status       string `json:"status"`
	User         string `json:"user"`
}

func running(s store.WorkflowStatus) bool {
	return s == store.StatusRunning || s == store.StatusPending || s == store.StatusQueued
}

func nonNil(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}
