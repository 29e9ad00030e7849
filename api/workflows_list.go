package api

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/reana-site/reana-site/daemon/store"
)

func (s *Server) listWorkflows(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	q := r.URL.Query()
	typ := q.Get("type")
	if typ == "" {
		writeError(w, http.StatusBadRequest, "Missing required query parameter: type.")
		return
	}
	if typ == "interactive" {
		writeJSON(w, http.StatusOK, workflowListResponse{Items: []workflowListItem{}, Total: 0})
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
	items := make([]workflowListItem, 0, len(wfs))
	for _, wf := range wfs {
		size := sizeResponse{Raw: -1, HumanReadable: ""}
		if withSize {
			size = sizeObj(wf.DiskUsage)
		}
		items = append(items, workflowListItem{
			ID:       wf.ID,
			Name:     wf.FullName(),
			Created:  reanaTime(wf.CreatedAt),
			Status:   string(wf.Status),
			User:     c.User.ID,
			Progress: progress(wf, counts[wf.ID]),
			Size:     size,
		})
	}
	writeJSON(w, http.StatusOK, workflowListResponse{Items: items, Total: total})
}

// workflowListResponse is a page of the caller's workflows.
type workflowListResponse struct {
	Items []workflowListItem `json:"items"`
	Total int                `json:"total"`
}

// workflowListItem is one workflow in the list. reana-site has no
// interactive sessions, so their fields are always empty.
type workflowListItem struct {
	ID            string           `json:"id"`
	Name          string           `json:"name"`
	Created       string           `json:"created"`
	Status        string           `json:"status"`
	User          string           `json:"user"`
	Progress      progressResponse `json:"progress"`
	Size          sizeResponse     `json:"size"`
	LauncherURL   *string          `json:"launcher_url"`
	SessionType   string           `json:"session_type"`
	SessionURI    string           `json:"session_uri"`
	SessionStatus string           `json:"session_status"`
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
	for _, f := range []struct {
		name string
		v    *int
	}{{"page", &page}, {"size", &size}} {
		s := q.Get(f.name)
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("Field '%s': Must be at least 1.", f.name))
			return 0, 0, false
		}
		if n > maxPageOrSize {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("Field '%s': Must be at most %d.", f.name, maxPageOrSize))
			return 0, 0, false
		}
		*f.v = n
	}
	return page, size, true
}

// maxPageOrSize bounds page and size, so (page-1)*size, the offset every
// listing computes, cannot overflow.
const maxPageOrSize = 1<<31 - 1
