package kubernetes

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
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
	if b.factory != nil {
		b.mu.Unlock()
		return fmt.Errorf("kubernetes: backend already started")
	}
	factory := informers.NewSharedInformerFactoryWithOptions(b.client, 0,
		informers.WithNamespace(b.cfg.Namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = ManagedSelector }),
		informers.WithTransform(stripManagedFields),
	)
	inf := factory.Core().V1().Pods()
	b.factory, b.pods, b.synced = factory, inf.Lister(), inf.Informer().HasSynced
	b.started = b.now()
	b.mu.Unlock()

	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{DeleteFunc: b.onDelete}); err != nil {
		return fmt.Errorf("kubernetes: watch pods: %w", err)
	}
	// One list first: its error says what is wrong (RBAC, no route to the
	// API server), where the informer would only retry quietly.
	probe, cancel := context.WithTimeout(ctx, b.cfg.SyncTimeout)
	_, err := b.client.CoreV1().Pods(b.cfg.Namespace).List(probe, metav1.ListOptions{LabelSelector: ManagedSelector, Limit: 1})
	cancel()
	// The informer starts whatever the probe said: it retries on its own,
	// and Status works as soon as it has its first list.
	factory.Start(ctx.Done())
	go func() {
		<-ctx.Done()
		factory.Shutdown()
	}()
	go b.loop(ctx)
	if err != nil {
		err = b.apiError("list pods", err)
		b.setPreflight(err)
		return err
	}
	syncCtx, cancel := context.WithTimeout(ctx, b.cfg.SyncTimeout)
	defer cancel()
	if !cache.WaitForCacheSync(syncCtx.Done(), inf.Informer().HasSynced) {
		err := fmt.Errorf("kubernetes: the list of pods in namespace %s did not arrive within %s: %w", b.cfg.Namespace, b.cfg.SyncTimeout, batch.ErrUnavailable)
		b.setPreflight(err)
		return err
	}
	b.RunPreflight(ctx)
	return nil
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
