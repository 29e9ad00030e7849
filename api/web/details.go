package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/daemon/store"
)

// jobRow is one job (one try of one command) on the details page.
type jobRow struct {
	ID, Step, Status, Backend, BatchID, Reason, Image, Command string
	Attempt                                                    int
	Exit                                                       *int
	Created                                                    time.Time
	Started, Finished                                          *time.Time
	Running, Engine                                            bool
	Inline                                                     bool // Log holds the output; else the page loads it
	Open                                                       bool // the log is shown unfolded
	// Formatted once here: a template function call per cell is what a
	// page of hundreds of jobs spends its time on.
	Label, QueuedS, StartedS, EndedS, ExitS string
	Y                                       int // the timeline row
	Log, LogURL, TailURL                    string
	// The timeline's bars, as percentages of the run's span: waiting
	// (created to started) and running (started to ended).
	WaitX, WaitW, RunX, RunW float64
}

// detailsData is the details page and its summary fragment.
type detailsData struct {
	Run                     runRow
	Started, Finished       *time.Time
	Progress                int
	Jobs                    []jobRow
	JobsHTML                jobsHTML // their rows, bars and logs
	Engine                  *jobRow  // the engine process of a cwl, snakemake or yadage run
	WorkflowLog             string
	Spec, Params            string
	Back, SummaryURL        string
	Live                    bool
	TimelineH, TimelineSpan string
}

// details gathers what the run's page shows; without full, only what its
// refreshed summary needs (no engine or failed job's whole log, no
// specification), as the summary is fetched every few seconds.
func (s *Server) details(r *http.Request, wf store.Workflow, full bool) (detailsData, error) {
	// Without their output: a run of hundreds of jobs would otherwise read
	// and send every log. The page shows a failed job's at once, streams
	// a running one's, and loads the others when opened.
	jobs, err := s.API.DB.JobStates(r.Context(), wf.ID)
	if err != nil {
		return detailsData{}, err
	}
	counts, err := s.API.DB.JobCounts(r.Context(), []string{wf.ID})
	if err != nil {
		return detailsData{}, err
	}
	row := newRunRow(wf, counts[wf.ID])
	d := detailsData{Run: row, Started: wf.StartedAt, Finished: wf.FinishedAt, WorkflowLog: wf.Logs,
		Back: "/runs/" + wf.ID, SummaryURL: "/runs/" + wf.ID + "/summary", Live: row.CanStop || wf.Status == store.StatusCreated}
	if wf.FinishedAt == nil {
		d.Finished = wf.StoppedAt
	}
	d.Progress = percent(row.Done, row.Total)
	if !d.Live && wf.Status == store.StatusFinished {
		d.Progress = 100
	}
	if full {
		d.Spec, d.Params = pretty(wf.Spec), pretty(wf.InputParameters)
	}
	var t0, t1 time.Time
	for _, j := range jobs {
		jr := jobRow{ID: j.ID, Step: j.StepName, Status: string(j.Status), Backend: backendLabel(j.Backend), BatchID: j.BackendJobID,
			Reason: j.Reason, Image: j.Image, Command: j.Command, Attempt: j.Attempt, Exit: j.ExitCode, Created: j.CreatedAt,
			Started: j.StartedAt, Finished: j.FinishedAt, Running: j.Status == store.JobRunning, Engine: j.StepIndex == store.EngineStepIndex, Log: j.Logs,
			LogURL: "/runs/" + wf.ID + "/jobs/" + j.ID + "/log", TailURL: "/runs/" + wf.ID + "/jobs/" + j.ID + "/tail"}
		jr.Label, jr.QueuedS, jr.StartedS, jr.EndedS = j.StepName, when(&j.CreatedAt), when(j.StartedAt), when(j.FinishedAt)
		if j.Attempt > 0 {
			jr.Label += fmt.Sprintf(" (try %d)", j.Attempt+1)
		}
		if j.ExitCode != nil {
			jr.ExitS = strconv.Itoa(*j.ExitCode)
		}
		jr.Open = jr.Running || j.Status == store.JobFailed
		if full && (jr.Engine || j.Status == store.JobFailed) {
			full, err := s.API.DB.GetJob(r.Context(), j.ID)
			if err != nil {
				return detailsData{}, err
			}
			jr.Log, jr.Inline = full.Logs, true
		}
		if jr.Engine {
			d.Engine = &jr
			continue
		}
		if t0.IsZero() || j.CreatedAt.Before(t0) {
			t0 = j.CreatedAt
		}
		end := time.Now()
		if j.FinishedAt != nil {
			end = *j.FinishedAt
		}
		if end.After(t1) {
			t1 = end
		}
		d.Jobs = append(d.Jobs, jr)
	}
	span := t1.Sub(t0)
	for i := range d.Jobs {
		timeline(&d.Jobs[i], t0, span)
		d.Jobs[i].Y = i*timelineRow + 1
	}
	d.JobsHTML = renderJobs(d.Jobs)
	d.TimelineH = fmt.Sprint(len(d.Jobs)*timelineRow + 2)
	d.TimelineSpan = humanDuration(span)
	return d, nil
}

// timelineRow is the height of a job's row in the timeline, in pixels.
const timelineRow = 10

// timeline places a job's bars on a span that starts at t0.
func timeline(j *jobRow, t0 time.Time, span time.Duration) {
	if span <= 0 {
		return
	}
	pos := func(t time.Time) float64 { return float64(t.Sub(t0)) * 100 / float64(span) }
	end := time.Now()
	if j.Finished != nil {
		end = *j.Finished
	}
	started := end
	if j.Started != nil {
		started = *j.Started
	}
	j.WaitX, j.WaitW = pos(j.Created), pos(started)-pos(j.Created)
	if j.Started != nil {
		j.RunX, j.RunW = pos(started), max(pos(end)-pos(started), 0.3)
	}
}

func backendLabel(name string) string {
	if k, ok := batch.KindOf(name); ok {
		return k.Display
	}
	return name
}

// pretty is JSON indented for reading; what is not JSON stays as it is.
func pretty(raw []byte) string {
	var b bytes.Buffer
	if err := json.Indent(&b, raw, "", "  "); err != nil {
		return string(raw)
	}
	return b.String()
}

func (s *Server) detailsPage(w http.ResponseWriter, r *http.Request) {
	s.withDetails(w, r, true, func(wf store.Workflow, d detailsData) {
		s.page(w, r, http.StatusOK, "details", wf.FullName(), d)
	})
}

// detailsSummary is the part of the details page that a script refreshes
// while the run is active (status, progress, steps); the logs stream.
func (s *Server) detailsSummary(w http.ResponseWriter, r *http.Request) {
	s.withDetails(w, r, false, func(_ store.Workflow, d detailsData) { s.fragment(w, "summary", d) })
}

func (s *Server) withDetails(w http.ResponseWriter, r *http.Request, full bool, show func(store.Workflow, detailsData)) {
	wf, ok := s.run(w, r)
	if !ok {
		return
	}
	d, err := s.details(r, wf, full)
	if err != nil {
		s.internal(w, r, "show the run", err)
		return
	}
	show(wf, d)
}

// job is the {id} run and its {job}; a job of another run is not found.
func (s *Server) job(w http.ResponseWriter, r *http.Request) (store.Workflow, store.Job, bool) {
	wf, ok := s.run(w, r)
	if !ok {
		return wf, store.Job{}, false
	}
	j, err := s.API.DB.GetJob(r.Context(), chi.URLParam(r, "job"))
	if errors.Is(err, store.ErrNotFound) || (err == nil && j.WorkflowID != wf.ID) {
		s.errorPage(w, r, http.StatusNotFound, "No such job", "This run has no job with this id. Open the run's page and pick a step there.")
		return wf, j, false
	}
	if err != nil {
		s.internal(w, r, "look up the job", err)
		return wf, j, false
	}
	return wf, j, true
}

// logDownload sends a job's output as a text file.
func (s *Server) logDownload(w http.ResponseWriter, r *http.Request) {
	wf, j, ok := s.job(w, r)
	if !ok {
		return
	}
	text := s.API.LiveLog(r.Context(), wf, j)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Content-Disposition", mime.FormatMediaType("attachment", map[string]string{"filename": fmt.Sprintf("%s-%s-%d.log", wf.FullName(), j.StepName, j.Attempt)}))
	_, _ = w.Write([]byte(text))
}

// tailEvery is how often a live tail looks for new output.
const tailEvery = time.Second

// tail streams a job's output as Server-Sent Events while it runs:
// "append" with the new text (a JSON string), "reset" with the whole text
// if what was sent is no longer its start, and "end" with the job's
// status once it ended. Output is read as the user, through the backend.
func (s *Server) tail(w http.ResponseWriter, r *http.Request) {
	wf, j, ok := s.job(w, r)
	if !ok {
		return
	}
	// Through the request logger's wrapper, which unwraps to the
	// connection's writer.
	flusher := http.NewResponseController(w)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	sent := ""
	every := s.TailEvery
	if every <= 0 {
		every = tailEvery
	}
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		text := s.API.LiveLog(r.Context(), wf, j)
		switch {
		case strings.HasPrefix(text, sent):
			if len(text) > len(sent) {
				sendEvent(w, "append", text[len(sent):])
			}
		default:
			sendEvent(w, "reset", text)
		}
		sent = text
		if j.Status != store.JobRunning && j.Status != store.JobCreated && j.Status != store.JobSubmitting {
			sendEvent(w, "end", string(j.Status))
			_ = flusher.Flush()
			return
		}
		if err := flusher.Flush(); err != nil {
			return // the connection cannot stream, or is gone
		}
		select {
		case <-r.Context().Done():
			return
		case <-s.stopping:
			// The browser's EventSource reconnects to the next daemon.
			return
		case <-t.C:
		}
		next, err := s.API.DB.GetJob(r.Context(), j.ID)
		if err != nil {
			return
		}
		j = next
	}
}

func sendEvent(w http.ResponseWriter, event, data string) {
	b, _ := json.Marshal(data)
	fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b)
}
