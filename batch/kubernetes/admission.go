package kubernetes

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
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
//   - ResourceQuota (k8s.io/apiserver, admission/plugin/resourcequota,
//     controller.go, CheckRequest): `exceeded quota: q, requested:
//     limits.memory=4Gi,requests.memory=4Gi, used: ..., limited: ...`,
//     each list sorted and comma-joined (prettyPrint) and holding only
//     the resources that did not fit; and `failed quota: q: must specify
//     limits.memory`
//   - OpenShift SCC admission before its informers have synced, a
//     transient refusal: `securitycontextconstraints.security.openshift.io
//     cache is not synchronized`
//   - LimitRange: `maximum memory usage per Container is 1Gi, but limit is 2Gi`
//   - ServiceAccount admission: `error looking up service account ns/sa`

var (
	rbacDenied    = regexp.MustCompile(`User "([^"]*)" cannot (\S+) resource "([^"]+)"(?: in API group "[^"]*")?(?: in the namespace "([^"]*)")?`)
	quotaMissing  = regexp.MustCompile(`failed quota: (\S+): must specify (.*)`)
	quotaResource = regexp.MustCompile(`\b(?:limits|requests)\.(?:cpu|memory)\b`)
	quotaExceeded = regexp.MustCompile(`exceeded quota: (\S+), requested: (\S*), used: (\S*), limited: (\S*)`)
	sccRange      = regexp.MustCompile(`runAsUser: Invalid value: (\d+): must be in the ranges: (\[[^\]]*\])`)
	limitRangeRe  = regexp.MustCompile(`(?i)(maximum|minimum) (cpu|memory|ephemeral-storage) usage per (Container|Pod)|limit to request ratio per`)
)

// sccCacheNotSynced is OpenShift's SCC admission answering before its
// caches have synced (after an API server restart): a 403 that goes away
// by itself.
const sccCacheNotSynced = "securitycontextconstraints.security.openshift.io cache is not synchronized"

// unavailable reports whether err means the API server could not be
// reached or could not answer now, which the engine waits out. A TLS
// certificate the client does not trust is not an outage: it is a wrong
// CA or server address in the kubeconfig, or an expired certificate,
// which waiting does not mend.
func unavailable(err error) bool {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		// The server answered: only its "not now" answers are outages.
		return apierrors.IsServerTimeout(err) || apierrors.IsTimeout(err) || apierrors.IsTooManyRequests(err) ||
			apierrors.IsServiceUnavailable(err) || apierrors.IsInternalError(err) || apierrors.IsUnexpectedServerError(err) ||
			apierrors.IsForbidden(err) && strings.Contains(strings.ToLower(err.Error()), sccCacheNotSynced)
	}
	if certificateError(err) {
		return false
	}
	var ne net.Error
	var ue *url.Error
	return utilnet.IsConnectionRefused(err) || utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err) ||
		errors.As(err, &ne) || errors.As(err, &ue) || errors.Is(err, context.DeadlineExceeded)
}

// certificateError reports whether err is the client refusing the API
// server's TLS certificate: unknown authority, expired or not yet valid,
// or issued for another host name.
func certificateError(err error) bool {
	var (
		unknown  x509.UnknownAuthorityError
		invalid  x509.CertificateInvalidError
		hostname x509.HostnameError
		verify   *tls.CertificateVerificationError
	)
	return errors.As(err, &unknown) || errors.As(err, &invalid) || errors.As(err, &hostname) || errors.As(err, &verify) ||
		// Some paths keep only the text.
		err != nil && strings.Contains(err.Error(), "x509: ")
}

// apiError wraps an API error from doing what, marking outages as
// batch.ErrUnavailable and explaining missing RBAC.
func (b *Backend) apiError(what string, err error) error {
	if unavailable(err) {
		return fmt.Errorf("kubernetes: %s: %w (%w)", what, batch.ErrUnavailable, err)
	}
	if certificateError(err) {
		return fmt.Errorf("kubernetes: %s: the API server's TLS certificate is not trusted (site misconfiguration, not an outage: "+
			"check the server address and certificate-authority data of the kubeconfig, and that the certificate has not expired): %w", what, err)
	}
	if apierrors.IsForbidden(err) {
		if m := rbacDenied.FindStringSubmatch(err.Error()); m != nil {
			return b.rbacError(m[1], m[2], m[3], m[4])
		}
	}
	return fmt.Errorf("kubernetes: %s: %w", what, err)
}

// rbacError names the namespace the refusal names: a job's handle may
// point to another namespace than the one configured now, and the grant
// is missing where the request went.
func (b *Backend) rbacError(user, verb, resource, namespace string) error {
	if namespace == "" {
		namespace = b.cfg.Namespace
	}
	return fmt.Errorf("kubernetes: the daemon's identity %q may not %s %s in namespace %s: "+
		"the Role \"reana-site\" (deploy/kubernetes/role.yaml) or its RoleBinding (deploy/kubernetes/rolebinding.yaml) "+
		"is missing or incomplete there; a namespace admin applies them as deploy/kubernetes/README.md says",
		user, verb, resource, namespace)
}

// createError explains why the API server refused to create a step pod,
// in words that say whose move it is: the user's (resources above what the
// namespace allows) or the site admin's (policy, RBAC, SCC grant).
func (b *Backend) createError(built *corev1.Pod, uid int64, err error) error {
	pod := built.Name
	msg := err.Error()
	reason := msg
	if _, after, ok := strings.Cut(msg, " is forbidden: "); ok {
		reason = after
	}
	switch {
	case unavailable(err) || certificateError(err):
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
		return b.rbacError(m[1], m[2], m[3], m[4])
	case quotaBusy(err):
		// The step fits the quota, the namespace's other pods leave no
		// room now: an outage of sorts, which the engine waits out.
		return fmt.Errorf("kubernetes: the namespace's ResourceQuota is full right now: %s; "+
			"the step is submitted again once running pods have freed enough: %w", reason, batch.ErrUnavailable)
	case quotaMissing.MatchString(msg):
		return fmt.Errorf("kubernetes: the namespace's ResourceQuota refuses the step: %s; %s", reason, missingHint(quotaMissing.FindStringSubmatch(msg)[2]))
	case strings.Contains(msg, "exceeded quota") && limitRangeDefault(built, msg) != "":
		return fmt.Errorf("kubernetes: the namespace's ResourceQuota refuses the step: %s; %s", reason, limitRangeDefault(built, msg))
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

// quotaBusy reports whether err is a ResourceQuota refusal that only the
// namespace's current use explains: every resource the quota refused is
// requested in an amount within its limit, so the pod fits once other
// pods end. A request above the limit on its own, a "must specify"
// refusal or a message that cannot be read is not busy: it never passes.
func quotaBusy(err error) bool {
	if err == nil || !apierrors.IsForbidden(err) {
		return false
	}
	m := quotaExceeded.FindStringSubmatch(err.Error())
	if m == nil {
		return false
	}
	requested, ok1 := quotaList(m[2])
	limited, ok2 := quotaList(m[4])
	if !ok1 || !ok2 || len(requested) == 0 {
		return false
	}
	for name, req := range requested {
		lim, ok := limited[name]
		if !ok || req.Cmp(lim) > 0 {
			return false
		}
	}
	return true
}

// quotaList reads the quota plugin's "name=quantity,name=quantity".
func quotaList(s string) (corev1.ResourceList, bool) {
	l := corev1.ResourceList{}
	for _, part := range strings.Split(s, ",") {
		name, v, ok := strings.Cut(part, "=")
		if !ok {
			return nil, false
		}
		q, err := resource.ParseQuantity(v)
		if err != nil {
			return nil, false
		}
		l[corev1.ResourceName(name)] = q
	}
	return l, true
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
	// The namespaced binding first: it grants the SCC in this namespace
	// only. Creating it still takes a cluster admin, who alone may "use"
	// the SCC (RBAC's escalation check).
	grant := fmt.Sprintf("a cluster admin must run once: oc create rolebinding reana-site-step-scc -n %s "+
		"--clusterrole=system:openshift:scc:%s --serviceaccount=%s:%s "+
		"(or, the same grant made by oc: oc adm policy add-scc-to-user %s -z %s -n %s)",
		b.cfg.Namespace, b.cfg.SCC, b.cfg.Namespace, b.stepSA(), b.cfg.SCC, b.stepSA(), b.cfg.Namespace)
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

// missingHint says who can set what a quota requires and the pod lacks
// (`failed quota: q: must specify limits.memory for: step`): the user in the step's
// kubernetes_* hints, or the site for every step through its defaults.
func missingHint(resources string) string {
	var user, site []string
	for _, r := range quotaResource.FindAllString(resources, -1) {
		switch r {
		case "limits.memory":
			user, site = append(user, "kubernetes_memory_limit"), append(site, "REANA_SITE_KUBERNETES_DEFAULT_MEMORY (or REANA_SITE_KUBERNETES_MAX_MEMORY)")
		case "requests.memory":
			user, site = append(user, "kubernetes_memory_request"), append(site, "REANA_SITE_KUBERNETES_DEFAULT_MEMORY")
		case "requests.cpu":
			user, site = append(user, "kubernetes_cpu_request"), append(site, "REANA_SITE_KUBERNETES_DEFAULT_CPU")
		case "limits.cpu":
			user = append(user, "kubernetes_cpu_limit")
		}
	}
	if len(user) == 0 {
		return "the quota requires a resource the step does not set; ask the site admin"
	}
	hint := "set " + strings.Join(slices.Compact(user), " and ") + " in the step's resources"
	if site = slices.Compact(site); len(site) > 0 {
		hint += ", or the site admin sets " + strings.Join(site, " and ") + " for every step (or a LimitRange default in the namespace)"
	}
	return hint
}

// limitRangeDefault explains a quota refusal of a limit the pod did not
// set: the namespace's LimitRange gave it, and a LimitRange with only a
// max makes that max the default limit, which may exceed the quota's hard
// limit so that no step without its own limit can ever run. Empty when
// the pod set every limit the quota refused.
func limitRangeDefault(pod *corev1.Pod, msg string) string {
	m := quotaExceeded.FindStringSubmatch(msg)
	if m == nil || pod == nil || len(pod.Spec.Containers) == 0 {
		return ""
	}
	requested, ok1 := quotaList(m[2])
	limited, ok2 := quotaList(m[4])
	if !ok1 || !ok2 {
		return ""
	}
	limits := pod.Spec.Containers[0].Resources.Limits
	var parts []string
	for _, name := range slices.Sorted(maps.Keys(requested)) {
		res, isLimit := strings.CutPrefix(string(name), "limits.")
		if !isLimit {
			continue
		}
		if _, set := limits[corev1.ResourceName(res)]; set {
			continue
		}
		req, lim := requested[name], limited[name]
		if req.Cmp(lim) <= 0 {
			continue
		}
		parts = append(parts, fmt.Sprintf("the step sets no %s limit, so the namespace's LimitRange gave it its default of %s "+
			"(a LimitRange with only max makes max the default), which is above the quota's %s of %s", res, req.String(), name, lim.String()))
	}
	if len(parts) == 0 {
		return ""
	}
	return strings.Join(parts, "; ") + ": no step without its own limit fits; set kubernetes_memory_limit in the step, " +
		"or the site admin sets REANA_SITE_KUBERNETES_DEFAULT_MEMORY (at most the quota) or gives the LimitRange a default within the quota"
}
