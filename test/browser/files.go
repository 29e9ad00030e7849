package browser

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
)

// ScreenshotDir is where screenshots go, relative to the repository root,
// so a person can look at every page after the tests ran.
const ScreenshotDir = ".cache/ui-screenshots"

// Screenshot saves a full-page PNG of the tab as
// .cache/ui-screenshots/<test>-<name>.png and returns its path.
func (b *Browser) Screenshot(t testing.TB, name string) string {
	t.Helper()
	png := Run(t, b, chromedp.FullScreenshot(100))
	dir := filepath.Join(RepoRoot(t), ScreenshotDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("make the screenshot directory: %v", err)
	}
	path := filepath.Join(dir, fileName(t.Name())+"-"+fileName(name)+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatalf("save the screenshot: %v", err)
	}
	t.Logf("screenshot: %s", path)
	return path
}

// fileName keeps letters, digits, '-', '_' and '.'; the rest (the '/' of a
// subtest's name among them) becomes '_'.
func fileName(s string) string {
	return strings.Map(func(r rune) rune {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
			return r
		}
		return '_'
	}, s)
}

// RepoRoot is the repository's root: the nearest directory above the
// test's working directory whose go.mod is this module's.
func RepoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && bytes.HasPrefix(b, []byte("module github.com/reana-site/reana-site\n")) {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("cannot find the repository root (a go.mod of module github.com/reana-site/reana-site) above the working directory")
		}
		dir = parent
	}
}

// Download runs action (a click on a download link or button, or a
// Navigate to an address the server sends as an attachment), waits for the
// download it starts to complete and returns the saved file's path, named
// as the server suggested (Content-Disposition).
func (b *Browser) Download(t testing.TB, action chromedp.Action[chromedp.Void]) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, b.timeout)
	defer cancel()
	// Subscribe before the click, so neither event can be missed.
	beginCtx, cancelBegin := context.WithCancel(ctx)
	defer cancelBegin()
	begins := chromedp.Events(beginCtx, browser.DownloadWillBegin)
	progress := chromedp.Events(ctx, browser.DownloadProgress)
	// A navigation that turns into a download ends as an aborted load
	// (net::ERR_ABORTED): that error counts only when no download began
	// soon after.
	actionErr := chromedp.Do(ctx, action)
	if actionErr != nil {
		stop := time.AfterFunc(5*time.Second, cancelBegin)
		defer stop.Stop()
	}
	var begin browser.EventDownloadWillBegin
	began := false
	for ev, err := range begins {
		if err != nil {
			break
		}
		begin, began = ev, true
		break
	}
	if !began {
		t.Fatalf("browser: no download began (action: %v)%s", actionErr, b.problems.summary())
	}
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("browser: the download of %s did not finish: %v", begin.URL, err)
		}
		if ev.GUID != begin.GUID {
			continue
		}
		if ev.State == browser.DownloadProgressStateCanceled {
			t.Fatalf("browser: the download of %s was canceled", begin.URL)
		}
		if ev.State == browser.DownloadProgressStateCompleted {
			break
		}
	}
	// AllowAndName saves the file under its GUID, so two downloads of the
	// same name cannot clash; the test gets the server's name back.
	name := filepath.Base(begin.SuggestedFilename)
	if name == "." || name == "/" || name == "" {
		name = "download"
	}
	dir, err := os.MkdirTemp(b.downloads, "dl-")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.Rename(filepath.Join(b.downloads, begin.GUID), path); err != nil {
		t.Fatalf("browser: the download of %s: %v", begin.URL, fmt.Errorf("move it to %s: %w", path, err))
	}
	return path
}
