package kubeapi

import (
	"path/filepath"

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// KubeconfigFile writes a kubeconfig for the stand-in into dir and returns
// its path: one cluster (the server, with its CA certificate inline), one
// user with the bearer token, one context in namespace, as `kubectl
// config` would write them
// (https://kubernetes.io/docs/concepts/configuration/organize-cluster-access-kubeconfig/).
// The file is readable by its owner only, like a real token's.
func (s *Server) KubeconfigFile(dir, namespace string) string {
	s.t.Helper()
	const name = "kubeapi-standin"
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: s.URL, CertificateAuthorityData: s.CAData}
	cfg.AuthInfos[DaemonAccount] = &clientcmdapi.AuthInfo{Token: s.Token}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: DaemonAccount, Namespace: namespace}
	cfg.CurrentContext = name
	path := filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*cfg, path); err != nil {
		s.t.Fatalf("kubeapi: write kubeconfig: %v", err)
	}
	return path
}
