package web

import (
	"errors"
	"net/http"
	"sort"
	"strings"

	"github.com/reana-site/reana-site/daemon/store"
)

// diffLine is one line of a specification diff.
type diffLine struct {
	Kind string // "add" or "del"
	Text string
}

// diffData is the comparison of a run with another.
type diffData struct {
	Run      runRow
	Others   []runRow // the other runs of the same name, to pick from
	With     string
	Other    *runRow
	Sections []diffSection
	Listing  string
}

// diffSection is one top-level section of the specifications.
type diffSection struct {
	Name  string
	Lines []diffLine
}

// diffPage compares the run with the one named by ?with= (an id or a
// full name), or offers the other runs of its name to compare with.
func (s *Server) diffPage(w http.ResponseWriter, r *http.Request) {
	wf, ok := s.run(w, r)
	if !ok {
		return
	}
	v := viewerOf(r)
	d := diffData{Run: newRunRow(wf, store.JobCounts{}), With: r.URL.Query().Get("with")}
	runs, err := s.API.DB.WorkflowsByName(r.Context(), v.User.ID, wf.Name)
	if err != nil {
		s.internal(w, r, "list the runs of "+wf.Name, err)
		return
	}
	for _, o := range runs {
		if o.ID != wf.ID {
			d.Others = append(d.Others, newRunRow(o, store.JobCounts{}))
		}
	}
	if d.With == "" {
		s.page(w, r, http.StatusOK, "diff", "Compare "+wf.FullName(), d)
		return
	}
	other, err := s.API.DB.ResolveWorkflow(r.Context(), v.User.ID, d.With)
	if errors.Is(err, store.ErrNotFound) {
		s.errorPage(w, r, http.StatusNotFound, "No such run", "You have no run "+d.With+" to compare with. Pick one of your runs.")
		return
	}
	if err != nil {
		s.internal(w, r, "look up the run", err)
		return
	}
	diff, err := s.API.DiffRuns(r.Context(), v.Account, wf, other)
	if err != nil {
		s.fileError(w, r, "compare the runs", err)
		return
	}
	o := newRunRow(other, store.JobCounts{})
	d.Other = &o
	names := make([]string, 0, len(diff.Spec))
	for n := range diff.Spec {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		sec := diffSection{Name: n}
		for _, l := range diff.Spec[n] {
			kind := "add"
			if strings.HasPrefix(l, "- ") {
				kind = "del"
			}
			sec.Lines = append(sec.Lines, diffLine{Kind: kind, Text: l})
		}
		d.Sections = append(d.Sections, sec)
	}
	d.Listing = diff.Listing
	s.page(w, r, http.StatusOK, "diff", wf.FullName()+" and "+other.FullName(), d)
}
