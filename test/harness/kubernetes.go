package harness

import (
	"os/user"
	"path/filepath"
	"strings"
	"testing"

	"github.com/reana-site/reana-site/test/kubeapi"
)

// Kubernetes is a private Kubernetes API stand-in (test/kubeapi) with its
// stand-in kubelet, which runs each step pod's command on this host as the
// pod's uid, gid and groups. The daemon finds it the way a site points it
// at a cluster: a kubeconfig, the namespace, the workspace claim and the
// host directory the claim's volume is.
type Kubernetes struct {
	*kubeapi.Server
	Kubeconfig string
	Namespace  string
	Claim      string
	// Root is the claim's volume on this host, the daemon's
	// REANA_SITE_KUBERNETES_WORKSPACE_ROOT: the directory holding the test
	// users' homes, since the daemon's workspaces are under the homes
	// ({home}/.reana-e2e/..., see StartDaemon).
	Root string
}

// StartKubernetes starts a stand-in for one test; it stops, killing what
// its kubelet still runs, when the test ends (after the daemons the test
// started later).
func StartKubernetes(t testing.TB, opts ...kubeapi.Option) *Kubernetes {
	t.Helper()
	root := homesRoot(t, "alice", "bob")
	k := &Kubernetes{Namespace: kubeapi.DefaultNamespace, Claim: kubeapi.DefaultClaim, Root: root}
	k.Server = kubeapi.Start(t, append([]kubeapi.Option{kubeapi.WithClaim(k.Claim, root)}, opts...)...)
	// Root's own directory, like the real file's: it holds a token.
	k.Kubeconfig = k.KubeconfigFile(t.TempDir(), k.Namespace)
	return k
}

// homesRoot is the directory that holds the homes of the test users.
func homesRoot(t testing.TB, names ...string) string {
	t.Helper()
	root := ""
	for _, name := range names {
		u, err := user.Lookup(name)
		if err != nil {
			t.Fatalf("test user %s missing (run test/setup.sh): %v", name, err)
		}
		dir := filepath.Dir(u.HomeDir)
		switch {
		case root == "":
			root = dir
		case dir != root:
			t.Fatalf("the test users' homes are not in one directory (%s, %s): the Kubernetes workspace root must hold every workspace", root, dir)
		}
	}
	if root == "/" || !strings.HasPrefix(root, "/") {
		t.Fatalf("the test users' homes are in %q, which cannot be the Kubernetes workspace root", root)
	}
	return root
}

// DaemonEnv points the daemon at the stand-in, with the local backend too.
func (k *Kubernetes) DaemonEnv() []string {
	return []string{
		"REANA_SITE_BACKENDS=local,kubernetes",
		"REANA_SITE_KUBERNETES_KUBECONFIG=" + k.Kubeconfig,
		"REANA_SITE_KUBERNETES_NAMESPACE=" + k.Namespace,
		"REANA_SITE_KUBERNETES_CLAIM=" + k.Claim,
		"REANA_SITE_KUBERNETES_WORKSPACE_ROOT=" + k.Root,
	}
}
