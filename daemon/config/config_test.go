package config

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDefaultsAreValid(t *testing.T) {
	for _, k := range []string{"STATE_DIR", "LISTEN", "BACKENDS", "DEFAULT_BACKEND", "WORKSPACE_ROOT"} {
		t.Setenv(Prefix+"_"+k, "") // restored after the test
		os.Unsetenv(Prefix + "_" + k)
	}
	c, err := Load()
	require.NoError(t, err)
	assert.Equal(t, "localhost:8443", c.Listen)
	assert.Equal(t, []string{"local"}, c.Backends)
	assert.Equal(t, "{home}/reana", c.WorkspaceRoot)
	assert.True(t, c.Web)
	assert.Equal(t, "https://localhost:8443", c.PublicURL)
	assert.Equal(t, 12*time.Hour, c.WebSessionLifetime)
}

func TestDefaultPublicURL(t *testing.T) {
	host, err := os.Hostname()
	require.NoError(t, err)
	for listen, want := range map[string]string{
		"localhost:8443":    "https://localhost:8443",
		"0.0.0.0:8443":      "https://" + host + ":8443",
		":443":              "https://" + host,
		"[2001:db8::1]:443": "https://[2001:db8::1]",
		"[::]:9443":         "https://" + host + ":9443",
	} {
		assert.Equal(t, want, defaultPublicURL(listen), listen)
	}
	t.Setenv(Prefix+"_PUBLIC_URL", "https://reana.example.org/")
	c, err := Load()
	require.NoError(t, err)
	assert.Equal(t, "https://reana.example.org", c.PublicURL, "the trailing slash goes")
}

func TestValidateReportsEveryBadValueOnItsOwnLine(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want []string
	}{
		{"listen", map[string]string{"LISTEN": "8443"}, []string{"REANA_SITE_LISTEN: must be host:port"}},
		{"min uid", map[string]string{"MIN_UID": "0"}, []string{"REANA_SITE_MIN_UID"}},
		{"workspace placeholder", map[string]string{"WORKSPACE_ROOT": "/data/{group}"}, []string{"REANA_SITE_WORKSPACE_ROOT: unknown placeholder"}},
		{"relative workspace", map[string]string{"WORKSPACE_ROOT": "reana"}, []string{"REANA_SITE_WORKSPACE_ROOT: must be an absolute"}},
		{"unknown backend", map[string]string{"BACKENDS": "local,pbs"}, []string{`REANA_SITE_BACKENDS: unknown backend "pbs"`}},
		{"default not offered", map[string]string{"DEFAULT_BACKEND": "slurm"}, []string{"REANA_SITE_DEFAULT_BACKEND"}},
		{"slurm extra args", map[string]string{"SLURM_EXTRA_ARGS": "--qos=x -A y"}, []string{"REANA_SITE_SLURM_EXTRA_ARGS"}},
		{"containers mode", map[string]string{"CONTAINERS": "docker"}, []string{"REANA_SITE_CONTAINERS: must be off or apptainer"}},
		{"pull without cache", map[string]string{"CONTAINERS": "apptainer"}, []string{"REANA_SITE_IMAGE_PULL: pulls need an image cache"}},
		{"image order", map[string]string{"CONTAINERS": "apptainer", "IMAGE_PULL": "false", "IMAGE_ORDER": "pull,cache"},
			[]string{"REANA_SITE_CONTAINERS: image order: pull must come last"}},
		{"apptainer binds", map[string]string{"CONTAINERS": "apptainer", "IMAGE_CACHE": "/images", "APPTAINER_BINDS": "/cvmfs,scratch"},
			[]string{`REANA_SITE_CONTAINERS: bind "scratch"`}},
		{"apptainer cache dir", map[string]string{"CONTAINERS": "apptainer", "IMAGE_CACHE": "/images", "APPTAINER_CACHEDIR": "cache/{uid}"},
			[]string{"REANA_SITE_CONTAINERS: apptainer pull cache must be an absolute path"}},
		{"metrics networks", map[string]string{"METRICS_ALLOW": "10.0.0.0/8,prometheus.example.org"},
			[]string{`REANA_SITE_METRICS_ALLOW: "prometheus.example.org" is neither a network`}},
		{"keytab credential without systemd", map[string]string{"KRB5_KEYTAB": "krb5.keytab", "KRB5_SPN": "HTTP/x"},
			[]string{"REANA_SITE_KRB5_KEYTAB: \"krb5.keytab\" is not an absolute path, and there is no $CREDENTIALS_DIRECTORY"}},
		{"spn with realm", map[string]string{"KRB5_KEYTAB": "/etc/krb5.keytab", "KRB5_SPN": "HTTP/x@R"}, []string{"REANA_SITE_KRB5_SPN: must be SERVICE/host"}},
		{"oidc issuer", map[string]string{"OIDC_ISSUER": "http://idp", "OIDC_CLIENT_ID": "c", "OIDC_REDIRECT_URL": "https://h/site/oidc/callback"},
			[]string{"REANA_SITE_OIDC_ISSUER: must be an https URL"}},
		{"oidc without client", map[string]string{"OIDC_ISSUER": "https://idp"},
			[]string{"REANA_SITE_OIDC_CLIENT_ID", "REANA_SITE_OIDC_REDIRECT_URL: must be https://<this host>[:port]/site/oidc/callback"}},
		{"map rules", map[string]string{"LOGIN_MAP_RULES": "(x => y"}, []string{"REANA_SITE_LOGIN_MAP_RULES: rule"}},
		{"map command", map[string]string{"LOGIN_MAP_COMMAND": "mapper --json"}, []string{"REANA_SITE_LOGIN_MAP_COMMAND: the program must be an absolute path"}},
		{"public url scheme", map[string]string{"PUBLIC_URL": "http://reana.example.org"}, []string{"REANA_SITE_PUBLIC_URL: must be https://host[:port]"}},
		{"public url path", map[string]string{"PUBLIC_URL": "https://reana.example.org/reana"}, []string{"REANA_SITE_PUBLIC_URL"}},
		{"session lifetime", map[string]string{"WEB_SESSION_LIFETIME": "0s"}, []string{"REANA_SITE_WEB_SESSION_LIFETIME: must be positive"}},
		{"several at once", map[string]string{"LISTEN": "x", "LOG_LEVEL": "loud", "POLL_INTERVAL": "1ms"},
			[]string{"REANA_SITE_LISTEN", "REANA_SITE_LOG_LEVEL", "REANA_SITE_POLL_INTERVAL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(Prefix+"_"+k, v)
			}
			_, err := Load()
			require.Error(t, err)
			lines := strings.Split(err.Error(), "\n")
			assert.Len(t, lines, len(tt.want), "one line per bad value: %q", err)
			for _, w := range tt.want {
				assert.Contains(t, err.Error(), w)
			}
		})
	}
}

func TestMetricsNetworks(t *testing.T) {
	c := Config{MetricsAllow: []string{"10.1.2.3/16", " 127.0.0.1", "::1", ""}}
	got, err := c.MetricsNetworks()
	require.NoError(t, err)
	var s []string
	for _, p := range got {
		s = append(s, p.String())
	}
	assert.Equal(t, []string{"10.1.0.0/16", "127.0.0.1/32", "::1/128"}, s)
}

func TestSlurmcernIsSlurm(t *testing.T) {
	t.Setenv(Prefix+"_BACKENDS", "local,slurmcern")
	t.Setenv(Prefix+"_DEFAULT_BACKEND", "slurmcern")
	c, err := Load()
	require.NoError(t, err)
	assert.Equal(t, []string{"local", "slurm"}, c.Backends)
	assert.Equal(t, "slurm", c.DefaultBackend)
}

func TestContainersConfig(t *testing.T) {
	t.Setenv(Prefix+"_CONTAINERS", "apptainer")
	t.Setenv(Prefix+"_APPTAINER", "/opt/apptainer/bin/apptainer")
	t.Setenv(Prefix+"_IMAGE_CACHE", "{home}/.cache/reana-images")
	t.Setenv(Prefix+"_IMAGE_UNPACKED_ROOTS", "/cvmfs/unpacked.cern.ch, /srv/images")
	t.Setenv(Prefix+"_APPTAINER_BINDS", "/cvmfs,/scratch:/scratch:ro")
	t.Setenv(Prefix+"_APPTAINER_CACHEDIR", "/scratch/apptainer/{user}")
	c, err := Load()
	require.NoError(t, err)
	cc := c.ContainersConfig()
	assert.True(t, cc.Enabled)
	assert.True(t, cc.AllowPull)
	assert.Equal(t, "/opt/apptainer/bin/apptainer", cc.Apptainer)
	assert.Equal(t, []string{"/cvmfs/unpacked.cern.ch", "/srv/images"}, cc.UnpackedRoots)
	assert.Equal(t, []string{"cache", "unpacked", "pull"}, cc.Order)
	assert.Equal(t, []string{"/cvmfs", "/scratch:/scratch:ro"}, cc.ExtraBinds)
	assert.Equal(t, "/scratch/apptainer/{user}", cc.PullCache)
}

func TestContainersOffByDefault(t *testing.T) {
	c, err := Load()
	require.NoError(t, err)
	assert.False(t, c.ContainersConfig().Enabled)
}

func TestCredentialPath(t *testing.T) {
	t.Setenv("CREDENTIALS_DIRECTORY", "/run/credentials/reana-site.service")
	p, err := CredentialPath("krb5.keytab")
	require.NoError(t, err)
	assert.Equal(t, "/run/credentials/reana-site.service/krb5.keytab", p)
	p, err = CredentialPath("/etc/reana-site/http.keytab")
	require.NoError(t, err)
	assert.Equal(t, "/etc/reana-site/http.keytab", p)
	_, err = CredentialPath("../x")
	assert.ErrorContains(t, err, "must not contain /")
}
