package kubernetes

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/containers"
)

// stepScript runs the command the way every other backend does (see
// batch/jobscript): with bash where the image has it, else sh. The command
// arrives as "$1", never pasted into the script, so no quoting of user
// input is involved; "$0" names the step in error messages.
const stepScript = `if [ -x /bin/bash ]; then exec /bin/bash -c "$1"; fi; exec /bin/sh -c "$1"`

// escapeDollars keeps a string from Kubernetes' own expansion. The
// kubelet expands $(VAR) from the container's environment and turns $$
// into $ in a container's command, args and env values (API reference,
// Container.command and EnvVar.value), so `echo $$` or `$(date)` would not
// reach the shell as the user wrote them. Every $ written as $$ comes out
// as exactly one $.
func escapeDollars(s string) string { return strings.ReplaceAll(s, "$", "$$") }

var envName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// BuildPod is the one place step pods are made. It is pure: the same spec
// and configuration give the same pod, and every pod it returns passes Pod
// Security "restricted" and OpenShift's nonroot-v2 SCC. It refuses what
// must never run: uid or gid 0, a uid below the site minimum, a workspace
// outside the claim, a local image, resources above the site maximum.
func BuildPod(spec batch.Spec, cfg Config) (*corev1.Pod, error) {
	cfg = cfg.withDefaults()
	if err := checkAccount(spec.User, cfg.MinUID); err != nil {
		return nil, err
	}
	subPath, err := workspaceSubPath(spec.Workspace, cfg.WorkspaceRoot)
	if err != nil {
		return nil, err
	}
	image, err := imageRef(spec.Image)
	if err != nil {
		return nil, err
	}
	env, err := envVars(spec.Env, spec.Workspace)
	if err != nil {
		return nil, err
	}
	res, err := resources(spec.Hints, cfg)
	if err != nil {
		return nil, err
	}
	if spec.Secrets.Kerberos {
		return nil, fmt.Errorf("kerberos: true is not available for Kubernetes steps on this site (the ticket would be made in the pod, whose image need not have kinit): run the step on another compute_backend")
	}
	if t := spec.Hints.JobTimeoutSeconds; t < 0 {
		return nil, fmt.Errorf("kubernetes_job_timeout %d is negative: give the step's time limit in seconds, or leave it out for the site's default", t)
	}
	uid, gid := int64(spec.User.UID), int64(spec.User.GID)
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        PodName(spec.JobID, spec.StepName),
			Namespace:   cfg.Namespace,
			Labels:      podLabels(spec),
			Annotations: podAnnotations(spec, cfg),
		},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			ServiceAccountName:            cfg.StepServiceAccount,
			AutomountServiceAccountToken:  ptr(false),
			EnableServiceLinks:            ptr(false),
			ActiveDeadlineSeconds:         deadline(spec.Hints, cfg),
			TerminationGracePeriodSeconds: ptr(int64(30)),
			ImagePullSecrets:              pullSecrets(cfg.ImagePullSecrets),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:       ptr(true),
				RunAsUser:          &uid,
				RunAsGroup:         &gid,
				SupplementalGroups: supplementalGroups(spec.User),
				// Strict: the process gets exactly these groups and the
				// primary gid. The default, Merge, also adds the groups the
				// image's /etc/group gives the uid, so an image the user
				// chose could hand its step any gid (0 included). The
				// preflight checks that the API server keeps the field.
				SupplementalGroupsPolicy: ptr(corev1.SupplementalGroupsPolicyStrict),
				// No FSGroup: NFS ignores it, and on OpenShift the user's
				// own gid would not pass restricted-v2's single fsGroup.
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Containers: []corev1.Container{{
				Name:       ContainerName,
				Image:      image,
				Command:    escapeAll("/bin/sh", "-c", stepScript, spec.StepName, spec.Command),
				WorkingDir: spec.Workspace,
				Env:        env,
				Resources:  res,
				VolumeMounts: []corev1.VolumeMount{{
					Name: WorkspaceVolume, MountPath: spec.Workspace, SubPath: subPath,
				}},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr(false),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
				TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
			}},
			Volumes: []corev1.Volume{{
				Name: WorkspaceVolume,
				VolumeSource: corev1.VolumeSource{
					PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: cfg.ClaimName},
				},
			}},
		},
	}
	return pod, nil
}

func ptr[T any](v T) *T { return &v }

// checkAccount refuses root and system accounts. Pod Security only forbids
// runAsUser 0; gid 0 passes it, and REANA's own default runtime gid is 0,
// so that is refused here too, as is membership of group 0.
func checkAccount(a asuser.Account, minUID uint32) error {
	switch {
	case a.UID == 0:
		return fmt.Errorf("user %q has uid 0: steps never run as root", a.Name)
	case a.GID == 0:
		return fmt.Errorf("user %q has primary gid 0 (root's group): steps never run with it", a.Name)
	case slices.Contains(a.Groups, 0):
		return fmt.Errorf("user %q is in group 0 (root's group): steps never run with it", a.Name)
	case a.UID < minUID:
		return fmt.Errorf("user %q has uid %d, below this site's minimum %d", a.Name, a.UID, minUID)
	}
	return nil
}

// workspaceSubPath is the workspace's path inside the claim's volume.
func workspaceSubPath(workspace, root string) (string, error) {
	if !filepath.IsAbs(workspace) {
		return "", fmt.Errorf("workspace %q is not an absolute path", workspace)
	}
	rel, err := filepath.Rel(filepath.Clean(root), filepath.Clean(workspace))
	if err != nil || rel == "." || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("workspace %s is not inside %s, the directory the site's Kubernetes volume claim holds", workspace, root)
	}
	return rel, nil
}

// imageRef is the step's image as the kubelet takes it: fully qualified
// (docker.io/library/debian:12-slim), because CRI-O on OpenShift may have
// no registry to search for a short name.
func imageRef(environment string) (string, error) {
	img, err := containers.ParseImage(environment)
	if err != nil {
		return "", err
	}
	if img.IsPath() {
		return "", fmt.Errorf("image %q is a file on this host (a SIF file or an unpacked image): Kubernetes steps need a registry image such as docker.io/library/debian:12-slim", environment)
	}
	return strings.TrimPrefix(img.PullURI(), "docker://"), nil
}

// escapeAll escapes each element (see escapeDollars).
func escapeAll(args ...string) []string {
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = escapeDollars(a)
	}
	return out
}

// envVars lists the environment sorted by name, so the same spec always
// gives the same pod, with every value escaped from Kubernetes' expansion.
// HOME is the workspace unless the spec sets it: the step's uid is usually
// unknown to the image's /etc/passwd, and the container runtime then sets
// HOME=/, where the user may write nothing.
func envVars(m map[string]string, workspace string) ([]corev1.EnvVar, error) {
	keys := make([]string, 0, len(m)+1)
	for k := range m {
		if !envName.MatchString(k) {
			return nil, fmt.Errorf("bad environment variable name %q", k)
		}
		keys = append(keys, k)
	}
	home, hasHome := m["HOME"]
	if !hasHome {
		keys = append(keys, "HOME")
		home = workspace
	}
	sort.Strings(keys)
	env := make([]corev1.EnvVar, 0, len(keys))
	for _, k := range keys {
		v := m[k]
		if k == "HOME" {
			v = home
		}
		env = append(env, corev1.EnvVar{Name: k, Value: escapeDollars(v)})
	}
	return env, nil
}

// supplementalGroups are the user's other groups, sorted and without the
// primary gid, which the process has anyway.
func supplementalGroups(a asuser.Account) []int64 {
	var gs []int64
	for _, g := range a.Groups {
		if g != a.GID {
			gs = append(gs, int64(g))
		}
	}
	slices.Sort(gs)
	return slices.Compact(gs)
}

func deadline(h batch.Hints, cfg Config) *int64 {
	switch {
	case h.JobTimeoutSeconds > 0:
		return ptr(int64(h.JobTimeoutSeconds))
	case cfg.DefaultJobTimeout > 0:
		return ptr(max(int64(cfg.DefaultJobTimeout.Seconds()), 1))
	}
	return nil
}

func pullSecrets(names []string) []corev1.LocalObjectReference {
	var refs []corev1.LocalObjectReference
	for _, n := range pullSecretNames(names) {
		refs = append(refs, corev1.LocalObjectReference{Name: n})
	}
	return refs
}

// pullSecretNames are the configured image pull secrets, trimmed, without
// empty entries (a list such as "regcred, other," split on commas).
func pullSecretNames(names []string) []string {
	var out []string
	for _, n := range names {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, n)
		}
	}
	return out
}

// podLabels make `kubectl get pods -l reana-site/run=root6-fit.1` work.
func podLabels(s batch.Spec) map[string]string {
	return map[string]string{
		LabelManagedBy: ManagedBy,
		LabelWorkflow:  LabelValue(s.WorkflowID),
		LabelJob:       LabelValue(s.JobID),
		LabelStep:      LabelValue(s.StepName),
		LabelRun:       LabelValue(s.WorkflowName),
		LabelUser:      LabelValue(s.User.Name),
	}
}

func podAnnotations(s batch.Spec, cfg Config) map[string]string {
	a := map[string]string{
		AnnotationJobID:        s.JobID,
		AnnotationWorkflowID:   s.WorkflowID,
		AnnotationWorkflowName: s.WorkflowName,
		AnnotationStep:         s.StepName,
		AnnotationUser:         s.User.Name,
	}
	if cfg.OpenShift {
		a[AnnotationRequiredSCC] = cfg.SCC
	}
	return a
}
