package kubernetes

import (
	"fmt"
	"os"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

// NewClient connects to the cluster: with the kubeconfig file when one is
// given, else with the pod's service account when the daemon runs inside
// the cluster (KUBERNETES_SERVICE_HOST is set). The client speaks the
// core/v1 API only, which is all the backend uses (see [API]).
func NewClient(kubeconfig string) (API, error) {
	var (
		cfg *rest.Config
		err error
	)
	switch {
	case kubeconfig != "":
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
		if err != nil {
			return nil, fmt.Errorf("kubernetes: load kubeconfig %s: %w", kubeconfig, err)
		}
	case os.Getenv("KUBERNETES_SERVICE_HOST") != "":
		cfg, err = rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("kubernetes: in-cluster configuration (service account token): %w", err)
		}
	default:
		return nil, fmt.Errorf("kubernetes: no kubeconfig file given and not running inside a cluster (KUBERNETES_SERVICE_HOST is unset)")
	}
	cfg.UserAgent = "reana-site"
	client, err := newRESTAPI(cfg)
	if err != nil {
		return nil, fmt.Errorf("kubernetes: client for %s: %w", cfg.Host, err)
	}
	return client, nil
}
