package api

import "net/http"

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
	writeJSON(w, http.StatusOK, statusResponse{
		ID:       wf.ID,
		Name:     wf.FullName(),
		Created:  reanaTime(wf.CreatedAt),
		Status:   string(wf.Status),
		User:     wf.OwnerID,
		Progress: progress(wf, counts[wf.ID]),
		Logs:     wf.StatusMessage,
	})
}

// statusResponse is a workflow's status.
type statusResponse struct {
	ID       string           `json:"id"`
	Name     string           `json:"name"`
	Created  string           `json:"created"`
	Status   string           `json:"status"`
	User     string           `json:"user"`
	Progress progressResponse `json:"progress"`
	Logs     string           `json:"logs"`
}
