package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/daemon/config"
)

func TestCheckEngines(t *testing.T) {
	adapters := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(adapters, "reana_site_engines"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(adapters, "reana_site_engines", "__main__.py"), nil, 0o644))
	all := "snakemake 7.32.4\ncwl 3.1.20210628163208\nyadage 0.20.1\n"
	cases := []struct {
		name     string
		python   string
		probe    string
		probeErr error
		adapters string
		backends []string
		want     []string
	}{
		{"off", "", "", nil, adapters, []string{"local"}, []string{"ok: workflow engines: off"}},
		{"all there", "/venv/bin/python", all, nil, adapters, []string{"local"},
			[]string{"ok: workflow engines: snakemake 7.32.4", "ok: workflow engines: cwl 3.1.20210628163208", "ok: workflow engines: yadage 0.20.1"}},
		{"missing and other versions", "/venv/bin/python", "snakemake 8.27.1\n", nil, adapters, []string{"local"},
			[]string{"warning: workflow engines: /venv/bin/python has snakemake 8.27.1, but the adapters are written for snakemake==7.32.4",
				"warning: workflow engines: /venv/bin/python has no cwl: cwl workflows will be refused; install cwltool==3.1.20210628163208",
				"warning: workflow engines: /venv/bin/python has no yadage"}},
		{"interpreter broken", "/venv/bin/python", "No such file", errors.New("exit status 127"), adapters, []string{"local"},
			[]string{"problem: workflow engines: /venv/bin/python cannot be run"}},
		{"no adapters, no local backend", "/venv/bin/python", all, nil, t.TempDir(), []string{"slurm"},
			[]string{"problem: workflow engines: the adapters are not in", "problem: workflow engines: engine processes run on the local backend"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := fakeEnv(t, nil)
			env.Run = func(_ context.Context, argv ...string) (string, error) {
				assert.Equal(t, tc.python, argv[0])
				return tc.probe, tc.probeErr
			}
			got := env.checkEngines(context.Background(), config.Config{EnginePython: tc.python, EngineAdapters: tc.adapters, Backends: tc.backends})
			var lines []string
			for _, f := range got {
				lines = append(lines, f.String())
			}
			for _, w := range tc.want {
				found := false
				for _, l := range lines {
					found = found || strings.HasPrefix(l, w)
				}
				assert.True(t, found, "want %q in %q", w, lines)
			}
		})
	}
}
