package web

import (
	"bytes"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/reana-site/reana-site/api"
)

//go:embed templates/*.html
var templateFiles embed.FS

//go:embed static
var staticFiles embed.FS

// staticHandler serves the embedded CSS and script. They change only
// with the binary, whose version is in no URL, so they are cached briefly.
func staticHandler() http.Handler {
	sub, _ := fs.Sub(staticFiles, "static")
	files := http.StripPrefix("/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "max-age=300")
		files.ServeHTTP(w, r)
	})
}

// sharedFile holds the layout and every template more than one page (or
// a page and a fragment) uses.
const sharedFile = "templates/layout.html"

// renderer holds one template set per page: the shared file plus the
// page's own, so each page's "content" is its own. Every template starts
// with {{seen "name"}} (a page's content with the page's name), so the
// renderer knows which ones ran: the tests check that every one did.
type renderer struct {
	pages  map[string]*template.Template
	shared *template.Template

	mu   sync.Mutex
	used map[string]bool
}

func newRenderer() (*renderer, error) {
	r := &renderer{pages: map[string]*template.Template{}, used: map[string]bool{}}
	fm := template.FuncMap{"seen": func(name string) string { r.mark(name); return "" }}
	for k, v := range funcs {
		fm[k] = v
	}
	shared, err := template.New("").Funcs(fm).ParseFS(templateFiles, sharedFile)
	if err != nil {
		return nil, fmt.Errorf("parse the web layout: %w", err)
	}
	names, err := fs.Glob(templateFiles, "templates/*.html")
	if err != nil {
		return nil, err
	}
	r.shared = shared
	for _, n := range names {
		if n == sharedFile {
			continue
		}
		t, err := template.Must(shared.Clone()).ParseFS(templateFiles, n)
		if err != nil {
			return nil, fmt.Errorf("parse web page %s: %w", n, err)
		}
		r.pages[strings.TrimSuffix(path.Base(n), ".html")] = t
	}
	return r, nil
}

// pageData is what every page's template gets.
type pageData struct {
	Title   string
	Viewer  *viewer // nil when signed out
	Content any
}

// page renders a whole page.
func (s *Server) page(w http.ResponseWriter, r *http.Request, status int, name, title string, content any) {
	var v *viewer
	if x := viewerOf(r); x.User.ID != "" {
		// Only a whole page's header shows the admin link: the group
		// lookup (NSS, maybe LDAP) is not made for the polled fragments.
		x.Admin = s.isAdmin(x.Account)
		v = &x
	}
	t, ok := s.pages.pages[name]
	if !ok {
		panic("no web page " + name)
	}
	s.write(w, status, t, "layout", pageData{Title: title, Viewer: v, Content: content})
}

// fragment renders one shared template alone, for a script to swap in.
func (s *Server) fragment(w http.ResponseWriter, name string, data any) {
	s.write(w, http.StatusOK, s.pages.shared, name, data)
}

func (s *Server) write(w http.ResponseWriter, status int, t *template.Template, name string, data any) {
	var b bytes.Buffer
	if err := t.ExecuteTemplate(&b, name, data); err != nil {
		s.Log.Error("render a page", "template", name, "err", err)
		http.Error(w, "The page could not be shown; tell the site's admins.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b.Bytes())
}

func (r *renderer) mark(name string) {
	r.mu.Lock()
	r.used[name] = true
	r.mu.Unlock()
}

// errorData is an error page: what happened and what to do.
type errorData struct {
	Status int
	What   string
	Todo   string
}

// errorPage answers with a page that says what to do.
func (s *Server) errorPage(w http.ResponseWriter, r *http.Request, status int, what, todo string) {
	s.page(w, r, status, "error", what, errorData{Status: status, What: what, Todo: todo})
}

var funcs = template.FuncMap{
	"bytes":    api.HumanBytes,
	"duration": humanDuration,
	"when":     when,
	"add":      func(a, b int) int { return a + b },
	"mul":      func(a, b int) int { return a * b },
	"millis":   api.HumanMillis,
	"ptr":      func(t time.Time) *time.Time { return &t },
	"has":      slices.Contains[[]string],
	"dict":     dict,
}

// dict makes a map of key, value pairs, to hand a shared template more
// than one thing.
func dict(kv ...any) (map[string]any, error) {
	if len(kv)%2 != 0 {
		return nil, fmt.Errorf("dict: odd number of arguments")
	}
	m := make(map[string]any, len(kv)/2)
	for i := 0; i < len(kv); i += 2 {
		k, ok := kv[i].(string)
		if !ok {
			return nil, fmt.Errorf("dict: key %v is not a string", kv[i])
		}
		m[k] = kv[i+1]
	}
	return m, nil
}

func percent(a, b int) int {
	if b <= 0 {
		return 0
	}
	return min(100, a*100/b)
}

// humanDuration is a duration as REANA shows run times; "–" for none.
func humanDuration(d time.Duration) string {
	if d <= 0 {
		return "–"
	}
	return api.HumanMillis(d.Milliseconds())
}

// when is a time as the pages show it (UTC, to the second); "–" if unset.
func when(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "–"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}
