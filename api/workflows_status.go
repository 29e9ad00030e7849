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
