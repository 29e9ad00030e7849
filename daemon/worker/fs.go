package worker

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"time"

	"github.com/reana-site/reana-site/daemon/userproc"
	"github.com/reana-site/reana-site/daemon/wsfs"
)

// WorkspaceArgs names a workspace and, for some operations, a path in it.
type WorkspaceArgs struct {
	Workspace string `json:"workspace"`
	JobsDir   string `json:"jobs_dir,omitempty"`
	Path      string `json:"path,omitempty"`
}

// Entry is one file or directory of a listing.
type Entry struct {
	Name    string    `json:"name"`
	Size    int64     `json:"size"`
	ModTime time.Time `json:"mtime"`
	IsDir   bool      `json:"is_dir"`
}

// ListArgs asks for a listing or a disk usage report.
type ListArgs struct {
	Workspace string              `json:"workspace"`
	Pattern   string              `json:"pattern,omitempty"`
	Search    map[string][]string `json:"search,omitempty"`
	Summarize bool                `json:"summarize,omitempty"`
}

// DeleteResult is REANA's answer shape for rm.
type DeleteResult struct {
	Deleted map[string]int64  `json:"deleted"`
	Failed  map[string]string `json:"failed"`
}

// MoveArgs renames a file or directory inside a workspace.
type MoveArgs struct {
	Workspace string `json:"workspace"`
	Source    string `json:"source"`
	Target    string `json:"target"`
}

// ZipArgs asks for a zip of some paths of a workspace.
type ZipArgs struct {
	Workspace string   `json:"workspace"`
	Paths     []string `json:"paths"`
}

// OpenResult describes a file handed over by fs.open.
type OpenResult struct {
	Size  int64 `json:"size"`
	IsDir bool  `json:"is_dir"`
}

// UploadResult reports a committed upload.
type UploadResult struct {
	Size int64 `json:"size"`
}

// UsageArgs asks for the disk usage of whole trees.
type UsageArgs struct {
	Paths []string `json:"paths"`
}

// PruneArgs asks to remove what is neither input nor output.
type PruneArgs struct {
	Workspace      string   `json:"workspace"`
	Keep           []string `json:"keep"`
	IncludeInputs  bool     `json:"include_inputs"`
	IncludeOutputs bool     `json:"include_outputs"`
	Inputs         []string `json:"inputs"`
	Outputs        []string `json:"outputs"`
}

func openWS(path string) (*wsfs.FS, error) {
	w, err := wsfs.Open(path)
	if err != nil {
		return nil, fsErr(fmt.Errorf("open workspace: %w", err))
	}
	return w, nil
}

// fsErr maps wsfs errors to protocol error kinds.
func fsErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, wsfs.ErrBadPath), errors.Is(err, wsfs.ErrEscape):
		return userproc.Errorf(userproc.KindBadPath, "%v", err)
	case errors.Is(err, wsfs.ErrNotFound), errors.Is(err, os.ErrNotExist):
		return userproc.Errorf(userproc.KindNotFound, "%v", err)
	}
	return classify(err)
}

func fsCreate(_ context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	a, err := decode[WorkspaceArgs](raw)
	if err != nil {
		return nil, err
	}
	if err := wsfs.Create(a.Workspace); err != nil {
		return nil, fsErr(fmt.Errorf("create workspace: %w", err))
	}
	if a.JobsDir != "" {
		if err := wsfs.Create(a.JobsDir); err != nil {
			return nil, fsErr(fmt.Errorf("create job directory: %w", err))
		}
	}
	return struct{}{}, nil
}

func fsRemove(_ context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	a, err := decode[WorkspaceArgs](raw)
	if err != nil {
		return nil, err
	}
	for _, dir := range []string{a.Workspace, a.JobsDir} {
		if dir == "" {
			continue
		}
		w, err := wsfs.Open(dir)
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, wsfs.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fsErr(err)
		}
		err = w.RemoveAll()
		w.Close()
		if err != nil {
			return nil, fsErr(fmt.Errorf("remove %s: %w", dir, err))
		}
	}
	return struct{}{}, nil
}

// awaitControl blocks until the daemon says commit or abort (or goes away,
// which counts as abort).
func awaitControl(conn *net.UnixConn) bool {
	line, _ := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimSpace(line) == userproc.Commit
}

func fsUpload(_ context.Context, raw json.RawMessage, conn *net.UnixConn) (any, error) {
	a, err := decode[WorkspaceArgs](raw)
	if err != nil {
		return nil, err
	}
	if conn == nil {
		return nil, userproc.Errorf(userproc.KindInternal, "upload needs a descriptor socket")
	}
	w, err := openWS(a.Workspace)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	f, commit, abort, err := w.CreateTemp(a.Path)
	if err != nil {
		return nil, fsErr(err)
	}
	defer f.Close()
	if err := userproc.SendFile(conn, f); err != nil {
		abort()
		return nil, fmt.Errorf("hand over upload file: %w", err)
	}
	if !awaitControl(conn) {
		abort()
		return nil, userproc.Errorf(userproc.KindInternal, "upload aborted")
	}
	fi, err := f.Stat()
	if err != nil {
		abort()
		return nil, err
	}
	if err := commit(); err != nil {
		return nil, fsErr(err)
	}
	return UploadResult{Size: fi.Size()}, nil
}

func fsOpen(_ context.Context, raw json.RawMessage, conn *net.UnixConn) (any, error) {
	a, err := decode[WorkspaceArgs](raw)
	if err != nil {
		return nil, err
	}
	if conn == nil {
		return nil, userproc.Errorf(userproc.KindInternal, "open needs a descriptor socket")
	}
	w, err := openWS(a.Workspace)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	f, fi, err := w.OpenRead(a.Path)
	if err != nil {
		return nil, fsErr(err)
	}
	defer f.Close()
	if err := userproc.SendFile(conn, f); err != nil {
		return nil, fmt.Errorf("hand over file: %w", err)
	}
	awaitControl(conn)
	return OpenResult{Size: fi.Size(), IsDir: fi.IsDir()}, nil
}

func fsZip(_ context.Context, raw json.RawMessage, conn *net.UnixConn) (any, error) {
	a, err := decode[ZipArgs](raw)
	if err != nil {
		return nil, err
	}
	if conn == nil {
		return nil, userproc.Errorf(userproc.KindInternal, "zip needs a descriptor socket")
	}
	w, err := openWS(a.Workspace)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	err = userproc.SendFile(conn, pr)
	pr.Close()
	if err != nil {
		pw.Close()
		return nil, fmt.Errorf("hand over zip stream: %w", err)
	}
	zerr := w.WriteZip(pw, a.Paths)
	pw.Close()
	awaitControl(conn)
	if zerr != nil {
		return nil, fsErr(zerr)
	}
	return struct{}{}, nil
}

func toEntries(in []wsfs.Entry) []Entry {
	out := make([]Entry, len(in))
	for i, e := range in {
		out[i] = Entry{Name: e.Name, Size: e.Size, ModTime: e.ModTime, IsDir: e.IsDir}
	}
	return out
}

func fsList(_ context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	a, err := decode[ListArgs](raw)
	if err != nil {
		return nil, err
	}
	w, err := openWS(a.Workspace)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	es, err := w.List(a.Pattern, a.Search)
	if err != nil {
		return nil, fsErr(err)
	}
	return toEntries(es), nil
}

func fsDiskUsage(_ context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	a, err := decode[ListArgs](raw)
	if err != nil {
		return nil, err
	}
	w, err := openWS(a.Workspace)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	es, err := w.DiskUsage(a.Summarize, a.Search)
	if err != nil {
		return nil, fsErr(err)
	}
	return toEntries(es), nil
}

func fsDelete(_ context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	a, err := decode[WorkspaceArgs](raw)
	if err != nil {
		return nil, err
	}
	w, err := openWS(a.Workspace)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	deleted, failed, err := w.Delete(a.Path)
	if err != nil {
		return nil, fsErr(err)
	}
	return DeleteResult{Deleted: deleted, Failed: failed}, nil
}

func fsMove(_ context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	a, err := decode[MoveArgs](raw)
	if err != nil {
		return nil, err
	}
	w, err := openWS(a.Workspace)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	return struct{}{}, fsErr(w.Move(a.Source, a.Target))
}

func fsGlob(_ context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	a, err := decode[WorkspaceArgs](raw)
	if err != nil {
		return nil, err
	}
	w, err := openWS(a.Workspace)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	m, err := w.Glob(a.Path)
	if err != nil {
		return nil, fsErr(err)
	}
	return m, nil
}

// fsUsage measures allocated bytes of whole trees (workspaces and job
// directories), for quotas.
func fsUsage(_ context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	a, err := decode[UsageArgs](raw)
	if err != nil {
		return nil, err
	}
	var total int64
	for _, p := range a.Paths {
		w, err := wsfs.Open(p)
		if err != nil {
			continue
		}
		es, err := w.DiskUsage(true, nil)
		w.Close()
		if err != nil {
			return nil, fsErr(err)
		}
		for _, e := range es {
			total += e.Size
		}
	}
	return total, nil
}

func fsPrune(_ context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	a, err := decode[PruneArgs](raw)
	if err != nil {
		return nil, err
	}
	w, err := openWS(a.Workspace)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	n, err := w.Prune(a.Inputs, a.Outputs, a.IncludeInputs, a.IncludeOutputs)
	if err != nil {
		return nil, fsErr(err)
	}
	return n, nil
}
