package kubereal

import (
	"context"
	"fmt"
	"strings"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// sccPolicy is the name of the ValidatingAdmissionPolicy and its binding
// that play OpenShift's SCC admission.
const sccPolicy = "openshift-scc-nonroot-v2-not-granted"

// sccMessage is OpenShift's refusal of a pod whose service account may
// not use nonroot-v2, so that only restricted-v2 was tried, whose uid
// range does not hold the pod's uid (the words of apiserver-library-go's
// sccadmission, as test/kubeapi's SCCRefusal), as a CEL expression.
const sccMessage = `'unable to validate against any security context constraint: [provider "anyuid": Forbidden: not usable by user or serviceaccount, ` +
	`provider restricted-v2: .spec.securityContext.runAsUser: Invalid value: ' + ` +
	`(has(object.spec.securityContext) && has(object.spec.securityContext.runAsUser) ? string(object.spec.securityContext.runAsUser) : '0') + ` +
	`': must be in the ranges: [1000650000, 1000659999], provider "nonroot-v2": Forbidden: not usable by user or serviceaccount, ` +
	`provider "hostnetwork-v2": Forbidden: not usable by user or serviceaccount]'`

// RefuseLikeSCC makes the API server's own admission (a
// ValidatingAdmissionPolicy) refuse every pod create in the namespace,
// dry-runs included, with OpenShift's words for a step service account
// not granted nonroot-v2; with refuse false it lifts that. It returns once
// the API server acts on it (a policy takes effect a moment after it is
// stored).
func (c *Cluster) RefuseLikeSCC(ctx context.Context, refuse bool) error {
	api := c.Admin.AdmissionregistrationV1()
	if refuse {
		fail := admissionv1.Fail
		policy := &admissionv1.ValidatingAdmissionPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: sccPolicy},
			Spec: admissionv1.ValidatingAdmissionPolicySpec{
				FailurePolicy: &fail,
				MatchConstraints: &admissionv1.MatchResources{ResourceRules: []admissionv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionv1.RuleWithOperations{
						Operations: []admissionv1.OperationType{admissionv1.Create},
						Rule:       admissionv1.Rule{APIGroups: []string{""}, APIVersions: []string{"v1"}, Resources: []string{"pods"}},
					}}}},
				Validations: []admissionv1.Validation{{Expression: "false", MessageExpression: sccMessage,
					Reason: ptrTo(metav1.StatusReasonForbidden)}},
			},
		}
		if _, err := api.ValidatingAdmissionPolicies().Create(ctx, policy, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("SCC refusal policy: %w", err)
		}
		binding := &admissionv1.ValidatingAdmissionPolicyBinding{
			ObjectMeta: metav1.ObjectMeta{Name: sccPolicy},
			Spec: admissionv1.ValidatingAdmissionPolicyBindingSpec{PolicyName: sccPolicy,
				ValidationActions: []admissionv1.ValidationAction{admissionv1.Deny},
				MatchResources: &admissionv1.MatchResources{NamespaceSelector: &metav1.LabelSelector{
					MatchLabels: map[string]string{"kubernetes.io/metadata.name": c.Namespace}}}},
		}
		if _, err := api.ValidatingAdmissionPolicyBindings().Create(ctx, binding, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("SCC refusal policy binding: %w", err)
		}
	} else {
		for _, err := range []error{
			api.ValidatingAdmissionPolicyBindings().Delete(ctx, sccPolicy, metav1.DeleteOptions{}),
			api.ValidatingAdmissionPolicies().Delete(ctx, sccPolicy, metav1.DeleteOptions{}),
		} {
			if err != nil && !apierrors.IsNotFound(err) {
				return fmt.Errorf("lift the SCC refusal: %w", err)
			}
		}
	}
	// A dry-run of a pod as admin shows when the server acts on it.
	probe := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: "scc-probe"}, Spec: corev1.PodSpec{
		// An account the manifests made: no controller makes "default".
		ServiceAccountName: "reana-site-step", AutomountServiceAccountToken: ptrTo(false),
		SecurityContext: &corev1.PodSecurityContext{RunAsNonRoot: ptrTo(true), RunAsUser: ptrTo(int64(4101)),
			SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault}},
		Containers: []corev1.Container{{Name: "probe", Image: "probe", SecurityContext: &corev1.SecurityContext{
			AllowPrivilegeEscalation: ptrTo(false), Capabilities: &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}}}}}}}
	for {
		_, err := c.Admin.CoreV1().Pods(c.Namespace).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		refused := err != nil && strings.Contains(err.Error(), sccPolicy)
		switch {
		case refused == refuse:
			return nil
		case err != nil && !refused:
			return fmt.Errorf("the SCC refusal's probe: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("the SCC refusal (%v) never took effect: %w (last: %v)", refuse, ctx.Err(), err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func ptrTo[T any](v T) *T { return &v }
