package asuser

import (
	"path/filepath"
	"strings"
)

// TrustedPrefix is where the chain of a user's workspaces starts, from the
// site's REANA_SITE_WORKSPACE_ROOT template: the directories before the
// first placeholder are the site's, and so are those above a home
// directory ({home}/reana starts at the parent of the home). A template
// without placeholders is trusted whole. An empty template trusts only /.
func TrustedPrefix(template, home string) string {
	if template == "" {
		return "/"
	}
	i := strings.IndexByte(template, '{')
	if i < 0 {
		return filepath.Clean(template)
	}
	if strings.HasPrefix(template, "{home}") && home != "" {
		return filepath.Dir(filepath.Clean(home))
	}
	prefix := template[:i]
	if j := strings.LastIndexByte(prefix, '/'); j >= 0 {
		prefix = prefix[:j]
	}
	if prefix == "" {
		return "/"
	}
	return filepath.Clean(prefix)
}
