package kubernetes

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoClientset keeps the full clientset and the informer factory out of
// the reana-site binary. Their packages register every API group of
// Kubernetes (k8s.io/client-go/kubernetes/scheme and the typed clients)
// in package initialisers, which run in every process of the binary
// whether or not the Kubernetes backend is configured: the daemon and each
// short-lived per-user helper it forks. That costs some 16 MB of resident
// memory per process at start (the daemon's idle RSS went from 14 MB to
// 40 MB, above its 30 MB goal). The backend talks to the API server
// through [API] instead, on k8s.io/client-go/rest with a core/v1-only
// scheme. Tests may use the fake clientset: test dependencies are not
// linked into the binary.
func TestNoClientset(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not in PATH")
	}
	out, err := exec.Command(goCmd, "list", "-deps",
		"github.com/reana-site/reana-site/cmd/reana-site",
		"github.com/reana-site/reana-site/batch/kubernetes",
	).Output()
	if err != nil {
		msg := err.Error()
		if ee, ok := err.(*exec.ExitError); ok {
			msg += ": " + string(ee.Stderr)
		}
		t.Fatalf("go list -deps: %s", msg)
	}
	forbidden := map[string]bool{
		"k8s.io/client-go/kubernetes":        true,
		"k8s.io/client-go/kubernetes/scheme": true,
		"k8s.io/client-go/informers":         true,
	}
	pkgs := strings.Fields(string(out))
	if len(pkgs) == 0 {
		t.Fatal("go list -deps listed nothing")
	}
	var bad []string
	for _, pkg := range pkgs {
		if forbidden[pkg] || strings.HasPrefix(pkg, "k8s.io/client-go/kubernetes/typed/") {
			bad = append(bad, pkg)
		}
	}
	if len(bad) > 0 {
		t.Errorf("reana-site links %d packages of the full clientset, whose initialisers cost every process of the binary megabytes of memory; "+
			"reach the API server through the backend's API (api.go) instead. "+
			"Packages:\n%s", len(bad), strings.Join(bad, "\n"))
	}
}
