package web

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/reana-site/reana-site/api"
	"github.com/reana-site/reana-site/daemon/store"
)

// Sorts of the runs page, as its URL names them.
var sorts = []struct{ Key, Label string }{
	{"newest", "Newest first"}, {"oldest", "Oldest first"}, {"disk", "Most disk used"}, {"duration", "Longest first"},
}

// pageSizes are the page sizes offered; the first is the default.
var pageSizes = []int{20, 50, 100}

// runsQuery is the runs page's state, all of it in the URL.
type runsQuery struct {
	Search      string
	Statuses    []string
	ShowDeleted bool
	Sort        string
	Page, Size  int
}

func parseRunsQuery(q url.Values) (runsQuery, string) {
	rq := runsQuery{Search: q.Get("q"), Sort: q.Get("sort"), ShowDeleted: q.Get("deleted") == "1", Page: 1, Size: pageSizes[0]}
	for _, st := range q["status"] {
		if st == "" {
			continue
		}
		if !slices.Contains(store.WorkflowStatuses(), store.WorkflowStatus(st)) {
			return rq, "Unknown status " + strconv.Quote(st) + ": pick one from the list."
		}
		rq.Statuses = append(rq.Statuses, st)
	}
	if rq.Sort == "" {
		rq.Sort = "newest"
	}
	if !slices.ContainsFunc(sorts, func(s struct{ Key, Label string }) bool { return s.Key == rq.Sort }) {
		return rq, "Unknown sort " + strconv.Quote(rq.Sort) + ": use newest, oldest, disk or duration."
	}
	for _, f := range []struct {
		name string
		v    *int
	}{{"page", &rq.Page}, {"size", &rq.Size}} {
		if s := q.Get(f.name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n < 1 || n > 1<<20 {
				return rq, "The " + f.name + " must be a number from 1."
			}
			*f.v = n
		}
	}
	if !slices.Contains(pageSizes, rq.Size) {
		return rq, "The page size must be one of 20, 50 or 100."
	}
	return rq, ""
}

// values is the query as URL parameters, with page set to page.
func (q runsQuery) values(page int) url.Values {
	v := url.Values{}
	if q.Search != "" {
		v.Set("q", q.Search)
	}
	for _, st := range q.Statuses {
		v.Add("status", st)
	}
	if q.ShowDeleted {
		v.Set("deleted", "1")
	}
	if q.Sort != "newest" {
		v.Set("sort", q.Sort)
	}
	if q.Size != pageSizes[0] {
		v.Set("size", strconv.Itoa(q.Size))
	}
	if page > 1 {
		v.Set("page", strconv.Itoa(page))
	}
	return v
}

func (q runsQuery) url(path string, page int) string {
	if e := q.values(page).Encode(); e != "" {
		return path + "?" + e
	}
	return path
}

func (q runsQuery) store(ownerID string) store.ListQuery {
	lq := store.ListQuery{OwnerID: ownerID, Search: q.Search, Offset: (q.Page - 1) * q.Size, Limit: q.Size}
	for _, st := range q.Statuses {
		lq.Statuses = append(lq.Statuses, store.WorkflowStatus(st))
	}
	if q.ShowDeleted && len(lq.Statuses) == 0 {
		lq.Statuses = store.WorkflowStatuses()
	}
	switch q.Sort {
	case "oldest":
		lq.SortAsc = true
	case "disk":
		lq.SortBy = store.SortDisk
	case "duration":
		lq.SortBy = store.SortDuration
	}
	return lq
}

// runRow is one run as the list and the details show it.
type runRow struct {
	ID, Name, Run, FullName, Status string
	Created                         time.Time
	Duration                        time.Duration
	Done, Failed, Total             int
	Disk                            int64
	Message                         string
	CanStop, CanDelete, CanRestart  bool
}

func newRunRow(wf store.Workflow, c store.JobCounts) runRow {
	active := wf.Status == store.StatusQueued || wf.Status == store.StatusPending || wf.Status == store.StatusRunning
	return runRow{
		ID: wf.ID, Name: wf.Name, Run: wf.RunNumber(), FullName: wf.FullName(), Status: string(wf.Status),
		Created: wf.CreatedAt, Duration: runDuration(wf), Done: c.Finished, Failed: c.Failed, Total: max(wf.ProgressTotal, c.Total),
		Disk: wf.DiskUsage, Message: wf.StatusMessage,
		CanStop:    active,
		CanDelete:  !active && wf.Status != store.StatusDeleted,
		CanRestart: wf.Status == store.StatusFinished || wf.Status == store.StatusFailed,
	}
}

// runDuration is how long a run ran, or has been running.
func runDuration(wf store.Workflow) time.Duration {
	if wf.StartedAt == nil {
		return 0
	}
	end := time.Now()
	for _, t := range []*time.Time{wf.FinishedAt, wf.StoppedAt} {
		if t != nil {
			end = *t
			break
		}
	}
	return end.Sub(*wf.StartedAt)
}

// runsData is the runs page and its rows fragment.
type runsData struct {
	Query       runsQuery
	Rows        []runRow
	Total       int
	Page, Pages int
	PrevURL     string
	NextURL     string
	RowsURL     string
	Back        string // this page's URL, where actions come back to
	Statuses    []string
	Sorts       []struct{ Key, Label string }
	Sizes       []int
	RefreshedAt string
	Error       string
	ServerURL   string
}

func (s *Server) runsData(r *http.Request) (runsData, int, error) {
	q, bad := parseRunsQuery(r.URL.Query())
	d := runsData{Query: q, Sorts: sorts, Sizes: pageSizes, ServerURL: s.Config.PublicURL, RefreshedAt: time.Now().UTC().Format("15:04:05 UTC")}
	for _, st := range store.WorkflowStatuses() {
		d.Statuses = append(d.Statuses, string(st))
	}
	if bad != "" {
		d.Error = bad
		return d, http.StatusBadRequest, nil
	}
	v := viewerOf(r)
	wfs, total, err := s.API.DB.ListWorkflows(r.Context(), q.store(v.User.ID))
	if err != nil {
		return d, 0, err
	}
	ids := make([]string, len(wfs))
	for i, wf := range wfs {
		ids[i] = wf.ID
	}
	counts, err := s.API.DB.JobCounts(r.Context(), ids)
	if err != nil {
		return d, 0, err
	}
	for _, wf := range wfs {
		d.Rows = append(d.Rows, newRunRow(wf, counts[wf.ID]))
	}
	d.Total, d.Page = total, q.Page
	d.Pages = max(1, (total+q.Size-1)/q.Size)
	if q.Page > 1 {
		d.PrevURL = q.url("/runs", q.Page-1)
	}
	if q.Page < d.Pages {
		d.NextURL = q.url("/runs", q.Page+1)
	}
	d.RowsURL = q.url("/runs/rows", q.Page)
	d.Back = q.url("/runs", q.Page)
	return d, http.StatusOK, nil
}

func (s *Server) runsPage(w http.ResponseWriter, r *http.Request) {
	d, status, err := s.runsData(r)
	if err != nil {
		s.internal(w, r, "list your runs", err)
		return
	}
	s.page(w, r, status, "runs", "Runs", d)
}

// runRows is the table body alone, which the page fetches to refresh.
func (s *Server) runRows(w http.ResponseWriter, r *http.Request) {
	d, status, err := s.runsData(r)
	if err != nil {
		s.internal(w, r, "list your runs", err)
		return
	}
	if status != http.StatusOK {
		s.errorPage(w, r, status, "Bad request", d.Error)
		return
	}
	// The count above the table is outside the rows: the script updates it
	// from this header.
	w.Header().Set("X-Runs-Total", strconv.Itoa(d.Total))
	s.fragment(w, "run-rows", d)
}

// run is the {id} run of the signed-in user. Another user's run is "not
// found", never "forbidden", so names do not leak.
func (s *Server) run(w http.ResponseWriter, r *http.Request) (store.Workflow, bool) {
	wf, err := s.API.DB.ResolveWorkflow(r.Context(), viewerOf(r).User.ID, chi.URLParam(r, "id"))
	if errors.Is(err, store.ErrNotFound) {
		s.errorPage(w, r, http.StatusNotFound, "No such run", "You have no run with this name or id. It may have been mistyped, or belong to someone else. Pick one from the list of your runs.")
		return wf, false
	}
	if err != nil {
		s.internal(w, r, "look up the run", err)
		return wf, false
	}
	return wf, true
}

// actionDone goes back where the action was asked from.
func actionDone(w http.ResponseWriter, r *http.Request) {
	http.Redirect(w, r, safeNext(r.PostFormValue("back")), http.StatusSeeOther)
}

// action runs do on the {id} run; its error is shown as "Could not
// <what> <run>".
func (s *Server) action(w http.ResponseWriter, r *http.Request, what string, do func(v viewer, wf store.Workflow) error) {
	wf, ok := s.run(w, r)
	if !ok {
		return
	}
	if err := do(viewerOf(r), wf); err != nil {
		s.internal(w, r, what+" "+wf.FullName(), err)
	}
}

func (s *Server) stopAction(w http.ResponseWriter, r *http.Request) {
	s.action(w, r, "stop", func(_ viewer, wf store.Workflow) error {
		if _, err := s.API.StopRun(r.Context(), wf); err != nil {
			return err
		}
		actionDone(w, r)
		return nil
	})
}

func (s *Server) deleteAction(w http.ResponseWriter, r *http.Request) {
	s.action(w, r, "delete", func(v viewer, wf store.Workflow) error {
		if err := s.API.DeleteRun(r.Context(), v.User, v.Account, wf, r.PostFormValue("all_runs") == "1"); err != nil {
			return err
		}
		if r.PostFormValue("back") == "/runs/"+wf.ID {
			// The details of a deleted run say little: back to the list.
			http.Redirect(w, r, "/runs", http.StatusSeeOther)
			return nil
		}
		actionDone(w, r)
		return nil
	})
}

func (s *Server) restartAction(w http.ResponseWriter, r *http.Request) {
	s.action(w, r, "restart", func(v viewer, wf store.Workflow) error {
		started, err := s.API.RestartRun(r.Context(), v.User, v.Account, wf)
		if err != nil {
			return err
		}
		http.Redirect(w, r, "/runs/"+started.ID, http.StatusSeeOther)
		return nil
	})
}

// pruneAction removes what is neither an input nor an output of the run
// (REANA's prune), and goes back to its files.
func (s *Server) pruneAction(w http.ResponseWriter, r *http.Request) {
	s.action(w, r, "prune the workspace of", func(v viewer, wf store.Workflow) error {
		if wf.Status == store.StatusDeleted {
			return &api.Refusal{Status: http.StatusNotFound, Message: "Run " + wf.FullName() + " was deleted together with its workspace."}
		}
		if err := s.API.PruneRun(r.Context(), v.Account, wf, r.PostFormValue("include_inputs") == "1", r.PostFormValue("include_outputs") == "1"); err != nil {
			return err
		}
		http.Redirect(w, r, "/runs/"+wf.ID+"/files", http.StatusSeeOther)
		return nil
	})
}
