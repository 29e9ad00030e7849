package workflowengine

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/reana-site/reana-site/api/localsock"
	"github.com/reana-site/reana-site/daemon/engine"
	"github.com/reana-site/reana-site/daemon/store"
)

// maxRequestBytes bounds one request on the engine socket.
const maxRequestBytes = 1 << 20

// Server answers the engine adapters on the local engine socket: REANA's
// job-controller calls (submit, status) for one run each. A caller must be
// the run's owner by the kernel's word (SO_PEERCRED) and hold the run's
// secret; the user, workspace and backend are never taken from the
// request, only the job's own fields.
type Server struct {
	DB     *store.DB
	Engine *engine.Engine
	Log    *slog.Logger
}

// Serve answers on ln until ctx ends.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	return localsock.Serve(ctx, ln, s.Handler())
}

// Handler is the socket's HTTP API.
func (s *Server) Handler() http.Handler {
	if s.Log == nil {
		s.Log = slog.Default()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/workflows/{wf}/jobs", s.auth(s.submit))
	mux.HandleFunc("GET /v1/workflows/{wf}/jobs/{job}", s.auth(s.jobStatus))
	mux.HandleFunc("POST /v1/workflows/{wf}/progress", s.auth(s.progress))
	return mux
}

// answer writes v as JSON with the status code.
func answer(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func refuse(w http.ResponseWriter, code int, format string, args ...any) {
	answer(w, code, map[string]string{"message": fmt.Sprintf(format, args...)})
}

type handler func(w http.ResponseWriter, r *http.Request, wf store.Workflow)

// auth admits a request for a run only from its owner's uid with its
// engine process's secret. Every refusal looks the same to the caller
// (403), whether the run exists or not.
func (s *Server) auth(next handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		cred, ok := localsock.Peer(r)
		if !ok {
			refuse(w, http.StatusForbidden, "the caller could not be identified")
			return
		}
		wf, err := s.DB.GetWorkflow(r.Context(), r.PathValue("wf"))
		if err != nil {
			s.Log.Warn("engine socket: unknown workflow", "uid", cred.Uid, "workflow", r.PathValue("wf"))
			refuse(w, http.StatusForbidden, "not allowed")
			return
		}
		acct, err := s.Engine.Account(r.Context(), wf.OwnerID)
		if err != nil || acct.UID != cred.Uid {
			s.Log.Warn("engine socket: caller is not the workflow's owner", "uid", cred.Uid, "workflow", wf.ID)
			refuse(w, http.StatusForbidden, "not allowed")
			return
		}
		proc, err := engineProcess(r.Context(), s.DB, wf.ID)
		token, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		want := tokenOf(proc)
		if err != nil || want == "" || subtle.ConstantTimeCompare([]byte(token), []byte(want)) != 1 {
			s.Log.Warn("engine socket: wrong secret", "uid", cred.Uid, "workflow", wf.ID)
			refuse(w, http.StatusForbidden, "not allowed")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxRequestBytes)
		next(w, r, wf)
	}
}

// engineProcess is the row of a run's engine process.
func engineProcess(ctx context.Context, db *store.DB, workflowID string) (store.Job, error) {
	jobs, err := db.JobStates(ctx, workflowID)
	if err != nil {
		return store.Job{}, err
	}
	for _, j := range jobs {
		if j.StepIndex == store.EngineStepIndex {
			return j, nil
		}
	}
	return store.Job{}, store.ErrNotFound
}

type submitAnswer struct {
	JobID string `json:"job_id"`
}

func (s *Server) submit(w http.ResponseWriter, r *http.Request, wf store.Workflow) {
	var req JobRequest
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		refuse(w, http.StatusBadRequest, "malformed job request: %v", err)
		return
	}
	j, err := req.Job()
	if err != nil {
		refuse(w, http.StatusBadRequest, "%v", err)
		return
	}
	// The key is the adapter's: the same key in the same run is the same
	// job, whatever happened to the daemon in between.
	j.ID = uuid.NewSHA1(uuid.MustParse(wf.ID), []byte(req.Key)).String()
	got, err := s.Engine.AddJob(r.Context(), wf.ID, j)
	switch {
	case errors.Is(err, engine.ErrTooManyJobs):
		w.Header().Set("Retry-After", "1")
		refuse(w, http.StatusTooManyRequests, "the run has as many active jobs as this site allows; ask again later")
		return
	case errors.Is(err, engine.ErrNotRunning):
		refuse(w, http.StatusConflict, "the workflow is not running any more")
		return
	case errors.Is(err, engine.ErrJobConflict):
		refuse(w, http.StatusConflict, "%v", err)
		return
	case err != nil && isValidation(err):
		refuse(w, http.StatusBadRequest, "%v", err)
		return
	case err != nil:
		s.Log.Error("engine socket: record job", "workflow", wf.ID, "err", err)
		refuse(w, http.StatusInternalServerError, "the job could not be recorded: %v", err)
		return
	}
	answer(w, http.StatusCreated, submitAnswer{JobID: got.ID})
}

// jobAnswer is a job's state as REANA's job controller reports it.
type jobAnswer struct {
	JobID    string `json:"job_id"`
	Status   string `json:"status"` // queued, running, finished, failed, stopped
	ExitCode *int   `json:"exit_code"`
	Reason   string `json:"reason,omitempty"`
}

// maxRoundWait bounds a status request that waits for the engine's next
// round, so that a stalled round never holds an adapter for long.
const maxRoundWait = 10 * time.Second

// jobStatus answers a job's state. With ?wait=round it answers a job that
// is still queued or running only after the engine's next round, which is
// when a change could be recorded: an adapter that asks this way learns of
// a job's end as soon as the daemon does, instead of a poll later, and
// asks once per round instead of on a timer of its own.
func (s *Server) jobStatus(w http.ResponseWriter, r *http.Request, wf store.Workflow) {
	wait := r.URL.Query().Get("wait")
	if wait != "" && wait != "round" {
		refuse(w, http.StatusBadRequest, "wait must be \"round\"")
		return
	}
	var next <-chan struct{}
	if wait == "round" && s.Engine != nil {
		next = s.Engine.NextRound()
	}
	j, err := s.DB.GetJob(r.Context(), r.PathValue("job"))
	if err != nil || j.WorkflowID != wf.ID || j.StepIndex == store.EngineStepIndex {
		refuse(w, http.StatusNotFound, "no such job in this workflow")
		return
	}
	if st := reanaStatus(j.Status); next != nil && (st == "queued" || st == "running") {
		t := time.NewTimer(maxRoundWait)
		defer t.Stop()
		select {
		case <-next:
		case <-t.C:
		case <-r.Context().Done():
			return
		}
		id := j.ID
		if j, err = s.DB.GetJob(r.Context(), id); err != nil {
			refuse(w, http.StatusInternalServerError, "read job %s: %v", id, err)
			return
		}
	}
	answer(w, http.StatusOK, jobAnswer{JobID: j.ID, Status: reanaStatus(j.Status), ExitCode: j.ExitCode, Reason: j.Reason})
}

func reanaStatus(s store.JobStatus) string {
	switch s {
	case store.JobCreated, store.JobSubmitting:
		return "queued"
	case store.JobRetried:
		return "failed"
	}
	return string(s)
}

type progressRequest struct {
	Total int `json:"total"`
}

// progress records the run's number of jobs once, as REANA does; the
// running, finished and failed counts come from the jobs themselves.
func (s *Server) progress(w http.ResponseWriter, r *http.Request, wf store.Workflow) {
	var req progressRequest
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Total < 0 {
		refuse(w, http.StatusBadRequest, "malformed progress: want {\"total\": N}")
		return
	}
	_, err := s.DB.UpdateWorkflow(r.Context(), wf.ID, func(x *store.Workflow) error {
		if x.ProgressTotal == 0 {
			x.ProgressTotal = req.Total
		}
		return nil
	})
	if err != nil {
		refuse(w, http.StatusInternalServerError, "record progress: %v", err)
		return
	}
	answer(w, http.StatusOK, map[string]int{"total": req.Total})
}
