package web_test

import (
	"archive/zip"
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/api/web"
	"github.com/reana-site/reana-site/daemon/store"
)

func pngBytes(t *testing.T) string {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 4, 4))
	img.Set(1, 1, color.RGBA{R: 255, A: 255})
	var b bytes.Buffer
	require.NoError(t, png.Encode(&b, img))
	return b.String()
}

const evilHTML = `<html><script>fetch('/profile/token',{method:'POST'})</script></html>`
const evilSVG = `<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script><rect width="4" height="4"/></svg>`

func (e *env) filesRun(t *testing.T) run {
	return e.create("files", map[string]string{
		"results/plot.png":     pngBytes(t),
		"results/evil.svg":     evilSVG,
		"results/deep/fit.txt": "a\nb\n<c>\n",
		"evil.html":            evilHTML,
		"data.csv":             "x,y\n1,2\n",
		"blob.bin":             "\x00\x01\x02binary",
	})
}

func TestFileBrowser(t *testing.T) {
	e := newEnv(t, web.Config{})
	b := e.signedIn(e.token)
	r := e.filesRun(t)

	res := b.get("/runs/" + r.ID + "/files")
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	for _, want := range []string{
		`<tr class="dir" data-path="code">`, `<tr class="dir" data-path="results">`,
		`<tr class="file" data-path="data.csv">`, `<a class="file-link" href="/runs/` + r.ID + `/files/results">results/</a>`,
		`<a id="zip-download" class="zip-download button" href="/runs/` + r.ID + `/zip">Download everything as zip</a>`,
		`<nav id="breadcrumbs" aria-label="Path"><a href="/runs/` + r.ID + `/files">files.1</a></nav>`,
	} {
		assert.Contains(t, res.Body, want)
	}
	assert.Less(t, strings.Index(res.Body, `data-path="results"`), strings.Index(res.Body, `data-path="blob.bin"`), "directories first")

	res = b.get("/runs/" + r.ID + "/files/results")
	require.Equal(t, http.StatusOK, res.Status)
	assert.Contains(t, res.Body, `<a href="/runs/`+r.ID+`/files/results">results</a>`, "breadcrumbs")
	assert.Contains(t, res.Body, `data-path="results/deep"`)
	assert.Contains(t, res.Body, `href="/runs/`+r.ID+`/zip/results">Download this directory as zip`)
	assert.Regexp(t, `data-path="results/deep">\s*<td class="file-name">.*</td>\s*<td class="file-size">8 Bytes</td>`, res.Body, "a directory's size is its files'")

	res = b.get("/runs/" + r.ID + "/files/results/deep/fit.txt")
	require.Equal(t, http.StatusOK, res.Status)
	assert.Contains(t, res.Body, `<tr id="L3"><td class="ln"><a href="#L3">3</a></td><td class="line"><code>&lt;c&gt;</code></td></tr>`, "text with line numbers, escaped")
	assert.Contains(t, res.Body, `<a id="download" class="button" href="/runs/`+r.ID+`/raw/results/deep/fit.txt?download=1">`)

	res = b.get("/runs/" + r.ID + "/files/results/plot.png")
	assert.Contains(t, res.Body, `<img id="preview-image" src="/runs/`+r.ID+`/raw/results/plot.png"`)
	res = b.get("/runs/" + r.ID + "/files/blob.bin")
	assert.Contains(t, res.Body, "This file is not text")
	res = b.get("/runs/" + r.ID + "/files/evil.html")
	assert.NotContains(t, res.Body, "<script>fetch", "a user's HTML is shown as text")

	assert.Equal(t, http.StatusNotFound, b.get("/runs/"+r.ID+"/files/nope").Status)
	assert.Equal(t, http.StatusNotFound, b.get("/runs/"+r.ID+"/raw/nope").Status)
	assert.Equal(t, http.StatusBadRequest, b.get("/runs/"+r.ID+"/files/a/%2e%2e/%2e%2e/etc").Status)
}

func TestRawFiles(t *testing.T) {
	e := newEnv(t, web.Config{})
	b := e.signedIn(e.token)
	r := e.filesRun(t)
	tests := []struct {
		path, ctype, disposition string
	}{
		{"results/plot.png", "image/png", "inline"},
		{"results/evil.svg", "image/svg+xml", "attachment"},
		{"evil.html", "application/octet-stream", "attachment"},
		{"data.csv", "text/plain; charset=utf-8", "inline"},
		{"blob.bin", "application/octet-stream", "attachment"},
		{"results/plot.png?download=1", "application/octet-stream", "attachment"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			res := b.get("/runs/" + r.ID + "/raw/" + tt.path)
			require.Equal(t, http.StatusOK, res.Status, res.Body)
			assert.Equal(t, tt.ctype, res.Header.Get("Content-Type"))
			assert.True(t, strings.HasPrefix(res.Header.Get("Content-Disposition"), tt.disposition), res.Header.Get("Content-Disposition"))
			assert.Equal(t, "nosniff", res.Header.Get("X-Content-Type-Options"))
			assert.True(t, strings.HasPrefix(res.Header.Get("Content-Security-Policy"), "sandbox;"), "a user's file runs in a sandbox")
			assert.Contains(t, res.Header.Get("Content-Security-Policy"), "default-src 'none'")
		})
	}
	res := b.get("/runs/" + r.ID + "/raw/results/plot.png")
	_, err := png.Decode(strings.NewReader(res.Body))
	assert.NoError(t, err, "the image is the user's file")
}

func TestZipDownload(t *testing.T) {
	e := newEnv(t, web.Config{})
	b := e.signedIn(e.token)
	r := e.filesRun(t)
	entries := func(body string) []string {
		zr, err := zip.NewReader(strings.NewReader(body), int64(len(body)))
		require.NoError(t, err)
		var out []string
		for _, f := range zr.File {
			if !strings.HasSuffix(f.Name, "/") {
				out = append(out, f.Name)
			}
		}
		sort.Strings(out)
		return out
	}
	res := b.get("/runs/" + r.ID + "/zip/results")
	require.Equal(t, http.StatusOK, res.Status, res.Body)
	assert.Equal(t, "application/zip", res.Header.Get("Content-Type"))
	assert.Contains(t, res.Header.Get("Content-Disposition"), "attachment")
	assert.Equal(t, []string{"results/deep/fit.txt", "results/evil.svg", "results/plot.png"}, entries(res.Body))
	res = b.get("/runs/" + r.ID + "/zip")
	require.Equal(t, http.StatusOK, res.Status)
	assert.Contains(t, entries(res.Body), "code/run.sh")
	assert.Len(t, entries(res.Body), 7)
	assert.Equal(t, http.StatusNotFound, b.get("/runs/"+r.ID+"/zip/nope").Status)
}

func TestGallery(t *testing.T) {
	e := newEnv(t, web.Config{})
	b := e.signedIn(e.token)
	r := e.filesRun(t)
	res := b.get("/runs/" + r.ID + "/gallery")
	require.Equal(t, http.StatusOK, res.Status)
	assert.Equal(t, 2, strings.Count(res.Body, `class="gallery-image"`), "the PNG and the SVG")
	assert.Contains(t, res.Body, `<img class="gallery-image" src="/runs/`+r.ID+`/raw/results/plot.png"`)
	assert.NotContains(t, res.Body, "<script>alert", "an SVG is an <img>, never inlined")

	empty := e.create("noplots", nil)
	res = b.get("/runs/" + empty.ID + "/gallery")
	assert.Contains(t, res.Body, "This run has no PNG, JPEG or SVG files")
	res = b.get("/runs/" + empty.ID + "/files/code")
	assert.Contains(t, res.Body, "run.sh")
}

func TestDeletedWorkspace(t *testing.T) {
	e := newEnv(t, web.Config{})
	b := e.signedIn(e.token)
	r := e.filesRun(t)
	_, err := e.db.UpdateWorkflow(context.Background(), r.ID, func(w *store.Workflow) error { w.Status = store.StatusDeleted; return nil })
	require.NoError(t, err)
	for _, p := range []string{"/files", "/raw/data.csv", "/zip", "/gallery"} {
		res := b.get("/runs/" + r.ID + p)
		assert.Equal(t, http.StatusNotFound, res.Status, p)
		assert.Contains(t, res.Body, "was deleted together with its workspace", p)
	}
}

func TestEmptyDirectory(t *testing.T) {
	e := newEnv(t, web.Config{})
	b := e.signedIn(e.token)
	r := e.create("only", nil)
	res := b.get("/runs/" + r.ID + "/files/code")
	require.Equal(t, http.StatusOK, res.Status)
	e.apiCall("DELETE", "/api/workflows/"+r.ID+"/workspace/code/run.sh", e.token, "", nil)
	res = b.get("/runs/" + r.ID + "/files")
	assert.Contains(t, res.Body, "This directory is empty.")
	assert.Equal(t, http.StatusNotFound, b.get("/runs/"+r.ID+"/zip").Status, "nothing to zip")
}

func TestRetentionRulesAndPrune(t *testing.T) {
	e := newEnv(t, web.Config{})
	b := e.signedIn(e.token)
	r := e.create("prune", map[string]string{"out.txt": "result\n", "tmp/scratch.dat": "xxxx", "notes.txt": "n"})
	res := b.get("/runs/" + r.ID + "/files")
	assert.Contains(t, res.Body, "This run has no retention rules")
	require.NoError(t, e.db.CreateRetentionRules(context.Background(), r.ID, []store.RetentionRule{{Pattern: "tmp/*", Days: 5, Status: "created"}}))

	j := e.start(r)
	res = b.get("/runs/" + r.ID + "/files")
	assert.Contains(t, res.Body, `<li class="rule rule-created">Files matching <code>tmp/*</code> are deleted 5 days after the run ends (created).</li>`)
	assert.NotContains(t, res.Body, `id="prune"`, "no prune while the run is active")
	res = b.post("/runs/"+r.ID+"/prune", nil)
	assert.Equal(t, http.StatusBadRequest, res.Status)
	assert.Contains(t, res.Body, "cannot be pruned until it ends")

	e.finish(j, 0, "done\n")
	res = b.get("/runs/" + r.ID + "/files")
	assert.Contains(t, res.Body, `<form id="prune" class="action-prune"`)
	assert.NotContains(t, b.get("/runs/"+r.ID+"/files/tmp").Body, `id="prune"`, "only at the workspace's top")
	res = b.post("/runs/"+r.ID+"/prune", nil)
	require.Equal(t, http.StatusSeeOther, res.Status, res.Body)
	assert.Equal(t, "/runs/"+r.ID+"/files", res.Header.Get("Location"))
	res = b.get("/runs/" + r.ID + "/files")
	assert.Contains(t, res.Body, `data-path="out.txt"`, "outputs stay")
	assert.Contains(t, res.Body, `data-path="code"`, "inputs stay")
	assert.NotContains(t, res.Body, `data-path="notes.txt"`)
	assert.NotContains(t, res.Body, `data-path="tmp"`)

	_, err := e.db.UpdateWorkflow(context.Background(), r.ID, func(w *store.Workflow) error { w.Status = store.StatusDeleted; return nil })
	require.NoError(t, err)
	assert.Equal(t, http.StatusNotFound, b.post("/runs/"+r.ID+"/prune", nil).Status)
}

func TestFileSearchAndSort(t *testing.T) {
	e := newEnv(t, web.Config{})
	b := e.signedIn(e.token)
	r := e.filesRun(t)
	paths := regexp.MustCompile(`<tr class="(?:file|dir)" data-path="([^"]+)">`)
	list := func(q string) []string {
		res := b.get("/runs/" + r.ID + "/files" + q)
		require.Equal(t, http.StatusOK, res.Status, res.Body)
		var out []string
		for _, m := range paths.FindAllStringSubmatch(res.Body, -1) {
			out = append(out, m[1])
		}
		return out
	}
	assert.Equal(t, []string{"results/deep/fit.txt"}, list("?q=FIT"), "below the directory, any depth, any case")
	assert.Equal(t, []string{"results/evil.svg", "evil.html"}, list("?q=evil&sort=size"))
	assert.Equal(t, []string{"results/deep", "results/evil.svg", "results/plot.png"}, list("/results"))
	assert.Equal(t, "results/evil.svg", list("/results?sort=size")[0], "largest first")
	assert.Empty(t, list("/results?q=html"), "only below this directory")
	assert.Contains(t, b.get("/runs/"+r.ID+"/files?q=zzz").Body, "No file matches.")
	assert.Equal(t, http.StatusBadRequest, b.get("/runs/"+r.ID+"/files?sort=owner").Status)
}
