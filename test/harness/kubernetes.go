package harness

import (
	"context"
	"net/http"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reana-site/reana-site/test/kubeapi"
)

// Kubernetes is a Kubernetes API server for one test and a node that runs
// each step pod's command on this host as the pod's uid, gid and groups:
// the real kube-apiserver and etcd of the kit (test/kubereal) with the
// node agent (test/kubenode), or the stand-in (test/kubeapi) with its
// kubelet. The daemon finds it the way a site points it at a cluster: a
// kubeconfig, the namespace, the workspace claim and the host directory
// the claim's volume is.
type Kubernetes struct {
	Kubeconfig string
	Namespace  string
	Claim      string
	// Root is the claim's volume on this host, the daemon's
	// REANA_SITE_KUBERNETES_WORKSPACE_ROOT: the directory holding the test
	// users' homes, since the daemon's workspaces are under the homes
	// ({home}/.reana-e2e/..., see StartDaemon).
	Root string
	// Standin is the stand-in, for the faults only it produces on demand;
	// nil against the real API server.
	Standin *kubeapi.Server

	real      *realKube
	auditFrom int64
	refusing  bool // RefuseLikeSCC was called: clear lifts it
}

// StartKubernetes gives the test the real API server (started once per
// test binary run, see realKube) when the kit is there and the tests run
// as root, else the stand-in, saying why.
func StartKubernetes(t testing.TB, e *Env) *Kubernetes {
	t.Helper()
	k, why := startRealKubernetes(t, e)
	if k != nil {
		return k
	}
	t.Logf("Kubernetes: using the stand-in API server (%s)", why)
	return StartKubernetesStandin(t)
}

// StartKubernetesStandin starts a stand-in for one test; it stops, killing
// what its kubelet still runs, when the test ends (after the daemons the
// test started later).
func StartKubernetesStandin(t testing.TB, opts ...kubeapi.Option) *Kubernetes {
	t.Helper()
	root := homesRoot(t, "alice", "bob")
	k := &Kubernetes{Namespace: kubeapi.DefaultNamespace, Claim: kubeapi.DefaultClaim, Root: root}
	k.Standin = kubeapi.Start(t, append([]kubeapi.Option{kubeapi.WithClaim(k.Claim, root)}, opts...)...)
	// Root's own directory, like the real file's: it holds a token.
	k.Kubeconfig = k.Standin.KubeconfigFile(t.TempDir(), k.Namespace)
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

// DaemonEnv points the daemon at the API server, with the local backend
// too.
func (k *Kubernetes) DaemonEnv() []string {
	return []string{
		"REANA_SITE_BACKENDS=local,kubernetes",
		"REANA_SITE_KUBERNETES_KUBECONFIG=" + k.Kubeconfig,
		"REANA_SITE_KUBERNETES_NAMESPACE=" + k.Namespace,
		"REANA_SITE_KUBERNETES_CLAIM=" + k.Claim,
		"REANA_SITE_KUBERNETES_WORKSPACE_ROOT=" + k.Root,
	}
}

// Real reports whether this is the real API server.
func (k *Kubernetes) Real() bool { return k.real != nil }

// Pods are the namespace's pods.
func (k *Kubernetes) Pods(t testing.TB) []corev1.Pod {
	t.Helper()
	if k.Standin != nil {
		return k.Standin.Pods()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	list, err := k.real.cluster.Admin.CoreV1().Pods(k.Namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatalf("list the pods: %v", err)
	}
	return list.Items
}

// Pod is a pod of the namespace, if it exists.
func (k *Kubernetes) Pod(t testing.TB, name string) (*corev1.Pod, bool) {
	t.Helper()
	for _, p := range k.Pods(t) {
		if p.Name == name {
			return &p, true
		}
	}
	return nil, false
}

// Creations are the pod creates the API server answered during the test
// (from its audit log, for the real one).
func (k *Kubernetes) Creations(t testing.TB) []kubeapi.Creation {
	t.Helper()
	if k.Standin != nil {
		return k.Standin.Creations()
	}
	var out []kubeapi.Creation
	for _, e := range k.audit(t) {
		if e.Verb == "create" {
			out = append(out, kubeapi.Creation{Namespace: e.ObjectRef.Namespace, Name: e.ObjectRef.Name, DryRun: e.DryRun(), Code: e.ResponseStatus.Code})
		}
	}
	return out
}

// DeletedByDaemon reports whether the daemon asked the API server to
// delete the pod during the test.
func (k *Kubernetes) DeletedByDaemon(t testing.TB, name string) bool {
	t.Helper()
	if k.Standin != nil {
		for _, r := range k.Standin.Requests() {
			if r.Method == http.MethodDelete && r.URL.Path == "/api/v1/namespaces/"+k.Namespace+"/pods/"+name {
				return true
			}
		}
		return false
	}
	for _, e := range k.audit(t) {
		if e.Verb == "delete" && e.ObjectRef.Name == name && e.User.Username == k.real.daemonUser {
			return true
		}
	}
	return false
}

// RefuseLikeSCC makes every pod create fail as OpenShift's SCC admission
// refuses a step service account not granted nonroot-v2, or lifts that:
// the stand-in answers so, the real API server's own admission does (a
// ValidatingAdmissionPolicy with OpenShift's words).
func (k *Kubernetes) RefuseLikeSCC(t testing.TB, refuse bool) {
	t.Helper()
	if k.Standin != nil {
		if refuse {
			k.Standin.SetCreateRefusal(kubeapi.SCCRefusal())
		} else {
			k.Standin.SetCreateRefusal(0, "", "")
		}
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	k.refusing = true
	if err := k.real.cluster.RefuseLikeSCC(ctx, refuse); err != nil {
		t.Fatal(err)
	}
}
