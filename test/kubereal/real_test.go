package kubereal_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	clientset "k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/batch/kubernetes"
	"github.com/reana-site/reana-site/test/kubereal"
)

// These tests run the backend against a real kube-apiserver and etcd
// (issue 21). Without the kit, or if the servers do not start, they skip
// and say so; the same behaviour is covered against the fake clientset in
// batch/kubernetes and the stand-in in test/kubeapi.

func start(t *testing.T, opts ...kubereal.Option) *kubereal.Cluster {
	t.Helper()
	began := time.Now()
	c, err := kubereal.Start(t, opts...)
	if err != nil {
		t.Skipf("no real API server (%v); the stand-in tests cover this", err)
	}
	t.Logf("real API server up in %s", time.Since(began).Round(time.Millisecond))
	return c
}

func config(c *kubereal.Cluster) kubernetes.Config {
	return kubernetes.Config{
		Namespace: c.Namespace, ClaimName: c.Claim, WorkspaceRoot: "/srv/reana",
		StepServiceAccount: "reana-site-step", MinUID: 1000,
	}
}

func backend(t *testing.T, c *kubereal.Cluster, cfg kubernetes.Config) *kubernetes.Backend {
	t.Helper()
	api, err := kubernetes.NewClient(c.Kubeconfig)
	require.NoError(t, err)
	b, err := kubernetes.New(cfg, api, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	require.NoError(t, b.Start(ctx))
	return b
}

func spec(step string) batch.Spec {
	return batch.Spec{
		JobID: "0b7c9a4e-5d7f-4a43-9d8e-2f0b8c1d2e3f", WorkflowID: "5e1f4c2a-8b7d-4e6f-9a0b-1c2d3e4f5a6b",
		WorkflowName: "root6-fit.1", StepName: step, Command: "true", Image: "docker.io/library/debian:12-slim",
		Workspace: "/srv/reana/users/alice/workflows/5e1f4c2a",
		User:      asuser.Account{Name: "alice", UID: 4101, GID: 4100, Groups: []uint32{4100, 5002}},
	}
}

// quota makes a ResourceQuota and, as no controller manager runs, gives
// it the status the quota controller would: admission charges against it.
func quota(t *testing.T, c *kubereal.Cluster, hard corev1.ResourceList) {
	t.Helper()
	ctx := context.Background()
	q, err := c.Admin.CoreV1().ResourceQuotas(c.Namespace).Create(ctx, &corev1.ResourceQuota{
		ObjectMeta: metav1.ObjectMeta{Name: "compute"}, Spec: corev1.ResourceQuotaSpec{Hard: hard}}, metav1.CreateOptions{})
	require.NoError(t, err)
	used := corev1.ResourceList{}
	for k := range hard {
		used[k] = resource.MustParse("0")
	}
	q.Status = corev1.ResourceQuotaStatus{Hard: hard, Used: used}
	_, err = c.Admin.CoreV1().ResourceQuotas(c.Namespace).UpdateStatus(ctx, q, metav1.UpdateOptions{})
	require.NoError(t, err)
}

func used(t *testing.T, c *kubereal.Cluster, name corev1.ResourceName) resource.Quantity {
	t.Helper()
	q, err := c.Admin.CoreV1().ResourceQuotas(c.Namespace).Get(context.Background(), "compute", metav1.GetOptions{})
	require.NoError(t, err)
	return q.Status.Used[name]
}

// TestRealAPIServer runs the findings of issue 21 against one real API
// server, one subtest each, to pay its start once.
func TestRealAPIServer(t *testing.T) {
	c := start(t)

	t.Run("preflight passes restricted, RBAC and the Role", func(t *testing.T) {
		b := backend(t, c, config(c))
		require.NoError(t, b.Preflight())
	})

	t.Run("a resubmission is not charged to the quota again", func(t *testing.T) {
		quota(t, c, corev1.ResourceList{corev1.ResourcePods: resource.MustParse("10")})
		defer func() {
			_ = c.Admin.CoreV1().ResourceQuotas(c.Namespace).Delete(context.Background(), "compute", metav1.DeleteOptions{})
		}()
		ctx := context.Background()
		b := backend(t, c, config(c))
		first, err := b.Submit(ctx, spec("resubmit"))
		require.NoError(t, err)
		one := used(t, c, corev1.ResourcePods)
		assert.Equal(t, int64(1), one.Value())
		second, err := b.Submit(ctx, spec("resubmit"))
		require.NoError(t, err)
		assert.Equal(t, first.ID, second.ID)
		restarted := backend(t, c, config(c))
		third, err := restarted.Submit(ctx, spec("resubmit"))
		require.NoError(t, err)
		assert.Equal(t, first.ID, third.ID)
		after := used(t, c, corev1.ResourcePods)
		assert.Equal(t, int64(1), after.Value(), "no create met AlreadyExists: each would have been charged a pod")
		// What the backend avoids: a create that fails is charged too.
		again, err := kubernetes.BuildPod(spec("resubmit"), config(c))
		require.NoError(t, err)
		_, err = c.Admin.CoreV1().Pods(c.Namespace).Create(ctx, again, metav1.CreateOptions{})
		require.True(t, apierrors.IsAlreadyExists(err), "%v", err)
		charged := used(t, c, corev1.ResourcePods)
		assert.Equal(t, int64(2), charged.Value(), "this API server charges a create that fails with AlreadyExists")
		require.NoError(t, c.Admin.CoreV1().Pods(c.Namespace).Delete(ctx, first.ID, metav1.DeleteOptions{GracePeriodSeconds: new(int64)}))
	})

	t.Run("a quota on memory limits names who sets the limit", func(t *testing.T) {
		ctx := context.Background()
		quota(t, c, corev1.ResourceList{corev1.ResourceLimitsMemory: resource.MustParse("1Gi")})
		defer func() {
			_ = c.Admin.CoreV1().ResourceQuotas(c.Namespace).Delete(ctx, "compute", metav1.DeleteOptions{})
		}()
		b := backend(t, c, config(c))
		err := b.RunPreflight(ctx)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "failed quota: compute: must specify limits.memory for: step")
		assert.Contains(t, err.Error(), "set kubernetes_memory_limit in the step's resources, or the site admin sets REANA_SITE_KUBERNETES_DEFAULT_MEMORY")

		// A LimitRange with only max makes max the default limit.
		_, err = c.Admin.CoreV1().LimitRanges(c.Namespace).Create(ctx, &corev1.LimitRange{
			ObjectMeta: metav1.ObjectMeta{Name: "max-only"},
			Spec: corev1.LimitRangeSpec{Limits: []corev1.LimitRangeItem{{
				Type: corev1.LimitTypeContainer, Max: corev1.ResourceList{corev1.ResourceMemory: resource.MustParse("2Gi")}}}},
		}, metav1.CreateOptions{})
		require.NoError(t, err)
		defer func() { _ = c.Admin.CoreV1().LimitRanges(c.Namespace).Delete(ctx, "max-only", metav1.DeleteOptions{}) }()
		err = b.RunPreflight(ctx)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "the step sets no memory limit, so the namespace's LimitRange gave it its default of 2Gi "+
			"(a LimitRange with only max makes max the default), which is above the quota's limits.memory of 1Gi")
		assert.False(t, errors.Is(err, batch.ErrUnavailable), "no step without a limit ever fits: not a wait")

		cfg := config(c)
		cfg.DefaultMemory = "512Mi"
		require.NoError(t, backend(t, c, cfg).RunPreflight(ctx), "a site default within the quota fits")
	})

	t.Run("a step's Secret is made with the daemon's Role, owned by its pod, and the pod holds no value", func(t *testing.T) {
		ctx := context.Background()
		const token, key = "tok-7f3a9c", "-----PEM 5d1e-----"
		b := backend(t, c, config(c)).WithSecrets(secretsReader{
			{Name: "TOKEN", Type: asuser.SecretEnv, Value: []byte(token)},
			{Name: "key.pem", Type: asuser.SecretFile, Value: []byte(key)},
		})
		s := spec("secrets")
		s.Secrets = batch.Secrets{Dir: "/home/alice/.reana-site/secrets"}
		h, err := b.Submit(ctx, s)
		require.NoError(t, err, "OwnerReferencesPermissionEnforcement and RBAC accept the create with secrets create only")
		pod, err := c.Admin.CoreV1().Pods(c.Namespace).Get(ctx, h.ID, metav1.GetOptions{})
		require.NoError(t, err)
		defer func() {
			_ = c.Admin.CoreV1().Pods(c.Namespace).Delete(ctx, pod.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64)})
			// No garbage collector runs here.
			_ = c.Admin.CoreV1().Secrets(c.Namespace).Delete(ctx, kubernetes.SecretName(pod.Name), metav1.DeleteOptions{})
		}()
		sec, err := c.Admin.CoreV1().Secrets(c.Namespace).Get(ctx, kubernetes.SecretName(pod.Name), metav1.GetOptions{})
		require.NoError(t, err)
		assert.Equal(t, []metav1.OwnerReference{{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID}}, sec.OwnerReferences)
		assert.Equal(t, map[string][]byte{"TOKEN": []byte(token), "key.pem": []byte(key)}, sec.Data)

		stored, err := json.Marshal(pod)
		require.NoError(t, err)
		for _, v := range []string{token, key, base64.StdEncoding.EncodeToString([]byte(token)), base64.StdEncoding.EncodeToString([]byte(key))} {
			assert.NotContains(t, string(stored), v, "the stored pod holds no value")
		}
		c0 := pod.Spec.Containers[0]
		assert.Contains(t, c0.Env, corev1.EnvVar{Name: "TOKEN", ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: sec.Name}, Key: "TOKEN"}}})
		assert.Contains(t, c0.VolumeMounts, corev1.VolumeMount{Name: kubernetes.SecretsVolume, MountPath: "/etc/reana/secrets", ReadOnly: true})

		// The Role is create only: the daemon can neither read a Secret
		// back nor make one that blocks its owner's deletion (that needs
		// update on pods/finalizers, which the admission plugin checks).
		daemon := daemonClient(t, c)
		_, err = daemon.CoreV1().Secrets(c.Namespace).Get(ctx, sec.Name, metav1.GetOptions{})
		assert.True(t, apierrors.IsForbidden(err), "get: %v", err)
		blocking := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "blocking", OwnerReferences: []metav1.OwnerReference{
			{APIVersion: "v1", Kind: "Pod", Name: pod.Name, UID: pod.UID, BlockOwnerDeletion: ptrTo(true)}}}}
		_, err = daemon.CoreV1().Secrets(c.Namespace).Create(ctx, blocking, metav1.CreateOptions{})
		require.True(t, apierrors.IsForbidden(err), "blockOwnerDeletion: %v", err)
		assert.ErrorContains(t, err, "cannot set blockOwnerDeletion", "refused by the admission plugin, not by RBAC")
	})

	// Last: it restarts the API server. Here the API server's first
	// answers after the restart are refusals (its watch cache is still
	// initialising), so this run does not reproduce the stale 22 s window
	// the issue saw, with or without the fix; it checks that healthy means
	// current. TestHealthWatch in batch/kubernetes covers the accepted
	// watch that ends at once.
	t.Run("after an API server restart, healthy only once relisted", func(t *testing.T) {
		ctx := context.Background()
		cfg := config(c)
		cfg.WatchErrorGrace = time.Millisecond
		b := backend(t, c, cfg)
		c.StopAPIServer()
		require.Eventually(t, func() bool {
			_, err := b.Status(ctx, nil)
			return errors.Is(err, batch.ErrUnavailable)
		}, 30*time.Second, 20*time.Millisecond, "the outage was never noticed")
		restart, cancel := context.WithTimeout(ctx, 60*time.Second)
		defer cancel()
		began := time.Now()
		require.NoError(t, c.StartAPIServer(restart))

		// A pod made once the API server is back; the backend's handle
		// says it is new, so only the cache can show it.
		s := spec("after-restart")
		pod, err := kubernetes.BuildPod(s, cfg)
		require.NoError(t, err)
		pod, err = c.Admin.CoreV1().Pods(c.Namespace).Create(ctx, pod, metav1.CreateOptions{})
		require.NoError(t, err)
		data, _ := json.Marshal(map[string]any{"namespace": c.Namespace, "pod": pod.Name, "created": time.Now().UTC()})
		j := batch.Job{Spec: s, Handle: batch.Handle{Backend: kubernetes.Name, Version: 1, ID: pod.Name, Data: data}}
		var healthy time.Time
		require.Eventually(t, func() bool {
			out, err := b.Status(ctx, []batch.Job{j})
			if err != nil {
				return false
			}
			if healthy.IsZero() {
				healthy = time.Now()
			}
			// Healthy must mean current: the new pod is in the cache
			// (a moment's lag of the watch allowed).
			if out[s.JobID].Reason == "waiting for the new pod to be seen" {
				require.Less(t, time.Since(healthy), 2*time.Second, "reported healthy with a stale cache")
				return false
			}
			return true
		}, 60*time.Second, 20*time.Millisecond)
		t.Logf("healthy and current %s after the restart", time.Since(began).Round(time.Millisecond))
	})
}

// secretsReader answers secrets.read as the user's helper would.
type secretsReader []asuser.Secret

func (r secretsReader) Call(_ context.Context, _ asuser.Account, _ asuser.Op, _, result any) error {
	*(result.(*[]asuser.Secret)) = r
	return nil
}

// daemonClient is a clientset with the daemon's service account.
func daemonClient(t *testing.T, c *kubereal.Cluster) *clientset.Clientset {
	t.Helper()
	rc, err := clientcmd.BuildConfigFromFlags("", c.Kubeconfig)
	require.NoError(t, err)
	cs, err := clientset.NewForConfig(rc)
	require.NoError(t, err)
	return cs
}

func ptrTo[T any](v T) *T { return &v }

// TestRealAPIServerDroppingTheGroupsPolicy: an API server that does not
// know supplementalGroupsPolicy (emulating 1.34 with the gate off) drops
// it; a pod made earlier on it is found by a Submit and must be deleted,
// not adopted to run with the image's groups.
func TestRealAPIServerDroppingTheGroupsPolicy(t *testing.T) {
	c := start(t, kubereal.WithArgs("--emulated-version=1.34", "--feature-gates=SupplementalGroupsPolicy=false"))
	ctx := context.Background()
	cfg := config(c)
	earlier, err := kubernetes.BuildPod(spec("earlier"), cfg)
	require.NoError(t, err)
	stored, err := c.Admin.CoreV1().Pods(c.Namespace).Create(ctx, earlier, metav1.CreateOptions{})
	require.NoError(t, err)
	require.Nil(t, stored.Spec.SecurityContext.SupplementalGroupsPolicy, "this API server drops the field")

	b := backend(t, c, cfg)
	require.ErrorContains(t, b.Preflight(), "dropped the step pod's securityContext.supplementalGroupsPolicy: Strict")
	_, err = b.Submit(ctx, spec("earlier"))
	require.ErrorContains(t, err, "dropped the step pod's securityContext.supplementalGroupsPolicy: Strict")
	_, err = c.Admin.CoreV1().Pods(c.Namespace).Get(ctx, earlier.Name, metav1.GetOptions{})
	assert.True(t, apierrors.IsNotFound(err), "the pod found there was deleted, not adopted: %v", err)
}
