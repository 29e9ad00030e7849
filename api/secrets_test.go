package api_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/daemon/config"
)

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func addBody(name, typ, value string) string {
	b, _ := json.Marshal(map[string]map[string]string{name: {"value": value, "type": typ}})
	return string(b)
}

func TestSecrets(t *testing.T) {
	e := newEnv(t, config.Config{})
	dir := e.api.Config.SecretsDir(e.acct)
	e.check(request{Method: "GET", Path: "/api/secrets"}, expectation{Status: http.StatusOK})

	e.check(request{Method: "POST", Path: "/api/secrets/?overwrite=False", Body: `{"TOKEN": {"value": "` + b64("s3cr3t-value") + `", "type": "env"}, "user.pem": {"value": "` + b64("PEM") + `", "type": "file"}}`},
		expectation{Status: http.StatusCreated, Keys: []string{"message"}, Msg: "successfully added"})
	b, err := os.ReadFile(filepath.Join(dir, "env", "TOKEN"))
	require.NoError(t, err)
	assert.Equal(t, "s3cr3t-value", string(b))

	res := e.check(request{Method: "GET", Path: "/api/secrets"}, expectation{Status: http.StatusOK})
	assert.JSONEq(t, `[{"name": "TOKEN", "type": "env"}, {"name": "user.pem", "type": "file"}]`, string(res.Body))
	assert.NotContains(t, string(res.Body), "s3cr3t")

	e.check(request{Method: "POST", Path: "/api/secrets/?overwrite=False", Body: addBody("TOKEN", "env", b64("other"))},
		expectation{Status: http.StatusConflict, Msg: "TOKEN already exist"})
	e.check(request{Method: "POST", Path: "/api/secrets/?overwrite=True", Body: addBody("TOKEN", "env", b64("other"))},
		expectation{Status: http.StatusCreated})
	b, err = os.ReadFile(filepath.Join(dir, "env", "TOKEN"))
	require.NoError(t, err)
	assert.Equal(t, "other", string(b))

	res = e.check(request{Method: "DELETE", Path: "/api/secrets/", Body: `["TOKEN", "MISSING"]`}, expectation{Status: http.StatusNotFound})
	assert.JSONEq(t, `["MISSING"]`, string(res.Body))
	res = e.check(request{Method: "DELETE", Path: "/api/secrets/", Body: `["TOKEN"]`}, expectation{Status: http.StatusOK})
	assert.JSONEq(t, `["TOKEN"]`, string(res.Body))
	res = e.check(request{Method: "GET", Path: "/api/secrets"}, expectation{Status: http.StatusOK})
	assert.JSONEq(t, `[{"name": "user.pem", "type": "file"}]`, string(res.Body))
	assert.NoFileExists(t, filepath.Join(dir, "env", "TOKEN"))
}

func TestSecretsBadInput(t *testing.T) {
	e := newEnv(t, config.Config{MaxSecretBytes: 1 << 20})
	big := b64(strings.Repeat("x", 10<<20))
	tests := []struct {
		name string
		body string
		msg  string
	}{
		{"a slash", addBody("a/b", "file", b64("v")), "must not contain '/'"},
		{"dot dot", addBody("..", "file", b64("v")), "'..'"},
		{"an equals sign", addBody("A=B", "env", b64("v")), "'='"},
		{"NUL", addBody("A\x00B", "env", b64("v")), "NUL"},
		{"a reserved name", addBody("REANA_WORKSPACE", "env", b64("v")), "reserved"},
		{"an env name that is no variable", addBody("my-key", "env", b64("v")), "variable name"},
		{"an unknown type", addBody("A", "volume", b64("v")), "type must be"},
		{"not base64", addBody("A", "env", "not base64!"), "not base64"},
		{"a NUL in an env value", addBody("A", "env", b64("a\x00b")), "NUL byte"},
		{"10 MiB", addBody("big", "file", big), "at most 1 MiB"},
		{"not an object", `["A"]`, "Malformed secrets"},
		{"nothing", `{}`, "No secrets"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.check(request{Method: "POST", Path: "/api/secrets/?overwrite=false", Body: tt.body},
				expectation{Status: http.StatusForbidden, Msg: tt.msg})
		})
	}
	e.check(request{Method: "POST", Path: "/api/secrets/?overwrite=maybe", Body: addBody("A", "env", b64("v"))},
		expectation{Status: http.StatusForbidden, Msg: "overwrite"})
	e.check(request{Method: "DELETE", Path: "/api/secrets/", Body: `{"a": 1}`}, expectation{Status: http.StatusForbidden, Msg: "list of secret names"})
	res := e.check(request{Method: "GET", Path: "/api/secrets"}, expectation{Status: http.StatusOK})
	assert.JSONEq(t, `[]`, string(res.Body), "nothing was stored")
	assert.NoDirExists(t, e.api.Config.SecretsDir(e.acct))

	// The secret directory replaced by a link: refused, nothing written
	// where it points.
	dir := e.api.Config.SecretsDir(e.acct)
	elsewhere := dir + ".elsewhere"
	require.NoError(t, os.Mkdir(elsewhere, 0o700))
	require.NoError(t, os.Chown(elsewhere, int(e.acct.UID), int(e.acct.GID)))
	require.NoError(t, os.Symlink(elsewhere, dir))
	e.check(request{Method: "POST", Path: "/api/secrets/?overwrite=false", Body: addBody("A", "env", b64("v"))},
		expectation{Status: http.StatusForbidden, Msg: "cannot be stored"})
	entries, err := os.ReadDir(elsewhere)
	require.NoError(t, err)
	assert.Empty(t, entries, fmt.Sprint(entries))
}
