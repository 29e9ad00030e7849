package kubernetes

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"

	"github.com/reana-site/reana-site/batch"
)

// janitorInterval is how often finished pods past their retention are
// looked for (in the cache: it costs no API call unless one is found).
const janitorInterval = time.Minute

// Start makes the backend ready: it checks that the namespace's pods can
// be listed, starts the one shared informer on this backend's pods and
// waits for its first list, then runs the preflight now and every
// PreflightInterval, and deletes finished pods past PodRetention, until
// ctx ends. An API server that cannot be reached gives an error wrapping
// batch.ErrUnavailable; the daemon may run on, and Status reports the
// outage until the informer has synced.
func (b *Backend) Start(ctx context.Context) error {
	b.mu.Lock()
	if b.informer != nil {
		b.mu.Unlock()
		return fmt.Errorf("kubernetes: backend already started")
	}
	inf := b.newInformer()
	b.informer, b.pods, b.synced = inf, corev1listers.NewPodLister(inf.GetIndexer()), inf.HasSynced
	b.started = b.now()
	b.mu.Unlock()

	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: b.onDelete}); err != nil {
		return fmt.Errorf("kubernetes: watch pods: %w", err)
	}
	// One list first: its error says what is wrong (RBAC, no route to the
	// API server), where the informer would only retry quietly.
	probe, cancel := context.WithTimeout(ctx, b.cfg.SyncTimeout)
	_, err := b.api.ListPods(probe, b.cfg.Namespace, metav1.ListOptions{LabelSelector: ManagedSelector, Limit: 1})
	cancel()
	// The informer starts whatever the probe said: it retries on its own,
	// and Status works as soon as it has its first list. It stops when
	// ctx ends.
	go inf.RunWithContext(ctx)
	go b.loop(ctx)
	if err != nil {
		err = b.apiError("list pods", err)
		b.setPreflight(err)
		return err
	}
	syncCtx, cancel := context.WithTimeout(ctx, b.cfg.SyncTimeout)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), inf.HasSynced) {
		err := fmt.Errorf("kubernetes: the list of pods in namespace %s did not arrive within %s: %w", b.cfg.Namespace, b.cfg.SyncTimeout, batch.ErrUnavailable)
		b.setPreflight(err)
		return err
	}
	b.RunPreflight(ctx)
	return nil
}

// newInformer is the one informer on this backend's pods: those of the
// configured namespace that carry the managed-by label, without their
// field management records. It is built on [API] rather than taken from
// client-go's informer factory, which needs the full clientset.
func (b *Backend) newInformer() cache.SharedIndexInformer {
	ns := b.cfg.Namespace
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = ManagedSelector
			return b.api.ListPods(ctx, ns, o)
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = ManagedSelector
			return b.api.WatchPods(ctx, ns, o)
		},
	}
	// As the informer factory does: an API that says it cannot stream
	// the initial list in a watch (the fake clientset) gets a plain list
	// and watch; a real API server gets the streaming list when
	// client-go's WatchListClient feature is on.
	inf := cache.NewSharedIndexInformer(cache.ToListWatcherWithWatchListSemantics(lw, b.api), &corev1.Pod{}, 0,
		cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	// Cannot fail: the informer has not started.
	_ = inf.SetTransform(stripManagedFields)
	return inf
}

// loop runs the preflight and the janitor on their timers until ctx ends.
func (b *Backend) loop(ctx context.Context) {
	pre := time.NewTicker(b.cfg.PreflightInterval)
	defer pre.Stop()
	jan := time.NewTicker(janitorInterval)
	defer jan.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-pre.C:
			b.RunPreflight(ctx)
		case <-jan.C:
			b.collect(ctx)
		}
	}
}

// stripManagedFields keeps the cache small: field management records can
// outweigh the rest of a pod.
func stripManagedFields(obj any) (any, error) {
	if m, ok := obj.(metav1.ObjectMetaAccessor); ok {
		m.GetObjectMeta().SetManagedFields(nil)
	}
	return obj, nil
}

// onDelete remembers the last state of a pod that went away, so a step
// whose pod someone deleted after it ended still gets its real outcome.
func (b *Backend) onDelete(obj any) {
	if t, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj = t.Obj
	}
	pod, ok := obj.(*corev1.Pod)
	if !ok || !ours(pod, "") {
		return
	}
	b.remember(b.gone, pod.Name, remembered{pod: pod})
}

// ready reports whether the informer has its first list.
func (b *Backend) ready() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.synced != nil && b.synced()
}
