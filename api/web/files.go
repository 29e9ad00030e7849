package web

import (
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/reana-site/reana-site/api"
	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/daemon/store"
)

// previewLimit bounds the text a preview page shows; past it, download.
const previewLimit = 1 << 20

// galleryLimit bounds the images of one gallery page.
const galleryLimit = 200

// fileRow is one entry of a directory.
type fileRow struct {
	Name, Path string
	Size       int64
	ModTime    time.Time
	Dir        bool
	// URL opens the entry (browser or preview); RawURL is the file itself.
	URL, RawURL string
}

// crumb is one step of the breadcrumbs.
type crumb struct{ Name, URL string }

// filesData is the directory browser and the preview page.
type filesData struct {
	Run     runRow
	Path    string
	Crumbs  []crumb
	Entries []fileRow
	ZipURL  string
	Rules   []store.RetentionRule
	// Search, when set, lists the files below Path whose path has it.
	Search, Sort string
	// CanPrune: the run ended, so what is neither input nor output may go.
	CanPrune bool
	// For a file:
	Lines    []string
	Image    bool
	RawURL   string
	Download string
	TooLarge bool
	Binary   bool
	Size     int64
}

// workspace is the {id} run, refusing one whose workspace was deleted.
func (s *Server) workspace(w http.ResponseWriter, r *http.Request) (store.Workflow, bool) {
	wf, ok := s.run(w, r)
	if !ok {
		return wf, false
	}
	if wf.Status == store.StatusDeleted {
		s.errorPage(w, r, http.StatusNotFound, "Workspace deleted", "Run "+wf.FullName()+" was deleted together with its workspace, so it has no files any more.")
		return wf, false
	}
	return wf, true
}

// workspaceFile is the {id} run (refused if its workspace was deleted)
// and the workspace path after the route's prefix ("" for the workspace
// itself), refused if it could leave the workspace.
func (s *Server) workspaceFile(w http.ResponseWriter, r *http.Request) (store.Workflow, string, bool) {
	wf, ok := s.workspace(w, r)
	if !ok {
		return wf, "", false
	}
	raw, err := api.PathParam(r, "*")
	if err != nil {
		s.errorPage(w, r, http.StatusBadRequest, "Malformed file name", "The address names no file. Pick one from the run's files.")
		return wf, "", false
	}
	raw = strings.Trim(raw, "/")
	if raw == "" {
		return wf, "", true
	}
	rel, ok := api.ClientPath(raw)
	if !ok {
		s.errorPage(w, r, http.StatusBadRequest, "Invalid file name", "A file name must stay inside the workspace (no '..', NUL or backslash).")
		return wf, "", false
	}
	return wf, rel, true
}

// listing is every file of wf's workspace, as its owner's helper lists it.
func (s *Server) listing(w http.ResponseWriter, r *http.Request, wf store.Workflow) ([]asuser.Entry, bool) {
	all, err := asuser.List(r.Context(), s.API.Runner, viewerOf(r).Account, asuser.ListArgs{Workspace: wf.WorkspacePath})
	if err != nil {
		s.fileError(w, r, "list the files", err)
		return nil, false
	}
	return all, true
}

// fileError shows a failed file operation of the helper.
func (s *Server) fileError(w http.ResponseWriter, r *http.Request, what string, err error) {
	switch {
	case asuser.IsKind(err, asuser.KindNotFound):
		s.errorPage(w, r, http.StatusNotFound, "No such file", "The workspace has no file or directory here. Go back to the run's files.")
	case asuser.IsKind(err, asuser.KindDenied):
		s.errorPage(w, r, http.StatusForbidden, "Permission denied", "You may not read this file: change its permissions on the login node, then try again.")
	case asuser.IsKind(err, asuser.KindBadPath):
		s.errorPage(w, r, http.StatusBadRequest, "Invalid file name", "A file name must stay inside the workspace.")
	default:
		s.internal(w, r, what, err)
	}
}

// children lists the entries directly in dir, from the flat listing of
// every file; a directory's size is what its files add up to.
func children(all []asuser.Entry, dir string) ([]fileRow, bool) {
	prefix := ""
	if dir != "" {
		prefix = dir + "/"
	}
	dirs := map[string]*fileRow{}
	var out []fileRow
	found := dir == ""
	for _, e := range all {
		if !strings.HasPrefix(e.Name, prefix) || e.Name == dir {
			continue
		}
		found = true
		rest := strings.TrimPrefix(e.Name, prefix)
		name, _, nested := strings.Cut(rest, "/")
		if !nested && !e.IsDir {
			out = append(out, fileRow{Name: name, Path: prefix + name, Size: e.Size, ModTime: e.ModTime})
			continue
		}
		d, ok := dirs[name]
		if !ok {
			d = &fileRow{Name: name, Path: prefix + name, Dir: true}
			dirs[name] = d
		}
		if !e.IsDir {
			d.Size += e.Size
		}
		if e.ModTime.After(d.ModTime) {
			d.ModTime = e.ModTime
		}
	}
	for _, d := range dirs {
		out = append(out, *d)
	}
	sortFiles(out, "name")
	return out, found
}

// search is every file below dir whose path contains q, ignoring case.
func search(all []asuser.Entry, dir, q string) []fileRow {
	prefix := ""
	if dir != "" {
		prefix = dir + "/"
	}
	q = strings.ToLower(q)
	var out []fileRow
	for _, e := range all {
		if e.IsDir || !strings.HasPrefix(e.Name, prefix) || !strings.Contains(strings.ToLower(e.Name), q) {
			continue
		}
		out = append(out, fileRow{Name: strings.TrimPrefix(e.Name, prefix), Path: e.Name, Size: e.Size, ModTime: e.ModTime})
	}
	return out
}

// sortFiles orders entries by name (directories first), by size (largest
// first) or by modification (newest first); false for another key.
func sortFiles(entries []fileRow, key string) bool {
	var less func(a, b fileRow) bool
	switch key {
	case "", "name":
		less = func(a, b fileRow) bool {
			if a.Dir != b.Dir {
				return a.Dir
			}
			return a.Name < b.Name
		}
	case "size":
		less = func(a, b fileRow) bool { return a.Size > b.Size }
	case "modified":
		less = func(a, b fileRow) bool { return a.ModTime.After(b.ModTime) }
	default:
		return false
	}
	sort.SliceStable(entries, func(i, k int) bool { return less(entries[i], entries[k]) })
	return true
}

func breadcrumbs(wf store.Workflow, rel string) []crumb {
	out := []crumb{{Name: wf.FullName(), URL: "/runs/" + wf.ID + "/files"}}
	if rel == "" {
		return out
	}
	acc := ""
	for _, part := range strings.Split(rel, "/") {
		acc = path.Join(acc, part)
		out = append(out, crumb{Name: part, URL: fileURL(wf, "files", acc)})
	}
	return out
}

// fileURL is the address of a workspace path under one of the run's
// routes, each segment escaped.
func fileURL(wf store.Workflow, route, rel string) string {
	parts := strings.Split(rel, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return "/runs/" + wf.ID + "/" + route + "/" + strings.Join(parts, "/")
}

func (s *Server) filesPage(w http.ResponseWriter, r *http.Request) {
	wf, rel, ok := s.workspaceFile(w, r)
	if !ok {
		return
	}
	all, ok := s.listing(w, r, wf)
	if !ok {
		return
	}
	d := filesData{Run: newRunRow(wf, store.JobCounts{}), Path: rel, Crumbs: breadcrumbs(wf, rel)}
	for _, e := range all {
		if e.Name == rel && !e.IsDir {
			s.preview(w, r, wf, rel, e, d)
			return
		}
	}
	entries, found := children(all, rel)
	if !found {
		s.errorPage(w, r, http.StatusNotFound, "No such file", "The workspace has no file or directory "+rel+". Go back to the run's files.")
		return
	}
	q := r.URL.Query()
	d.Search, d.Sort = q.Get("q"), q.Get("sort")
	if d.Search != "" {
		entries = search(all, rel, d.Search)
	}
	if !sortFiles(entries, d.Sort) {
		s.errorPage(w, r, http.StatusBadRequest, "Unknown sort", "Sort the files by name, size or modified.")
		return
	}
	for i := range entries {
		entries[i].URL = fileURL(wf, "files", entries[i].Path)
		if !entries[i].Dir {
			entries[i].RawURL = fileURL(wf, "raw", entries[i].Path)
		}
	}
	d.Entries = entries
	if rel == "" {
		var err error
		if d.Rules, err = s.API.DB.RetentionRules(r.Context(), wf.ID); err != nil {
			s.internal(w, r, "read the retention rules", err)
			return
		}
		d.CanPrune = !d.Run.CanStop
	}
	d.ZipURL = "/runs/" + wf.ID + "/zip"
	if rel != "" {
		d.ZipURL = fileURL(wf, "zip", rel)
	}
	s.page(w, r, http.StatusOK, "files", "Files of "+wf.FullName(), d)
}

// imageTypes are the images shown inline (in <img>, where an SVG runs no
// script), by extension.
var imageTypes = map[string]string{".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif", ".svg": "image/svg+xml", ".webp": "image/webp"}

// preview shows one file: an image inline, text with line numbers.
func (s *Server) preview(w http.ResponseWriter, r *http.Request, wf store.Workflow, rel string, e asuser.Entry, d filesData) {
	d.RawURL = fileURL(wf, "raw", rel)
	d.Download = d.RawURL + "?download=1"
	d.Size = e.Size
	title := rel + " of " + wf.FullName()
	if _, ok := imageTypes[strings.ToLower(path.Ext(rel))]; ok {
		d.Image = true
		s.page(w, r, http.StatusOK, "preview", title, d)
		return
	}
	if e.Size > previewLimit {
		d.TooLarge = true
		s.page(w, r, http.StatusOK, "preview", title, d)
		return
	}
	sess, err := asuser.OpenFile(r.Context(), s.API.Runner, viewerOf(r).Account, asuser.WorkspaceArgs{Workspace: wf.WorkspacePath, Path: rel})
	if err != nil {
		s.fileError(w, r, "read "+rel, err)
		return
	}
	b, err := io.ReadAll(io.LimitReader(sess.File, previewLimit))
	_ = sess.End(false, nil)
	if err != nil {
		s.internal(w, r, "read "+rel, err)
		return
	}
	if !strings.HasPrefix(http.DetectContentType(b), "text/") {
		d.Binary = true
	} else {
		d.Lines = strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	}
	s.page(w, r, http.StatusOK, "preview", title, d)
}

// rawCSP keeps a user's file from running anything in this origin, even
// if a browser were to render it: a sandbox is a unique origin.
const rawCSP = "sandbox; default-src 'none'; img-src 'self'; style-src 'unsafe-inline'"

// inlineTypes may be shown in the page; everything else, HTML and SVG
// included, is sent as an attachment (an SVG still shows in <img>).
var inlineTypes = map[string]bool{"image/png": true, "image/jpeg": true, "image/gif": true, "image/webp": true}

// raw sends a workspace file as its owner's helper reads it.
func (s *Server) raw(w http.ResponseWriter, r *http.Request) {
	wf, rel, ok := s.workspaceFile(w, r)
	if !ok || rel == "" {
		if ok {
			s.errorPage(w, r, http.StatusBadRequest, "No file named", "Pick a file from the run's files.")
		}
		return
	}
	sess, err := asuser.OpenFile(r.Context(), s.API.Runner, viewerOf(r).Account, asuser.WorkspaceArgs{Workspace: wf.WorkspacePath, Path: rel})
	if err != nil {
		s.fileError(w, r, "read "+rel, err)
		return
	}
	defer func() { _ = sess.End(false, nil) }()
	fi, err := sess.File.Stat()
	if err != nil {
		s.internal(w, r, "read "+rel, err)
		return
	}
	if fi.IsDir() {
		http.Redirect(w, r, fileURL(wf, "files", rel), http.StatusSeeOther)
		return
	}
	ctype := imageTypes[strings.ToLower(path.Ext(rel))]
	disposition := "attachment"
	switch {
	case r.URL.Query().Get("download") == "1":
		ctype = "application/octet-stream"
	case inlineTypes[ctype]:
		disposition = "inline"
	case ctype == "image/svg+xml":
		// Shown by <img> only; opened on its own, it is downloaded.
	default:
		ctype = "application/octet-stream"
		if isText(rel) {
			ctype, disposition = "text/plain; charset=utf-8", "inline"
		}
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Security-Policy", rawCSP)
	h.Set("Content-Disposition", mime.FormatMediaType(disposition, map[string]string{"filename": path.Base(rel)}))
	http.ServeContent(w, r, "", fi.ModTime(), sess.File)
}

// isText: the extensions shown as plain text when opened on their own.
// HTML, SVG and XML are not: a browser could be talked into rendering them.
func isText(rel string) bool {
	switch strings.ToLower(path.Ext(rel)) {
	case ".txt", ".log", ".out", ".err", ".sh", ".py", ".c", ".h", ".cc", ".cpp", ".json", ".csv", ".tsv", ".yaml", ".yml", ".md", ".cwl", ".smk", ".r", ".dat", "":
		return true
	}
	return false
}

// zip sends a directory (or the whole workspace) as one zip, through the
// API's zip path.
func (s *Server) zip(w http.ResponseWriter, r *http.Request) {
	wf, rel, ok := s.workspaceFile(w, r)
	if !ok {
		return
	}
	acct := viewerOf(r).Account
	paths := []string{rel}
	if rel == "" {
		all, ok := s.listing(w, r, wf)
		if !ok {
			return
		}
		top, _ := children(all, "")
		paths = paths[:0]
		for _, e := range top {
			paths = append(paths, e.Path)
		}
		if len(paths) == 0 {
			s.errorPage(w, r, http.StatusNotFound, "Nothing to download", "The workspace has no files yet.")
			return
		}
	}
	if err := s.API.ServeZip(w, r, acct, wf, rel, paths); err != nil {
		s.fileError(w, r, "make the zip", err)
	}
}

// galleryData is the run's images.
type galleryData struct {
	Run    runRow
	Images []fileRow
	More   int
}

func (s *Server) galleryPage(w http.ResponseWriter, r *http.Request) {
	wf, ok := s.workspace(w, r)
	if !ok {
		return
	}
	all, ok := s.listing(w, r, wf)
	if !ok {
		return
	}
	d := galleryData{Run: newRunRow(wf, store.JobCounts{})}
	for _, e := range all {
		if e.IsDir {
			continue
		}
		switch strings.ToLower(path.Ext(e.Name)) {
		case ".png", ".jpg", ".jpeg", ".svg":
		default:
			continue
		}
		if len(d.Images) == galleryLimit {
			d.More++
			continue
		}
		d.Images = append(d.Images, fileRow{Name: path.Base(e.Name), Path: e.Name, Size: e.Size, ModTime: e.ModTime,
			URL: fileURL(wf, "files", e.Name), RawURL: fileURL(wf, "raw", e.Name)})
	}
	s.page(w, r, http.StatusOK, "gallery", "Plots of "+wf.FullName(), d)
}
