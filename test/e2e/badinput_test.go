//go:build e2e

package e2e

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/reana-site/reana-site/test/harness"
	"github.com/stretchr/testify/require"
)

// errorBody checks REANA's error shape: JSON {"message": "..."}.
func errorBody(t *testing.T, body []byte) string {
	t.Helper()
	var e struct {
		Message string `json:"message"`
	}
	require.NoError(t, json.Unmarshal(body, &e), "error body must be JSON: %q", body)
	assert.NotEmpty(t, e.Message, "error body must carry a message: %q", body)
	return e.Message
}

type created struct {
	ID   string `json:"workflow_id"`
	Name string `json:"workflow_name"`
}

// createWorkflow creates a workflow through the API from a testdata spec, as
// reana-client sends it (the spec as JSON).
func createWorkflow(t *testing.T, u *User, name, testdata string) created {
	t.Helper()
	dir := u.WorkDir(t, testdata)
	// reana-client's own loader turns reana.yaml into the JSON it sends.
	out, code := u.Run(t, dir, nil, env.Python, "-c",
		"import json,sys; from reana_client.utils import load_validate_reana_spec as f; print(json.dumps(f('reana.yaml', skip_validate_environments=True)))")
	require.Zero(t, code, out)
	var spec map[string]any
	require.NoError(t, json.Unmarshal([]byte(lastLine(out)), &spec), out)
	var c created
	st, body, err := u.Daemon().Do("POST", "/api/workflows?workflow_name="+url.QueryEscape(name), u.Token,
		strings.NewReader(mustJSON(t, spec)), "Content-Type", "application/json")
	require.NoError(t, err)
	require.Equal(t, http.StatusCreated, st, "%s", body)
	require.NoError(t, json.Unmarshal(body, &c))
	return c
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}

func upload(u *User, wf, name string, body []byte) (int, []byte) {
	st, b, _ := u.Daemon().Do("POST", "/api/workflows/"+url.PathEscape(wf)+"/workspace?file_name="+url.QueryEscape(name), u.Token,
		bytes.NewReader(body), "Content-Type", "application/octet-stream")
	return st, b
}

func TestPathTraversalIsRefused(t *testing.T) {
	d, alice, _ := shared(t)
	wf := createWorkflow(t, alice, "traversal", "sleepy")
	ws := d.WorkspaceOf(alice, wf.ID)
	before := snapshot(t, filepath.Dir(filepath.Dir(ws)))

	for _, name := range []string{
		"../escape.txt", "/../escape.txt", "a/../../escape.txt", "a/b/../../../escape.txt",
		"..", "/..", "a\\..\\..\\escape.txt", "a\x00b", "",
	} {
		t.Run("upload "+strings.ReplaceAll(name, "\x00", "NUL"), func(t *testing.T) {
			st, body := upload(alice, wf.ID, name, []byte("x"))
			assert.Equal(t, http.StatusBadRequest, st, "%s", body)
			errorBody(t, body)
		})
	}
	for _, raw := range []string{"..%2Fescape.txt", "%2E%2E%2F%2E%2E%2Fetc%2Fpasswd", "a%2F..%2F..%2Fx", "..%5Cx", "a%00b"} {
		t.Run("download "+raw, func(t *testing.T) {
			st, body, err := d.Do("GET", "/api/workflows/"+wf.ID+"/workspace/"+raw, alice.Token, nil)
			require.NoError(t, err)
			assert.Contains(t, []int{http.StatusBadRequest, http.StatusNotFound}, st, "%s", body)
			errorBody(t, body)
		})
		t.Run("delete "+raw, func(t *testing.T) {
			st, body, err := d.Do("DELETE", "/api/workflows/"+wf.ID+"/workspace/"+raw, alice.Token, nil)
			require.NoError(t, err)
			assert.Contains(t, []int{http.StatusForbidden, http.StatusNotFound}, st, "%s", body)
			errorBody(t, body)
		})
	}
	// A leading slash means the workspace root, never the host's.
	st, body := upload(alice, wf.ID, "/etc/passwd", []byte("mine"))
	require.Equal(t, http.StatusOK, st, "%s", body)
	b, err := os.ReadFile(filepath.Join(ws, "etc", "passwd"))
	require.NoError(t, err)
	assert.Equal(t, "mine", string(b))
	hostPasswd, err := os.ReadFile("/etc/passwd")
	require.NoError(t, err)
	assert.Contains(t, string(hostPasswd), "root:")

	after := snapshot(t, filepath.Dir(filepath.Dir(ws)))
	for p := range after {
		if !strings.HasPrefix(p, ws) {
			assert.Contains(t, before, p, "file created outside the workspace: %s", p)
		}
	}
}

// snapshot lists every path under root (as root, for the test's eyes only).
func snapshot(t *testing.T, root string) map[string]bool {
	t.Helper()
	m := map[string]bool{}
	_ = filepath.Walk(root, func(p string, _ os.FileInfo, err error) error {
		if err == nil {
			m[p] = true
		}
		return nil
	})
	return m
}

func TestSymlinkEscapeIsRefused(t *testing.T) {
	d, alice, _ := shared(t)
	wf := createWorkflow(t, alice, "symlinks", "sleepy")
	ws := d.WorkspaceOf(alice, wf.ID)
	secret := filepath.Join(alice.Home, ".reana-e2e", env.RunID+"-secret.txt")
	out, code := alice.Run(t, "/", nil, "/bin/sh", "-c", "echo alice-private > \"$1\"", "x", secret)
	require.Zero(t, code, out)
	// The user (or a step) plants links that point out of the workspace.
	for target, link := range map[string]string{"/etc": "etcdir", "/etc/passwd": "pw", secret: "mine", "/tmp": "tmpdir"} {
		out, code := alice.Run(t, "/", nil, "ln", "-s", target, filepath.Join(ws, link))
		require.Zero(t, code, out)
	}

	for _, f := range []string{"pw", "etcdir/passwd", "mine", "etcdir"} {
		st, body, err := d.Do("GET", "/api/workflows/"+wf.ID+"/workspace/"+url.PathEscape(f), alice.Token, nil)
		require.NoError(t, err)
		assert.NotEqual(t, http.StatusOK, st, "download %s through a symlink: %s", f, body)
		assert.NotContains(t, string(body), "root:x:0:0")
		assert.NotContains(t, string(body), "alice-private")
	}
	for _, f := range []string{"tmpdir/planted.txt", "etcdir/planted"} {
		st, body := upload(alice, wf.ID, f, []byte("planted"))
		assert.NotEqual(t, http.StatusOK, st, "upload %s through a symlink: %s", f, body)
		errorBody(t, body)
	}
	assert.NoFileExists(t, "/tmp/planted.txt")
	assert.NoFileExists(t, "/etc/planted")

	var ls struct {
		Items []struct {
			Name string `json:"name"`
		} `json:"items"`
	}
	require.Equal(t, http.StatusOK, d.JSON(t, "GET", "/api/workflows/"+wf.ID+"/workspace", alice.Token, nil, &ls))
	for _, it := range ls.Items {
		assert.False(t, strings.HasPrefix(it.Name, "etcdir/"), "listing descended into a symlink: %s", it.Name)
	}

	// Deleting through a link fails; deleting the link removes only it.
	st, body, err := d.Do("DELETE", "/api/workflows/"+wf.ID+"/workspace/"+url.PathEscape("etcdir/passwd"), alice.Token, nil)
	require.NoError(t, err)
	assert.NotEqual(t, http.StatusOK, st, "%s", body)
	st, body, err = d.Do("DELETE", "/api/workflows/"+wf.ID+"/workspace/mine", alice.Token, nil)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, st, "%s", body)
	assert.FileExists(t, secret)
	assert.FileExists(t, "/etc/passwd")
}

func TestUploadLimits(t *testing.T) {
	d := StartDaemon(t, "REANA_SITE_MAX_UPLOAD_BYTES=1048576", "REANA_SITE_DISK_QUOTA_BYTES=3145728")
	alice := d.AddUser(t, "alice")
	wf := createWorkflow(t, alice, "limits", "sleepy")
	ws := d.WorkspaceOf(alice, wf.ID)

	big := bytes.Repeat([]byte("x"), 2<<20)
	st, body := upload(alice, wf.ID, "big.bin", big)
	assert.Equal(t, http.StatusBadRequest, st)
	assert.Contains(t, errorBody(t, body), "maximum upload size")
	assert.NoFileExists(t, filepath.Join(ws, "big.bin"))

	chunk := bytes.Repeat([]byte("y"), 1000*1000)
	var refused bool
	for i := 0; i < 5; i++ {
		st, body = upload(alice, wf.ID, "part"+string(rune('a'+i)), chunk)
		if st != http.StatusOK {
			assert.Equal(t, http.StatusForbidden, st, "%s", body)
			assert.Contains(t, errorBody(t, body), "quota")
			assert.NoFileExists(t, filepath.Join(ws, "part"+string(rune('a'+i))))
			refused = true
			break
		}
	}
	assert.True(t, refused, "uploads beyond the 3 MB quota must be refused")

	// reana-client sees the same refusal.
	dir := alice.WorkDir(t, "")
	out, code := alice.Run(t, dir, nil, "/bin/sh", "-c", "head -c 2000000 /dev/zero > big.bin")
	require.Zero(t, code, out)
	out, code = alice.Client(t, dir, "upload", "-w", wf.ID, "big.bin")
	assert.NotZero(t, code, out)
	assert.NoFileExists(t, filepath.Join(ws, "big.bin"))
}

func TestMalformedSpecification(t *testing.T) {
	d, alice, _ := shared(t)
	for name, spec := range map[string]any{
		"not-an-object":  "just a string",
		"no-workflow":    map[string]any{"version": "0.9.0"},
		"unknown-type":   map[string]any{"workflow": map[string]any{"type": "quantum", "specification": map[string]any{}}},
		"steps-not-list": map[string]any{"workflow": map[string]any{"type": "serial", "specification": map[string]any{"steps": "echo hi"}}},
		"step-no-cmds":   map[string]any{"workflow": map[string]any{"type": "serial", "specification": map[string]any{"steps": []any{map[string]any{"name": "a", "environment": "x"}}}}},
	} {
		t.Run(name, func(t *testing.T) {
			st, body, err := d.Do("POST", "/api/workflows?workflow_name="+name, alice.Token,
				strings.NewReader(mustJSON(t, spec)), "Content-Type", "application/json")
			require.NoError(t, err)
			assert.Equal(t, http.StatusBadRequest, st, "%s", body)
			errorBody(t, body)
			var list struct {
				Items []Workflow `json:"items"`
			}
			d.JSON(t, "GET", "/api/workflows?type=batch&search="+url.QueryEscape(`{"name":["`+name+`"]}`), alice.Token, nil, &list)
			assert.Empty(t, list.Items, "a refused workflow must not be stored")
		})
	}
	st, body, err := d.Do("POST", "/api/workflows?workflow_name=garbage", alice.Token, strings.NewReader("{not json"), "Content-Type", "application/json")
	require.NoError(t, err)
	assert.Equal(t, http.StatusBadRequest, st)
	errorBody(t, body)

	// reana-client refuses a broken reana.yaml itself; the server must too
	// when the YAML is valid but the workflow is not (undefined parameter
	// is a warning in REANA; a step without commands is an error).
	dir := alice.WorkDir(t, "")
	out, code := alice.Run(t, dir, nil, "/bin/sh", "-c", "printf 'workflow:\\n  type: serial\\n  specification: [\\n' > reana.yaml")
	require.Zero(t, code, out)
	out, code = alice.Client(t, dir, "create", "-w", "broken")
	assert.NotZero(t, code, out)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	require.NoError(t, err)
	return string(b)
}

func TestAuthentication(t *testing.T) {
	d, alice, _ := shared(t)
	cases := []struct {
		name, token string
		you, list   int
	}{
		// Without a token, the operations whose contract lists 401 say so;
		// the others can only answer 403.
		{"no token", "", http.StatusUnauthorized, http.StatusForbidden},
		{"unknown token", "not-a-token", http.StatusForbidden, http.StatusForbidden},
		{"blank token", " ", http.StatusForbidden, http.StatusForbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st, body, err := d.Do("GET", "/api/you", c.token, nil)
			require.NoError(t, err)
			assert.Equal(t, c.you, st)
			errorBody(t, body)
			st, body, err = d.Do("GET", "/api/workflows?type=batch", c.token, nil)
			require.NoError(t, err)
			assert.Equal(t, c.list, st)
			errorBody(t, body)
		})
	}

	// A revoked token stops working at once; a new one works.
	_, err := d.Admin("token", "revoke", "alice")
	require.NoError(t, err)
	st, body, err := d.Do("GET", "/api/you", alice.Token, nil)
	require.NoError(t, err)
	assert.Equal(t, http.StatusForbidden, st, "%s", body)
	assert.Contains(t, errorBody(t, body), "revoked")
	dir := alice.WorkDir(t, "")
	out, code := alice.Client(t, dir, "ping")
	assert.NotZero(t, code, out)
	alice2 := d.AddUser(t, "alice")
	st, _, err = d.Do("GET", "/api/you", alice2.Token, nil)
	require.NoError(t, err)
	assert.Equal(t, http.StatusOK, st)
}

func TestAccountPolicy(t *testing.T) {
	d := StartDaemon(t)
	// Refused when an admin adds them.
	for _, name := range []string{"root", "lowuid", "daemon", "no-such-user-xyz"} {
		t.Run("add "+name, func(t *testing.T) {
			out, err := d.Admin("user", "add", name)
			assert.Error(t, err, "%s", out)
		})
	}
	// Refused when a request arrives, after the site raised the minimum.
	bob := d.AddUser(t, "bob")
	st, _, err := d.Do("GET", "/api/you", bob.Token, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, st)
	d.Stop()
	d.ExtraEnv = append(d.ExtraEnv, "REANA_SITE_MIN_UID=5000")
	d.Start()
	st, body, err := d.Do("GET", "/api/you", bob.Token, nil)
	require.NoError(t, err)
	assert.Equal(t, http.StatusForbidden, st, "%s", body)
	assert.Contains(t, errorBody(t, body), "5000")
}

// TestUserRemovedFromNSS: a token whose POSIX account vanished (left the
// site's LDAP) stops working, and nothing runs for it.
func TestUserRemovedFromNSS(t *testing.T) {
	d := StartDaemon(t)
	const name = "reana-gone"
	require.NoError(t, runRoot("useradd", "--create-home", "--uid", "4199", "--shell", "/bin/bash", name))
	t.Cleanup(func() { _ = runRoot("userdel", "--remove", name) })
	u := d.AddUser(t, name)
	st, _, err := d.Do("GET", "/api/you", u.Token, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, st)

	require.NoError(t, runRoot("userdel", name))
	st, body, err := d.Do("GET", "/api/you", u.Token, nil)
	require.NoError(t, err)
	assert.Equal(t, http.StatusForbidden, st, "%s", body)
	errorBody(t, body)
	st, _, err = d.Do("GET", "/api/workflows?type=batch", u.Token, nil)
	require.NoError(t, err)
	assert.Equal(t, http.StatusForbidden, st)
}

func runRoot(argv ...string) error {
	out, err := execCombined(argv...)
	if err != nil {
		return &harness.CmdError{Argv: argv, Out: out, Err: err}
	}
	return nil
}

// TestPercentInFileNames: a file whose name holds "%41" is that file, not
// "A" (decoded once, not twice), for download and delete alike.
func TestPercentInFileNames(t *testing.T) {
	d, alice, _ := shared(t)
	wf := createWorkflow(t, alice, "percent", "sleepy")
	ws := d.WorkspaceOf(alice, wf.ID)
	st, body := upload(alice, wf.ID, "a%41.txt", []byte("percent"))
	require.Equal(t, http.StatusOK, st, "%s", body)
	st, body = upload(alice, wf.ID, "aA.txt", []byte("plain"))
	require.Equal(t, http.StatusOK, st, "%s", body)

	st, got, err := d.Do("GET", "/api/workflows/"+wf.ID+"/workspace/a%2541.txt", alice.Token, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, st)
	assert.Equal(t, "percent", string(got))

	st, body, err = d.Do("DELETE", "/api/workflows/"+wf.ID+"/workspace/a%2541.txt", alice.Token, nil)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, st, "%s", body)
	assert.NoFileExists(t, filepath.Join(ws, "a%41.txt"))
	assert.FileExists(t, filepath.Join(ws, "aA.txt"), "deleting a%41.txt must not delete aA.txt")
}
