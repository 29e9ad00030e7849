package api

import (
	"net/http"
	"sort"
	"strconv"

	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/daemon/config"
	"github.com/reana-site/reana-site/daemon/store"
)

func (s *Server) ping(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"message": "OK", "status": "200"})
}

func (s *Server) clusterStatus(w http.ResponseWriter, r *http.Request) {
	counts := map[store.WorkflowStatus]int{}
	if wfs, err := s.DB.ActiveWorkflows(r.Context()); err == nil {
		for _, wf := range wfs {
			counts[wf.Status]++
		}
	}
	running, pending, queued := counts[store.StatusRunning], counts[store.StatusPending], counts[store.StatusQueued]
	total := running + pending + queued
	writeJSON(w, http.StatusOK, map[string]any{
		"job":      map[string]any{"available": 0, "health": "healthy", "pending": 0, "percentage": 0, "running": running, "sort": 1, "total": running},
		"node":     map[string]any{"available": 1, "health": "healthy", "percentage": 100, "sort": 0, "total": 1, "unschedulable": 0},
		"session":  map[string]any{"active": 0, "sort": 3},
		"workflow": map[string]any{"available": 0, "health": "healthy", "pending": pending, "percentage": 0, "queued": queued, "running": running, "sort": 2, "total": total},
	})
}

func (s *Server) workspaceRoot(c caller) string {
	return config.ExpandWorkspaceRoot(s.Config.WorkspaceRoot, c.Account.Name, strconv.FormatUint(uint64(c.Account.UID), 10), c.Account.Home)
}

func (s *Server) you(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	quota, err := s.quota(r, c)
	if err != nil {
		s.internal(w, r, "compute your quota usage", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"email":                c.User.Email,
		"full_name":            c.User.Name,
		"username":             c.User.Name,
		"quota":                quota,
		"reana_server_version": ServerVersion,
		"reana_token": map[string]any{
			"value":        c.Token,
			"status":       "active",
			"requested_at": c.User.CreatedAt.UTC().Format(http.TimeFormat),
		},
	})
}

// quota reports REANA's quota object: usage always, limit and health only
// where a limit is set.
func (s *Server) quota(r *http.Request, c caller) (map[string]any, error) {
	disk, err := s.DB.UserDiskUsage(r.Context(), c.User.ID)
	if err != nil {
		return nil, err
	}
	cpu, err := s.DB.UserCPUMillis(r.Context(), c.User.ID)
	if err != nil {
		return nil, err
	}
	diskQ := map[string]any{"usage": sizeObj(disk)}
	if lim := s.Config.DiskQuotaBytes; lim > 0 {
		diskQ["limit"] = sizeObj(lim)
		diskQ["health"] = health(float64(disk) / float64(lim))
	}
	return map[string]any{
		"cpu":  map[string]any{"usage": map[string]any{"raw": cpu, "human_readable": HumanMillis(cpu)}},
		"disk": diskQ,
	}, nil
}

func health(ratio float64) string {
	switch {
	case ratio >= 1:
		return "critical"
	case ratio >= 0.8:
		return "warning"
	}
	return "healthy"
}

// backendNames lists the compute_backend values this site accepts, in
// REANA's spelling first so reana-client's validation passes.
func (s *Server) backendNames() []string {
	var out []string
	for name := range s.Engine.Backends {
		k, _ := batch.KindOf(name)
		out = append(append(out, k.REANANames...), name)
	}
	sort.Strings(out)
	return out
}

func (s *Server) info(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	root := s.workspaceRoot(c)
	item := func(title string, v any) map[string]any { return map[string]any{"title": title, "value": v} }
	retention := any(nil)
	if s.Config.RetentionMaxDays > 0 {
		retention = strconv.Itoa(s.Config.RetentionMaxDays)
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"compute_backends":                              item("List of supported compute backends", s.backendNames()),
		"default_workspace":                             item("Default workspace", root),
		"workspaces_available":                          item("List of available workspaces", []string{root}),
		"default_kubernetes_jobs_timeout":               item("Default timeout for Kubernetes jobs", "604800"),
		"maximum_kubernetes_jobs_timeout":               item("Maximum timeout for Kubernetes jobs", "1209600"),
		"default_kubernetes_memory_limit":               item("Default memory limit for Kubernetes jobs", nil),
		"default_kubernetes_memory_request":             item("Default memory request for Kubernetes jobs", nil),
		"default_kubernetes_cpu_limit":                  item("Default CPU limit for Kubernetes jobs", nil),
		"default_kubernetes_cpu_request":                item("Default CPU request for Kubernetes jobs", nil),
		"kubernetes_max_memory_limit":                   item("Maximum allowed memory limit for Kubernetes jobs", nil),
		"kubernetes_max_memory_request":                 item("Maximum allowed memory request for Kubernetes jobs", nil),
		"kubernetes_max_cpu_limit":                      item("Maximum allowed CPU limit for Kubernetes jobs", nil),
		"kubernetes_max_cpu_request":                    item("Maximum allowed CPU request for Kubernetes jobs", nil),
		"maximum_interactive_session_inactivity_period": item("Maximum inactivity period in days before automatic closure of interactive sessions", nil),
		"maximum_workspace_retention_period":            item("Maximum retention period in days for workspace files", retention),
	})
}

func (s *Server) siteConfig(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"hide_signup":  true,
		"local_users":  true,
		"sso":          false,
		"polling_secs": 15,
	})
}

func (s *Server) requestToken(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusForbidden, "Access tokens are issued by the site, not requested through the API: ask your site administrator.")
}

func (s *Server) launchUnsupported(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusBadRequest, "Launching workflows from a remote URL is not supported by this reana-site server.")
}

func (s *Server) interactiveUnsupported(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusBadRequest, "Interactive sessions are not supported by this reana-site server.")
}
