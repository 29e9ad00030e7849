package helper_test

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const module = "github.com/reana-site/reana-site/"

// imports lists each package of the module with the module packages its
// non-test files import.
func imports(t *testing.T) map[string][]string {
	t.Helper()
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}}{{range .Imports}} {{.}}{{end}}`, module+"...").Output()
	require.NoError(t, err, "go list")
	m := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := strings.TrimPrefix(f[0], module)
		m[pkg] = nil
		for _, imp := range f[1:] {
			if strings.HasPrefix(imp, module) {
				m[pkg] = append(m[pkg], strings.TrimPrefix(imp, module))
			}
		}
	}
	return m
}

func isHelper(pkg string) bool { return pkg == "helper" || strings.HasPrefix(pkg, "helper/") }

// TestPrivilegeBoundary keeps the tree honest about which code runs as
// root and which as the user. The helper's code runs in a process with one
// user's uid; the daemon must never call it in-process, so only the binary
// (which dispatches to it as `reana-site worker`) and test support may
// import it. The helper in turn sees nothing of the daemon but the
// protocol and the capability reader it uses to refuse privilege. The
// protocol imports nothing of the module, so either side can use it.
func TestPrivilegeBoundary(t *testing.T) {
	for pkg, deps := range imports(t) {
		for _, dep := range deps {
			if isHelper(dep) && !isHelper(pkg) {
				assert.True(t, pkg == "cmd/reana-site" || strings.HasPrefix(pkg, "test/"),
					"%s imports %s: only cmd/reana-site may import the code that runs as the user", pkg, dep)
			}
			if isHelper(pkg) && !isHelper(dep) {
				assert.Contains(t, []string{"asuser", "daemon/privsep"}, dep,
					"%s (runs as the user) imports %s", pkg, dep)
			}
			if pkg == "asuser" {
				assert.Fail(t, "asuser imports "+dep, "the protocol package must import nothing of this module")
			}
		}
	}
}
