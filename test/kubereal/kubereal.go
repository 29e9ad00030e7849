// Package kubereal starts a real Kubernetes API server for tests:
// kube-apiserver and etcd from the kit in shared/vendor/kubernetes (see its
// README.md), on loopback, with RBAC, Pod Security, ResourceQuota,
// LimitRanger and OwnerReferencesPermissionEnforcement, a namespace
// enforcing "restricted", the manifests of deploy/kubernetes applied
// unchanged but for the RoleBinding subject's namespace, a bound workspace
// claim and a ServiceAccount token for the daemon.
//
// There is no scheduler, controller manager or kubelet: pods stay Pending,
// quota status is set by this package, claims are bound by hand. Start
// returns an error, never fails the test, when the kit is absent or the
// servers do not come up, so callers fall back to the stand-in
// (test/kubeapi) and say so: CI must not fail because of the kit.
package kubereal

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	authv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/yaml"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// Tarball is the kit's file name in shared/vendor/kubernetes.
const Tarball = "kube-apiserver-1.37.2-etcd-3.7.0-linux-x86_64.tar.gz"

// Names the cluster is set up with, as the stand-in's defaults.
const (
	Namespace = "reana"
	Claim     = "reana-workspaces"
)

// Option changes how the API server starts.
type Option func(*options)

type options struct {
	args []string
}

// WithArgs adds kube-apiserver flags, such as
// "--emulated-version=1.34" "--feature-gates=SupplementalGroupsPolicy=false".
func WithArgs(args ...string) Option {
	return func(o *options) { o.args = append(o.args, args...) }
}

// Cluster is a running etcd and kube-apiserver.
type Cluster struct {
	// Admin is a clientset in system:masters, for setting up and
	// playing the missing controllers.
	Admin *kubernetes.Clientset
	// AdminConfig is Admin's configuration.
	AdminConfig *rest.Config
	// Kubeconfig is a file for the daemon's service account reana-site.
	Kubeconfig string
	Namespace  string
	Claim      string

	// PKI holds ca.crt, the CA of the serving certificate
	// serving.crt/serving.key (valid for 127.0.0.1), which is also the
	// API server's client certificate to kubelets and the CA it checks
	// kubelets' certificates with.
	PKI string
	// AuditLog is the API server's audit log: every pod create and
	// delete, one JSON event a line (see Audit).
	AuditLog string

	dir       string
	server    string
	apiArgs   []string
	mu        sync.Mutex
	procs     []*exec.Cmd
	apiserver *exec.Cmd
	apiExited chan struct{}
	bin       string
	logs      *syncBuffer
}

// repoRoot is the module's root, found from this file's path.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(filepath.Dir(filepath.Dir(file)))
}

// kitDir is where the kit's tarball is: REANA_SITE_KUBE_KIT, else
// ../shared/vendor/kubernetes relative to the repository (the main tree
// for a worktree under /work).
func kitDir(root string) string {
	if d := os.Getenv("REANA_SITE_KUBE_KIT"); d != "" {
		return d
	}
	return filepath.Join(filepath.Dir(root), "shared", "vendor", "kubernetes")
}

// binaries unpacks the kit into .cache/kubernetes once (the tarball's own
// layout, kubernetes-1.37.2/) and returns the directory of the binaries. Unpacking goes to a fresh directory renamed into place, so
// two test processes never see half a binary.
func binaries(root string) (string, error) {
	dir := filepath.Join(root, ".cache", "kubernetes", "kubernetes-1.37.2")
	if ok(dir) {
		return dir, nil
	}
	tarball := filepath.Join(kitDir(root), Tarball)
	f, err := os.Open(tarball)
	if err != nil {
		return "", fmt.Errorf("the real API server kit is absent: %w", err)
	}
	defer f.Close()
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "kubernetes-unpack-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	gz, err := gzip.NewReader(f)
	if err != nil {
		return "", fmt.Errorf("unpack %s: %w", tarball, err)
	}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return "", fmt.Errorf("unpack %s: %w", tarball, err)
		}
		name := filepath.Base(h.Name)
		if h.Typeflag != tar.TypeReg || (name != "etcd" && name != "kube-apiserver") {
			continue
		}
		out, err := os.OpenFile(filepath.Join(tmp, name), os.O_CREATE|os.O_WRONLY|os.O_EXCL, 0o755)
		if err != nil {
			return "", err
		}
		_, err = io.Copy(out, tr)
		if cerr := out.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return "", fmt.Errorf("unpack %s: %w", tarball, err)
		}
	}
	if !ok(tmp) {
		return "", fmt.Errorf("%s holds no etcd and kube-apiserver", tarball)
	}
	if err := os.Rename(tmp, dir); err != nil && !ok(dir) {
		return "", fmt.Errorf("unpack %s: %w", tarball, err)
	}
	return dir, nil
}

func ok(dir string) bool {
	for _, b := range []string{"etcd", "kube-apiserver"} {
		if fi, err := os.Stat(filepath.Join(dir, b)); err != nil || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// freePort is a loopback port nobody listens on now.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// Start starts etcd and kube-apiserver for the test and sets the cluster
// up; both stop when the test ends. The error says why it could not, for
// the caller to log before falling back to the stand-in.
func Start(t testing.TB, opts ...Option) (*Cluster, error) {
	t.Helper()
	c, err := Launch(t.TempDir(), opts...)
	if c != nil {
		t.Cleanup(c.Close)
	}
	if err != nil && (t.Failed() || testing.Verbose()) && c != nil {
		t.Logf("real API server output:\n%s", c.Logs())
	}
	if err != nil {
		return nil, err
	}
	return c, nil
}

// Launch starts etcd and kube-apiserver with their files in dir, and sets
// the cluster up, for a caller that outlives one test (a test binary's
// whole run); Close stops them. On an error, the Cluster returned (if not
// nil) holds the servers' output and must still be closed.
func Launch(dir string, opts ...Option) (*Cluster, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	root := repoRoot()
	bin, err := binaries(root)
	if err != nil {
		return nil, err
	}
	c := &Cluster{dir: dir, bin: bin, Namespace: Namespace, Claim: Claim, logs: &syncBuffer{}}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.start(ctx, o); err != nil {
		return c, err
	}
	if err := c.setUp(ctx, root); err != nil {
		return c, fmt.Errorf("set up the real API server: %w", err)
	}
	return c, nil
}

// Close kills kube-apiserver and etcd.
func (c *Cluster) Close() {
	c.mu.Lock()
	procs := c.procs
	c.procs = nil
	c.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		_ = procs[i].Process.Kill()
		_, _ = procs[i].Process.Wait()
	}
}

func (c *Cluster) start(ctx context.Context, o options) error {
	pki := filepath.Join(c.dir, "pki")
	c.PKI = pki
	if err := os.MkdirAll(pki, 0o700); err != nil {
		return err
	}
	if err := writePKI(pki); err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	c.AuditLog = filepath.Join(c.dir, "audit.log")
	if err := os.WriteFile(filepath.Join(pki, "audit-policy.yaml"), []byte(auditPolicy), 0o600); err != nil {
		return err
	}
	adminToken, userToken := randomToken(), randomToken()
	tokens := fmt.Sprintf("%s,admin,admin,system:masters\n%s,someone,someone\n", adminToken, userToken)
	if err := os.WriteFile(filepath.Join(pki, "tokens.csv"), []byte(tokens), 0o600); err != nil {
		return err
	}
	clientPort, err := freePort()
	if err != nil {
		return err
	}
	peerPort, err := freePort()
	if err != nil {
		return err
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", clientPort)
	peerURL := fmt.Sprintf("http://127.0.0.1:%d", peerPort)
	etcd := exec.Command(filepath.Join(c.bin, "etcd"),
		"--name=default", "--data-dir="+filepath.Join(c.dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL, "--unsafe-no-fsync", "--log-level=error")
	if err := c.run(etcd, "etcd"); err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	c.server = fmt.Sprintf("https://127.0.0.1:%d", port)
	c.apiArgs = append([]string{
		"--etcd-servers=" + etcdURL,
		"--bind-address=127.0.0.1", fmt.Sprintf("--secure-port=%d", port),
		"--advertise-address=127.0.0.1",
		"--cert-dir=" + filepath.Join(c.dir, "certs"),
		"--tls-cert-file=" + filepath.Join(pki, "serving.crt"),
		"--tls-private-key-file=" + filepath.Join(pki, "serving.key"),
		"--client-ca-file=" + filepath.Join(pki, "ca.crt"),
		"--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file=" + filepath.Join(pki, "sa.key"),
		"--service-account-signing-key-file=" + filepath.Join(pki, "sa.key"),
		"--api-audiences=https://kubernetes.default.svc",
		"--authorization-mode=RBAC",
		// OwnerReferencesPermissionEnforcement as OpenShift has it: an
		// ownerReference that blocks its owner's deletion needs more
		// than create.
		"--enable-admission-plugins=NamespaceLifecycle,ServiceAccount,PodSecurity,ResourceQuota,LimitRanger,OwnerReferencesPermissionEnforcement",
		"--token-auth-file=" + filepath.Join(pki, "tokens.csv"),
		"--endpoint-reconciler-type=none",
		"--allow-privileged=false",
		"--service-cluster-ip-range=10.96.0.0/24",
		"--kubelet-client-certificate=" + filepath.Join(pki, "serving.crt"),
		"--kubelet-client-key=" + filepath.Join(pki, "serving.key"),
		"--kubelet-certificate-authority=" + filepath.Join(pki, "ca.crt"),
		"--audit-policy-file=" + filepath.Join(pki, "audit-policy.yaml"),
		"--audit-log-path=" + c.AuditLog, "--audit-log-mode=blocking", "--audit-log-format=json",
		"--watch-cache=true",
	}, o.args...)
	ca, err := os.ReadFile(filepath.Join(pki, "ca.crt"))
	if err != nil {
		return err
	}
	c.AdminConfig = &rest.Config{Host: c.server, BearerToken: adminToken, TLSClientConfig: rest.TLSClientConfig{CAData: ca},
		QPS: 200, Burst: 400}
	if err := c.StartAPIServer(ctx); err != nil {
		return err
	}
	c.Admin, err = kubernetes.NewForConfig(c.AdminConfig)
	return err
}

// StartAPIServer starts kube-apiserver (again, after StopAPIServer) on the
// same port and etcd, and waits until it is ready.
func (c *Cluster) StartAPIServer(ctx context.Context) error {
	cmd := exec.Command(filepath.Join(c.bin, "kube-apiserver"), c.apiArgs...)
	if err := c.run(cmd, "kube-apiserver"); err != nil {
		return err
	}
	c.apiserver = cmd
	exited := make(chan struct{})
	c.apiExited = exited
	go func() { _ = cmd.Wait(); close(exited) }()
	return c.waitReady(ctx, exited)
}

// StopAPIServer kills kube-apiserver, leaving etcd running.
func (c *Cluster) StopAPIServer() {
	if c.apiserver == nil {
		return
	}
	_ = c.apiserver.Process.Kill()
	<-c.apiExited
	c.apiserver = nil
}

func (c *Cluster) run(cmd *exec.Cmd, name string) error {
	cmd.Stdout, cmd.Stderr = &prefixWriter{buf: c.logs, prefix: name + ": "}, &prefixWriter{buf: c.logs, prefix: name + ": "}
	// Killed with the test binary, should it die without closing.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	c.mu.Lock()
	c.procs = append(c.procs, cmd)
	c.mu.Unlock()
	return nil
}

// waitReady polls /readyz as admin until it answers 200.
func (c *Cluster) waitReady(ctx context.Context, exited <-chan struct{}) error {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.AdminConfig.CAData)
	client := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	defer client.CloseIdleConnections()
	last := "no answer"
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.server+"/readyz", nil)
		req.Header.Set("Authorization", "Bearer "+c.AdminConfig.BearerToken)
		resp, err := client.Do(req)
		if err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, strings.TrimSpace(string(body)))
		}
		select {
		case <-exited:
			return fmt.Errorf("kube-apiserver exited before it was ready; its output:\n%s", c.logs.String())
		case <-ctx.Done():
			return fmt.Errorf("kube-apiserver not ready (%s): %w", last, ctx.Err())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// setUp makes the namespace (Pod Security restricted), applies
// deploy/kubernetes, binds the claim and writes the daemon's kubeconfig.
func (c *Cluster) setUp(ctx context.Context, root string) error {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: c.Namespace, Labels: map[string]string{
		"pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest"}}}
	if _, err := c.Admin.CoreV1().Namespaces().Create(ctx, ns, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("namespace: %w", err)
	}
	if err := c.applyManifests(ctx, filepath.Join(root, "deploy", "kubernetes")); err != nil {
		return err
	}
	pvc := &corev1.PersistentVolumeClaim{
		ObjectMeta: metav1.ObjectMeta{Name: c.Claim},
		Spec: corev1.PersistentVolumeClaimSpec{
			AccessModes: []corev1.PersistentVolumeAccessMode{corev1.ReadWriteMany},
			Resources:   corev1.VolumeResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceStorage: mustQuantity("1Gi")}},
		},
	}
	pvc, err := c.Admin.CoreV1().PersistentVolumeClaims(c.Namespace).Create(ctx, pvc, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("claim: %w", err)
	}
	// No controller manager binds it: the admin plays it.
	pvc.Status.Phase = corev1.ClaimBound
	if _, err := c.Admin.CoreV1().PersistentVolumeClaims(c.Namespace).UpdateStatus(ctx, pvc, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("bind the claim: %w", err)
	}
	// No token controller either: TokenRequest gives the daemon's token.
	// ServiceAccount admission needs the account to exist, which the
	// manifests made.
	expiry := int64(24 * 3600)
	tr, err := c.Admin.CoreV1().ServiceAccounts(c.Namespace).CreateToken(ctx, "reana-site",
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: &expiry}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("token for reana-site: %w", err)
	}
	kc := clientcmdapi.NewConfig()
	kc.Clusters["real"] = &clientcmdapi.Cluster{Server: c.server, CertificateAuthorityData: c.AdminConfig.CAData}
	kc.AuthInfos["reana-site"] = &clientcmdapi.AuthInfo{Token: tr.Status.Token}
	kc.Contexts["real"] = &clientcmdapi.Context{Cluster: "real", AuthInfo: "reana-site", Namespace: c.Namespace}
	kc.CurrentContext = "real"
	kdir := filepath.Join(c.dir, "kube")
	if err := os.MkdirAll(kdir, 0o700); err != nil {
		return err
	}
	c.Kubeconfig = filepath.Join(kdir, "config")
	return clientcmd.WriteToFile(*kc, c.Kubeconfig)
}

// applyManifests creates every object of deploy/kubernetes/*.yaml in the
// namespace, as `kubectl apply -n` would, with the RoleBinding's subject
// namespace set to ours (the one edit its comment asks for).
func (c *Cluster) applyManifests(ctx context.Context, dir string) error {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil || len(files) == 0 {
		return fmt.Errorf("no manifests in %s: %v", dir, err)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		dec := yaml.NewYAMLOrJSONDecoder(bytes.NewReader(data), 4096)
		for {
			var probe struct {
				Kind string `json:"kind"`
			}
			var raw map[string]any
			if err := dec.Decode(&raw); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				return fmt.Errorf("%s: %w", f, err)
			}
			if raw == nil {
				continue
			}
			js, _ := jsonMarshal(raw)
			_ = jsonUnmarshal(js, &probe)
			if err := c.create(ctx, probe.Kind, js); err != nil {
				return fmt.Errorf("%s: %s: %w", f, probe.Kind, err)
			}
		}
	}
	return nil
}

func (c *Cluster) create(ctx context.Context, kind string, js []byte) error {
	var err error
	switch kind {
	case "ServiceAccount":
		var o corev1.ServiceAccount
		if err = jsonUnmarshal(js, &o); err == nil {
			_, err = c.Admin.CoreV1().ServiceAccounts(c.Namespace).Create(ctx, &o, metav1.CreateOptions{})
		}
	case "Role":
		var o rbacv1.Role
		if err = jsonUnmarshal(js, &o); err == nil {
			_, err = c.Admin.RbacV1().Roles(c.Namespace).Create(ctx, &o, metav1.CreateOptions{})
		}
	case "RoleBinding":
		var o rbacv1.RoleBinding
		if err = jsonUnmarshal(js, &o); err == nil {
			for i := range o.Subjects {
				if o.Subjects[i].Kind == rbacv1.ServiceAccountKind {
					o.Subjects[i].Namespace = c.Namespace
				}
			}
			_, err = c.Admin.RbacV1().RoleBindings(c.Namespace).Create(ctx, &o, metav1.CreateOptions{})
		}
	default:
		err = fmt.Errorf("kind %q is not applied by this helper", kind)
	}
	return err
}

// Logs is what etcd and kube-apiserver printed.
func (c *Cluster) Logs() string { return c.logs.String() }

func randomToken() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

// writePKI writes a CA, a serving certificate for 127.0.0.1 signed by it,
// and the service-account signing key. Go's crypto rather than openssl:
// one dependency less on the test machine.
func writePKI(dir string) error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "reana-site test CA"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(48 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return err
	}
	caCert, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "kube-apiserver"},
		NotBefore: now.Add(-time.Hour), NotAfter: now.Add(48 * time.Hour),
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost", "kubernetes.default.svc"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &key.PublicKey, caKey)
	if err != nil {
		return err
	}
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	files := map[string]*pem.Block{
		"ca.crt":      {Type: "CERTIFICATE", Bytes: caDER},
		"serving.crt": {Type: "CERTIFICATE", Bytes: der},
		"serving.key": {Type: "EC PRIVATE KEY", Bytes: keyDER},
		"sa.key":      {Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(saKey)},
	}
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(b), 0o600); err != nil {
			return err
		}
	}
	return nil
}

// KubeletTLS is what a node agent serves its kubelet endpoint with: the
// serving certificate (which the API server, trusting the CA, accepts
// from a kubelet) and the CA of the API server's client certificate.
func (c *Cluster) KubeletTLS() (tls.Certificate, *x509.CertPool, error) {
	cert, err := tls.LoadX509KeyPair(filepath.Join(c.PKI, "serving.crt"), filepath.Join(c.PKI, "serving.key"))
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("kubelet certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.AdminConfig.CAData)
	return cert, pool, nil
}
