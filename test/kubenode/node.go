// Package kubenode is a node agent for tests against a real Kubernetes
// API server (test/kubereal), which has no scheduler and no kubelet: it
// registers a Node, watches the backend's pods (a label selector), binds
// each new one to its Node through the Binding subresource, runs its
// container on this host with test/kubelet (as the pod's uid, gid and
// supplemental groups, in the workspace, as the stand-in's kubelet does)
// and writes the pod's status back: phase, conditions, container state,
// exit code and reason. A graceful delete stops the container (SIGTERM,
// then SIGKILL) and then removes the pod, as a kubelet does.
//
// Secrets: the kubelet reads those a pod references (env secretKeyRef,
// secret volumes) from the API server when the container is created,
// waiting while one is missing. With no controller manager, the agent
// also plays the garbage collector's part for them: when one of its pods
// is gone, the Secrets it owns (ownerReferences) are deleted.
//
// Logs: the API server answers pods/log by asking the kubelet at the
// node's address (Node.status.addresses and daemonEndpoints) for
// /containerLogs/{namespace}/{pod}/{container}. The agent serves that
// endpoint over TLS with a certificate of the cluster's CA, which the API
// server verifies (--kubelet-certificate-authority), and accepts only
// clients with a certificate of that CA (the API server's
// --kubelet-client-certificate), so the backend's Logs path is the real
// one: through the API server's proxy.
//
// Only tests may use it.
package kubenode

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/reana-site/reana-site/test/kubelet"
)

// Config is what the agent needs.
type Config struct {
	// Client may bind pods, write their status, delete them, create
	// events and the Node, and get, list and delete Secrets (the
	// cluster's admin).
	Client    kubernetes.Interface
	Namespace string
	// Selector chooses the pods the agent runs, as a label selector.
	Selector string
	NodeName string
	// Host is the kubelet's; its Secrets are set by Start, to read them
	// from the API server.
	Host kubelet.Host
	// Cert is the log endpoint's certificate, valid for 127.0.0.1 and
	// signed by the CA the API server trusts kubelets with; ClientCA is
	// the CA of the API server's client certificate.
	Cert     tls.Certificate
	ClientCA *x509.CertPool
	Log      *slog.Logger
}

// Node is a running agent.
type Node struct {
	cfg      Config
	ctx      context.Context
	cancel   context.CancelFunc
	informer cache.SharedIndexInformer
	srv      *http.Server
	wg       sync.WaitGroup

	mu   sync.Mutex
	pods map[types.UID]*entry
}

// entry is one pod the agent runs.
type entry struct {
	container *kubelet.Container
	// pod is as last written by the agent: its logs are answered from
	// it, not from the watch, which may lag behind.
	pod      *corev1.Pod
	cancel   context.CancelFunc
	stopping bool
}

// Start registers the Node, serves the log endpoint and starts watching;
// Stop ends it all.
func Start(ctx context.Context, cfg Config) (*Node, error) {
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	cfg.Host.Secrets = apiSecrets{cfg.Client}
	n := &Node{cfg: cfg, pods: map[types.UID]*entry{}}
	n.ctx, n.cancel = context.WithCancel(context.Background())
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("kubenode: listen for the log endpoint: %w", err)
	}
	n.srv = &http.Server{
		Handler:           http.HandlerFunc(n.serveLogs),
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{cfg.Cert},
			ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: cfg.ClientCA, MinVersion: tls.VersionTLS12},
	}
	go func() { _ = n.srv.ServeTLS(l, "", "") }()
	if err := n.register(ctx, l.Addr().(*net.TCPAddr).Port); err != nil {
		n.Stop()
		return nil, err
	}
	pods := cfg.Client.CoreV1().Pods(cfg.Namespace)
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = cfg.Selector
			return pods.List(ctx, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = cfg.Selector
			return pods.Watch(ctx, o)
		},
	}
	n.informer = cache.NewSharedIndexInformer(lw, &corev1.Pod{}, 0, cache.Indexers{})
	if _, err := n.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { n.changed(obj) },
		UpdateFunc: func(_, obj any) { n.changed(obj) },
		DeleteFunc: n.deleted,
	}); err != nil {
		n.Stop()
		return nil, fmt.Errorf("kubenode: watch pods: %w", err)
	}
	go n.informer.RunWithContext(n.ctx)
	if !cache.WaitForCacheSync(ctx.Done(), n.informer.HasSynced) {
		n.Stop()
		return nil, fmt.Errorf("kubenode: the pods of %s never listed: %w", cfg.Namespace, ctx.Err())
	}
	return n, nil
}

// Stop kills every container the agent runs and stops it.
func (n *Node) Stop() {
	n.cancel()
	n.wg.Wait()
	_ = n.srv.Close()
}

// register creates the Node, ready, at 127.0.0.1 with the log endpoint's
// port as its kubelet's.
func (n *Node) register(ctx context.Context, port int) error {
	nodes := n.cfg.Client.CoreV1().Nodes()
	node, err := nodes.Create(ctx, &corev1.Node{ObjectMeta: metav1.ObjectMeta{Name: n.cfg.NodeName}}, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		node, err = nodes.Get(ctx, n.cfg.NodeName, metav1.GetOptions{})
	}
	if err != nil {
		return fmt.Errorf("kubenode: create node %s: %w", n.cfg.NodeName, err)
	}
	now := metav1.Now()
	node.Status = corev1.NodeStatus{
		Addresses:       []corev1.NodeAddress{{Type: corev1.NodeInternalIP, Address: "127.0.0.1"}},
		DaemonEndpoints: corev1.NodeDaemonEndpoints{KubeletEndpoint: corev1.DaemonEndpoint{Port: int32(port)}},
		Conditions: []corev1.NodeCondition{{Type: corev1.NodeReady, Status: corev1.ConditionTrue, Reason: "KubeletReady",
			Message: "kubelet is posting ready status", LastHeartbeatTime: now, LastTransitionTime: now}},
	}
	if _, err := nodes.UpdateStatus(ctx, node, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("kubenode: status of node %s: %w", n.cfg.NodeName, err)
	}
	return nil
}

// changed starts a new pod, or stops one being deleted.
func (n *Node) changed(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		return
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	e, known := n.pods[pod.UID]
	switch {
	case pod.DeletionTimestamp != nil:
		if !known || e.stopping {
			return
		}
		e.stopping = true
		grace := time.Duration(0)
		if pod.DeletionGracePeriodSeconds != nil {
			grace = time.Duration(*pod.DeletionGracePeriodSeconds) * time.Second
		}
		if !e.container.Stop(grace) || grace == 0 {
			// Nothing runs (or no grace): the pod goes at once.
			e.cancel()
			n.remove(pod)
		}
	case !known && pod.Spec.NodeName == "" && pod.Status.Phase == corev1.PodPending:
		ctx, cancel := context.WithCancel(n.ctx)
		e := &entry{container: kubelet.NewContainer(), cancel: cancel, pod: pod.DeepCopy()}
		n.pods[pod.UID] = e
		n.wg.Add(1)
		go n.run(ctx, pod.DeepCopy(), e)
	}
}

// deleted ends whatever still runs for a pod that is gone.
func (n *Node) deleted(obj any) {
	pod, ok := obj.(*corev1.Pod)
	if !ok {
		tomb, isTomb := obj.(cache.DeletedFinalStateUnknown)
		if pod, ok = tomb.Obj.(*corev1.Pod); !isTomb || !ok {
			return
		}
	}
	n.mu.Lock()
	if e, ok := n.pods[pod.UID]; ok {
		e.cancel()
		delete(n.pods, pod.UID)
	}
	n.mu.Unlock()
	n.collectSecrets(pod)
}

// collectSecrets deletes the Secrets the pod owned, as the garbage
// collector of kube-controller-manager does. Those of the agent's pods
// carry the pods' labels, so the selector finds them.
func (n *Node) collectSecrets(pod *corev1.Pod) {
	secrets := n.cfg.Client.CoreV1().Secrets(pod.Namespace)
	list, err := secrets.List(n.ctx, metav1.ListOptions{LabelSelector: n.cfg.Selector})
	if err != nil {
		if n.ctx.Err() == nil {
			n.cfg.Log.Warn("kubenode: list the Secrets a removed pod may own", "pod", pod.Name, "err", err)
		}
		return
	}
	for _, sec := range list.Items {
		if !slices.ContainsFunc(sec.OwnerReferences, func(o metav1.OwnerReference) bool { return o.Kind == "Pod" && o.UID == pod.UID }) {
			continue
		}
		uid := sec.UID
		err := secrets.Delete(n.ctx, sec.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && n.ctx.Err() == nil {
			n.cfg.Log.Warn("kubenode: delete the Secret of a removed pod", "pod", pod.Name, "secret", sec.Name, "err", err)
		}
	}
}

// apiSecrets is the API server's Secrets, as the kubelet reads them.
type apiSecrets struct{ client kubernetes.Interface }

func (a apiSecrets) Secret(ctx context.Context, namespace, name string) (*corev1.Secret, error) {
	sec, err := a.client.CoreV1().Secrets(namespace).Get(ctx, name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("get secret %s/%s: %w", namespace, name, err)
	}
	return sec, nil
}

// run is one pod's life on the node: bound, its container run, its end
// reported; after a graceful delete, removed.
func (n *Node) run(ctx context.Context, pod *corev1.Pod, e *entry) {
	defer n.wg.Done()
	defer e.cancel()
	s := sink{n: n, e: e, pod: pod}
	binding := &corev1.Binding{ObjectMeta: metav1.ObjectMeta{Name: pod.Name, UID: pod.UID},
		Target: corev1.ObjectReference{Kind: "Node", Name: n.cfg.NodeName}}
	if err := n.cfg.Client.CoreV1().Pods(pod.Namespace).Bind(n.ctx, binding, metav1.CreateOptions{}); err != nil {
		if !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
			n.cfg.Log.Warn("kubenode: bind", "pod", pod.Name, "err", err)
		}
		return
	}
	if !s.Update(func(p *corev1.Pod) { kubelet.Scheduled(p, n.cfg.NodeName) }) {
		return
	}
	s.Event(corev1.EventTypeNormal, "Scheduled", "default-scheduler",
		fmt.Sprintf("Successfully assigned %s/%s to %s", pod.Namespace, pod.Name, n.cfg.NodeName))
	kubelet.Scheduled(pod, n.cfg.NodeName)
	if n.cfg.Host.Run(ctx, pod, e.container, s) {
		n.mu.Lock()
		n.remove(pod)
		n.mu.Unlock()
	}
}

// remove deletes the pod for good, as the kubelet does once its
// containers have stopped; the caller holds n.mu.
func (n *Node) remove(pod *corev1.Pod) {
	uid := pod.UID
	err := n.cfg.Client.CoreV1().Pods(pod.Namespace).Delete(n.ctx, pod.Name,
		metav1.DeleteOptions{GracePeriodSeconds: new(int64), Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) && n.ctx.Err() == nil {
		n.cfg.Log.Warn("kubenode: remove a stopped pod", "pod", pod.Name, "err", err)
	}
}

// sink writes what the kubelet reports to the API server.
type sink struct {
	n   *Node
	e   *entry
	pod *corev1.Pod
}

// Update reads the pod, changes its status and writes it, again on a
// conflict (the backend's delete changes the pod too).
func (s sink) Update(mutate func(*corev1.Pod)) bool {
	pods := s.n.cfg.Client.CoreV1().Pods(s.pod.Namespace)
	for {
		p, err := pods.Get(s.n.ctx, s.pod.Name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) || err == nil && p.UID != s.pod.UID {
			return false
		}
		if err != nil {
			s.warn("read a pod", err)
			return false
		}
		mutate(p)
		p, err = pods.UpdateStatus(s.n.ctx, p, metav1.UpdateOptions{})
		switch {
		case err == nil:
			s.n.mu.Lock()
			s.e.pod = p
			s.n.mu.Unlock()
			return true
		case apierrors.IsConflict(err):
			continue
		case apierrors.IsNotFound(err):
			return false
		default:
			s.warn("write a pod's status", err)
			return false
		}
	}
}

func (s sink) Event(typ, reason, component, message string) {
	now := metav1.Now()
	ev := &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", s.pod.Name, time.Now().UnixNano()), Namespace: s.pod.Namespace},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: s.pod.Namespace, Name: s.pod.Name,
			UID: s.pod.UID},
		Type: typ, Reason: reason, Message: message, Count: 1,
		Source:         corev1.EventSource{Component: component, Host: s.n.cfg.NodeName},
		FirstTimestamp: now, LastTimestamp: now,
	}
	if _, err := s.n.cfg.Client.CoreV1().Events(s.pod.Namespace).Create(s.n.ctx, ev, metav1.CreateOptions{}); err != nil {
		s.warn("record an event", err)
	}
}

func (s sink) warn(what string, err error) {
	if s.n.ctx.Err() == nil && !errors.Is(err, context.Canceled) {
		s.n.cfg.Log.Warn("kubenode: "+what, "pod", s.pod.Name, "err", err)
	}
}

// serveLogs answers the kubelet's GET /containerLogs/{ns}/{pod}/{container}
// for the API server's pods/log.
func (n *Node) serveLogs(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.TrimPrefix(r.URL.Path, "/containerLogs/"), "/")
	if r.Method != http.MethodGet || !strings.HasPrefix(r.URL.Path, "/containerLogs/") || len(parts) != 3 {
		http.NotFound(w, r)
		return
	}
	ns, name, container := parts[0], parts[1], parts[2]
	obj, ok, _ := n.informer.GetStore().GetByKey(ns + "/" + name)
	pod, _ := obj.(*corev1.Pod)
	var e *entry
	if ok && pod != nil {
		n.mu.Lock()
		if e = n.pods[pod.UID]; e != nil {
			pod = e.pod.DeepCopy()
		}
		n.mu.Unlock()
	}
	if e == nil {
		http.Error(w, fmt.Sprintf("pod %s/%s is not on node %s", ns, name, n.cfg.NodeName), http.StatusNotFound)
		return
	}
	text, err := kubelet.Select(pod, container, e.container.Logs.String(), r.URL.Query())
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	_, _ = w.Write([]byte(text))
}
