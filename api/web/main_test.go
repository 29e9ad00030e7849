package web_test

import (
	"flag"
	"fmt"
	"os"
	"sort"
	"sync"
	"testing"

	"github.com/reana-site/reana-site/api/web"
	"github.com/reana-site/reana-site/test/helpertest"
)

// logMu guards the env's log buffers.
var logMu sync.Mutex

// rendered collects which templates the tests rendered, over all envs.
var rendered = &renderedSet{seen: map[string]bool{}}

type renderedSet struct {
	mu    sync.Mutex
	seen  map[string]bool
	names []string
}

func (r *renderedSet) add(s *web.Server) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for k := range web.TemplatesSeen(s) {
		r.seen[k] = true
	}
	r.names = web.TemplateNames(s)
}

// TestMain lets the test binary act as the helper, and after a full run
// fails if a template never rendered: such a template is untested.
func TestMain(m *testing.M) {
	helpertest.MaybeRunHelper()
	flag.Parse()
	code := m.Run()
	if code == 0 && flag.Lookup("test.run").Value.String() == "" && flag.Lookup("test.skip").Value.String() == "" && len(rendered.names) > 0 {
		var missing []string
		for _, n := range rendered.names {
			if !rendered.seen[n] {
				missing = append(missing, n)
			}
		}
		sort.Strings(missing)
		if len(missing) > 0 {
			fmt.Fprintf(os.Stderr, "templates no test rendered: %v\n", missing)
			code = 1
		}
	}
	os.Exit(code)
}
