package kubernetes

import (
	"context"
	"fmt"
	"io"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
)

// restAPI is the production API: a REST client for the core/v1 group
// alone, made as the clientset makes its CoreV1 client (same paths, same
// options encoding, protobuf preferred with JSON accepted), but over a
// scheme that holds core/v1 and meta/v1 only, built when a client is made
// rather than at package initialisation.
type restAPI struct {
	client *rest.RESTClient
	params runtime.ParameterCodec
}

var _ API = (*restAPI)(nil)

// newRESTAPI makes the API for the cluster cfg describes.
func newRESTAPI(cfg *rest.Config) (*restAPI, error) {
	scheme := runtime.NewScheme()
	// core/v1 registers meta/v1's Status, WatchEvent and option types
	// under "v1" too (metav1.AddToGroupVersion), which errors, watches and
	// query parameters need.
	if err := corev1.AddToScheme(scheme); err != nil {
		return nil, fmt.Errorf("kubernetes: core/v1 scheme: %w", err)
	}
	codecs := serializer.NewCodecFactory(scheme)
	cfg = rest.CopyConfig(cfg)
	gv := corev1.SchemeGroupVersion
	cfg.GroupVersion = &gv
	cfg.APIPath = "/api"
	cfg.NegotiatedSerializer = rest.CodecFactoryForGeneratedClient(scheme, codecs).WithoutConversion()
	if cfg.UserAgent == "" {
		cfg.UserAgent = rest.DefaultKubernetesUserAgent()
	}
	client, err := rest.RESTClientFor(cfg)
	if err != nil {
		return nil, err
	}
	return &restAPI{client: client, params: runtime.NewParameterCodec(scheme)}, nil
}

// requestTimeout is the client-side bound the clientset puts on lists and
// watches that carry TimeoutSeconds.
func requestTimeout(opts metav1.ListOptions) time.Duration {
	if opts.TimeoutSeconds == nil {
		return 0
	}
	return time.Duration(*opts.TimeoutSeconds) * time.Second
}

func (a *restAPI) CreatePod(ctx context.Context, namespace string, pod *corev1.Pod, opts metav1.CreateOptions) (*corev1.Pod, error) {
	out := &corev1.Pod{}
	err := a.client.Post().UseProtobufAsDefault().
		Namespace(namespace).Resource("pods").
		VersionedParams(&opts, a.params).
		Body(pod).
		Do(ctx).Into(out)
	return out, err
}

func (a *restAPI) GetPod(ctx context.Context, namespace, name string) (*corev1.Pod, error) {
	out := &corev1.Pod{}
	err := a.client.Get().UseProtobufAsDefault().
		Namespace(namespace).Resource("pods").Name(name).
		VersionedParams(&metav1.GetOptions{}, a.params).
		Do(ctx).Into(out)
	return out, err
}

func (a *restAPI) DeletePod(ctx context.Context, namespace, name string) error {
	return a.client.Delete().UseProtobufAsDefault().
		Namespace(namespace).Resource("pods").Name(name).
		Do(ctx).Error()
}

func (a *restAPI) ListPods(ctx context.Context, namespace string, opts metav1.ListOptions) (*corev1.PodList, error) {
	out := &corev1.PodList{}
	err := a.client.Get().UseProtobufAsDefault().
		Namespace(namespace).Resource("pods").
		VersionedParams(&opts, a.params).
		Timeout(requestTimeout(opts)).
		Do(ctx).Into(out)
	return out, err
}

func (a *restAPI) WatchPods(ctx context.Context, namespace string, opts metav1.ListOptions) (watch.Interface, error) {
	opts.Watch = true
	return a.client.Get().UseProtobufAsDefault().
		Namespace(namespace).Resource("pods").
		VersionedParams(&opts, a.params).
		Timeout(requestTimeout(opts)).
		Watch(ctx)
}

func (a *restAPI) PodLogs(ctx context.Context, namespace, name string, opts *corev1.PodLogOptions) (io.ReadCloser, error) {
	return a.client.Get().
		Namespace(namespace).Resource("pods").Name(name).SubResource("log").
		VersionedParams(opts, a.params).
		Stream(ctx)
}

func (a *restAPI) ListEvents(ctx context.Context, namespace string, opts metav1.ListOptions) (*corev1.EventList, error) {
	out := &corev1.EventList{}
	err := a.client.Get().UseProtobufAsDefault().
		Namespace(namespace).Resource("events").
		VersionedParams(&opts, a.params).
		Timeout(requestTimeout(opts)).
		Do(ctx).Into(out)
	return out, err
}

func (a *restAPI) GetClaim(ctx context.Context, namespace, name string) (*corev1.PersistentVolumeClaim, error) {
	out := &corev1.PersistentVolumeClaim{}
	err := a.client.Get().UseProtobufAsDefault().
		Namespace(namespace).Resource("persistentvolumeclaims").Name(name).
		VersionedParams(&metav1.GetOptions{}, a.params).
		Do(ctx).Into(out)
	return out, err
}

func (a *restAPI) CreateSecret(ctx context.Context, namespace string, secret *corev1.Secret, opts metav1.CreateOptions) (*corev1.Secret, error) {
	out := &corev1.Secret{}
	err := a.client.Post().UseProtobufAsDefault().
		Namespace(namespace).Resource("secrets").
		VersionedParams(&opts, a.params).
		Body(secret).
		Do(ctx).Into(out)
	return out, err
}
