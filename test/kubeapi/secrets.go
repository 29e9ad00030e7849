package kubeapi

import (
	"context"
	"net/http"
	"strconv"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

// Secrets, as far as step pods use them: create (no list, get or watch:
// the daemon's Role has create only), the garbage collector deleting a
// Secret with the pod that owns it (ownerReferences), and the store the
// node's kubelet (test/kubelet) reads a pod's Secrets from: env
// valueFrom.secretKeyRef and secret volumes.

var secretsResource = schema.GroupResource{Resource: "secrets"}

func (s *Server) createSecret(w http.ResponseWriter, r *http.Request, ns string) {
	sec, ok := readObject[*corev1.Secret](s, w, r)
	if !ok {
		return
	}
	if sec.Namespace != "" && sec.Namespace != ns {
		writeStatus(w, &apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request").ErrStatus)
		return
	}
	sec.Namespace = ns
	s.mu.Lock()
	defer s.mu.Unlock()
	key := ns + "/" + sec.Name
	if _, ok := s.secrets[key]; ok {
		writeStatus(w, &apierrors.NewAlreadyExists(secretsResource, sec.Name).ErrStatus)
		return
	}
	s.rv++
	sec.UID = newUID()
	sec.ResourceVersion = strconv.FormatInt(s.rv, 10)
	sec.CreationTimestamp = metav1.Now()
	s.secrets[key] = sec.DeepCopy()
	s.creations = append(s.creations, Creation{Namespace: ns, Name: sec.Name, Code: http.StatusCreated})
	sec.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"}
	writeJSON(w, http.StatusCreated, sec)
}

// Secret is a stored Secret, for the tests' eyes.
func (s *Server) Secret(name string) (*corev1.Secret, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sec, ok := s.secrets[s.namespace+"/"+name]
	if !ok {
		return nil, false
	}
	return sec.DeepCopy(), true
}

// collectSecrets is the garbage collector's part: the Secrets a removed
// pod owned go with it. The caller holds s.mu.
func (s *Server) collectSecrets(pod *corev1.Pod) {
	for key, sec := range s.secrets {
		for _, o := range sec.OwnerReferences {
			if o.Kind == "Pod" && o.UID == pod.UID && sec.Namespace == pod.Namespace {
				delete(s.secrets, key)
			}
		}
	}
}

// secretStore is the store's Secrets as the shared kubelet reads them.
type secretStore struct{ s *Server }

func (k secretStore) Secret(_ context.Context, namespace, name string) (*corev1.Secret, error) {
	k.s.mu.Lock()
	defer k.s.mu.Unlock()
	sec, ok := k.s.secrets[namespace+"/"+name]
	if !ok {
		return nil, nil
	}
	return sec.DeepCopy(), nil
}
