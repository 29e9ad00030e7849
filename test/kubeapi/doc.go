// Package kubeapi is a TEST STAND-IN for a Kubernetes API server and one
// node's kubelet. The tests use it where the real kube-apiserver's kit
// (test/kubereal) is absent, and for the faults a real server cannot
// produce on demand (see test/kubeapi/README.md). Only tests may use it:
// production code must never import it (a test of this package fails if
// a non-test package outside test/ does).
//
// The server answers the core/v1 subset batch/kubernetes uses, over real
// HTTP and as kube-apiserver words it: pods create (with dry-run),
// get, list, watch (with the streaming initial list of client-go's
// WatchListClient feature, resourceVersion replay and 410 Gone), delete
// and their log; events list; the workspace PersistentVolumeClaim get.
// Refusals are Status objects built with apimachinery's own constructors,
// and pod creates go through the real Pod Security evaluator
// (k8s.io/pod-security-admission/policy), so a pod that a cluster
// enforcing "restricted" would refuse is refused here with the same
// message.
//
// Its stand-in kubelet (test/kubelet, shared with the node agent of the
// real API server, test/kubenode) runs every pod it schedules on this
// host, not in a container: the container's command and args are executed directly
// (after the kubelet's $(VAR) expansion), as the pod's runAsUser,
// runAsGroup and supplementalGroups, in its workingDir, with its env and
// the Secrets it references (read from this server's store). The image is
// never pulled nor used. This is
// what the local backend does too, and it is enough to check what the
// backend decides (who runs the step, where, with which environment) and
// how it follows the pod through its phases. The kubelet checks the one
// thing a container would hide: that each claim's volume, mounted with its
// subPath, is the very directory of the host the pod mounts it at, so the
// step sees on the host the files it would see in the pod.
//
// See README.md for what is and is not supported, and the Kubernetes
// documentation each behaviour follows.
package kubeapi
