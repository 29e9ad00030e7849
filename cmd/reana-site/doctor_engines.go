package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/reana-site/reana-site/daemon/config"
	"github.com/reana-site/reana-site/daemon/workflowengine"
)

// checkEngines looks at what cwl, snakemake and yadage runs need: the
// engines' interpreter and the versions it has, the adapters, and the
// local backend their engine processes run on.
func (env doctorEnv) checkEngines(ctx context.Context, cfg config.Config) []finding {
	if cfg.EnginePython == "" {
		return []finding{okf("workflow engines: off (REANA_SITE_ENGINE_PYTHON is not set): cwl, snakemake and yadage workflows are refused at start")}
	}
	out, err := env.Run(ctx, workflowengine.ProbeCommand(cfg.EnginePython)...)
	if err != nil {
		return []finding{problemf("workflow engines: %s cannot be run (REANA_SITE_ENGINE_PYTHON): %v: %s", cfg.EnginePython, err, strings.TrimSpace(out))}
	}
	have := workflowengine.ParseProbe(out)
	var res []finding
	for _, typ := range []string{"snakemake", "cwl", "yadage"} {
		pin := workflowengine.Pin(typ)
		_, want, _ := strings.Cut(pin, "==")
		switch v, ok := have[typ]; {
		case !ok:
			res = append(res, warnf("workflow engines: %s has no %s: %s workflows will be refused; install %s", cfg.EnginePython, typ, typ, pin))
		case v != want:
			res = append(res, warnf("workflow engines: %s has %s %s, but the adapters are written for %s", cfg.EnginePython, typ, v, pin))
		default:
			res = append(res, okf("workflow engines: %s %s", typ, v))
		}
	}
	if _, err := os.Stat(filepath.Join(cfg.EngineAdapters, "reana_site_engines", "__main__.py")); err != nil {
		res = append(res, problemf("workflow engines: the adapters are not in %s (REANA_SITE_ENGINE_ADAPTERS): %v", cfg.EngineAdapters, err))
	}
	if !slices.Contains(cfg.Backends, "local") {
		res = append(res, problemf("workflow engines: engine processes run on the local backend, which REANA_SITE_BACKENDS does not offer"))
	}
	return res
}
