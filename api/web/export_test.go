package web

import "strings"

// TemplatesSeen says which templates s rendered so far.
func TemplatesSeen(s *Server) map[string]bool {
	s.pages.mu.Lock()
	defer s.pages.mu.Unlock()
	out := map[string]bool{}
	for k, v := range s.pages.used {
		out[k] = v
	}
	return out
}

// TemplateNames are every page and shared template.
func TemplateNames(s *Server) []string {
	var out []string
	for _, t := range s.pages.shared.Templates() {
		if n := t.Name(); n != "" && !strings.HasSuffix(n, ".html") {
			out = append(out, n)
		}
	}
	for name := range s.pages.pages {
		out = append(out, name)
	}
	return out
}
