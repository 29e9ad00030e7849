package kubernetes

import (
	"context"
	"io"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	clientset "k8s.io/client-go/kubernetes"
)

// ClientsetAPI is the backend's API over a clientset, in tests the fake
// one (k8s.io/client-go/kubernetes/fake), whose tracker, reactors and
// recorded actions the tests use. Production code never links the
// clientset (see [API]); it is exported here for the kubernetes_test
// package.
func ClientsetAPI(c clientset.Interface) API { return clientsetAPI{c} }

type clientsetAPI struct{ c clientset.Interface }

func (a clientsetAPI) CreatePod(ctx context.Context, namespace string, pod *corev1.Pod, opts metav1.CreateOptions) (*corev1.Pod, error) {
	return a.c.CoreV1().Pods(namespace).Create(ctx, pod, opts)
}

func (a clientsetAPI) GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	return a.c.CoreV1().Pods(namespace).Get(ctx, name, metav1.GetOptions{})
}

func (a clientsetAPI) DeletePod(ctx context.Context, namespace, name string) error {
	return a.c.CoreV1().Pods(namespace).Delete(ctx, name, metav1.DeleteOptions{})
}

func (a clientsetAPI) ListPods(ctx context.Context, namespace string, opts metav1.ListOptions) (*corev1.PodList, error) {
	return a.c.CoreV1().Pods(namespace).List(ctx, opts)
}

func (a clientsetAPI) WatchPods(ctx context.Context, namespace string, opts metav1.ListOptions) (watch.Interface, error) {
	return a.c.CoreV1().Pods(namespace).Watch(ctx, opts)
}

func (a clientsetAPI) PodLogs(ctx context.Context, namespace, name string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
	return a.c.CoreV1().Pods(namespace).GetLogs(name, opts).Stream(ctx)
}

func (a clientsetAPI) ListEvents(ctx context.Context, namespace string, opts metav1.ListOptions) (*corev1.EventList, error) {
	return a.c.CoreV1().Events(namespace).List(ctx, opts)
}

func (a clientsetAPI) GetClaim(ctx context.Context, namespace, name string) (*corev1.PersistentVolumeClaim, error) {
	return a.c.CoreV1().PersistentVolumeClaims(namespace).Get(ctx, name, metav1.GetOptions{})
}

// IsWatchListSemanticsUnSupported passes on the fake clientset's answer:
// its watch cannot stream the initial list, so the informer lists first,
// as it did when built by the informer factory on the clientset.
func (a clientsetAPI) CreateSecret(ctx context.Context, namespace string, secret *corev1.Secret, opts metav1.CreateOptions) (*corev1.Secret, error) {
	return a.c.CoreV1().Secrets(namespace).Create(ctx, secret, opts)
}

func (a clientsetAPI) IsWatchListSemanticsUnSupported() bool {
	u, ok := a.c.(interface{ IsWatchListSemanticsUnSupported() bool })
	return ok && u.IsWatchListSemanticsUnSupported()
}
