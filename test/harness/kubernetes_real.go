package harness

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reana-site/reana-site/batch/kubernetes"
	"github.com/reana-site/reana-site/test/kubelet"
	"github.com/reana-site/reana-site/test/kubenode"
	"github.com/reana-site/reana-site/test/kubereal"
)

// realKube is the real API server of a test binary's run, with its node
// agent: started by the first test that asks, shared by the tests after
// it (each gets the namespace without pods), stopped by Env.Close. Its
// start costs seconds, so it happens once per run; why it could not start
// is remembered, so later tests fall back to the stand-in at once.
type realKube struct {
	mu         sync.Mutex
	failed     string
	dir        string
	cluster    *kubereal.Cluster
	node       *kubenode.Node
	root       string
	daemonUser string
	took       time.Duration
}

// nodeName is the node agent's Node.
const nodeName = "reana-test-node"

// startRealKubernetes gives the test the real API server, or nil and why
// not, which is never a test failure.
func startRealKubernetes(t testing.TB, e *Env) (*Kubernetes, string) {
	t.Helper()
	switch {
	case os.Getenv("REANA_SITE_KUBERNETES_API") == "standin":
		return nil, "REANA_SITE_KUBERNETES_API=standin"
	case os.Geteuid() != 0:
		return nil, "the node agent runs each pod as its user, which needs root"
	case e == nil || e.kube == nil:
		return nil, "no test environment to keep a real API server in"
	}
	rk := e.kube
	root := homesRoot(t, "alice", "bob")
	rk.mu.Lock()
	defer rk.mu.Unlock()
	if rk.failed != "" {
		return nil, rk.failed + " (earlier in this run)"
	}
	if rk.cluster == nil {
		if err := rk.start(root); err != nil {
			rk.failed = err.Error()
			rk.close()
			return nil, rk.failed
		}
		t.Logf("Kubernetes: started the real API server (kube-apiserver 1.37.2, etcd 3.7.0) and the node agent in %s", rk.took.Round(time.Millisecond))
	} else {
		t.Logf("Kubernetes: the real API server of this run")
	}
	if root != rk.root {
		t.Fatalf("the test users' homes moved from %s to %s during the run", rk.root, root)
	}
	c := rk.cluster
	k := &Kubernetes{Kubeconfig: c.Kubeconfig, Namespace: c.Namespace, Claim: c.Claim, Root: root, real: rk}
	_, k.auditFrom = k.readAudit(t)
	t.Cleanup(func() { k.clear(t) })
	return k, ""
}

func (rk *realKube) start(root string) error {
	began := time.Now()
	dir, err := os.MkdirTemp("", "reana-kube-")
	if err != nil {
		return err
	}
	rk.dir, rk.root = dir, root
	rk.cluster, err = kubereal.Launch(dir)
	if err != nil {
		if rk.cluster != nil {
			fmt.Fprintf(os.Stderr, "real API server output:\n%s\n", rk.cluster.Logs())
		}
		return fmt.Errorf("no real API server: %w", err)
	}
	cert, ca, err := rk.cluster.KubeletTLS()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rk.node, err = kubenode.Start(ctx, kubenode.Config{
		Client: rk.cluster.Admin, Namespace: rk.cluster.Namespace,
		Selector: kubernetes.LabelManagedBy + "=" + kubernetes.ManagedBy, NodeName: nodeName,
		Host: kubelet.Host{ClaimName: rk.cluster.Claim, ClaimRoot: root, StopGrace: 2 * time.Second},
		Cert: cert, ClientCA: ca,
		Log: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
	if err != nil {
		return fmt.Errorf("node agent: %w", err)
	}
	rk.daemonUser = "system:serviceaccount:" + rk.cluster.Namespace + ":reana-site"
	rk.took = time.Since(began)
	return nil
}

// close stops the node agent (killing what it runs) and the servers.
func (rk *realKube) close() {
	if rk.node != nil {
		rk.node.Stop()
		rk.node = nil
	}
	if rk.cluster != nil {
		rk.cluster.Close()
		rk.cluster = nil
	}
	if rk.dir != "" {
		_ = os.RemoveAll(rk.dir)
		rk.dir = ""
	}
}

// clear leaves the namespace as the next test must find it: no pods (the
// node agent kills their processes), no SCC refusal.
func (k *Kubernetes) clear(t testing.TB) {
	c := k.real.cluster
	if k.refusing {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.RefuseLikeSCC(ctx, false); err != nil {
			t.Errorf("clean up the Kubernetes namespace: %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	pods := c.Admin.CoreV1().Pods(k.Namespace)
	if err := pods.DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}, metav1.ListOptions{}); err != nil {
		t.Errorf("clean up the Kubernetes namespace: %v", err)
	}
	for {
		list, err := pods.List(ctx, metav1.ListOptions{})
		if err == nil && len(list.Items) == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Errorf("clean up the Kubernetes namespace: pods left: %v", err)
			return
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// audit is what the audit log says of the test's pod creates and deletes.
func (k *Kubernetes) audit(t testing.TB) []kubereal.AuditEvent {
	t.Helper()
	events, _ := k.readAudit(t)
	return events
}

func (k *Kubernetes) readAudit(t testing.TB) ([]kubereal.AuditEvent, int64) {
	t.Helper()
	events, end, err := k.real.cluster.Audit(k.auditFrom)
	if err != nil {
		t.Fatal(err)
	}
	return events, end
}
