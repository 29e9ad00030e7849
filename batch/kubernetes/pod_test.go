package kubernetes

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	"k8s.io/apimachinery/pkg/util/validation"
	psaapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
)

func testConfig() Config {
	return Config{
		Namespace:          "reana",
		ClaimName:          "reana-workspaces",
		WorkspaceRoot:      "/srv/reana",
		StepServiceAccount: "reana-site-step",
		MinUID:             1000,
	}
}

func testSpec() batch.Spec {
	return batch.Spec{
		JobID:        "0b7c9a4e-5d7f-4a43-9d8e-2f0b8c1d2e3f",
		WorkflowID:   "5e1f4c2a-8b7d-4e6f-9a0b-1c2d3e4f5a6b",
		WorkflowName: "root6-fit.1",
		StepName:     "gendata",
		Command:      "mkdir -p results && bash code/gendata.sh 20000 results/data.txt",
		Image:        "docker.io/library/debian:12-slim",
		Workspace:    "/srv/reana/users/alice/workflows/5e1f4c2a",
		Env:          map[string]string{"REANA_WORKSPACE": "/srv/reana/users/alice/workflows/5e1f4c2a", "REANA_WORKFLOW_UUID": "5e1f4c2a"},
		User:         asuser.Account{Name: "alice", UID: 4101, GID: 4100, Groups: []uint32{4100, 5002, 5001}},
	}
}

// restricted runs the real Pod Security "restricted" evaluator, as
// admission would at the latest policy version, and returns its refusals.
func restricted(t *testing.T, pod *corev1.Pod) []string {
	t.Helper()
	ev, err := policy.NewEvaluator(policy.DefaultChecks(), nil)
	require.NoError(t, err)
	var refused []string
	for _, r := range ev.EvaluatePod(psaapi.LevelVersion{Level: psaapi.LevelRestricted, Version: psaapi.LatestVersion()}, &pod.ObjectMeta, &pod.Spec) {
		if !r.Allowed {
			refused = append(refused, r.ForbiddenReason+": "+r.ForbiddenDetail)
		}
	}
	return refused
}

// TestEveryPodPassesRestricted builds every kind of pod the builder makes
// and runs the Pod Security evaluator on each.
// buildWith builds the pod of the test spec and config as edited (either
// edit may be nil).
func buildWith(editSpec func(*batch.Spec), editCfg func(*Config)) (*corev1.Pod, error) {
	spec, cfg := testSpec(), testConfig()
	if editSpec != nil {
		editSpec(&spec)
	}
	if editCfg != nil {
		editCfg(&cfg)
	}
	return BuildPod(spec, cfg)
}

func TestEveryPodPassesRestricted(t *testing.T) {
	variants := []struct {
		name string
		spec func(*batch.Spec)
		cfg  func(*Config)
	}{
		{name: "plain"},
		{name: "no groups", spec: func(s *batch.Spec) { s.User.Groups = nil }},
		{name: "many groups", spec: func(s *batch.Spec) { s.User.Groups = []uint32{1, 2, 3, 65534, 4100} }},
		{name: "no env", spec: func(s *batch.Spec) { s.Env = nil }},
		{name: "memory limit", spec: func(s *batch.Spec) { s.Hints.MemoryLimit = "4Gi" }},
		{name: "all resources", spec: func(s *batch.Spec) {
			s.Hints = batch.Hints{MemoryLimit: "4Gi", MemoryRequest: "1Gi", CPULimit: "2", CPURequest: "500m"}
		}},
		{name: "site defaults and maxima", cfg: func(c *Config) {
			c.DefaultCPU, c.DefaultMemory, c.MaxCPU, c.MaxMemory = "1", "2Gi", "8", "32Gi"
		}},
		{name: "step timeout", spec: func(s *batch.Spec) { s.Hints.JobTimeoutSeconds = 60 }},
		{name: "site timeout", cfg: func(c *Config) { c.DefaultJobTimeout = time.Hour }},
		{name: "openshift", cfg: func(c *Config) { c.OpenShift = true }},
		{name: "openshift custom scc", cfg: func(c *Config) { c.OpenShift, c.SCC = true, "reana-nfs" }},
		{name: "default service account", cfg: func(c *Config) { c.StepServiceAccount = "" }},
		{name: "pull secrets", cfg: func(c *Config) { c.ImagePullSecrets = []string{"registry-cred"} }},
		{name: "no minimum uid", cfg: func(c *Config) { c.MinUID = 0 }, spec: func(s *batch.Spec) { s.User.UID = 1 }},
		{name: "registry image by digest", spec: func(s *batch.Spec) {
			s.Image = "registry.example.org/team/img@sha256:" + strings.Repeat("a", 64)
		}},
		{name: "odd names", spec: func(s *batch.Spec) {
			s.StepName, s.WorkflowName, s.User.Name = "Fit Data (step 2)!", "my analysis.12.3", "first.last@CERN.CH"
		}},
		{name: "dollars in the command and the environment", spec: func(s *batch.Spec) {
			s.Command, s.Env["X"] = `echo "$$ $(date) ${HOME}"`, "$(REANA_WORKSPACE)"
		}},
		{name: "site maximum memory only", cfg: func(c *Config) { c.MaxMemory = "32Gi" }},
		{name: "images may add groups", cfg: func(c *Config) { c.AllowImageGroups = true }},
	}
	for _, v := range variants {
		t.Run(v.name, func(t *testing.T) {
			pod, err := buildWith(v.spec, v.cfg)
			require.NoError(t, err)
			assert.Empty(t, restricted(t, pod))
			assertValidMeta(t, pod)
			assertStrictGroups(t, pod)
		})
	}
	t.Run("the preflight pod", func(t *testing.T) {
		b := &Backend{cfg: testConfig().withDefaults()}
		pod, err := b.canonicalPod()
		require.NoError(t, err)
		assert.Empty(t, restricted(t, pod))
		assertStrictGroups(t, pod)
	})
}

// TestEvaluatorRefusesBrokenPods shows the evaluator is awake: a pod with
// each safeguard removed is refused for that reason.
func TestEvaluatorRefusesBrokenPods(t *testing.T) {
	breakers := []struct {
		name, want string
		mutate     func(*corev1.Pod)
	}{
		{"privilege escalation", "allowPrivilegeEscalation != false", func(p *corev1.Pod) { p.Spec.Containers[0].SecurityContext.AllowPrivilegeEscalation = nil }},
		{"capabilities kept", "unrestricted capabilities", func(p *corev1.Pod) { p.Spec.Containers[0].SecurityContext.Capabilities = nil }},
		{"root allowed", "runAsNonRoot != true", func(p *corev1.Pod) { p.Spec.SecurityContext.RunAsNonRoot = nil }},
		{"uid 0", "runAsUser=0", func(p *corev1.Pod) { p.Spec.SecurityContext.RunAsUser = ptr(int64(0)) }},
		{"no seccomp", "seccompProfile", func(p *corev1.Pod) { p.Spec.SecurityContext.SeccompProfile = nil }},
		{"inline nfs workspace", `restricted volume types: volume "workspace" uses restricted volume type "nfs"`, func(p *corev1.Pod) {
			p.Spec.Volumes[0].VolumeSource = corev1.VolumeSource{NFS: &corev1.NFSVolumeSource{Server: "nfs", Path: "/srv/reana"}}
		}},
		{"hostPath workspace", `uses restricted volume type "hostPath"`, func(p *corev1.Pod) {
			p.Spec.Volumes[0].VolumeSource = corev1.VolumeSource{HostPath: &corev1.HostPathVolumeSource{Path: "/srv/reana"}}
		}},
	}
	for _, b := range breakers {
		t.Run(b.name, func(t *testing.T) {
			pod, err := BuildPod(testSpec(), testConfig())
			require.NoError(t, err)
			b.mutate(pod)
			refused := restricted(t, pod)
			require.NotEmpty(t, refused)
			assert.Contains(t, strings.Join(refused, "; "), b.want)
		})
	}
}

// assertStrictGroups: the container runtime must not add the image's
// groups to the step's (supplementalGroupsPolicy Strict).
func assertStrictGroups(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	require.NotNil(t, pod.Spec.SecurityContext.SupplementalGroupsPolicy, "supplementalGroupsPolicy unset: the runtime would merge the image's groups")
	assert.Equal(t, corev1.SupplementalGroupsPolicyStrict, *pod.Spec.SecurityContext.SupplementalGroupsPolicy)
}

func assertValidMeta(t *testing.T, pod *corev1.Pod) {
	t.Helper()
	assert.Empty(t, validation.IsDNS1123Label(pod.Name), "pod name %q", pod.Name)
	for k, v := range pod.Labels {
		assert.Empty(t, validation.IsQualifiedName(k), "label key %q", k)
		assert.Empty(t, validation.IsValidLabelValue(v), "label %s=%q", k, v)
	}
}

func TestBuildPodShape(t *testing.T) {
	pod, err := BuildPod(testSpec(), testConfig())
	require.NoError(t, err)

	assert.Equal(t, "reana-gendata-0b7c9a4e-5d7f-4a43-9d8e-2f0b8c1d2e3f", pod.Name)
	assert.Equal(t, "reana", pod.Namespace)
	assert.Equal(t, map[string]string{
		LabelManagedBy: "reana-site",
		LabelWorkflow:  "5e1f4c2a-8b7d-4e6f-9a0b-1c2d3e4f5a6b",
		LabelJob:       "0b7c9a4e-5d7f-4a43-9d8e-2f0b8c1d2e3f",
		LabelStep:      "gendata",
		LabelRun:       "root6-fit.1",
		LabelUser:      "alice",
	}, pod.Labels)
	assert.Equal(t, "0b7c9a4e-5d7f-4a43-9d8e-2f0b8c1d2e3f", pod.Annotations[AnnotationJobID])
	assert.NotContains(t, pod.Annotations, AnnotationRequiredSCC)

	sc := pod.Spec.SecurityContext
	assert.Equal(t, int64(4101), *sc.RunAsUser)
	assert.Equal(t, int64(4100), *sc.RunAsGroup)
	assert.Equal(t, []int64{5001, 5002}, sc.SupplementalGroups, "sorted, without the primary gid")
	assert.True(t, *sc.RunAsNonRoot)
	assert.Equal(t, ptr(corev1.SupplementalGroupsPolicyStrict), sc.SupplementalGroupsPolicy)
	assert.Nil(t, sc.FSGroup)
	assert.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, sc.SeccompProfile.Type)

	assert.Equal(t, corev1.RestartPolicyNever, pod.Spec.RestartPolicy)
	assert.False(t, *pod.Spec.AutomountServiceAccountToken)
	assert.False(t, *pod.Spec.EnableServiceLinks)
	assert.Equal(t, "reana-site-step", pod.Spec.ServiceAccountName)
	assert.Nil(t, pod.Spec.ActiveDeadlineSeconds)

	c := pod.Spec.Containers[0]
	assert.Equal(t, "docker.io/library/debian:12-slim", c.Image)
	// The script's "$1" is written "$$1", which Kubernetes turns back
	// into "$1".
	assert.Equal(t, []string{"/bin/sh", "-c", strings.ReplaceAll(stepScript, "$", "$$"), "gendata", testSpec().Command}, c.Command)
	assert.Equal(t, "/srv/reana/users/alice/workflows/5e1f4c2a", c.WorkingDir)
	assert.Equal(t, []corev1.EnvVar{
		{Name: "HOME", Value: "/srv/reana/users/alice/workflows/5e1f4c2a"},
		{Name: "REANA_WORKFLOW_UUID", Value: "5e1f4c2a"},
		{Name: "REANA_WORKSPACE", Value: "/srv/reana/users/alice/workflows/5e1f4c2a"},
	}, c.Env)
	assert.Equal(t, []corev1.VolumeMount{{Name: "workspace", MountPath: "/srv/reana/users/alice/workflows/5e1f4c2a", SubPath: "users/alice/workflows/5e1f4c2a"}}, c.VolumeMounts)
	assert.Equal(t, "reana-workspaces", pod.Spec.Volumes[0].PersistentVolumeClaim.ClaimName)
	assert.False(t, *c.SecurityContext.AllowPrivilegeEscalation)
	assert.Equal(t, []corev1.Capability{"ALL"}, c.SecurityContext.Capabilities.Drop)
	assert.Empty(t, c.Resources.Limits)
	assert.Empty(t, c.Resources.Requests)

	again, err := BuildPod(testSpec(), testConfig())
	require.NoError(t, err)
	assert.Equal(t, pod, again, "the builder is deterministic")
}

func TestBuildPodVariants(t *testing.T) {
	q := resource.MustParse
	tests := []struct {
		name  string
		spec  func(*batch.Spec)
		cfg   func(*Config)
		check func(*testing.T, *corev1.Pod)
	}{
		{
			name: "openshift pins the SCC",
			cfg:  func(c *Config) { c.OpenShift = true },
			check: func(t *testing.T, p *corev1.Pod) {
				assert.Equal(t, "nonroot-v2", p.Annotations[AnnotationRequiredSCC])
			},
		},
		{
			name: "Docker Hub short names are fully qualified",
			spec: func(s *batch.Spec) { s.Image = "reanahub/reana-env-root6:6.18.04" },
			check: func(t *testing.T, p *corev1.Pod) {
				assert.Equal(t, "docker.io/reanahub/reana-env-root6:6.18.04", p.Spec.Containers[0].Image)
			},
		},
		{
			name: "docker:// prefix and other registries",
			spec: func(s *batch.Spec) { s.Image = "docker://gitlab-registry.cern.ch/team/img:v1" },
			check: func(t *testing.T, p *corev1.Pod) {
				assert.Equal(t, "gitlab-registry.cern.ch/team/img:v1", p.Spec.Containers[0].Image)
			},
		},
		{
			name: "memory limit sets the request too",
			spec: func(s *batch.Spec) { s.Hints.MemoryLimit = "4Gi" },
			check: func(t *testing.T, p *corev1.Pod) {
				r := p.Spec.Containers[0].Resources
				assert.True(t, q("4Gi").Equal(r.Limits[corev1.ResourceMemory]))
				assert.True(t, q("4Gi").Equal(r.Requests[corev1.ResourceMemory]))
			},
		},
		{
			name: "site defaults when the step names nothing",
			cfg:  func(c *Config) { c.DefaultCPU, c.DefaultMemory = "500m", "2Gi" },
			check: func(t *testing.T, p *corev1.Pod) {
				r := p.Spec.Containers[0].Resources
				assert.True(t, q("2Gi").Equal(r.Limits[corev1.ResourceMemory]))
				assert.True(t, q("2Gi").Equal(r.Requests[corev1.ResourceMemory]))
				assert.True(t, q("500m").Equal(r.Requests[corev1.ResourceCPU]))
				assert.NotContains(t, r.Limits, corev1.ResourceCPU, "no CPU limit unless asked for")
			},
		},
		{
			name: "a memory request above the default limit raises the limit",
			spec: func(s *batch.Spec) { s.Hints.MemoryRequest = "3Gi" },
			cfg:  func(c *Config) { c.DefaultMemory = "2Gi" },
			check: func(t *testing.T, p *corev1.Pod) {
				r := p.Spec.Containers[0].Resources
				assert.True(t, q("3Gi").Equal(r.Limits[corev1.ResourceMemory]))
			},
		},
		{
			name: "a CPU limit below the default request lowers the request",
			spec: func(s *batch.Spec) { s.Hints.CPULimit = "250m" },
			cfg:  func(c *Config) { c.DefaultCPU = "1" },
			check: func(t *testing.T, p *corev1.Pod) {
				r := p.Spec.Containers[0].Resources
				assert.True(t, q("250m").Equal(r.Requests[corev1.ResourceCPU]))
				assert.True(t, q("250m").Equal(r.Limits[corev1.ResourceCPU]))
			},
		},
		{
			name: "kubernetes_job_timeout",
			spec: func(s *batch.Spec) { s.Hints.JobTimeoutSeconds = 90 },
			cfg:  func(c *Config) { c.DefaultJobTimeout = time.Hour },
			check: func(t *testing.T, p *corev1.Pod) {
				assert.Equal(t, int64(90), *p.Spec.ActiveDeadlineSeconds)
			},
		},
		{
			name: "the site's default timeout",
			cfg:  func(c *Config) { c.DefaultJobTimeout = time.Hour },
			check: func(t *testing.T, p *corev1.Pod) {
				assert.Equal(t, int64(3600), *p.Spec.ActiveDeadlineSeconds)
			},
		},
		{
			name: "long and odd names fit labels, originals in annotations",
			spec: func(s *batch.Spec) {
				s.StepName = "Fit Data: " + strings.Repeat("x", 80)
				s.User.Name = "first.last@CERN.CH"
			},
			check: func(t *testing.T, p *corev1.Pod) {
				assertValidMeta(t, p)
				assert.Equal(t, "first.last_CERN.CH", p.Labels[LabelUser])
				assert.Equal(t, "first.last@CERN.CH", p.Annotations[AnnotationUser])
				assert.Equal(t, "Fit Data: "+strings.Repeat("x", 80), p.Annotations[AnnotationStep])
				assert.Len(t, p.Labels[LabelStep], 63)
			},
		},
		{
			name: "a job id that is not DNS-safe is hashed into the name",
			spec: func(s *batch.Spec) { s.JobID = "Job/ID with spaces" },
			check: func(t *testing.T, p *corev1.Pod) {
				assertValidMeta(t, p)
				assert.Equal(t, "Job/ID with spaces", p.Annotations[AnnotationJobID])
			},
		},
		{
			name: "every $ is escaped from Kubernetes' expansion",
			spec: func(s *batch.Spec) {
				s.StepName = "cost$"
				s.Command = `echo "$$ $(echo hi) ${REANA_WORKSPACE} $(REANA_WORKSPACE) $$$"`
				s.Env["PRICE"] = "$(REANA_WORKSPACE) $$ 5$"
			},
			check: func(t *testing.T, p *corev1.Pod) {
				c := p.Spec.Containers[0]
				assert.Equal(t, "cost$$", c.Command[3])
				assert.Equal(t, `echo "$$$$ $$(echo hi) $${REANA_WORKSPACE} $$(REANA_WORKSPACE) $$$$$$"`, c.Command[4])
				assert.NotContains(t, strings.ReplaceAll(c.Command[2], "$$", ""), "$", "the script's own $ too")
				assert.Contains(t, c.Env, corev1.EnvVar{Name: "PRICE", Value: "$$(REANA_WORKSPACE) $$$$ 5$$"})
				assert.Equal(t, "cost$", p.Annotations[AnnotationStep], "annotations are not expanded")
			},
		},
		{
			name: "HOME is the workspace unless the step sets it",
			spec: func(s *batch.Spec) { s.Env["HOME"] = "/srv/reana/users/alice" },
			check: func(t *testing.T, p *corev1.Pod) {
				var homes []string
				for _, e := range p.Spec.Containers[0].Env {
					if e.Name == "HOME" {
						homes = append(homes, e.Value)
					}
				}
				assert.Equal(t, []string{"/srv/reana/users/alice"}, homes)
			},
		},
		{
			name: "the site's maximum memory is the limit of a step without one",
			cfg:  func(c *Config) { c.MaxMemory = "32Gi" },
			check: func(t *testing.T, p *corev1.Pod) {
				r := p.Spec.Containers[0].Resources
				assert.True(t, q("32Gi").Equal(r.Limits[corev1.ResourceMemory]))
				// An explicit 0: Kubernetes would copy the limit into a
				// missing request and reserve the whole maximum.
				req, ok := r.Requests[corev1.ResourceMemory]
				require.True(t, ok)
				assert.True(t, req.IsZero())
			},
		},
		{
			name: "the site's maximum memory is the limit of a step with a request only",
			spec: func(s *batch.Spec) { s.Hints.MemoryRequest = "3Gi" },
			cfg:  func(c *Config) { c.MaxMemory = "32Gi" },
			check: func(t *testing.T, p *corev1.Pod) {
				r := p.Spec.Containers[0].Resources
				assert.True(t, q("32Gi").Equal(r.Limits[corev1.ResourceMemory]))
				assert.True(t, q("3Gi").Equal(r.Requests[corev1.ResourceMemory]))
			},
		},
		{
			name: "a step's own limit and the site's default stay under a maximum",
			spec: func(s *batch.Spec) { s.Hints.MemoryLimit = "4Gi" },
			cfg:  func(c *Config) { c.MaxMemory, c.DefaultMemory = "32Gi", "2Gi" },
			check: func(t *testing.T, p *corev1.Pod) {
				r := p.Spec.Containers[0].Resources
				assert.True(t, q("4Gi").Equal(r.Limits[corev1.ResourceMemory]))
				assert.True(t, q("4Gi").Equal(r.Requests[corev1.ResourceMemory]))
			},
		},
		{
			name: "no maximum, no default: no memory limit",
			check: func(t *testing.T, p *corev1.Pod) {
				assert.Empty(t, p.Spec.Containers[0].Resources.Limits)
			},
		},
		{
			name: "image pull secrets are trimmed, empty entries dropped",
			cfg:  func(c *Config) { c.ImagePullSecrets = []string{" registry-cred ", "", "  ", "other\t"} },
			check: func(t *testing.T, p *corev1.Pod) {
				assert.Equal(t, []corev1.LocalObjectReference{{Name: "registry-cred"}, {Name: "other"}}, p.Spec.ImagePullSecrets)
			},
		},
		{
			name: "a workspace equal to ... nested deeper is fine",
			spec: func(s *batch.Spec) { s.Workspace = "/srv/reana/a/b/c/d" },
			check: func(t *testing.T, p *corev1.Pod) {
				assert.Equal(t, "a/b/c/d", p.Spec.Containers[0].VolumeMounts[0].SubPath)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pod, err := buildWith(tt.spec, tt.cfg)
			require.NoError(t, err)
			tt.check(t, pod)
			assert.Empty(t, restricted(t, pod))
		})
	}
}

func TestBuildPodRefuses(t *testing.T) {
	tests := []struct {
		name string
		spec func(*batch.Spec)
		cfg  func(*Config)
		want string
	}{
		{name: "uid 0", spec: func(s *batch.Spec) { s.User.UID = 0 }, want: `user "alice" has uid 0: steps never run as root`},
		{name: "gid 0", spec: func(s *batch.Spec) { s.User.GID = 0 }, want: `user "alice" has primary gid 0`},
		{name: "group 0", spec: func(s *batch.Spec) { s.User.Groups = []uint32{0, 4100} }, want: `user "alice" is in group 0`},
		{name: "uid below the minimum", spec: func(s *batch.Spec) { s.User.UID = 999 }, want: `user "alice" has uid 999, below this site's minimum 1000`},
		{name: "uid 0 with no minimum", spec: func(s *batch.Spec) { s.User.UID = 0 }, cfg: func(c *Config) { c.MinUID = 0 }, want: "uid 0"},
		{name: "workspace outside the root", spec: func(s *batch.Spec) { s.Workspace = "/home/alice/ws" }, want: "workspace /home/alice/ws is not inside /srv/reana"},
		{name: "workspace escaping the root", spec: func(s *batch.Spec) { s.Workspace = "/srv/reana/../etc" }, want: "is not inside /srv/reana"},
		{name: "sibling with the root as prefix", spec: func(s *batch.Spec) { s.Workspace = "/srv/reana-other/ws" }, want: "is not inside /srv/reana"},
		{name: "the root itself", spec: func(s *batch.Spec) { s.Workspace = "/srv/reana" }, want: "is not inside"},
		{name: "relative workspace", spec: func(s *batch.Spec) { s.Workspace = "ws" }, want: "not an absolute path"},
		{name: "SIF image", spec: func(s *batch.Spec) { s.Image = "/cvmfs/unpacked.cern.ch/img.sif" }, want: "is a file on this host (a SIF file or an unpacked image): Kubernetes steps need a registry image"},
		{name: "unpacked directory", spec: func(s *batch.Spec) { s.Image = "/cvmfs/unpacked.cern.ch/registry.hub.docker.com/library/debian:12" }, want: "Kubernetes steps need a registry image"},
		{name: "relative SIF", spec: func(s *batch.Spec) { s.Image = "img.sif" }, want: "a SIF file must be given as an absolute path"},
		{name: "no image", spec: func(s *batch.Spec) { s.Image = "" }, want: "names no environment image"},
		{name: "bad env name", spec: func(s *batch.Spec) { s.Env = map[string]string{"A-B": "x"} }, want: `bad environment variable name "A-B"`},
		{name: "memory above the site maximum", spec: func(s *batch.Spec) { s.Hints.MemoryLimit = "128Gi" }, cfg: func(c *Config) { c.MaxMemory = "64Gi" },
			want: "kubernetes_memory_limit 128Gi is above this site's maximum of 64Gi"},
		{name: "memory request above the site maximum", spec: func(s *batch.Spec) { s.Hints.MemoryRequest = "65Gi" }, cfg: func(c *Config) { c.MaxMemory = "64Gi" },
			want: "kubernetes_memory_request 65Gi is above this site's maximum of 64Gi"},
		{name: "CPU above the site maximum", spec: func(s *batch.Spec) { s.Hints.CPULimit = "32" }, cfg: func(c *Config) { c.MaxCPU = "16" },
			want: "kubernetes_cpu_limit 32 is above this site's maximum of 16"},
		{name: "CPU request above the site maximum", spec: func(s *batch.Spec) { s.Hints.CPURequest = "17" }, cfg: func(c *Config) { c.MaxCPU = "16" },
			want: "kubernetes_cpu_request 17 is above this site's maximum of 16"},
		{name: "request above limit", spec: func(s *batch.Spec) { s.Hints.MemoryLimit, s.Hints.MemoryRequest = "1Gi", "2Gi" },
			want: "kubernetes_memory_request 2Gi is above kubernetes_memory_limit 1Gi"},
		{name: "CPU request above limit", spec: func(s *batch.Spec) { s.Hints.CPULimit, s.Hints.CPURequest = "1", "2" },
			want: "kubernetes_cpu_request 2 is above kubernetes_cpu_limit 1"},
		{name: "not a quantity", spec: func(s *batch.Spec) { s.Hints.MemoryLimit = "lots" }, want: `kubernetes_memory_limit "lots" is not a positive Kubernetes quantity`},
		{name: "zero CPU", spec: func(s *batch.Spec) { s.Hints.CPURequest = "0" }, want: `kubernetes_cpu_request "0" is not a positive`},
		{name: "negative job timeout", spec: func(s *batch.Spec) { s.Hints.JobTimeoutSeconds = -5 }, cfg: func(c *Config) { c.DefaultJobTimeout = time.Hour },
			want: "kubernetes_job_timeout -5 is negative: give the step's time limit in seconds, or leave it out for the site's default"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := buildWith(tt.spec, tt.cfg)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestConfigValidation(t *testing.T) {
	tests := []struct {
		name string
		cfg  func(*Config)
		want string
	}{
		{name: "no namespace", cfg: func(c *Config) { c.Namespace = "" }, want: `namespace "" is not a namespace name`},
		{name: "bad namespace", cfg: func(c *Config) { c.Namespace = "Reana_NS" }, want: `namespace "Reana_NS"`},
		{name: "no claim", cfg: func(c *Config) { c.ClaimName = "" }, want: "claim name"},
		{name: "relative root", cfg: func(c *Config) { c.WorkspaceRoot = "srv" }, want: "workspace root"},
		{name: "bad quantity", cfg: func(c *Config) { c.MaxMemory = "much" }, want: `maximum memory "much"`},
		{name: "default above maximum", cfg: func(c *Config) { c.DefaultMemory, c.MaxMemory = "8Gi", "4Gi" }, want: "above this site's maximum"},
		{name: "several at once", cfg: func(c *Config) { c.Namespace, c.ClaimName = "", "" }, want: "claim name"},
		{name: "negative unschedulable grace", cfg: func(c *Config) { c.UnschedulableGrace = -time.Minute }, want: "unschedulable grace -1m0s is negative"},
		{name: "negative image pull grace", cfg: func(c *Config) { c.ImagePullGrace = -time.Minute }, want: "image pull grace -1m0s is negative"},
		{name: "negative start grace", cfg: func(c *Config) { c.StartGrace = -time.Minute }, want: "start grace -1m0s is negative"},
		{name: "negative preflight interval", cfg: func(c *Config) { c.PreflightInterval = -time.Minute }, want: "preflight interval -1m0s is negative"},
		{name: "negative sync timeout", cfg: func(c *Config) { c.SyncTimeout = -time.Second }, want: "sync timeout -1s is negative"},
		{name: "negative watch error grace", cfg: func(c *Config) { c.WatchErrorGrace = -time.Second }, want: "watch error grace -1s is negative"},
		{name: "negative request timeout", cfg: func(c *Config) { c.RequestTimeout = -time.Second }, want: "request timeout -1s is negative"},
		{name: "bad pull secret", cfg: func(c *Config) { c.ImagePullSecrets = []string{"Registry Cred"} }, want: `image pull secret "Registry Cred" is not a Secret name`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			tt.cfg(&cfg)
			_, err := New(cfg, ClientsetAPI(newFakeClient()), nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.ErrorContains(t, CheckConfig(cfg), tt.want)
		})
	}
}

// TestConfigAccepts: what a site may write that validation must take.
func TestConfigAccepts(t *testing.T) {
	tests := []struct {
		name string
		cfg  func(*Config)
	}{
		{name: "pull secrets with spaces and empty entries", cfg: func(c *Config) { c.ImagePullSecrets = []string{" regcred", "", "other "} }},
		{name: "pods kept forever", cfg: func(c *Config) { c.PodRetention = -1 }},
		{name: "every duration set", cfg: func(c *Config) {
			c.UnschedulableGrace, c.ImagePullGrace, c.StartGrace = time.Minute, time.Minute, time.Minute
			c.PreflightInterval, c.SyncTimeout, c.WatchErrorGrace, c.RequestTimeout = time.Minute, time.Second, time.Second, time.Second
		}},
		{name: "images may add groups", cfg: func(c *Config) { c.AllowImageGroups = true }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := testConfig()
			tt.cfg(&cfg)
			assert.NoError(t, CheckConfig(cfg))
			_, err := New(cfg, ClientsetAPI(newFakeClient()), nil)
			assert.NoError(t, err)
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	c := testConfig().withDefaults()
	assert.Equal(t, DefaultWatchErrorGrace, c.WatchErrorGrace)
	assert.Equal(t, time.Minute, c.WatchErrorGrace)
	assert.Equal(t, DefaultRequestTimeout, c.RequestTimeout)
	assert.Equal(t, 30*time.Second, c.RequestTimeout)
	assert.False(t, c.AllowImageGroups)
}

// TestCheckSpec: the engine's check at start refuses, with BuildPod's
// words, what Submit would refuse, before any job exists; it is given the
// real account, workspace and step hints with a stand-in job.
func TestCheckSpec(t *testing.T) {
	b, err := New(func() Config { c := testConfig(); c.MaxMemory, c.MaxCPU = "64Gi", "16"; return c }(), ClientsetAPI(newFakeClient()), quiet())
	require.NoError(t, err)
	var checker batch.SpecChecker = b
	startCheck := func(mutate func(*batch.Spec)) batch.Spec {
		s := testSpec()
		s.JobID, s.WorkflowID, s.WorkflowName, s.Command, s.Env = "start-check", "start-check", "start-check.1", "true", nil
		if mutate != nil {
			mutate(&s)
		}
		return s
	}
	tests := []struct {
		name string
		spec func(*batch.Spec)
		want string // empty: accepted
	}{
		{name: "fine"},
		{name: "fine with resources", spec: func(s *batch.Spec) { s.Hints = batch.Hints{MemoryLimit: "8Gi", CPURequest: "2", JobTimeoutSeconds: 60} }},
		{name: "workspace outside the claim", spec: func(s *batch.Spec) { s.Workspace = "/home/alice/ws" }, want: "workspace /home/alice/ws is not inside /srv/reana"},
		{name: "uid below the minimum", spec: func(s *batch.Spec) { s.User.UID = 500 }, want: "below this site's minimum 1000"},
		{name: "group 0", spec: func(s *batch.Spec) { s.User.Groups = []uint32{0} }, want: "is in group 0"},
		{name: "memory above the maximum", spec: func(s *batch.Spec) { s.Hints.MemoryLimit = "128Gi" }, want: "kubernetes_memory_limit 128Gi is above this site's maximum of 64Gi"},
		{name: "not a quantity", spec: func(s *batch.Spec) { s.Hints.CPULimit = "two" }, want: `kubernetes_cpu_limit "two" is not a positive Kubernetes quantity`},
		{name: "a SIF file", spec: func(s *batch.Spec) { s.Image = "/cvmfs/img.sif" }, want: "Kubernetes steps need a registry image"},
		{name: "negative timeout", spec: func(s *batch.Spec) { s.Hints.JobTimeoutSeconds = -1 }, want: "kubernetes_job_timeout -1 is negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checker.CheckSpec(startCheck(tt.spec))
			if tt.want == "" {
				assert.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.True(t, strings.HasPrefix(err.Error(), "kubernetes: "), "%v", err)
		})
	}
}
