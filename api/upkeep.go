package api

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/daemon/store"
)

// measureTimeout bounds one background measurement of a workspace: a hung
// file system must not pile up helpers.
const measureTimeout = 2 * time.Minute

// upkeep re-measures workspaces as their owners in the background after
// uploads and deletes, so the recorded usage converges to what is on disk
// whatever the counting on the way got wrong. At most one measurement runs
// per workflow; requests that come meanwhile are folded into one more run
// after it.
type upkeep struct {
	mu      sync.Mutex
	pending map[string]*upkeepSlot // by workflow id
	wg      sync.WaitGroup
}

type upkeepSlot struct {
	again bool // another request came while this one ran
	clean bool // remove orphaned upload files first
}

// schedule asks for wf to be measured (after cleaning orphaned upload
// files, with clean) by run, soon.
func (u *upkeep) schedule(wf store.Workflow, clean bool, run func(ctx context.Context, wf store.Workflow, clean bool)) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if slot, ok := u.pending[wf.ID]; ok {
		slot.again = true
		slot.clean = slot.clean || clean
		return
	}
	if u.pending == nil {
		u.pending = map[string]*upkeepSlot{}
	}
	slot := &upkeepSlot{clean: clean}
	u.pending[wf.ID] = slot
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		for {
			u.mu.Lock()
			clean := slot.clean
			slot.again, slot.clean = false, false
			u.mu.Unlock()
			ctx, cancel := context.WithTimeout(context.Background(), measureTimeout)
			run(ctx, wf, clean)
			cancel()
			u.mu.Lock()
			if !slot.again {
				delete(u.pending, wf.ID)
				u.mu.Unlock()
				return
			}
			u.mu.Unlock()
		}
	}()
}

// Wait blocks until the background measurements started so far have
// ended: serve calls it at shutdown, tests to see their result.
func (s *Server) Wait() { s.upkeep.wg.Wait() }

// remeasure schedules a measurement of wf's workspace as acct.
func (s *Server) remeasure(wf store.Workflow, acct asuser.Account, clean bool) {
	s.upkeep.schedule(wf, clean, func(ctx context.Context, wf store.Workflow, clean bool) {
		if clean {
			if _, err := asuser.CleanTemps(ctx, s.Runner, acct, asuser.CleanTempsArgs{Workspaces: []string{wf.WorkspacePath}}); err != nil {
				s.Log.Warn("remove orphaned uploads", "workflow", wf.ID, "err", err)
			}
		}
		used, err := asuser.Usage(ctx, s.Runner, acct, asuser.UsageArgs{Paths: []string{wf.WorkspacePath}})
		if err != nil {
			s.Log.Warn("measure disk usage", "workflow", wf.ID, "err", err)
			return
		}
		_, err = s.DB.UpdateWorkflow(ctx, wf.ID, func(x *store.Workflow) error {
			if x.Status == store.StatusDeleted {
				return errDeletedMeanwhile // its usage is 0 for good
			}
			x.DiskUsage = used
			return nil
		})
		if err != nil && err != errDeletedMeanwhile {
			s.Log.Warn("record disk usage", "workflow", wf.ID, "err", err)
		}
	})
}

var errDeletedMeanwhile = errors.New("workflow deleted meanwhile")
