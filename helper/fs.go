package helper

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

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/helper/wsfs"
)

// trusted is where the checks of the way to this user's workspaces start
// (asuser.TrustedPrefix); the daemon passes its template, and the home is the
// one it set for this helper.
func trusted() string {
	return asuser.TrustedPrefix(os.Getenv(asuser.WorkspaceTemplateEnv), os.Getenv("HOME"))
}

func openWS(path string) (*wsfs.FS, error) {
	w, err := wsfs.OpenBelow(path, trusted())
	if err != nil {
		return nil, fsErr(fmt.Errorf("open workspace: %w", err))
	}
	return w, nil
}

// inWorkspace is the shape of most workspace operations: decode the
// arguments, open their workspace through its checked chain, run op on it,
// and turn its error into one the daemon can map to a status.
func inWorkspace[A any](raw json.RawMessage, workspace func(A) string, op func(*wsfs.FS, A) (any, error)) (any, error) {
	a, err := decode[A](raw)
	if err != nil {
		return nil, err
	}
	w, err := openWS(workspace(a))
	if err != nil {
		return nil, err
	}
	defer w.Close()
	res, err := op(w, a)
	if err != nil {
		return nil, fsErr(err)
	}
	return res, nil
}

// fsErr maps wsfs errors to protocol error kinds.
func fsErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, wsfs.ErrBadPath), errors.Is(err, wsfs.ErrEscape):
		return asuser.Errorf(asuser.KindBadPath, "%v", err)
	case errors.Is(err, wsfs.ErrUnsafe):
		return asuser.Errorf(asuser.KindDenied, "%v", err)
	case errors.Is(err, wsfs.ErrNotFound), errors.Is(err, os.ErrNotExist):
		return asuser.Errorf(asuser.KindNotFound, "%v", err)
	}
	return classify(err)
}

func fsCreate(_ context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	a, err := decode[asuser.WorkspaceArgs](raw)
	if err != nil {
		return nil, err
	}
	if err := wsfs.CreateBelow(a.Workspace, trusted()); err != nil {
		return nil, fsErr(fmt.Errorf("create workspace: %w", err))
	}
	if a.JobsDir != "" {
		if err := wsfs.CreateBelow(a.JobsDir, trusted()); err != nil {
			return nil, fsErr(fmt.Errorf("create job directory: %w", err))
		}
	}
	return struct{}{}, nil
}

func fsRemove(_ context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	a, err := decode[asuser.WorkspaceArgs](raw)
	if err != nil {
		return nil, err
	}
	for _, dir := range []string{a.Workspace, a.JobsDir} {
		if dir == "" {
			continue
		}
		w, err := wsfs.OpenBelow(dir, trusted())
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
	return strings.TrimSpace(line) == asuser.Commit
}

func fsUpload(_ context.Context, raw json.RawMessage, conn *net.UnixConn) (any, error) {
	a, err := decode[asuser.WorkspaceArgs](raw)
	if err != nil {
		return nil, err
	}
	if conn == nil {
		return nil, asuser.Errorf(asuser.KindInternal, "upload needs a descriptor socket")
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
	if err := asuser.SendFile(conn, f); err != nil {
		abort()
		return nil, fmt.Errorf("hand over upload file: %w", err)
	}
	if !awaitControl(conn) {
		abort()
		return nil, asuser.Errorf(asuser.KindInternal, "upload aborted")
	}
	fi, err := f.Stat()
	if err != nil {
		abort()
		return nil, err
	}
	replaced, err := commit()
	if err != nil {
		return nil, fsErr(err)
	}
	return asuser.UploadResult{Size: fi.Size(), Replaced: replaced}, nil
}

func fsOpen(_ context.Context, raw json.RawMessage, conn *net.UnixConn) (any, error) {
	a, err := decode[asuser.WorkspaceArgs](raw)
	if err != nil {
		return nil, err
	}
	if conn == nil {
		return nil, asuser.Errorf(asuser.KindInternal, "open needs a descriptor socket")
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
	if err := asuser.SendFile(conn, f); err != nil {
		return nil, fmt.Errorf("hand over file: %w", err)
	}
	awaitControl(conn)
	return asuser.OpenResult{Size: fi.Size(), IsDir: fi.IsDir()}, nil
}

func fsZip(_ context.Context, raw json.RawMessage, conn *net.UnixConn) (any, error) {
	a, err := decode[asuser.ZipArgs](raw)
	if err != nil {
		return nil, err
	}
	if conn == nil {
		return nil, asuser.Errorf(asuser.KindInternal, "zip needs a descriptor socket")
	}
	w, err := openWS(a.Workspace)
	if err != nil {
		return nil, err
	}
	defer w.Close()
	// Refuse before the pipe is handed over: the daemon answers 200 as
	// soon as it has the pipe, and a file found unreadable later can only
	// cut the stream.
	if err := w.CheckZip(a.Paths); err != nil {
		if ue := (*wsfs.UnreadableError)(nil); errors.As(err, &ue) {
			return nil, classify(ue) // its message names the entry, without the "zip:" prefix
		}
		return nil, fsErr(err)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	err = asuser.SendFile(conn, pr)
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

func toEntries(in []wsfs.Entry) []asuser.Entry {
	out := make([]asuser.Entry, len(in))
	for i, e := range in {
		out[i] = asuser.Entry{Name: e.Name, Size: e.Size, ModTime: e.ModTime, IsDir: e.IsDir}
	}
	return out
}

func fsList(_ context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	return inWorkspace(raw, func(a asuser.ListArgs) string { return a.Workspace }, func(w *wsfs.FS, a asuser.ListArgs) (any, error) {
		es, err := w.List(a.Pattern, a.Search)
		return toEntries(es), err
	})
}

func fsDiskUsage(_ context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	return inWorkspace(raw, func(a asuser.ListArgs) string { return a.Workspace }, func(w *wsfs.FS, a asuser.ListArgs) (any, error) {
		es, err := w.DiskUsage(a.Summarize, a.Search)
		return toEntries(es), err
	})
}

func fsDelete(_ context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	return inWorkspace(raw, func(a asuser.WorkspaceArgs) string { return a.Workspace }, func(w *wsfs.FS, a asuser.WorkspaceArgs) (any, error) {
		deleted, failed, err := w.Delete(a.Path)
		return asuser.DeleteResult{Deleted: deleted, Failed: failed}, err
	})
}

func fsMove(_ context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	return inWorkspace(raw, func(a asuser.MoveArgs) string { return a.Workspace }, func(w *wsfs.FS, a asuser.MoveArgs) (any, error) {
		return struct{}{}, w.Move(a.Source, a.Target)
	})
}

func fsGlob(_ context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	return inWorkspace(raw, func(a asuser.WorkspaceArgs) string { return a.Workspace }, func(w *wsfs.FS, a asuser.WorkspaceArgs) (any, error) {
		return w.Glob(a.Path)
	})
}

// fsUsage measures allocated bytes of whole trees (workspaces and job
// directories), for quotas.
func fsUsage(_ context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	a, err := decode[asuser.UsageArgs](raw)
	if err != nil {
		return nil, err
	}
	var total int64
	for _, p := range a.Paths {
		w, err := wsfs.OpenBelow(p, trusted())
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

// orphanAge is how old an unlocked upload file must be to count as
// orphaned: CreateTemp locks it right after creating it, and this covers
// that moment.
const orphanAge = time.Minute

// fsCleanTemps removes orphaned upload files from whole workspaces. A
// workspace that is gone is skipped.
func fsCleanTemps(_ context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	a, err := decode[asuser.CleanTempsArgs](raw)
	if err != nil {
		return nil, err
	}
	removed := 0
	for _, p := range a.Workspaces {
		w, err := wsfs.OpenBelow(p, trusted())
		if errors.Is(err, os.ErrNotExist) || errors.Is(err, wsfs.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, fsErr(err)
		}
		n, err := w.CleanTemps(orphanAge)
		w.Close()
		removed += n
		if err != nil {
			return removed, fsErr(err)
		}
	}
	return removed, nil
}

func fsPrune(_ context.Context, raw json.RawMessage, _ *net.UnixConn) (any, error) {
	return inWorkspace(raw, func(a asuser.PruneArgs) string { return a.Workspace }, func(w *wsfs.FS, a asuser.PruneArgs) (any, error) {
		return w.Prune(a.Inputs, a.Outputs, a.IncludeInputs, a.IncludeOutputs)
	})
}
