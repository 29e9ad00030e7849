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

func running(s store.WorkflowStatus) bool {
	return s == store.StatusRunning || s == store.StatusPending || s == store.StatusQueued
}

func nonNil(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}
