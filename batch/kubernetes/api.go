package kubernetes

import (
	"context"
	"io"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
)

// API is the part of the Kubernetes API the backend uses: pods, their
// logs and events, and the workspace claim. [NewClient] returns the one
// that talks to a cluster; tests put one over the fake clientset.
//
// The backend does not take the full clientset (k8s.io/client-go/kubernetes)
// on purpose: linking it registers every API group of Kubernetes in
// package initialisers, which costs some 16 MB of resident memory in every
// process of the reana-site binary, the short-lived per-user helpers
// included, whether or not the Kubernetes backend is configured.
//
// Every method takes the namespace, because a job's handle records the
// namespace of its pod, which need not be the one configured now. Errors
// are the API server's own (*apierrors.StatusError) or the transport's,
// as the clientset returns them.
type API interface {
	// CreatePod creates pod in namespace; opts carry DryRun and
	// FieldManager.
	CreatePod(ctx context.Context, namespace string, pod *corev1.Pod, opts metav1.CreateOptions) (*corev1.Pod, error)
	GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error)
	DeletePod(ctx context.Context, namespace, name string) error
	ListPods(ctx context.Context, namespace string, opts metav1.ListOptions) (*corev1.PodList, error)
	// WatchPods watches the pods of namespace; opts.Watch is set by the
	// implementation.
	WatchPods(ctx context.Context, namespace string, opts metav1.ListOptions) (watch.Interface, error)
	// PodLogs streams a container's output; the caller closes it.
	PodLogs(ctx context.Context, namespace, name string, opts *corev1.PodLogOptions) (io.ReadCloser, error)
	ListEvents(ctx context.Context, namespace string, opts metav1.ListOptions) (*corev1.EventList, error)
	GetClaim(ctx context.Context, namespace, name string) (*corev1.PersistentVolumeClaim, error)
	// CreateSecret creates a step pod's Secret (see withSecrets).
	CreateSecret(ctx context.Context, namespace string, secret *corev1.Secret, opts metav1.CreateOptions) (*corev1.Secret, error)
}
