package kubernetes

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/yaml"
)

// deployDir holds every manifest the project ships.
const deployDir = "../../deploy"

// clusterScoped are kinds a namespace admin cannot create, which is the
// point of reana-site's Kubernetes backend: nothing we ship needs one.
var clusterScoped = map[string]bool{
	"ClusterRole": true, "ClusterRoleBinding": true, "Namespace": true, "Node": true,
	"PersistentVolume": true, "StorageClass": true, "CustomResourceDefinition": true,
	"SecurityContextConstraints": true, "PriorityClass": true, "RuntimeClass": true,
	"MutatingWebhookConfiguration": true, "ValidatingWebhookConfiguration": true,
	"ValidatingAdmissionPolicy": true, "ValidatingAdmissionPolicyBinding": true,
	"APIService": true, "CSIDriver": true, "IngressClass": true, "ClusterIssuer": true,
	"Project": true, "ProjectRequest": true, "ClusterResourceQuota": true,
}

// namespaced are the kinds we ship on purpose; a new kind must be added
// here knowingly.
var namespaced = map[string]bool{"ServiceAccount": true, "Role": true, "RoleBinding": true}

type manifest struct {
	file string
	obj  *unstructured.Unstructured
}

func readManifests(t *testing.T) []manifest {
	t.Helper()
	var out []manifest
	err := filepath.WalkDir(deployDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if ext := filepath.Ext(path); ext != ".yaml" && ext != ".yml" && ext != ".json" {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			var m map[string]any
			err := dec.Decode(&m)
			if errors.Is(err, io.EOF) {
				return nil
			}
			if err != nil {
				return err
			}
			if m == nil {
				continue // an empty document between "---"
			}
			out = append(out, manifest{file: path, obj: &unstructured.Unstructured{Object: m}})
		}
	})
	require.NoError(t, err)
	return out
}

func TestManifestsAreNamespaceScoped(t *testing.T) {
	ms := readManifests(t)
	require.NotEmpty(t, ms)
	for _, m := range ms {
		kind, name := m.obj.GetKind(), m.obj.GetName()
		assert.False(t, clusterScoped[kind], "%s: %s %s is cluster-scoped; reana-site ships namespace-scoped objects only", m.file, kind, name)
		assert.True(t, namespaced[kind], "%s: %s %s is a kind this test does not know to be namespaced", m.file, kind, name)
		assert.Empty(t, m.obj.GetNamespace(), "%s: %s %s names a namespace; the manifests are applied with -n", m.file, kind, name)
		if kind == "List" {
			t.Errorf("%s: a List hides its items from this test", m.file)
		}
	}
}

func TestManifestRBAC(t *testing.T) {
	var roles, bindings []manifest
	accounts := map[string]map[string]any{}
	for _, m := range readManifests(t) {
		switch m.obj.GetKind() {
		case "Role":
			roles = append(roles, m)
		case "RoleBinding":
			bindings = append(bindings, m)
		case "ServiceAccount":
			accounts[m.obj.GetName()] = m.obj.Object
		}
	}

	require.Len(t, roles, 1)
	type rule struct{ group, resource, verbs string }
	var got []rule
	rules, _, _ := unstructured.NestedSlice(roles[0].obj.Object, "rules")
	for _, r := range rules {
		r := r.(map[string]any)
		groups, _, _ := unstructured.NestedStringSlice(r, "apiGroups")
		resources, _, _ := unstructured.NestedStringSlice(r, "resources")
		verbs, _, _ := unstructured.NestedStringSlice(r, "verbs")
		_, hasNames := r["resourceNames"]
		assert.False(t, hasNames)
		for _, g := range groups {
			for _, res := range resources {
				v := slices.Clone(verbs)
				slices.Sort(v)
				got = append(got, rule{g, res, strings.Join(v, ",")})
			}
		}
	}
	assert.ElementsMatch(t, []rule{
		{"", "pods", "create,delete,get,list,watch"},
		{"", "pods/log", "get"},
		{"", "events", "list"},
		{"", "persistentvolumeclaims", "get"},
		{"", "secrets", "create"},
	}, got, "the Role grants exactly what the backend uses")

	require.Len(t, bindings, 1)
	ref, _, _ := unstructured.NestedStringMap(bindings[0].obj.Object, "roleRef")
	assert.Equal(t, map[string]string{"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": roles[0].obj.GetName()}, ref,
		"our binding refers to our Role, never to a ClusterRole")
	subjects, _, _ := unstructured.NestedSlice(bindings[0].obj.Object, "subjects")
	require.Len(t, subjects, 1)
	assert.Equal(t, "reana-site", subjects[0].(map[string]any)["name"], "only the daemon's account is bound")

	require.Contains(t, accounts, "reana-site")
	require.Contains(t, accounts, "reana-site-step")
	assert.Equal(t, false, accounts["reana-site-step"]["automountServiceAccountToken"], "the step account's token is never mounted")
}
