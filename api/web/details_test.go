package web_test

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/api/web"
	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/daemon/store"
)

func TestDetails(t *testing.T) {
	e := newEnv(t, web.Config{})
	b := e.signedIn(e.token)
	r := e.create("fit", nil)
	res := b.get("/runs/" + r.ID)
	require.Equal(t, http.StatusOK, res.Status)
	assert.Contains(t, res.Body, "No step has been submitted yet.")
	assert.Contains(t, res.Body, "No job has run yet")

	j := e.start(r)
	e.be.Set(j.JobID, batch.Status{State: batch.Running}, "fitting 1\n")
	res = b.get("/runs/" + r.ID)
	require.Equal(t, http.StatusOK, res.Status)
	for _, want := range []string{
		`<span class="status status-running">running</span>`,
		`<progress id="run-progress" max="100" value="0">`,
		`<span id="run-steps">0/1 steps</span>`,
		`<tr class="job" data-job-id="` + j.JobID + `" data-step="fit" data-running="true"`,
		`<td class="job-backend">`, `<td class="job-batch-id"><code>fake-` + j.JobID + `</code></td>`,
		`<td class="job-image"><code>docker.io/library/busybox:1.36</code></td>`,
		`<td class="job-command"><code>sh code/run.sh 1</code></td>`,
		`data-tail-url="/runs/` + r.ID + `/jobs/` + j.JobID + `/tail"`,
		`<button type="button" class="log-follow" aria-pressed="true">Pause</button>`,
		`<g class="bar bar-running">`,
		`data-refresh-url="/runs/` + r.ID + `/summary"`,
		`class="action-stop"`,
		`&#34;commands&#34;`, // the specification
		`<pre id="parameters">{}</pre>`,
	} {
		assert.Contains(t, res.Body, want)
	}
	sum := b.get("/runs/" + r.ID + "/summary")
	require.Equal(t, http.StatusOK, sum.Status)
	assert.Contains(t, sum.Body, `<div class="summary" data-live="true">`)
	assert.NotContains(t, sum.Body, "<html")

	e.finish(j, 3, "fitting 1\nboom\n")
	res = b.get("/runs/" + r.ID)
	assert.Contains(t, res.Body, `<span class="status status-failed">failed</span>`)
	assert.Contains(t, res.Body, `<td class="job-exit">3</td>`)
	assert.Contains(t, res.Body, "fitting 1\nboom\n")
	assert.NotContains(t, res.Body, `data-refresh-url="/runs/`+r.ID+`/summary"`, "an ended run is not refreshed")
	assert.Contains(t, res.Body, `class="action-restart"`)
	sum = b.get("/runs/" + r.ID + "/summary")
	assert.Contains(t, sum.Body, `data-live="false"`, "the script stops refreshing")

	dl := b.get("/runs/" + r.ID + "/jobs/" + j.JobID + "/log")
	require.Equal(t, http.StatusOK, dl.Status)
	assert.Equal(t, "fitting 1\nboom\n", dl.Body)
	assert.Contains(t, dl.Header.Get("Content-Disposition"), "attachment")
	assert.Equal(t, http.StatusNotFound, b.get("/runs/"+r.ID+"/jobs/nope/log").Status)

	// A job of another run is not found under this one.
	r2 := e.create("other", nil)
	assert.Equal(t, http.StatusNotFound, b.get("/runs/"+r2.ID+"/jobs/"+j.JobID+"/log").Status)
}

func TestEngineLogShown(t *testing.T) {
	e := newEnv(t, web.Config{})
	b := e.signedIn(e.token)
	r := e.create("eng", nil)
	ctx := context.Background()
	_, err := e.db.UpdateWorkflow(ctx, r.ID, func(w *store.Workflow) error { w.Logs = "engine said hello\n"; return nil })
	require.NoError(t, err)
	require.NoError(t, e.db.CreateJob(ctx, &store.Job{WorkflowID: r.ID, StepIndex: store.EngineStepIndex, StepName: "engine",
		Status: store.JobFinished, Logs: "snakemake output\n", Backend: "local"}))
	res := b.get("/runs/" + r.ID)
	assert.Contains(t, res.Body, `<pre id="engine-log">engine said hello`)
	assert.Contains(t, res.Body, "snakemake output")
	assert.Contains(t, res.Body, "No step has been submitted yet.", "the engine process is no step")
}

// event is one Server-Sent Event.
type event struct{ Name, Data string }

func readEvents(t *testing.T, sc *bufio.Scanner, n int) []event {
	t.Helper()
	var out []event
	var cur event
	for len(out) < n && sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			cur.Name = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			var s string
			require.NoError(t, json.Unmarshal([]byte(strings.TrimPrefix(line, "data: ")), &s))
			cur.Data = s
		case line == "":
			out = append(out, cur)
			cur = event{}
		}
	}
	require.Len(t, out, n, "stream ended early: %v", sc.Err())
	return out
}

// runningJob is a new run whose job runs and has printed output so far.
func (e *env) runningJob(name, output string) (run, batch.Spec) {
	e.t.Helper()
	r := e.create(name, nil)
	j := e.start(r)
	e.be.Set(j.JobID, batch.Status{State: batch.Running}, output)
	return r, j
}

func TestLiveTail(t *testing.T) {
	e := newEnv(t, web.Config{})
	b := e.signedIn(e.token)
	r, j := e.runningJob("tail", "line 1\n")

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+"/runs/"+r.ID+"/jobs/"+j.JobID+"/tail", nil)
	require.NoError(t, err)
	res, err := b.c.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, "text/event-stream", res.Header.Get("Content-Type"))
	sc := bufio.NewScanner(res.Body)

	assert.Equal(t, []event{{"append", "line 1\n"}}, readEvents(t, sc, 1))
	e.be.Set(j.JobID, batch.Status{State: batch.Running}, "line 1\nline 2\n")
	assert.Equal(t, []event{{"append", "line 2\n"}}, readEvents(t, sc, 1), "only what is new")
	e.be.Set(j.JobID, batch.Status{State: batch.Running}, "rotated\n")
	assert.Equal(t, []event{{"reset", "rotated\n"}}, readEvents(t, sc, 1))
	e.finish(j, 0, "rotated\ndone\n")
	got := readEvents(t, sc, 2)
	assert.Equal(t, []event{{"append", "done\n"}, {"end", "finished"}}, got)
	assert.False(t, sc.Scan(), "the stream ends with the job")

	page := b.get("/runs/" + r.ID)
	assert.Contains(t, page.Body, `<pre class="log-tail" data-log-url="/runs/`+r.ID+`/jobs/`+j.JobID+`/log"></pre>`, "a finished job's log loads when opened")
	assert.NotContains(t, page.Body, "rotated\ndone")
}

// TestJobFieldsEscaped: the job parts are written without html/template,
// so every field a user controls must still come out escaped.
func TestJobFieldsEscaped(t *testing.T) {
	e := newEnv(t, web.Config{})
	b := e.signedIn(e.token)
	r := e.create("esc", nil)
	code := 2
	require.NoError(t, e.db.CreateJob(context.Background(), &store.Job{WorkflowID: r.ID, StepName: `<script>x</script>`, Command: `echo "a" > '<b>'`,
		Image: `img"onload="x`, Backend: "local", Status: store.JobFailed, ExitCode: &code, Reason: "<i>held</i>", Logs: "</pre><script>alert(1)</script>"}))
	res := b.get("/runs/" + r.ID)
	require.Equal(t, http.StatusOK, res.Status)
	assert.NotContains(t, res.Body, "<script>x")
	assert.NotContains(t, res.Body, "<script>alert")
	assert.NotContains(t, res.Body, `img"onload`)
	assert.NotContains(t, res.Body, "<i>held")
	assert.Contains(t, res.Body, `data-step="&lt;script&gt;x&lt;/script&gt;"`)
	assert.Contains(t, res.Body, `<td class="job-command"><code>echo &#34;a&#34; &gt; &#39;&lt;b&gt;&#39;</code></td>`)
	assert.Contains(t, res.Body, `&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;`, "a failed job's log, inline and escaped")
	assert.Contains(t, res.Body, `<td class="job-exit">2</td>`)
}

func TestDiff(t *testing.T) {
	e := newEnv(t, web.Config{})
	b := e.signedIn(e.token)
	r1 := e.create("cmp", map[string]string{"a.txt": "1"})
	res := b.get("/runs/" + r1.ID + "/diff")
	require.Equal(t, http.StatusOK, res.Status)
	assert.Contains(t, res.Body, "cmp has no other run")
	r2 := e.create("cmp", map[string]string{"b.txt": "2"})
	res = b.get("/runs/" + r1.ID + "/diff")
	assert.Contains(t, res.Body, `<option value="cmp.2">created</option>`)
	res = b.get("/runs/" + r1.ID + "/diff?with=cmp.2")
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	assert.Contains(t, res.Body, "Compare cmp.1 with cmp.2")
	assert.Contains(t, res.Body, "Only in cmp.1: a.txt")
	assert.Contains(t, res.Body, "Only in cmp.2: b.txt")
	assert.Contains(t, res.Body, `<p class="empty same">The same in both.</p>`)
	_, err := e.db.UpdateWorkflow(context.Background(), r2.ID, func(w *store.Workflow) error {
		w.Spec = []byte(strings.Replace(specJSON, `"n": "1"`, `"n": "2"`, 1))
		return nil
	})
	require.NoError(t, err)
	res = b.get("/runs/" + r1.ID + "/diff?with=" + r2.ID)
	assert.Contains(t, res.Body, `<span class="del">-     &#34;n&#34;: &#34;1&#34;</span>`)
	assert.Contains(t, res.Body, `<span class="add">&#43;     &#34;n&#34;: &#34;2&#34;</span>`)
	other := e.othersRun()
	res = b.get("/runs/" + r1.ID + "/diff?with=" + other)
	assert.Equal(t, http.StatusNotFound, res.Status, "another user's run is not found")
	assert.NotContains(t, res.Body, "secret")
}

// TestTailEndsOnShutdown: a graceful stop of the server does not wait for
// live tails.
func TestTailEndsOnShutdown(t *testing.T) {
	e := newEnv(t, web.Config{})
	b := e.signedIn(e.token)
	r, j := e.runningJob("stop", "working\n")
	res, err := b.c.Get(e.srv.URL + "/runs/" + r.ID + "/jobs/" + j.JobID + "/tail")
	require.NoError(t, err)
	defer res.Body.Close()
	sc := bufio.NewScanner(res.Body)
	readEvents(t, sc, 1)
	e.web.Shutdown()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for sc.Scan() {
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("the tail did not end on shutdown")
	}
}
