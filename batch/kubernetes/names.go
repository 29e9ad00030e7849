package kubernetes

import (
	"crypto/sha256"
	"encoding/hex"
	"regexp"
	"strings"
)

// Label keys. Their values are sanitised to what Kubernetes accepts in a
// label; the exact originals are in the Annotation* annotations, so
// nothing a user typed is lost.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "reana-site"
	LabelWorkflow  = "reana-site/workflow"
	LabelJob       = "reana-site/job"
	LabelStep      = "reana-site/step"
	LabelRun       = "reana-site/run"
	LabelUser      = "reana-site/user"

	// AnnotationJobID carries the exact job id; the backend finds its pods
	// by it, never by a sanitised label alone.
	AnnotationJobID        = "reana-site/job-id"
	AnnotationWorkflowID   = "reana-site/workflow-id"
	AnnotationWorkflowName = "reana-site/workflow-name"
	AnnotationStep         = "reana-site/step-name"
	AnnotationUser         = "reana-site/user-name"
	// AnnotationRequiredSCC pins the SCC on OpenShift.
	AnnotationRequiredSCC = "openshift.io/required-scc"

	// ContainerName is the name of the one container of a step pod.
	ContainerName = "step"
	// WorkspaceVolume is the name of the claim's volume in a step pod.
	WorkspaceVolume = "workspace"
)

// ManagedSelector selects every pod this backend made.
const ManagedSelector = LabelManagedBy + "=" + ManagedBy

var (
	notLabelChar  = regexp.MustCompile(`[^A-Za-z0-9._-]+`)
	notDNSChar    = regexp.MustCompile(`[^a-z0-9-]+`)
	dnsLabelShape = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]*[a-z0-9])?$`)
)

// LabelValue turns s into a valid label value: at most 63 characters from
// [A-Za-z0-9._-], beginning and ending with a letter or digit. Runs of
// other characters become '_'. The result may be empty (a valid value).
func LabelValue(s string) string {
	v := notLabelChar.ReplaceAllString(s, "_")
	if len(v) > 63 {
		v = v[:63]
	}
	return strings.TrimFunc(v, func(r rune) bool { return !isAlnum(r) })
}

func isAlnum(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9'
}

// dnsPart turns s into lower-case letters, digits and inner '-', at most n
// characters long.
func dnsPart(s string, n int) string {
	v := notDNSChar.ReplaceAllString(strings.ToLower(s), "-")
	if len(v) > n {
		v = v[:n]
	}
	return strings.Trim(v, "-")
}

// PodName is the pod of a job: "reana-<step>-<job id>". It depends only on
// the job, so a repeated Submit finds the pod the first one made. A job id
// that is not already DNS-safe (ours are UUIDs) is replaced by a hash of it.
func PodName(jobID, step string) string {
	id := jobID
	if len(id) > 40 || !dnsLabelShape.MatchString(id) {
		sum := sha256.Sum256([]byte(jobID))
		id = hex.EncodeToString(sum[:16])
	}
	name := "reana-"
	if s := dnsPart(step, 16); s != "" {
		name += s + "-"
	}
	return name + id
}
