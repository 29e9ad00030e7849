package harness

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// Registry is a real OCI registry (Debian's docker-registry) on
// 127.0.0.1, plain HTTP, with its storage in a temporary directory.
type Registry struct {
	// Addr is host:port; images are Addr/<repository>:<tag>.
	Addr string
}

// StartRegistry starts docker-registry with a temporary configuration and
// stops it when the test ends. It skips the test when docker-registry,
// skopeo or umoci are not installed (Debian 12 packages of those names).
func StartRegistry(t testing.TB) *Registry {
	t.Helper()
	for _, p := range []string{"docker-registry", "skopeo", "umoci"} {
		if _, err := exec.LookPath(p); err != nil {
			t.Skipf("%s is not installed (apt-get install docker-registry skopeo umoci)", p)
		}
	}
	dir := t.TempDir()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	conf := filepath.Join(dir, "config.yml")
	// The registry's own configuration format (distribution v2).
	body := fmt.Sprintf("version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\n  delete:\n    enabled: true\nhttp:\n  addr: %s\n",
		filepath.Join(dir, "storage"), addr)
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("docker-registry", "serve", conf)
	log, err := os.Create(filepath.Join(dir, "registry.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start docker-registry: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		log.Close()
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(log.Name())
			t.Fatalf("docker-registry did not listen on %s: %s", addr, b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &Registry{Addr: addr}
}

// Push makes an OCI image of one layer from the root file system tree
// rootfs (with umoci), with the Docker ENV entries env ("K=V"), and pushes
// it as ref (<repository>:<tag>) with skopeo; it returns the docker://
// reference without the scheme.
func (r *Registry) Push(t testing.TB, rootfs, ref string, env ...string) string {
	t.Helper()
	layout := filepath.Join(t.TempDir(), "oci")
	tag := "latest"
	if i := lastColon(ref); i >= 0 {
		tag = ref[i+1:]
	}
	run := func(argv ...string) {
		t.Helper()
		if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%v: %v: %s", argv, err, out)
		}
	}
	run("umoci", "init", "--layout", layout)
	run("umoci", "new", "--image", layout+":"+tag)
	run("umoci", "insert", "--image", layout+":"+tag, rootfs+"/.", "/")
	if len(env) > 0 {
		argv := []string{"umoci", "config", "--image", layout + ":" + tag}
		for _, e := range env {
			argv = append(argv, "--config.env", e)
		}
		run(argv...)
	}
	full := r.Addr + "/" + ref
	run("skopeo", "copy", "--dest-tls-verify=false", "oci:"+layout+":"+tag, "docker://"+full)
	return full
}

func lastColon(s string) int {
	for i := len(s) - 1; i >= 0 && s[i] != '/'; i-- {
		if s[i] == ':' {
			return i
		}
	}
	return -1
}
