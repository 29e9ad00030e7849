package browser

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
)

// Problem is something a page reported that a page which loaded clean does
// not: an error on the console, an uncaught exception, or an error of the
// browser's own log (a failed load, a Content-Security-Policy violation).
type Problem struct {
	// Kind is "console", "exception", or the browser log's source, e.g.
	// "network" or "security" (CSP violations are "security" or carry
	// "Content Security Policy" in their text).
	Kind string
	Text string
	// URL is where it came from, when the browser says.
	URL string
}

func (p Problem) String() string {
	s := p.Kind + ": " + p.Text
	if p.URL != "" {
		s += " (" + p.URL + ")"
	}
	return s
}

// CSP reports whether the problem is a Content-Security-Policy violation.
func (p Problem) CSP() bool {
	return strings.Contains(p.Text, "Content Security Policy") || strings.Contains(p.Text, "Content-Security-Policy")
}

// problems collects a tab's problems from chromedp's console stream.
type problems struct {
	mu   sync.Mutex
	list []Problem
}

// collect starts reading the tab's console until the tab's context ends.
func (p *problems) collect(ctx context.Context) {
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			var kind string
			switch {
			case m.IsException():
				kind = "exception"
			case m.Type != chromedp.ConsoleError:
				continue
			case m.Source != "":
				kind = m.Source
			default:
				kind = "console"
			}
			p.mu.Lock()
			p.list = append(p.list, Problem{Kind: kind, Text: m.Text, URL: m.URL})
			p.mu.Unlock()
		}
	}()
}

func (p *problems) all() []Problem {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Problem(nil), p.list...)
}

func (p *problems) clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.list = nil
}

// summary is the problems so far, for a failure message.
func (p *problems) summary() string {
	list := p.all()
	if len(list) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\npage problems:")
	for _, q := range list {
		fmt.Fprintf(&b, "\n  %s", q)
	}
	return b.String()
}

// Problems is what the pages reported as errors since Start or the last
// ClearProblems. The console's messages arrive asynchronously: a test that
// just loaded a page should wait for it to settle (WaitTrue on something
// the page shows) before it trusts an empty list.
func (b *Browser) Problems() []Problem { return b.problems.all() }

// ClearProblems forgets the problems so far, e.g. before a step that is
// expected to log one.
func (b *Browser) ClearProblems() { b.problems.clear() }

// AssertClean fails the test (without stopping it) when a page reported a
// problem.
func (b *Browser) AssertClean(t testing.TB) {
	t.Helper()
	if list := b.problems.all(); len(list) > 0 {
		t.Errorf("the page did not load clean:%s", b.problems.summary())
	}
}
