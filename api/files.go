package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/daemon/store"
)

// fileError answers a failed workspace operation with the status the
// contract lists for it.
func (s *Server) fileError(w http.ResponseWriter, r *http.Request, what string, err error) {
	var ue *asuser.Error
	if errors.As(err, &ue) {
		switch ue.Kind {
		case asuser.KindBadPath:
			writeError(w, http.StatusBadRequest, fmt.Sprintf("Invalid path: %s.", ue.Message))
			return
		case asuser.KindNotFound:
			writeError(w, http.StatusNotFound, fmt.Sprintf("%s: no such file or directory in the workspace.", what))
			return
		case asuser.KindDenied:
			writeError(w, http.StatusForbidden, fmt.Sprintf("%s: permission denied.", what))
			return
		case asuser.KindTooLarge:
			writeError(w, http.StatusBadRequest, ue.Message)
			return
		}
	}
	s.internal(w, r, strings.ToLower(what[:1])+what[1:], err)
}

// workspaceAvailable refuses file operations on deleted workflows.
func workspaceAvailable(w http.ResponseWriter, wf store.Workflow) bool {
	if wf.Status == store.StatusDeleted {
		writeError(w, http.StatusNotFound, fmt.Sprintf("Workflow %s was deleted together with its workspace.", wf.FullName()))
		return false
	}
	return true
}

// ClientPath strips the leading "/" that reana-client puts before
// workspace-relative names. Deeper validation happens in the user's
// process, which is the only one that can open anything.
func ClientPath(p string) (string, bool) {
	if strings.ContainsAny(p, "\x00\\") {
		return "", false
	}
	for _, part := range strings.Split(p, "/") {
		if part == ".." {
			return "", false
		}
	}
	p = strings.TrimLeft(p, "/")
	return p, p != ""
}

func parseSearch(w http.ResponseWriter, raw string) (map[string][]string, bool) {
	if raw == "" || raw == "null" {
		return nil, true
	}
	var m map[string][]string
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		writeError(w, http.StatusBadRequest, `The search filter must be a JSON object such as {"name": ["plot"]}.`)
		return nil, false
	}
	return m, true
}

func (s *Server) listFiles(w http.ResponseWriter, r *http.Request) {
	wf, ok := s.workflow(w, r, "w")
	if !ok || !workspaceAvailable(w, wf) {
		return
	}
	q := r.URL.Query()
	search, ok := parseSearch(w, q.Get("search"))
	if !ok {
		return
	}
	page, size, ok := pagination(w, r)
	if !ok {
		return
	}
	pattern := strings.TrimLeft(q.Get("file_name"), "/")
	entries, err := asuser.List(r.Context(), s.Runner, callerOf(r).Account, asuser.ListArgs{Workspace: wf.WorkspacePath, Pattern: pattern, Search: search})
	if err != nil {
		s.fileError(w, r, "List files", err)
		return
	}
	total := len(entries)
	if size > 0 {
		lo := min((page-1)*size, len(entries))
		entries = entries[lo:min(lo+size, len(entries))]
	}
	items := make([]map[string]any, 0, len(entries))
	for _, e := range entries {
		items = append(items, map[string]any{"name": e.Name, "size": sizeObj(e.Size), "last-modified": reanaTime(e.ModTime)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"items": items, "total": total})
}

func (s *Server) diskUsage(w http.ResponseWriter, r *http.Request) {
	wf, ok := s.workflow(w, r, "w")
	if !ok || !workspaceAvailable(w, wf) {
		return
	}
	var body struct {
		Summarize bool    `json:"summarize"`
		Search    *string `json:"search"`
	}
	if err := readJSONBody(r, &body); err != nil {
		writeError(w, http.StatusBadRequest, "Malformed request body: "+err.Error())
		return
	}
	var search map[string][]string
	if body.Search != nil {
		if search, ok = parseSearch(w, *body.Search); !ok {
			return
		}
	}
	entries, err := asuser.DiskUsage(r.Context(), s.Runner, callerOf(r).Account, asuser.ListArgs{Workspace: wf.WorkspacePath, Summarize: body.Summarize, Search: search})
	if err != nil {
		s.fileError(w, r, "Disk usage", err)
		return
	}
	info := make([]map[string]any, 0, len(entries))
	for _, e := range entries {
		// REANA names entries by their path with the workspace prefix cut
		// off: "/code/fit.sh", and "" for the workspace itself
		// (reana-client prints them with a leading ".").
		name := "/" + strings.TrimPrefix(e.Name, "/")
		if e.Name == "." || e.Name == "" {
			name = ""
		}
		info = append(info, map[string]any{"name": name, "size": sizeObj(e.Size)})
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"workflow_id": wf.ID, "workflow_name": wf.FullName(), "user": wf.OwnerID, "disk_usage_info": info,
	})
}

// countingReader counts bytes and stops at a limit, so an upload over the
// limit is refused while streaming, without buffering it. A separate
// limited flag keeps "nothing allowed" (limit 0, a used-up quota) apart
// from "no limit": it reads at most limit+1 bytes, the one past the limit
// proving the upload too large.
type countingReader struct {
	r       io.Reader
	n       int64
	limit   int64
	limited bool
	over    bool
}

func (c *countingReader) Read(p []byte) (int, error) {
	if c.over {
		return 0, errTooLarge
	}
	if c.limited && int64(len(p)) > c.limit+1-c.n {
		p = p[:c.limit+1-c.n]
	}
	n, err := c.r.Read(p)
	c.n += int64(n)
	if c.limited && c.n > c.limit {
		c.over = true
		return n, errTooLarge
	}
	return n, err
}

var errTooLarge = errors.New("upload too large")

func (s *Server) upload(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	wf, ok := s.workflow(w, r, "w")
	if !ok || !workspaceAvailable(w, wf) {
		return
	}
	name := r.URL.Query().Get("file_name")
	rel, ok := ClientPath(name)
	if !ok {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Invalid file name %q: it must name a file inside the workspace (no '..', NUL or backslash).", name))
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "" {
		if mt, _, _ := mime.ParseMediaType(ct); mt != "application/octet-stream" {
			writeError(w, http.StatusBadRequest, "Uploads must be sent as application/octet-stream.")
			return
		}
	}
	limit, quotaLimited := s.Config.MaxUploadBytes, false
	tooLarge := func() {
		if quotaLimited {
			writeError(w, http.StatusForbidden, fmt.Sprintf("Uploading %s would exceed your disk quota of %s.", name, HumanBytes(s.Config.DiskQuotaBytes)))
			return
		}
		writeError(w, http.StatusBadRequest, fmt.Sprintf("File %s exceeds the maximum upload size of %s.", name, HumanBytes(s.Config.MaxUploadBytes)))
	}
	if limit > 0 && r.ContentLength > limit {
		tooLarge()
		return
	}
	if q := s.Config.DiskQuotaBytes; q > 0 {
		used, err := s.DB.UserDiskUsage(r.Context(), c.User.ID)
		if err != nil {
			s.internal(w, r, "check your disk quota", err)
			return
		}
		// Reserved before anything is written, so that parallel uploads
		// cannot each take what is left; an unknown length takes it all.
		granted, ok := s.reserved.reserve(c.User.ID, r.ContentLength, limit, q, used)
		if !ok {
			quotaLimited = true
			tooLarge()
			return
		}
		defer s.reserved.release(c.User.ID, granted)
		if limit <= 0 || granted < limit {
			limit, quotaLimited = granted, true
		}
	}
	// The helper must outlive the request's context: net/http cancels it
	// when the client goes away or stalls, and a helper killed then leaves
	// its temporary file behind. Ending the session aborts the upload; the
	// idle timeout bounds how long that can take.
	sess, err := asuser.OpenUpload(context.WithoutCancel(r.Context()), s.Runner, c.Account, asuser.WorkspaceArgs{Workspace: wf.WorkspacePath, Path: rel})
	if err != nil {
		s.fileError(w, r, "Upload "+name, err)
		return
	}
	idle := newIdleReader(w, r, s.Config.UploadIdleTimeout)
	cr := &countingReader{r: idle, limit: limit, limited: limit > 0 || quotaLimited}
	_, copyErr := io.Copy(sess.File, cr)
	if copyErr != nil || cr.over {
		// The deadline stays: net/http reads what is left of the body
		// before it answers, and must not wait for a stalled client.
		if err := sess.End(false, nil); err != nil && !asuser.IsKind(err, asuser.KindInternal) {
			s.remeasure(wf, c.Account, true) // the helper died: its file may be left
		}
		if cr.over {
			tooLarge()
			return
		}
		if idle.stalled {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("Upload of %s was aborted: nothing arrived for %s.", name, s.Config.UploadIdleTimeout))
			return
		}
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Upload of %s was interrupted: %v", name, copyErr))
		return
	}
	idle.done()
	var res asuser.UploadResult
	if err := sess.End(true, &res); err != nil {
		s.remeasure(wf, c.Account, true)
		s.fileError(w, r, "Upload "+name, err)
		return
	}
	// An overwrite is charged the difference only. The count is a
	// stopgap until the measurement below, which has the last word.
	if _, err := s.DB.UpdateWorkflow(r.Context(), wf.ID, func(x *store.Workflow) error {
		x.DiskUsage = max(0, x.DiskUsage+res.Size-res.Replaced)
		return nil
	}); err != nil {
		s.Log.Warn("record upload size", "workflow", wf.ID, "err", err)
	}
	s.remeasure(wf, c.Account, false)
	writeJSON(w, http.StatusOK, messageResponse{Message: fmt.Sprintf("%s has been successfully uploaded.", name)})
}

func (s *Server) download(w http.ResponseWriter, r *http.Request) {
	c := callerOf(r)
	wf, ok := s.workflow(w, r, "w")
	if !ok || !workspaceAvailable(w, wf) {
		return
	}
	raw, err := PathParam(r, "*")
	if err != nil {
		writeError(w, http.StatusBadRequest, "Malformed file name.")
		return
	}
	rel, ok := ClientPath(raw)
	if !ok {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("Invalid file name %q: it must name a file inside the workspace (no '..', NUL or backslash).", raw))
		return
	}
	if strings.ContainsAny(rel, "*?[") {
		matches, err := asuser.Glob(r.Context(), s.Runner, c.Account, asuser.WorkspaceArgs{Workspace: wf.WorkspacePath, Path: rel})
		if err != nil {
			s.fileError(w, r, "Download "+raw, err)
			return
		}
		if len(matches) == 0 {
			writeError(w, http.StatusNotFound, fmt.Sprintf("%s did not match any existing file.", raw))
			return
		}
		if len(matches) > 1 {
			s.sendZip(w, r, wf, rel, matches)
			return
		}
		rel = matches[0]
	}
	sess, err := asuser.OpenFile(r.Context(), s.Runner, c.Account, asuser.WorkspaceArgs{Workspace: wf.WorkspacePath, Path: rel})
	if err != nil {
		s.fileError(w, r, "Download "+raw, err)
		return
	}
	fi, err := sess.File.Stat()
	if err != nil {
		_ = sess.End(false, nil)
		s.internal(w, r, "read the file", err)
		return
	}
	if fi.IsDir() {
		_ = sess.End(false, nil)
		s.sendZip(w, r, wf, rel, []string{rel})
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": rel}))
	http.ServeContent(w, r, "", fi.ModTime(), sess.File)
	_ = sess.End(false, nil)
}

func (s *Server) sendZip(w http.ResponseWriter, r *http.Request, wf store.Workflow, rel string, paths []string) {
	if err := s.ServeZip(w, r, callerOf(r).Account, wf, rel, paths); err != nil {
		s.zipError(w, r, rel, err)
	}
}

// ServeZip sends paths of wf's workspace as one zip, read by acct's
// helper, named after rel. An error means nothing was sent, so the caller
// can still answer; a failure after the first byte aborts the response.
func (s *Server) ServeZip(w http.ResponseWriter, r *http.Request, acct asuser.Account, wf store.Workflow, rel string, paths []string) error {
	sess, err := asuser.OpenZip(r.Context(), s.Runner, acct, asuser.ZipArgs{Workspace: wf.WorkspacePath, Paths: paths})
	if err != nil {
		return err
	}
	base := strings.NewReplacer("*", "", "?", "", "[", "", "]", "").Replace(path.Base(rel))
	if base == "" || base == "." {
		base = "files"
	}
	name := fmt.Sprintf("download_%s_%s_%s.zip", wf.FullName(), base, time.Now().Format("2006-01-02-150405"))
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": name}))
	w.WriteHeader(http.StatusOK)
	_, copyErr := io.Copy(w, sess.File)
	endErr := sess.End(copyErr == nil, nil)
	if copyErr != nil || endErr != nil {
		abortStream(s.Log, "zip download failed after it began", "workflow", wf.ID, "copy", copyErr, "helper", endErr)
	}
	return nil
}

func (s *Server) deleteFiles(w http.ResponseWriter, r *http.Request) {
	wf, ok := s.workflow(w, r, "w")
	if !ok || !workspaceAvailable(w, wf) {
		return
	}
	raw, err := PathParam(r, "*")
	if err != nil {
		writeError(w, http.StatusBadRequest, "Malformed file name.")
		return
	}
	rel, ok := ClientPath(raw)
	if !ok {
		// The contract lists no 400 for delete: refuse as forbidden.
		writeError(w, http.StatusForbidden, fmt.Sprintf("Invalid file name %q: it must name a file inside the workspace (no '..', NUL or backslash).", raw))
		return
	}
	res, err := asuser.Delete(r.Context(), s.Runner, callerOf(r).Account, asuser.WorkspaceArgs{Workspace: wf.WorkspacePath, Path: rel})
	if err != nil {
		var ue *asuser.Error
		if errors.As(err, &ue) && ue.Kind == asuser.KindBadPath {
			writeError(w, http.StatusForbidden, fmt.Sprintf("Invalid path: %s.", ue.Message))
			return
		}
		s.fileError(w, r, "Delete "+raw, err)
		return
	}
	deleted := map[string]any{}
	var freed int64
	for name, size := range res.Deleted {
		deleted[name] = map[string]any{"size": size}
		freed += size
	}
	failed := map[string]any{}
	for name, msg := range res.Failed {
		failed[name] = map[string]any{"error": msg}
	}
	if freed > 0 {
		// What was never counted (a job's output) may be freed too: the
		// record never goes below 0, and the measurement sets it right.
		_, _ = s.DB.UpdateWorkflow(r.Context(), wf.ID, func(x *store.Workflow) error {
			x.DiskUsage = max(0, x.DiskUsage-freed)
			return nil
		})
	}
	if len(res.Deleted) > 0 {
		s.remeasure(wf, callerOf(r).Account, false)
	}
	writeJSON(w, http.StatusOK, map[string]any{"deleted": deleted, "failed": failed})
}

func (s *Server) moveFiles(w http.ResponseWriter, r *http.Request) {
	wf, ok := s.workflow(w, r, "w")
	if !ok || !workspaceAvailable(w, wf) {
		return
	}
	if running(wf.Status) {
		writeError(w, http.StatusConflict, fmt.Sprintf("Workflow %s is %s: files cannot be moved until it ends.", wf.FullName(), wf.Status))
		return
	}
	q := r.URL.Query()
	src, ok1 := ClientPath(q.Get("source"))
	dst, ok2 := ClientPath(q.Get("target"))
	if !ok1 || !ok2 {
		writeError(w, http.StatusBadRequest, "Source and target must name paths inside the workspace (no '..', NUL or backslash).")
		return
	}
	err := asuser.Move(r.Context(), s.Runner, callerOf(r).Account, asuser.MoveArgs{Workspace: wf.WorkspacePath, Source: src, Target: dst})
	if err != nil {
		if asuser.IsKind(err, asuser.KindExists) {
			writeError(w, http.StatusConflict, fmt.Sprintf("%s already exists.", q.Get("target")))
			return
		}
		s.fileError(w, r, "Move "+q.Get("source"), err)
		return
	}
	writeJSON(w, http.StatusOK, workflowResponse{
		Message:      fmt.Sprintf("%s was successfully moved to %s.", q.Get("source"), q.Get("target")),
		WorkflowID:   wf.ID,
		WorkflowName: wf.FullName(),
	})
}

func (s *Server) prune(w http.ResponseWriter, r *http.Request) {
	wf, ok := s.workflow(w, r, "w")
	if !ok || !workspaceAvailable(w, wf) {
		return
	}
	q := r.URL.Query()
	err := s.PruneRun(r.Context(), callerOf(r).Account, wf, q.Get("include_inputs") == "true", q.Get("include_outputs") == "true")
	var ref *Refusal
	if errors.As(err, &ref) {
		writeError(w, ref.Status, ref.Message)
		return
	}
	if err != nil {
		s.fileError(w, r, "Prune the workspace", err)
		return
	}
	writeJSON(w, http.StatusOK, workflowResponse{
		Message:      "The workspace has been correctly pruned.",
		WorkflowID:   wf.ID,
		WorkflowName: wf.FullName(),
	})
}

// PruneRun removes, as acct, the files of wf's workspace that are neither
// its inputs nor its outputs (with includeInputs or includeOutputs, those
// too). A run that is still active is a *Refusal.
func (s *Server) PruneRun(ctx context.Context, acct asuser.Account, wf store.Workflow, includeInputs, includeOutputs bool) error {
	if running(wf.Status) {
		return refuse(http.StatusBadRequest, "Workflow %s is %s: its workspace cannot be pruned until it ends.", wf.FullName(), wf.Status)
	}
	var doc struct {
		Inputs  struct{ Files, Directories []string } `json:"inputs"`
		Outputs struct{ Files, Directories []string } `json:"outputs"`
	}
	_ = json.Unmarshal(wf.Spec, &doc)
	return asuser.Prune(ctx, s.Runner, acct, asuser.PruneArgs{
		Workspace:      wf.WorkspacePath,
		Inputs:         append(doc.Inputs.Files, doc.Inputs.Directories...),
		Outputs:        append(doc.Outputs.Files, doc.Outputs.Directories...),
		IncludeInputs:  includeInputs,
		IncludeOutputs: includeOutputs,
	})
}

func (s *Server) diff(w http.ResponseWriter, r *http.Request) {
	a, ok := s.workflow(w, r, "w")
	if !ok {
		return
	}
	b, ok := s.workflow(w, r, "b")
	if !ok {
		return
	}
	d, err := s.DiffRuns(r.Context(), callerOf(r).Account, a, b)
	if err != nil {
		if errors.Is(err, errSpecDiff) {
			s.internal(w, r, "compare the specifications", err)
			return
		}
		s.fileError(w, r, "List files", err)
		return
	}
	specDiff, _ := json.Marshal(d.Spec)
	ls, _ := json.Marshal(d.Listing)
	writeJSON(w, http.StatusOK, map[string]any{"reana_specification": string(specDiff), "workspace_listing": string(ls)})
}

// RunDiff is how two runs differ: per top-level section of their
// specifications, "- " and "+ " lines; and their workspace listings.
type RunDiff struct {
	Spec    map[string][]string
	Listing string
}

var errSpecDiff = errors.New("compare the specifications")

// DiffRuns compares runs a and b, listing their workspaces as acct (not
// when one was deleted).
func (s *Server) DiffRuns(ctx context.Context, acct asuser.Account, a, b store.Workflow) (RunDiff, error) {
	spec, err := diffSpecs(a.Spec, b.Spec)
	if err != nil {
		return RunDiff{}, fmt.Errorf("%w: %w", errSpecDiff, err)
	}
	d := RunDiff{Spec: spec}
	if a.Status != store.StatusDeleted && b.Status != store.StatusDeleted {
		la, err := asuser.List(ctx, s.Runner, acct, asuser.ListArgs{Workspace: a.WorkspacePath})
		if err != nil {
			return d, err
		}
		lb, err := asuser.List(ctx, s.Runner, acct, asuser.ListArgs{Workspace: b.WorkspacePath})
		if err != nil {
			return d, err
		}
		d.Listing = diffListings(a.FullName(), b.FullName(), la, lb)
	}
	return d, nil
}

// diffSpecs compares the top-level sections of two specifications the way
// reana-client prints them: section -> unified-diff lines.
func diffSpecs(a, b []byte) (map[string][]string, error) {
	var da, db map[string]any
	if err := json.Unmarshal(a, &da); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &db); err != nil {
		return nil, err
	}
	out := map[string][]string{}
	for _, section := range []string{"version", "inputs", "outputs", "workflow"} {
		ja, _ := json.MarshalIndent(da[section], "", "  ")
		jb, _ := json.MarshalIndent(db[section], "", "  ")
		out[section] = lineDiff(strings.Split(string(ja), "\n"), strings.Split(string(jb), "\n"))
	}
	return out, nil
}

// lineDiff is a small LCS-based unified-style diff: "- " and "+ " lines.
func lineDiff(a, b []string) []string {
	n, m := len(a), len(b)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var out []string
	i, j := 0, 0
	for i < n && j < m {
		switch {
		case a[i] == b[j]:
			i, j = i+1, j+1
		case lcs[i+1][j] >= lcs[i][j+1]:
			out = append(out, "- "+a[i])
			i++
		default:
			out = append(out, "+ "+b[j])
			j++
		}
	}
	for ; i < n; i++ {
		out = append(out, "- "+a[i])
	}
	for ; j < m; j++ {
		out = append(out, "+ "+b[j])
	}
	return out
}

func diffListings(na, nb string, la, lb []asuser.Entry) string {
	set := func(es []asuser.Entry) map[string]int64 {
		m := map[string]int64{}
		for _, e := range es {
			m[e.Name] = e.Size
		}
		return m
	}
	ma, mb := set(la), set(lb)
	var lines []string
	for name, size := range ma {
		if other, ok := mb[name]; !ok {
			lines = append(lines, fmt.Sprintf("Only in %s: %s", na, name))
		} else if other != size {
			lines = append(lines, fmt.Sprintf("Files %s/%s and %s/%s differ", na, name, nb, name))
		}
	}
	for name := range mb {
		if _, ok := ma[name]; !ok {
			lines = append(lines, fmt.Sprintf("Only in %s: %s", nb, name))
		}
	}
	sort.Strings(lines)
	return strings.Join(lines, "\n")
}
