package kubernetes

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"

	"github.com/reana-site/reana-site/batch"
)

// The messages recognised here are the API server's own, as cited in
// shared/notes/kubernetes-openshift.md ("Admission and runtime failures"):
//   - Pod Security admission (k8s.io/pod-security-admission,
//     admission/admission.go): `violates PodSecurity "restricted:latest": ...`
//   - OpenShift SCC admission (openshift/apiserver-library-go,
//     sccadmission/admission.go): `unable to validate against any security
//     context constraint: [provider "nonroot-v2": Forbidden: not usable by
//     user or serviceaccount, provider restricted-v2: .spec.securityContext
//     .runAsUser: Invalid value: 12345: must be in the ranges: [a, b], ...]`
//   - RBAC: `pods is forbidden: User "system:serviceaccount:ns:reana-site"
//     cannot create resource "pods" in API group "" in the namespace "ns"`
//   - ResourceQuota: `exceeded quota: q, requested: ..., used: ...,
//     limited: ...` and `failed quota: q: must specify limits.memory`
//   - LimitRange: `maximum memory usage per Container is 1Gi, but limit is 2Gi`
//   - ServiceAccount admission: `error looking up service account ns/sa`

var (
	rbacDenied   = regexp.MustCompile(`User "([^"]*)" cannot (\S+) resource "([^"]+)"`)
	sccRange     = regexp.MustCompile(`runAsUser: Invalid value: (\d+): must be in the ranges: (\[[^\]]*\])`)
	limitRangeRe = regexp.MustCompile(`(?i)(maximum|minimum) (cpu|memory|ephemeral-storage) usage per (Container|Pod)|limit to request ratio per`)
)

// unavailable reports whether err means the API server could not be
// reached or could not answer now, which the engine waits out.
func unavailable(err error) bool {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		// The server answered: only its "not now" answers are outages.
		return apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) ||
			apierrors.IsServiceUnavailable(err) || apierrors.IsInternalError(err) || apierrors.IsUnexpectedServerError(err)
	}
	var ne net.Error
	var ue *url.Error
	return utilnet.IsConnectionRefused(err) || utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err) ||
		errors.As(err, &ne) || errors.As(err, &ue) || errors.Is(err, context.DeadlineExceeded)
}

// apiError wraps an API error from doing what, marking outages as
// batch.ErrUnavailable and explaining missing RBAC.
func (b *Backend) apiError(what string, err error) error {
	if unavailable(err) {
		return fmt.Errorf("kubernetes: %s: %w (%w)", what, batch.ErrUnavailable, err)
	}
	if apierrors.IsForbidden(err) {
		if m := rbacDenied.FindStringSubmatch(err.Error()); m != nil {
			return b.rbacError(m[1], m[2], m[3])
		}
	}
	return fmt.Errorf("kubernetes: %s: %w", what, err)
}

func (b *Backend) rbacError(user, verb, resource string) error {
	return fmt.Errorf("kubernetes: the daemon's identity %q may not %s %s in namespace %s: "+
		"the Role \"reana-site\" (deploy/kubernetes/role.yaml) or its RoleBinding (deploy/kubernetes/rolebinding.yaml) "+
		"is missing or incomplete there; a namespace admin applies them as deploy/kubernetes/README.md says",
		user, verb, resource, b.cfg.Namespace)
}

// createError explains why the API server refused to create a step pod,
// in words that say whose move it is: the user's (resources above what the
// namespace allows) or the site admin's (policy, RBAC, SCC grant).
func (b *Backend) createError(pod string, uid int64, err error) error {
	msg := err.Error()
	reason := msg
	if _, after, ok := strings.Cut(msg, " is forbidden: "); ok {
		reason = after
	}
	switch {
	case unavailable(err):
		return b.apiError("create pod "+pod, err)
	case !apierrors.IsForbidden(err) && apierrors.IsInvalid(err):
		return fmt.Errorf("kubernetes: the API server found the step's pod %s invalid: %s", pod, reason)
	case !apierrors.IsForbidden(err):
		return fmt.Errorf("kubernetes: create pod %s: %w", pod, err)
	case strings.Contains(msg, "violates PodSecurity"):
		return fmt.Errorf("kubernetes: site misconfiguration: the step pod %s was refused by Pod Security admission, "+
			"which reana-site's pods are built to pass; report this to the site admin: %s", pod, reason)
	case strings.Contains(msg, "security context constraint") || strings.Contains(msg, "SecurityContextConstraints") ||
		strings.Contains(msg, "openshift.io/sa.scc"):
		return b.sccError(pod, uid, reason)
	case rbacDenied.MatchString(msg):
		m := rbacDenied.FindStringSubmatch(msg)
		return b.rbacError(m[1], m[2], m[3])
	case strings.Contains(msg, "exceeded quota") || strings.Contains(msg, "failed quota"):
		return fmt.Errorf("kubernetes: the namespace's ResourceQuota refuses the step: %s; "+
			"ask for less (kubernetes_memory_limit, kubernetes_cpu_request) or ask the site admin", reason)
	case limitRangeRe.MatchString(msg):
		return fmt.Errorf("kubernetes: the namespace's LimitRange refuses the step's resources: %s; "+
			"change kubernetes_memory_limit / kubernetes_cpu_request accordingly", reason)
	case strings.Contains(msg, "error looking up service account") ||
		strings.Contains(msg, "serviceaccount") && strings.Contains(msg, "not found"):
		return fmt.Errorf("kubernetes: the step service account %q is missing in namespace %s "+
			"(deploy/kubernetes/serviceaccount.yaml creates it): %s", b.stepSA(), b.cfg.Namespace, reason)
	}
	return fmt.Errorf("kubernetes: the API server refused the step's pod %s: %s", pod, reason)
}

func (b *Backend) stepSA() string {
	if b.cfg.StepServiceAccount == "" {
		return "default"
	}
	return b.cfg.StepServiceAccount
}

// sccError explains an OpenShift SCC refusal. The usual one: the step
// service account may not use nonroot-v2, so only restricted-v2 was tried,
// whose uid range (the project's, from openshift.io/sa.scc.uid-range) does
// not hold a real user's uid. Only a cluster admin can grant the SCC.
func (b *Backend) sccError(pod string, uid int64, reason string) error {
	grant := fmt.Sprintf("a cluster admin must run once: oc adm policy add-scc-to-user %s -z %s -n %s "+
		"(or, as a namespaced binding: oc create rolebinding reana-site-step-scc --clusterrole=system:openshift:scc:%s --serviceaccount=%s:%s -n %s)",
		b.cfg.SCC, b.stepSA(), b.cfg.Namespace, b.cfg.SCC, b.cfg.Namespace, b.stepSA(), b.cfg.Namespace)
	switch {
	case strings.Contains(reason, "openshift.io/sa.scc"):
		return fmt.Errorf("kubernetes: OpenShift refused the step pod %s: namespace %s lacks the SCC annotations an OpenShift project has "+
			"(create it with oc new-project, or ask the cluster admin): %s", pod, b.cfg.Namespace, reason)
	case strings.Contains(reason, "not usable by user or serviceaccount") || sccRange.MatchString(reason):
		why := fmt.Sprintf("service account %s/%s may not use the SCC %s", b.cfg.Namespace, b.stepSA(), b.cfg.SCC)
		if m := sccRange.FindStringSubmatch(reason); m != nil {
			why += fmt.Sprintf(", and the SCCs it may use only allow uids %s, while the pod runs as uid %d", m[2], uid)
		}
		if !b.cfg.OpenShift {
			why += " (reana-site is not configured for OpenShift, so the pod does not pin the SCC)"
		}
		return fmt.Errorf("kubernetes: OpenShift refused the step pod %s: %s; %s. Details: %s", pod, why, grant, reason)
	}
	return fmt.Errorf("kubernetes: OpenShift refused the step pod %s (SCC %s): %s; if the SCC is not granted, %s", pod, b.cfg.SCC, reason, grant)
}
