package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
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
//
// Its health is recorded from every request it makes (see noteWatch): the
// informer itself retries quietly forever, and a reflector whose watch
// cannot be reopened (connection refused) retries inside without calling
// its watch error handler, so the handler alone would miss an API server
// that went away.
func (b *Backend) newInformer() cache.SharedIndexInformer {
	ns := b.cfg.Namespace
	lw := &cache.ListWatch{
		ListWithContextFunc: func(ctx context.Context, o metav1.ListOptions) (runtime.Object, error) {
			o.LabelSelector = ManagedSelector
			l, err := b.api.ListPods(ctx, ns, o)
			b.noteWatch(ctx, err)
			return l, err
		},
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector = ManagedSelector
			w, err := b.api.WatchPods(ctx, ns, o)
			if err != nil {
				b.noteWatch(ctx, err)
				return w, err
			}
			// An accepted watch proves nothing yet: after an API server
			// restart every earlier resourceVersion has expired, and the
			// watch is accepted and then ends at once (or with a 410), the
			// cache stale until the next list. Only what the stream
			// delivers ends an outage.
			streaming := o.SendInitialEvents != nil && *o.SendInitialEvents
			return newHealthWatch(ctx, w, streaming, b.noteWatch), nil
		},
	}
	// As the informer factory does: an API that says it cannot stream
	// the initial list in a watch (the fake clientset) gets a plain list
	// and watch; a real API server gets the streaming list when
	// client-go's WatchListClient feature is on.
	inf := cache.NewSharedIndexInformer(cache.ToListWatcherWithWatchListSemantics(lw, b.api), &corev1.Pod{}, 0,
		cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	// Neither can fail: the informer has not started.
	_ = inf.SetTransform(stripManagedFields)
	_ = inf.SetWatchErrorHandlerWithContext(func(ctx context.Context, r *cache.Reflector, err error) {
		// What ends a list-and-watch round: a failed list, a watch
		// that could not be opened, a broken stream. An expired
		// resourceVersion (410) and a closed stream are routine.
		if !apierrors.IsResourceExpired(err) && !apierrors.IsGone(err) && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			b.noteWatch(ctx, err)
		}
		cache.DefaultWatchErrorHandler(ctx, r, err)
	})
	return inf
}

// noteWatch records how a request of the informer went. A failure starts
// (or continues) an outage; a success ends it. Success is a list of this
// backend's pods answered, a streaming list delivered to its end (the
// initial-events-end bookmark), or a watch from a known resourceVersion
// delivering an event, which shows that version is still valid. A watch
// merely accepted is no success (see newInformer). The informer retries
// until it has the pods, so an outage lasts exactly as long as its cache
// may be stale. A request the informer itself cancelled (the daemon
// stopping) tells nothing.
func (b *Backend) noteWatch(ctx context.Context, err error) {
	if ctx.Err() != nil {
		return
	}
	b.mu.Lock()
	was, since := b.watchErr, b.watchErrSince
	if err == nil {
		b.watchErr = nil
	} else {
		if was == nil {
			b.watchErrSince = b.now()
		}
		b.watchErr = err
	}
	b.mu.Unlock()
	switch {
	case err != nil && was == nil:
		b.log.Warn("kubernetes: listing or watching the pods failed; retrying", "err", err)
	case err == nil && was != nil:
		b.log.Info("kubernetes: watching the pods again", "failed_for", b.now().Sub(since).Round(time.Second))
	}
}

// watchOutage is the informer's failure once it has lasted longer than
// WatchErrorGrace, wrapping batch.ErrUnavailable; nil otherwise.
func (b *Backend) watchOutage() error {
	b.mu.Lock()
	err, since := b.watchErr, b.watchErrSince
	b.mu.Unlock()
	if err == nil || b.now().Sub(since) <= b.cfg.WatchErrorGrace {
		return nil
	}
	hint := "the API server cannot be reached or fails"
	switch {
	case apierrors.IsUnauthorized(err):
		hint = "the API server refuses the daemon's credentials: a service-account token in the kubeconfig expires, " +
			"and the daemon reads the kubeconfig only when it starts; renew the token and restart the daemon (deploy/kubernetes/README.md)"
	case apierrors.IsForbidden(err):
		hint = "the daemon may no longer list or watch pods there: check the Role \"reana-site\" and its RoleBinding (deploy/kubernetes/README.md)"
	case certificateError(err):
		hint = "the API server's TLS certificate is not trusted: check the kubeconfig's server address and certificate-authority data, and that the certificate has not expired"
	}
	return fmt.Errorf("kubernetes: the pods of namespace %s cannot be listed or watched since %s (%s): %v; %s; "+
		"running steps go on and are checked once it works again: %w",
		b.cfg.Namespace, since.Format(time.RFC3339), b.now().Sub(since).Round(time.Second), err, hint, batch.ErrUnavailable)
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

// healthWatch passes a watch's events on and tells noteWatch once the
// stream has shown the cache is current: for a streaming list, at its
// initial-events-end bookmark; for a watch from a resourceVersion, at its
// first event that is not an error.
type healthWatch struct {
	inner watch.Interface
	out   chan watch.Event
	stop  chan struct{}
	once  sync.Once
}

// initialEventsEnd is the annotation of the bookmark that ends a
// streaming list (metav1.InitialEventsAnnotationKey).
const initialEventsEnd = metav1.InitialEventsAnnotationKey

func newHealthWatch(ctx context.Context, inner watch.Interface, streaming bool, note func(context.Context, error)) *healthWatch {
	w := &healthWatch{inner: inner, out: make(chan watch.Event), stop: make(chan struct{})}
	go func() {
		defer close(w.out)
		proven := false
		for ev := range inner.ResultChan() {
			if !proven && ev.Type != watch.Error && (!streaming || endsInitialEvents(ev)) {
				proven = true
				note(ctx, nil)
			}
			select {
			case w.out <- ev:
			case <-w.stop:
				return
			}
		}
	}()
	return w
}

func endsInitialEvents(ev watch.Event) bool {
	if ev.Type != watch.Bookmark {
		return false
	}
	m, ok := ev.Object.(metav1.Object)
	return ok && m.GetAnnotations()[initialEventsEnd] == "true"
}

func (w *healthWatch) ResultChan() <-chan watch.Event { return w.out }

func (w *healthWatch) Stop() {
	w.once.Do(func() {
		close(w.stop)
		w.inner.Stop()
	})
}
