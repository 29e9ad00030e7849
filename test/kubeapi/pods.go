package kubeapi

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metainternalversion "k8s.io/apimachinery/pkg/apis/meta/internalversion"
	metavalidation "k8s.io/apimachinery/pkg/apis/meta/internalversion/validation"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/watch"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"

	"github.com/reana-site/reana-site/test/kubelet"
)

// podEntry is a stored pod and its container on the stand-in node.
type podEntry struct {
	pod       *corev1.Pod
	container *kubelet.Container
	// ctx ends when the pod leaves the store; the kubelet then stops
	// caring about it.
	ctx    context.Context
	cancel context.CancelFunc
}

func newUID() types.UID { return types.UID(uuid.NewString()) }

func typed(p *corev1.Pod) *corev1.Pod {
	p = p.DeepCopy()
	p.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"}
	return p
}

// Pod is a stored pod of the namespace.
func (s *Server) Pod(name string) (*corev1.Pod, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.pods[s.namespace+"/"+name]
	if !ok {
		return nil, false
	}
	return typed(e.pod), true
}

// Pods lists the stored pods of every namespace, by name.
func (s *Server) Pods() []corev1.Pod {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []corev1.Pod
	for _, key := range s.podKeys() {
		out = append(out, *typed(s.pods[key].pod))
	}
	return out
}

// podKeys are the stored pods' keys in order; the caller holds s.mu.
func (s *Server) podKeys() []string {
	keys := make([]string, 0, len(s.pods))
	for k := range s.pods {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// SetPodStatus changes a stored pod's status as the kubelet would (and
// tells the watches). With the stand-in kubelet on, the kubelet may
// overwrite it.
func (s *Server) SetPodStatus(name string, mutate func(*corev1.PodStatus)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.pods[s.namespace+"/"+name]
	if !ok {
		return fmt.Errorf("kubeapi: no pod %s/%s", s.namespace, name)
	}
	mutate(&e.pod.Status)
	s.changed(watch.Modified, e.pod)
	return nil
}

// SetLogs replaces what a pod's log says.
func (s *Server) SetLogs(name, text string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.pods[s.namespace+"/"+name]
	if !ok {
		return fmt.Errorf("kubeapi: no pod %s/%s", s.namespace, name)
	}
	e.container.Logs.Set(text)
	return nil
}

// Logs is what a pod's log says now.
func (s *Server) Logs(name string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.pods[s.namespace+"/"+name]
	if !ok {
		return "", false
	}
	return e.container.Logs.String(), true
}

// createPod runs a create through what kube-apiserver does, in its order:
// decoding, admission that mutates (defaults, ServiceAccount), validation,
// admission that validates (PodSecurity), then storage, which is skipped
// for a dry-run (https://kubernetes.io/docs/reference/using-api/api-concepts/#dry-run).
// The injected refusal stands for whichever step a test makes refuse
// (RBAC is checked before the rest; SCC and quota are admission plugins).
// readObject decodes a create's body as T, or answers the request with
// the API server's refusal.
func readObject[T runtime.Object](s *Server, w http.ResponseWriter, r *http.Request) (T, bool) {
	var zero T
	body, err := io.ReadAll(r.Body)
	if err != nil {
		writeStatus(w, &apierrors.NewBadRequest(err.Error()).ErrStatus)
		return zero, false
	}
	obj, _, err := s.decode.Decode(body, nil, nil)
	if err != nil {
		writeStatus(w, &apierrors.NewBadRequest(fmt.Sprintf("the body of the request was in an unknown format - accepted media types include: application/json, application/yaml, application/vnd.kubernetes.protobuf: %v", err)).ErrStatus)
		return zero, false
	}
	v, ok := obj.(T)
	if !ok {
		writeStatus(w, &apierrors.NewBadRequest(fmt.Sprintf("the object provided is unrecognized (%T)", obj)).ErrStatus)
		return zero, false
	}
	return v, true
}

func (s *Server) createPod(w http.ResponseWriter, r *http.Request, ns string) {
	pod, ok := readObject[*corev1.Pod](s, w, r)
	if !ok {
		return
	}
	q := r.URL.Query()
	dryRun := false
	for _, v := range q["dryRun"] {
		if v != metav1.DryRunAll {
			writeStatus(w, &apierrors.NewInvalid(schema.GroupKind{Group: metav1.GroupName, Kind: "CreateOptions"}, "",
				field.ErrorList{field.NotSupported(field.NewPath("dryRun"), v, []string{metav1.DryRunAll})}).ErrStatus)
			return
		}
		dryRun = true
	}
	if pod.Namespace != "" && pod.Namespace != ns {
		writeStatus(w, &apierrors.NewBadRequest("the namespace of the provided object does not match the namespace sent on the request").ErrStatus)
		return
	}
	pod.Namespace = ns
	if pod.Name == "" && pod.GenerateName != "" {
		pod.Name = pod.GenerateName + randomHex(3)[:5]
	}
	manager := q.Get("fieldManager")
	if manager == "" {
		manager, _, _ = strings.Cut(r.Header.Get("User-Agent"), "/")
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	code, st := s.admit(pod, dryRun, manager)
	s.creations = append(s.creations, Creation{Namespace: ns, Name: pod.Name, DryRun: dryRun, Code: code})
	if st != nil {
		writeStatus(w, st)
		return
	}
	if !dryRun {
		s.store(pod)
	}
	writeJSON(w, http.StatusCreated, typed(pod))
}

// admit decides a create and fills in what the server sets; the caller
// holds s.mu.
func (s *Server) admit(pod *corev1.Pod, dryRun bool, manager string) (int, *metav1.Status) {
	refuse := func(err *apierrors.StatusError) (int, *metav1.Status) { return int(err.ErrStatus.Code), &err.ErrStatus }
	if s.namespace != pod.Namespace {
		return refuse(apierrors.NewNotFound(nsResource, pod.Namespace))
	}
	if s.refusal != nil {
		st := s.refusal.DeepCopy()
		uid := "unset"
		if sc := pod.Spec.SecurityContext; sc != nil && sc.RunAsUser != nil {
			uid = fmt.Sprint(*sc.RunAsUser)
		}
		st.Message = strings.NewReplacer("{name}", pod.Name, "{namespace}", pod.Namespace, "{uid}", uid).Replace(st.Message)
		st.Details = &metav1.StatusDetails{Kind: "pods"}
		if strings.Contains(st.Message, `"`+pod.Name+`"`) {
			st.Details.Name = pod.Name
		}
		return int(st.Code), st
	}
	defaultPod(pod)
	if sa := pod.Spec.ServiceAccountName; !s.accounts[pod.Namespace+"/"+sa] {
		return refuse(apierrors.NewForbidden(podsResource, pod.Name, fmt.Errorf(
			"error looking up service account %s/%s: serviceaccount %q not found", pod.Namespace, sa, sa)))
	}
	if errs := validatePod(pod); len(errs) > 0 {
		return refuse(apierrors.NewInvalid(schema.GroupKind{Kind: "Pod"}, pod.Name, errs))
	}
	if err := s.podSecurity(pod); err != nil {
		return refuse(err)
	}
	if _, exists := s.pods[pod.Namespace+"/"+pod.Name]; exists {
		return refuse(apierrors.NewAlreadyExists(podsResource, pod.Name))
	}
	now := metav1.Now()
	pod.UID = newUID()
	pod.CreationTimestamp = now
	pod.Generation = 1
	pod.ManagedFields = []metav1.ManagedFieldsEntry{{Manager: manager, Operation: metav1.ManagedFieldsOperationUpdate,
		APIVersion: "v1", Time: &now, FieldsType: "FieldsV1", FieldsV1: &metav1.FieldsV1{Raw: []byte(`{"f:spec":{}}`)}}}
	return http.StatusCreated, nil
}

// podSecurity runs the Pod Security admission plugin's evaluation at the
// namespace's level and words a refusal as the plugin does
// (k8s.io/pod-security-admission/admission, EvaluatePod).
func (s *Server) podSecurity(pod *corev1.Pod) *apierrors.StatusError {
	if s.level == psaapi.LevelPrivileged {
		return nil
	}
	lv := psaapi.LevelVersion{Level: s.level, Version: psaapi.LatestVersion()}
	res := policy.AggregateCheckResults(s.evaluator.EvaluatePod(lv, &pod.ObjectMeta, &pod.Spec))
	if res.Allowed {
		return nil
	}
	return apierrors.NewForbidden(podsResource, pod.Name, fmt.Errorf("violates PodSecurity %q: %s", lv.String(), res.ForbiddenDetail()))
}

// defaultPod sets what the API server's defaulting and the default
// admission plugins (ServiceAccount, DefaultTolerationSeconds) set, so
// what a client gets back looks like a real answer.
func defaultPod(pod *corev1.Pod) {
	sp := &pod.Spec
	if sp.RestartPolicy == "" {
		sp.RestartPolicy = corev1.RestartPolicyAlways
	}
	if sp.DNSPolicy == "" {
		sp.DNSPolicy = corev1.DNSClusterFirst
	}
	if sp.SchedulerName == "" {
		sp.SchedulerName = corev1.DefaultSchedulerName
	}
	if sp.ServiceAccountName == "" {
		sp.ServiceAccountName = "default"
	}
	sp.DeprecatedServiceAccount = sp.ServiceAccountName
	if sp.TerminationGracePeriodSeconds == nil {
		sp.TerminationGracePeriodSeconds = ptr(int64(corev1.DefaultTerminationGracePeriodSeconds))
	}
	if sp.SecurityContext == nil {
		sp.SecurityContext = &corev1.PodSecurityContext{}
	}
	if sp.EnableServiceLinks == nil {
		sp.EnableServiceLinks = ptr(true)
	}
	if sp.Priority == nil {
		sp.Priority = ptr(int32(0))
	}
	if sp.PreemptionPolicy == nil {
		sp.PreemptionPolicy = ptr(corev1.PreemptLowerPriority)
	}
	if len(sp.Tolerations) == 0 {
		for _, key := range []string{corev1.TaintNodeNotReady, corev1.TaintNodeUnreachable} {
			sp.Tolerations = append(sp.Tolerations, corev1.Toleration{Key: key, Operator: corev1.TolerationOpExists,
				Effect: corev1.TaintEffectNoExecute, TolerationSeconds: ptr(int64(300))})
		}
	}
	for i := range sp.Containers {
		c := &sp.Containers[i]
		if c.TerminationMessagePath == "" {
			c.TerminationMessagePath = corev1.TerminationMessagePathDefault
		}
		if c.TerminationMessagePolicy == "" {
			c.TerminationMessagePolicy = corev1.TerminationMessageReadFile
		}
		if c.ImagePullPolicy == "" {
			c.ImagePullPolicy = corev1.PullIfNotPresent
			if _, tag, ok := strings.Cut(c.Image[strings.LastIndex(c.Image, "/")+1:], ":"); !ok || tag == "latest" {
				c.ImagePullPolicy = corev1.PullAlways
			}
		}
	}
	pod.Status = corev1.PodStatus{Phase: corev1.PodPending, QOSClass: qosClass(pod)}
}

// qosClass is the pod's quality of service class, from its containers'
// requests and limits.
func qosClass(pod *corev1.Pod) corev1.PodQOSClass {
	set, guaranteed := false, true
	for _, c := range pod.Spec.Containers {
		for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			req, hasReq := c.Resources.Requests[r]
			lim, hasLim := c.Resources.Limits[r]
			set = set || hasReq || hasLim
			if !hasLim || (hasReq && req.Cmp(lim) != 0) {
				guaranteed = false
			}
		}
	}
	switch {
	case !set:
		return corev1.PodQOSBestEffort
	case guaranteed:
		return corev1.PodQOSGuaranteed
	}
	return corev1.PodQOSBurstable
}

// validatePod checks the part of the API's pod validation that a pod
// builder can get wrong, with the API's field paths and messages.
func validatePod(pod *corev1.Pod) field.ErrorList {
	var errs field.ErrorList
	meta := field.NewPath("metadata")
	for _, msg := range validation.IsDNS1123Subdomain(pod.Name) {
		errs = append(errs, field.Invalid(meta.Child("name"), pod.Name, msg))
	}
	for k, v := range pod.Labels {
		for _, msg := range validation.IsQualifiedName(k) {
			errs = append(errs, field.Invalid(meta.Child("labels"), k, msg))
		}
		for _, msg := range validation.IsValidLabelValue(v) {
			errs = append(errs, field.Invalid(meta.Child("labels"), v, msg))
		}
	}
	for k := range pod.Annotations {
		for _, msg := range validation.IsQualifiedName(strings.ToLower(k)) {
			errs = append(errs, field.Invalid(meta.Child("annotations"), k, msg))
		}
	}
	spec := field.NewPath("spec")
	sp := &pod.Spec
	switch sp.RestartPolicy {
	case corev1.RestartPolicyAlways, corev1.RestartPolicyOnFailure, corev1.RestartPolicyNever:
	default:
		errs = append(errs, field.NotSupported(spec.Child("restartPolicy"), sp.RestartPolicy,
			[]string{string(corev1.RestartPolicyAlways), string(corev1.RestartPolicyOnFailure), string(corev1.RestartPolicyNever)}))
	}
	if d := sp.ActiveDeadlineSeconds; d != nil && *d <= 0 {
		errs = append(errs, field.Invalid(spec.Child("activeDeadlineSeconds"), *d, "must be between 1 and 2147483647, inclusive"))
	}
	if sc := sp.SecurityContext; sc != nil {
		for name, id := range map[string]*int64{"runAsUser": sc.RunAsUser, "runAsGroup": sc.RunAsGroup} {
			if id != nil && (*id < 0 || *id > 2147483647) {
				errs = append(errs, field.Invalid(spec.Child("securityContext", name), *id, "must be between 0 and 2147483647, inclusive"))
			}
		}
	}
	volumes := map[string]bool{}
	for i, v := range sp.Volumes {
		p := spec.Child("volumes").Index(i)
		for _, msg := range validation.IsDNS1123Label(v.Name) {
			errs = append(errs, field.Invalid(p.Child("name"), v.Name, msg))
		}
		if volumes[v.Name] {
			errs = append(errs, field.Duplicate(p.Child("name"), v.Name))
		}
		volumes[v.Name] = true
	}
	if len(sp.Containers) == 0 {
		errs = append(errs, field.Required(spec.Child("containers"), ""))
	}
	names := map[string]bool{}
	for i, c := range sp.Containers {
		p := spec.Child("containers").Index(i)
		for _, msg := range validation.IsDNS1123Label(c.Name) {
			errs = append(errs, field.Invalid(p.Child("name"), c.Name, msg))
		}
		if names[c.Name] {
			errs = append(errs, field.Duplicate(p.Child("name"), c.Name))
		}
		names[c.Name] = true
		if c.Image == "" {
			errs = append(errs, field.Required(p.Child("image"), ""))
		}
		for j, e := range c.Env {
			for _, msg := range validation.IsEnvVarName(e.Name) {
				errs = append(errs, field.Invalid(p.Child("env").Index(j).Child("name"), e.Name, msg))
			}
		}
		for j, m := range c.VolumeMounts {
			mp := p.Child("volumeMounts").Index(j)
			if !volumes[m.Name] {
				errs = append(errs, field.NotFound(mp.Child("name"), m.Name))
			}
			if m.MountPath == "" {
				errs = append(errs, field.Required(mp.Child("mountPath"), ""))
			}
			if strings.HasPrefix(m.SubPath, "/") {
				errs = append(errs, field.Invalid(mp.Child("subPath"), m.SubPath, "must be a relative path"))
			}
			if slices.Contains(strings.Split(m.SubPath, "/"), "..") {
				errs = append(errs, field.Invalid(mp.Child("subPath"), m.SubPath, "must not contain '..'"))
			}
		}
		for r, lim := range c.Resources.Limits {
			if req, ok := c.Resources.Requests[r]; ok && req.Cmp(lim) > 0 {
				errs = append(errs, field.Invalid(p.Child("resources", "requests"), req.String(), fmt.Sprintf("must be less than or equal to %s limit of %s", r, lim.String())))
			}
		}
	}
	return errs
}

// store keeps a new pod, tells the watches and hands it to the kubelet;
// the caller holds s.mu.
func (s *Server) store(pod *corev1.Pod) {
	ctx, cancel := context.WithCancel(context.Background())
	e := &podEntry{pod: pod, container: kubelet.NewContainer(), ctx: ctx, cancel: cancel}
	s.pods[pod.Namespace+"/"+pod.Name] = e
	s.changed(watch.Added, pod)
	if s.kubelet {
		s.kubelets.Add(1)
		go s.runPod(e)
	}
}

func (s *Server) getPod(w http.ResponseWriter, ns, name string) {
	s.mu.Lock()
	e, ok := s.pods[ns+"/"+name]
	var p *corev1.Pod
	if ok {
		p = typed(e.pod)
	}
	s.mu.Unlock()
	if !ok {
		writeStatus(w, &apierrors.NewNotFound(podsResource, name).ErrStatus)
		return
	}
	writeJSON(w, http.StatusOK, p)
}

// deletePod deletes gracefully, as for a pod bound to a node: a pod whose
// container runs gets its deletionTimestamp and stays until the kubelet
// has stopped the process (SIGTERM, SIGKILL after the grace period); any
// other pod goes at once (https://kubernetes.io/docs/concepts/workloads/pods/pod-lifecycle/#pod-termination).
func (s *Server) deletePod(w http.ResponseWriter, r *http.Request, ns, name string) {
	q := r.URL.Query()
	opts := metav1.DeleteOptions{}
	if body, _ := io.ReadAll(r.Body); len(body) > 0 {
		if err := json.Unmarshal(body, &opts); err != nil {
			writeStatus(w, &apierrors.NewBadRequest("the body of the request was in an unknown format: "+err.Error()).ErrStatus)
			return
		}
	}
	if v := q.Get("gracePeriodSeconds"); v != "" {
		g, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			writeStatus(w, &apierrors.NewBadRequest("gracePeriodSeconds: "+err.Error()).ErrStatus)
			return
		}
		opts.GracePeriodSeconds = &g
	}
	dryRun := len(q["dryRun"]) > 0 || len(opts.DryRun) > 0

	s.mu.Lock()
	defer s.mu.Unlock()
	key := ns + "/" + name
	e, ok := s.pods[key]
	if !ok {
		writeStatus(w, &apierrors.NewNotFound(podsResource, name).ErrStatus)
		return
	}
	if dryRun {
		writeJSON(w, http.StatusOK, typed(e.pod))
		return
	}
	grace := *e.pod.Spec.TerminationGracePeriodSeconds
	if opts.GracePeriodSeconds != nil {
		grace = *opts.GracePeriodSeconds
	}
	if grace > 0 && e.container.Running() {
		if e.pod.DeletionTimestamp == nil {
			e.pod.DeletionTimestamp = ptr(metav1.Now())
			e.pod.DeletionGracePeriodSeconds = &grace
			s.changed(watch.Modified, e.pod)
			e.container.Stop(time.Duration(grace) * time.Second)
		}
		writeJSON(w, http.StatusOK, typed(e.pod))
		return
	}
	// Grace period 0, or no process: at once.
	e.container.Stop(0)
	p := typed(e.pod)
	s.remove(key, e)
	writeJSON(w, http.StatusOK, p)
}

// remove drops a pod from the store and tells the watches; the caller
// holds s.mu.
func (s *Server) remove(key string, e *podEntry) {
	if e.pod.DeletionTimestamp == nil {
		e.pod.DeletionTimestamp = ptr(metav1.Now())
		e.pod.DeletionGracePeriodSeconds = ptr(int64(0))
	}
	delete(s.pods, key)
	s.collectSecrets(e.pod)
	s.changed(watch.Deleted, e.pod)
	e.cancel()
}

// listOptions reads and checks a list or watch request's options as the
// API server does (meta/internalversion/validation).
func (s *Server) listOptions(r *http.Request) (*metainternalversion.ListOptions, *metav1.Status) {
	var v1opts metav1.ListOptions
	if err := s.params.DecodeParameters(r.URL.Query(), corev1.SchemeGroupVersion, &v1opts); err != nil {
		return nil, &apierrors.NewBadRequest(err.Error()).ErrStatus
	}
	var opts metainternalversion.ListOptions
	if err := metainternalversion.Convert_v1_ListOptions_To_internalversion_ListOptions(&v1opts, &opts, nil); err != nil {
		return nil, &apierrors.NewBadRequest(err.Error()).ErrStatus
	}
	if errs := metavalidation.ValidateListOptions(&opts, true); len(errs) > 0 {
		return nil, &apierrors.NewInvalid(schema.GroupKind{Group: metav1.GroupName, Kind: "ListOptions"}, "", errs).ErrStatus
	}
	if opts.LabelSelector == nil {
		opts.LabelSelector = labels.Everything()
	}
	if opts.FieldSelector == nil {
		opts.FieldSelector = fields.Everything()
	}
	return &opts, nil
}

// podFields are the fields a pod list or watch may select on.
func podFields(p *corev1.Pod) fields.Set {
	return fields.Set{
		"metadata.name": p.Name, "metadata.namespace": p.Namespace,
		"spec.nodeName": p.Spec.NodeName, "spec.restartPolicy": string(p.Spec.RestartPolicy),
		"spec.schedulerName": p.Spec.SchedulerName, "spec.serviceAccountName": p.Spec.ServiceAccountName,
		"status.phase": string(p.Status.Phase), "status.podIP": p.Status.PodIP,
		"status.nominatedNodeName": p.Status.NominatedNodeName,
	}
}

func eventFields(e *corev1.Event) fields.Set {
	return fields.Set{
		"metadata.name": e.Name, "metadata.namespace": e.Namespace,
		"involvedObject.kind": e.InvolvedObject.Kind, "involvedObject.namespace": e.InvolvedObject.Namespace,
		"involvedObject.name": e.InvolvedObject.Name, "involvedObject.uid": string(e.InvolvedObject.UID),
		"involvedObject.apiVersion": e.InvolvedObject.APIVersion, "involvedObject.resourceVersion": e.InvolvedObject.ResourceVersion,
		"involvedObject.fieldPath": e.InvolvedObject.FieldPath, "reason": e.Reason, "reportingComponent": e.ReportingController,
		"source": e.Source.Component, "type": e.Type,
	}
}

// checkFields refuses a field selector on a field the resource does not
// index, as the API server does.
func checkFields(sel fields.Selector, known fields.Set) *metav1.Status {
	for _, req := range sel.Requirements() {
		if _, ok := known[req.Field]; !ok {
			return &apierrors.NewBadRequest(fmt.Sprintf("field label not supported: %s", req.Field)).ErrStatus
		}
	}
	return nil
}

// continueToken is the stand-in's (opaque to clients) continue value.
type continueToken struct {
	RV    int64  `json:"rv"`
	After string `json:"after"`
}

// listPods answers a list, in chunks when limit is set
// (https://kubernetes.io/docs/reference/using-api/api-concepts/#retrieving-large-results-sets-in-chunks).
// It always serves the most recent state, whatever resourceVersion asks.
func (s *Server) listPods(w http.ResponseWriter, r *http.Request, ns string) {
	opts, st := s.listOptions(r)
	if st == nil {
		st = checkFields(opts.FieldSelector, podFields(&corev1.Pod{}))
	}
	if st != nil {
		writeStatus(w, st)
		return
	}
	after := ""
	if opts.Continue != "" {
		var tok continueToken
		raw, err := base64.RawURLEncoding.DecodeString(opts.Continue)
		if err == nil {
			err = json.Unmarshal(raw, &tok)
		}
		if err != nil {
			writeStatus(w, &apierrors.NewBadRequest("continue key is not valid: "+err.Error()).ErrStatus)
			return
		}
		after = tok.After
	}
	s.mu.Lock()
	list := &corev1.PodList{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "PodList"},
		ListMeta: metav1.ListMeta{ResourceVersion: fmt.Sprint(s.rv)}}
	var keys []string
	for _, key := range s.podKeys() {
		p := s.pods[key].pod
		if key > after && (ns == "" || p.Namespace == ns) && opts.LabelSelector.Matches(labels.Set(p.Labels)) && opts.FieldSelector.Matches(podFields(p)) {
			keys = append(keys, key)
		}
	}
	if opts.Limit > 0 && int64(len(keys)) > opts.Limit {
		rest := int64(len(keys)) - opts.Limit
		keys = keys[:opts.Limit]
		raw, _ := json.Marshal(continueToken{RV: s.rv, After: keys[len(keys)-1]})
		list.Continue = base64.RawURLEncoding.EncodeToString(raw)
		list.RemainingItemCount = &rest
	}
	for _, key := range keys {
		list.Items = append(list.Items, *s.pods[key].pod.DeepCopy())
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, list)
}

// podLog answers pods/log as the kubelet (through the API server) does: the
// container's output, 400 for a container that has not started, whose
// message names its waiting reason
// (https://kubernetes.io/docs/reference/kubernetes-api/workload-resources/pod-v1/#read-log-of-the-specified-pod).
// follow, previous, sinceSeconds and timestamps are not supported.
func (s *Server) podLog(w http.ResponseWriter, r *http.Request, ns, name string) {
	q := r.URL.Query()
	s.mu.Lock()
	e, ok := s.pods[ns+"/"+name]
	var pod *corev1.Pod
	var text string
	if ok {
		pod, text = e.pod.DeepCopy(), e.container.Logs.String()
	}
	s.mu.Unlock()
	if !ok {
		writeStatus(w, &apierrors.NewNotFound(podsResource, name).ErrStatus)
		return
	}
	container := q.Get("container")
	if container == "" {
		if len(pod.Spec.Containers) != 1 {
			var names []string
			for _, c := range pod.Spec.Containers {
				names = append(names, c.Name)
			}
			writeStatus(w, &apierrors.NewBadRequest(fmt.Sprintf("a container name must be specified for pod %s, choose one of: %v", name, names)).ErrStatus)
			return
		}
		container = pod.Spec.Containers[0].Name
	}
	if !slices.ContainsFunc(pod.Spec.Containers, func(c corev1.Container) bool { return c.Name == container }) {
		writeStatus(w, &apierrors.NewBadRequest(fmt.Sprintf("container %s is not valid for pod %s", container, name)).ErrStatus)
		return
	}
	text, err := kubelet.Select(pod, container, text, q)
	if err != nil {
		writeStatus(w, &apierrors.NewBadRequest(err.Error()).ErrStatus)
		return
	}
	w.Header().Set("Content-Type", "text/plain")
	w.WriteHeader(http.StatusOK)
	_, _ = io.WriteString(w, text)
}

func (s *Server) listEvents(w http.ResponseWriter, r *http.Request, ns string) {
	opts, st := s.listOptions(r)
	if st == nil {
		st = checkFields(opts.FieldSelector, eventFields(&corev1.Event{}))
	}
	if st != nil {
		writeStatus(w, st)
		return
	}
	s.mu.Lock()
	list := &corev1.EventList{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "EventList"},
		ListMeta: metav1.ListMeta{ResourceVersion: fmt.Sprint(s.rv)}}
	for i := range s.events {
		e := &s.events[i]
		if (ns == "" || e.Namespace == ns) && opts.LabelSelector.Matches(labels.Set(e.Labels)) && opts.FieldSelector.Matches(eventFields(e)) {
			list.Items = append(list.Items, *e.DeepCopy())
		}
	}
	s.mu.Unlock()
	writeJSON(w, http.StatusOK, list)
}

func (s *Server) getClaim(w http.ResponseWriter, ns, name string) {
	s.mu.Lock()
	pvc, ok := s.claims[ns+"/"+name]
	if ok {
		pvc = pvc.DeepCopy()
	}
	s.mu.Unlock()
	if !ok {
		writeStatus(w, &apierrors.NewNotFound(claimsResource, name).ErrStatus)
		return
	}
	pvc.TypeMeta = metav1.TypeMeta{APIVersion: "v1", Kind: "PersistentVolumeClaim"}
	writeJSON(w, http.StatusOK, pvc)
}

// event records what the scheduler or the kubelet reports about a pod;
// the caller holds s.mu.
func (s *Server) event(pod *corev1.Pod, typ, reason, component, message string) {
	now := metav1.Now()
	s.rv++
	s.events = append(s.events, corev1.Event{
		ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s.%x", pod.Name, time.Now().UnixNano()), Namespace: pod.Namespace,
			ResourceVersion: fmt.Sprint(s.rv), CreationTimestamp: now},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name,
			UID: pod.UID, ResourceVersion: pod.ResourceVersion},
		Type: typ, Reason: reason, Message: message, Count: 1,
		Source:         corev1.EventSource{Component: component, Host: NodeName},
		FirstTimestamp: now, LastTimestamp: now,
		ReportingController: component, ReportingInstance: component + "-" + NodeName,
	})
}
