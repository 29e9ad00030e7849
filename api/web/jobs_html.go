package web

import (
	"html"
	"html/template"
	"strconv"
	"strings"
)

// The per-job parts of the details page (timeline bars, step rows, log
// sections) are written here rather than by html/template: a run has
// hundreds of jobs, and the template engine's reflective call of an
// escaper for every value took most of the page's time. Every value goes
// through html.EscapeString, which escapes for text and for quoted
// attributes alike; the URLs are built from ids (UUIDs) only.

// jobsHTML is the timeline bars, the step table rows and the log
// sections of jobs.
type jobsHTML struct {
	Bars, Rows, Logs template.HTML
}

func renderJobs(jobs []jobRow) jobsHTML {
	var bars, rows, logs strings.Builder
	esc := html.EscapeString
	num := func(f float64) string { return strconv.FormatFloat(f, 'f', 3, 64) }
	for _, j := range jobs {
		id, st, label, y := esc(j.ID), esc(j.Status), esc(j.Label), strconv.Itoa(j.Y)
		bars.WriteString(`<g class="bar bar-` + st + `"><title>` + label + `: ` + st + `</title><rect class="wait" x="` + num(j.WaitX) +
			`" y="` + y + `" width="` + num(j.WaitW) + `" height="8"></rect><rect class="ran" x="` + num(j.RunX) + `" y="` + y +
			`" width="` + num(j.RunW) + `" height="8"></rect></g>` + "\n")
		rows.WriteString(`<tr class="job" data-job-id="` + id + `" data-step="` + esc(j.Step) + `" data-running="` + strconv.FormatBool(j.Running) + `">` + "\n" +
			`<td class="job-step"><a href="#log-` + id + `">` + label + `</a></td>` + "\n" +
			`<td class="job-status"><span class="status status-` + st + `">` + st + `</span></td>` + "\n" +
			`<td class="job-queued">` + esc(j.QueuedS) + `</td>` + "\n" +
			`<td class="job-started">` + esc(j.StartedS) + `</td>` + "\n" +
			`<td class="job-ended">` + esc(j.EndedS) + `</td>` + "\n" +
			`<td class="job-backend">` + esc(j.Backend) + `</td>` + "\n" +
			`<td class="job-batch-id"><code>` + esc(j.BatchID) + `</code></td>` + "\n" +
			`<td class="job-sched">` + esc(j.Reason) + `</td>` + "\n" +
			`<td class="job-image"><code>` + esc(j.Image) + `</code></td>` + "\n" +
			`<td class="job-command"><code>` + esc(j.Command) + `</code></td>` + "\n" +
			`<td class="job-exit">` + esc(j.ExitS) + `</td>` + "\n</tr>")
		logs.WriteString(`<details class="job-log" id="log-` + id + `"`)
		if j.Open {
			logs.WriteString(" open")
		}
		logs.WriteString(">\n<summary>" + label + " · " + st + "</summary>\n<div class=\"log-tools\">")
		if j.Running {
			logs.WriteString(`<button type="button" class="log-follow" aria-pressed="true">Pause</button>`)
		}
		logs.WriteString(`<a class="log-download" href="` + esc(j.LogURL) + `">Download</a></div>` + "\n" + `<pre class="log-tail"`)
		switch {
		case j.Running:
			logs.WriteString(` data-tail-url="` + esc(j.TailURL) + `"`)
		case !j.Inline:
			logs.WriteString(` data-log-url="` + esc(j.LogURL) + `"`)
		}
		logs.WriteString(">")
		if j.Inline {
			logs.WriteString(esc(j.Log))
		}
		logs.WriteString("</pre>\n</details>\n")
	}
	return jobsHTML{Bars: template.HTML(bars.String()), Rows: template.HTML(rows.String()), Logs: template.HTML(logs.String())}
}
