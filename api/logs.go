package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/daemon/store"
)

// jobLogEntry is one job in REANA's logs document. reana-client crashes on
// any other truthy key, so it has exactly the documented fields.
type jobLogEntry struct {
	WorkflowUUID   string  `json:"workflow_uuid"`
	JobName        string  `json:"job_name"`
	ComputeBackend string  `json:"compute_backend"`
	BackendJobID   string  `json:"backend_job_id"`
	DockerImg      string  `json:"docker_img"`
	Cmd            string  `json:"cmd"`
	Status         string  `json:"status"`
	Logs           string  `json:"logs"`
	StartedAt      *string `json:"started_at"`
	FinishedAt     *string `json:"finished_at"`
}

// backendDisplay is how a backend is named in a job's log entry.
func backendDisplay(name string) string {
	if k, ok := batch.KindOf(name); ok {
		return k.Display
	}
	return name
}

func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	wf, ok := s.workflow(w, r, "w")
	if !ok {
		return
	}
	var steps []string
	if err := readJSONBody(r, &steps); err != nil {
		writeError(w, http.StatusBadRequest, "The body must be a JSON list of step names: "+err.Error())
		return
	}
	page, size, ok := pagination(w, r)
	if !ok {
		return
	}
	jobs, err := s.DB.JobsForWorkflow(r.Context(), wf.ID)
	if err != nil {
		s.internal(w, r, "read the logs", err)
		return
	}
	// A cwl, snakemake or yadage run's engine process is no job: its
	// output is the workflow's log, as REANA's engine pod log is, but
	// shown while it runs.
	engineOut := ""
	kept := jobs[:0]
	for _, j := range jobs {
		if j.StepIndex != store.EngineStepIndex {
			kept = append(kept, j)
			continue
		}
		engineOut = j.Logs
		if j.Status == store.JobRunning {
			engineOut = s.LiveLog(r.Context(), wf, j)
		}
	}
	jobs = kept
	if len(steps) > 0 {
		want := map[string]bool{}
		for _, st := range steps {
			want[st] = true
		}
		kept := jobs[:0]
		for _, j := range jobs {
			if want[j.StepName] {
				kept = append(kept, j)
			}
		}
		jobs = kept
	}
	if size > 0 {
		lo := min((page-1)*size, len(jobs))
		jobs = jobs[lo:min(lo+size, len(jobs))]
	}
	entries := newOrderedJobLogs()
	for _, j := range jobs {
		text := j.Logs
		if j.Status == store.JobRunning {
			text = s.LiveLog(r.Context(), wf, j)
		}
		entries.add(j.ID, jobLogEntry{
			WorkflowUUID: wf.ID, JobName: j.StepName, ComputeBackend: backendDisplay(j.Backend), BackendJobID: j.BackendJobID,
			DockerImg: j.Image, Cmd: j.Command, Status: string(j.Status), Logs: text,
			StartedAt: timeStr(j.StartedAt), FinishedAt: timeStr(j.FinishedAt),
		})
	}
	var wfLogs any = engineOut + wf.Logs
	if len(steps) > 0 {
		wfLogs = nil
	}
	doc, err := json.Marshal(struct {
		WorkflowLogs   any             `json:"workflow_logs"`
		JobLogs        json.RawMessage `json:"job_logs"`
		EngineSpecific any             `json:"engine_specific"`
	}{wfLogs, entries.json(), nil})
	if err != nil {
		s.internal(w, r, "encode the logs", err)
		return
	}
	writeJSON(w, http.StatusOK, logsResponse{
		WorkflowID: wf.ID, WorkflowName: wf.FullName(), User: wf.OwnerID, Logs: string(doc),
	})
}

// logsResponse carries the logs document as a JSON string, as REANA does.
type logsResponse struct {
	WorkflowID   string `json:"workflow_id"`
	WorkflowName string `json:"workflow_name"`
	User         string `json:"user"`
	Logs         string `json:"logs"`
}

// LiveLog is a job's output: read through its backend (as the user)
// while it runs, the recorded log otherwise.
func (s *Server) LiveLog(ctx context.Context, wf store.Workflow, j store.Job) string {
	if j.Status != store.JobRunning {
		return j.Logs
	}
	be := s.Engine.Backends[j.Backend]
	if be == nil || len(j.Handle) == 0 {
		return j.Logs
	}
	bj, err := s.Engine.BatchJob(ctx, wf, j)
	if err != nil {
		return j.Logs
	}
	text, err := be.Logs(ctx, bj)
	if err != nil {
		return j.Logs + fmt.Sprintf("reana-site: output not available yet: %v\n", err)
	}
	return text
}

// orderedJobLogs keeps job entries in creation order in the JSON object,
// as REANA does, so the client prints steps in order.
type orderedJobLogs struct {
	keys []string
	vals []jobLogEntry
}

func newOrderedJobLogs() *orderedJobLogs { return &orderedJobLogs{} }

func (o *orderedJobLogs) add(k string, v jobLogEntry) {
	o.keys = append(o.keys, k)
	o.vals = append(o.vals, v)
}

func (o *orderedJobLogs) json() json.RawMessage {
	var b strings.Builder
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		vb, _ := json.Marshal(o.vals[i])
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return json.RawMessage(b.String())
}
