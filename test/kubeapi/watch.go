package kubeapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/watch"
)

// change is one entry of the pods' history, which watches started from a
// resourceVersion replay.
type change struct {
	rv  int64
	typ watch.EventType
	pod *corev1.Pod
}

// watchEvent is one line of a watch stream (meta/v1 WatchEvent).
type watchEvent struct {
	Type   watch.EventType `json:"type"`
	Object runtime.Object  `json:"object"`
}

type watcher struct {
	ns     string
	labels labels.Selector
	fields fields.Selector
	ch     chan watchEvent
	// dropped is closed when the server gives up on a watch too slow to
	// take its events; the client then watches again from its last
	// resourceVersion, as it would after any ended watch.
	dropped chan struct{}
}

func (w *watcher) matches(p *corev1.Pod) bool {
	return (w.ns == "" || p.Namespace == w.ns) && w.labels.Matches(labels.Set(p.Labels)) && w.fields.Matches(podFields(p))
}

// changed gives a pod the next resourceVersion, records the change and
// sends it to the watches that select the pod; the caller holds s.mu. A
// pod whose labels change is not moved in or out of a watch's selection
// (the backend never relabels).
func (s *Server) changed(typ watch.EventType, p *corev1.Pod) {
	s.rv++
	p.ResourceVersion = strconv.FormatInt(s.rv, 10)
	c := change{rv: s.rv, typ: typ, pod: p.DeepCopy()}
	s.history = append(s.history, c)
	for w := range s.watchers {
		if !w.matches(c.pod) {
			continue
		}
		select {
		case w.ch <- watchEvent{Type: typ, Object: typed(c.pod)}:
		default:
			close(w.dropped)
			delete(s.watchers, w)
		}
	}
}

// tooLarge is the watch cache's answer for a resourceVersion it has not
// reached (apiserver storage.NewTooLargeResourceVersionError), which
// client-go's reflector recognises by its cause.
func tooLarge(asked, current int64) *metav1.Status {
	return &metav1.Status{Status: metav1.StatusFailure, Code: http.StatusGatewayTimeout, Reason: metav1.StatusReasonTimeout,
		Message: fmt.Sprintf("Too large resource version: %d, current: %d", asked, current),
		Details: &metav1.StatusDetails{RetryAfterSeconds: 1,
			Causes: []metav1.StatusCause{{Type: metav1.CauseTypeResourceVersionTooLarge, Message: "Too large resource version"}}}}
}

// watchPods streams pod changes as kube-apiserver does: one JSON
// WatchEvent a line
// (https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes).
// Where it starts follows the resourceVersion semantics for watch
// (https://kubernetes.io/docs/reference/using-api/api-concepts/#semantics-for-watch):
//   - unset or "0": synthetic ADDED events for the current pods, then
//     changes ("Get State and Start at Most Recent" / "at Any");
//   - sendInitialEvents=true (the streaming list,
//     https://kubernetes.io/docs/reference/using-api/api-concepts/#streaming-lists):
//     the same, closed by a BOOKMARK annotated k8s.io/initial-events-end;
//   - any other value: the changes after it ("Start at Exact"), or a 410
//     Gone ERROR event once history that old has been compacted.
//
// Periodic bookmarks are not sent (the API lets servers omit them).
func (s *Server) watchPods(w http.ResponseWriter, r *http.Request, ns string) {
	opts, st := s.listOptions(r)
	if st == nil {
		st = checkFields(opts.FieldSelector, podFields(&corev1.Pod{}))
	}
	if st != nil {
		writeStatus(w, st)
		return
	}
	var from int64
	exact := opts.ResourceVersion != "" && opts.ResourceVersion != "0"
	if exact {
		var err error
		if from, err = strconv.ParseInt(opts.ResourceVersion, 10, 64); err != nil || from < 0 {
			writeStatus(w, &apierrors.NewBadRequest(fmt.Sprintf("invalid resource version %q", opts.ResourceVersion)).ErrStatus)
			return
		}
	}
	initial := opts.SendInitialEvents == nil && !exact || opts.SendInitialEvents != nil && *opts.SendInitialEvents
	wt := &watcher{ns: ns, labels: opts.LabelSelector, fields: opts.FieldSelector, ch: make(chan watchEvent, 4096), dropped: make(chan struct{})}

	var first []watchEvent
	s.mu.Lock()
	if exact && from > s.rv {
		current := s.rv
		s.mu.Unlock()
		writeStatus(w, tooLarge(from, current))
		return
	}
	switch {
	case initial:
		for _, key := range s.podKeys() {
			if p := s.pods[key].pod; wt.matches(p) {
				first = append(first, watchEvent{Type: watch.Added, Object: typed(p)})
			}
		}
		if opts.SendInitialEvents != nil && opts.AllowWatchBookmarks {
			first = append(first, watchEvent{Type: watch.Bookmark, Object: &corev1.Pod{
				TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
				ObjectMeta: metav1.ObjectMeta{ResourceVersion: strconv.FormatInt(s.rv, 10),
					Annotations: map[string]string{metav1.InitialEventsAnnotationKey: "true"}},
			}})
		}
	case exact && from < s.compacted:
		gone := apierrors.NewResourceExpired(fmt.Sprintf("too old resource version: %d (%d)", from, s.compacted)).ErrStatus
		gone.TypeMeta = metav1.TypeMeta{Kind: "Status", APIVersion: "v1"}
		first = append(first, watchEvent{Type: watch.Error, Object: &gone})
	case exact:
		for _, c := range s.history {
			if c.rv > from && wt.matches(c.pod) {
				first = append(first, watchEvent{Type: c.typ, Object: typed(c.pod)})
			}
		}
	}
	expired := len(first) == 1 && first[0].Type == watch.Error
	if !expired {
		s.watchers[wt] = struct{}{}
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(s.watchers, wt)
		s.mu.Unlock()
	}()

	var timeout <-chan time.Time
	if opts.TimeoutSeconds != nil && *opts.TimeoutSeconds > 0 {
		t := time.NewTimer(time.Duration(*opts.TimeoutSeconds) * time.Second)
		defer t.Stop()
		timeout = t.C
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Transfer-Encoding", "chunked")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w) // one event a line
	flush := w.(http.Flusher).Flush
	for _, e := range first {
		if enc.Encode(e) != nil {
			return
		}
	}
	flush()
	if expired {
		return
	}
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		case <-wt.dropped:
			return
		case <-timeout:
			return
		case e := <-wt.ch:
			if enc.Encode(e) != nil {
				return
			}
			flush()
		}
	}
}
