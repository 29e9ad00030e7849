// Package workflowengine runs cwl, snakemake and yadage workflows with the
// real engines (cwltool, Snakemake, yadage), as REANA does, but as the
// workflow's owner: the engine reads user code (a Snakefile is Python, CWL
// expressions are JavaScript), which never runs in the daemon.
//
// Each run has one engine process, started through the local backend like
// a step (so it is detached, outlives a daemon restart and its exit is
// read back from its job directory). reana-site's own small adapters
// (engines/reana_site_engines) plug into each engine where REANA's plug in
// and hand every job to the daemon over a local socket (Server), playing
// the part of REANA's job controller; daemon/engine submits those jobs
// exactly like serial steps.
package workflowengine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/reana-site/reana-site/daemon/engine"
	"github.com/reana-site/reana-site/daemon/spec"
	"github.com/reana-site/reana-site/daemon/store"
)

// Environment of the engine process. The adapters read these names.
const (
	EnvPython  = "REANA_SITE_ENGINE_PYTHON"
	EnvSocket  = "REANA_SITE_ENGINE_SOCKET"
	EnvToken   = "REANA_SITE_ENGINE_TOKEN"
	EnvArgs    = "REANA_SITE_ENGINE_ARGS"
	envPyPath  = "PYTHONPATH"
	localName  = "local"
	engineStep = "engine"
)

// engineCommand starts the adapters with the site's interpreter. It is a
// constant: everything that varies reaches the process through its
// environment, which the job script quotes, and the arguments file.
const engineCommand = `exec "$REANA_SITE_ENGINE_PYTHON" -s -m reana_site_engines`

// Launcher builds the engine process of a run.
type Launcher struct {
	Python   string // the engines' interpreter; empty means no engines
	Adapters string // the directory holding the reana_site_engines package
	Socket   string // the socket the adapters talk to
	MaxJobs  int    // the site's cap on a run's active jobs, which Snakemake is told
	// Versions are the engines the interpreter has (from Probe), by
	// workflow type; a type missing here is refused at start.
	Versions map[string]string
	// Broken, when set, is why no engine can run here at all.
	Broken error
}

// Args is what the adapters are told about the run (REANA's engine
// command-line arguments, in one JSON document).
type Args struct {
	Type       string         `json:"type"`
	WorkflowID string         `json:"workflow_uuid"`
	Workspace  string         `json:"workspace"`
	File       string         `json:"file"`
	Parameters map[string]any `json:"parameters"`
	Options    map[string]any `json:"options"`
	Cvmfs      []string       `json:"cvmfs,omitempty"`
	Kerberos   bool           `json:"kerberos,omitempty"`
	// Total is the number of jobs to report, where the engine cannot
	// tell before it runs (cwl: REANA's count, the packed processes less
	// the main one); zero leaves it to the engine.
	Total int `json:"total,omitempty"`
}

// Available says why a workflow type cannot run here, or nil.
func (l *Launcher) Available(workflowType string) error {
	if workflowType == "serial" {
		return nil
	}
	if l != nil && l.Broken != nil {
		return fmt.Errorf("%s workflows cannot run on this reana-site server: %w", workflowType, l.Broken)
	}
	if l == nil || l.Python == "" {
		return fmt.Errorf("%s workflows are not enabled on this reana-site server: the site must set REANA_SITE_ENGINE_PYTHON to a Python environment with the engines of engines/requirements.txt (%s)", workflowType, pins[workflowType])
	}
	if _, ok := l.Versions[workflowType]; !ok {
		return fmt.Errorf("%s workflows cannot run on this reana-site server: %s has no %s; install it into that environment", workflowType, l.Python, pins[workflowType])
	}
	return nil
}

// pins are the engine versions the adapters are written against.
var pins = map[string]string{
	"snakemake": "snakemake==7.32.4",
	"cwl":       "cwltool==3.1.20210628163208",
	"yadage":    "yadage==0.20.1",
}

// EngineProcess is engine.Engine.EngineProcess: the job that runs wf's
// engine as its owner, on the local backend, outside any container.
func (l *Launcher) EngineProcess(_ context.Context, wf store.Workflow) (store.Job, error) {
	s, _, err := spec.Parse(wf.Spec)
	if err != nil {
		return store.Job{}, err
	}
	if err := l.Available(s.Workflow.Type); err != nil {
		return store.Job{}, err
	}
	var params, opts map[string]any
	if len(wf.InputParameters) > 0 {
		if err := json.Unmarshal(wf.InputParameters, &params); err != nil {
			return store.Job{}, fmt.Errorf("input parameters: %w", err)
		}
	}
	if len(wf.OperationalOptions) > 0 {
		if err := json.Unmarshal(wf.OperationalOptions, &opts); err != nil {
			return store.Job{}, fmt.Errorf("operational options: %w", err)
		}
	}
	if s.Workflow.Type == "cwl" {
		params = typedLike(s.Inputs.Parameters, params)
	}
	args := Args{
		Type: s.Workflow.Type, WorkflowID: wf.ID, Workspace: wf.WorkspacePath, File: s.Workflow.File,
		Parameters: spec.MergeParameters(s.Inputs.Parameters, params), Options: opts,
		Cvmfs: s.Workflow.Resources.Cvmfs, Kerberos: s.Workflow.Resources.Kerberos,
	}
	if s.Workflow.Type == "cwl" {
		args.Total = cwlTotal(s.Workflow.Specification)
	}
	if args.Options == nil {
		args.Options = map[string]any{}
	}
	raw, err := json.Marshal(args)
	if err != nil {
		return store.Job{}, fmt.Errorf("encode the engine's arguments: %w", err)
	}
	token, err := newToken()
	if err != nil {
		return store.Job{}, err
	}
	// The secret lives in the job row (the store is root's alone) so that
	// a resubmission after a crash gives the process the same one.
	req, err := json.Marshal(engine.JobRequest{Host: true, Env: map[string]string{
		EnvPython: l.Python, EnvSocket: l.Socket, EnvToken: token, EnvArgs: string(raw),
		envPyPath: l.Adapters, "PYTHONNOUSERSITE": "1", "PYTHONUNBUFFERED": "1",
		"REANA_SITE_ENGINE_MAX_JOBS": strconv.Itoa(l.maxJobs()),
	}})
	if err != nil {
		return store.Job{}, err
	}
	return store.Job{
		StepName: s.Workflow.Type + " " + engineStep,
		Command:  engineCommand,
		Backend:  localName,
		Request:  req,
	}, nil
}

// typedLike gives each override (reana-client's -p, always a string) the
// type of the value it replaces when it reads as one: a CWL input declared
// int refuses "2000", which REANA passes on as it is.
func typedLike(declared, overrides map[string]any) map[string]any {
	out := make(map[string]any, len(overrides))
	for k, v := range overrides {
		out[k] = v
		str, ok := v.(string)
		if !ok {
			continue
		}
		switch declared[k].(type) {
		case json.Number:
			if _, err := strconv.ParseFloat(str, 64); err == nil {
				out[k] = json.Number(str)
			}
		case bool:
			if b, err := strconv.ParseBool(str); err == nil {
				out[k] = b
			}
		}
	}
	return out
}

func (l *Launcher) maxJobs() int {
	if l.MaxJobs > 0 {
		return l.MaxJobs
	}
	return 300 // REANA's SNAKEMAKE_MAX_PARALLEL_JOBS, as config's default
}

func newToken() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("make the engine's secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// tokenOf is the secret of a run's engine process row.
func tokenOf(proc store.Job) string {
	var r engine.JobRequest
	if json.Unmarshal(proc.Request, &r) != nil {
		return ""
	}
	return r.Env[EnvToken]
}

// probeScript prints the engines' versions, one "type version" a line; a
// missing engine is left out.
const probeScript = `
import importlib.metadata as m
for t, d in (("snakemake", "snakemake"), ("cwl", "cwltool"), ("yadage", "yadage")):
    try:
        print(t, m.version(d))
    except Exception:
        pass
`

// ProbeCommand is the argument vector that prints the interpreter's
// engines (see ParseProbe). It runs the site's interpreter on a fixed
// script, never anything of a user's.
func ProbeCommand(python string) []string {
	return []string{python, "-s", "-c", probeScript}
}

// ParseProbe reads ProbeCommand's output: the engine versions by workflow
// type.
func ParseProbe(out string) map[string]string {
	v := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if t, ver, ok := strings.Cut(line, " "); ok {
			v[t] = ver
		}
	}
	return v
}

// Pin is the engine version the adapters are written against, for a
// workflow type ("snakemake==7.32.4").
func Pin(workflowType string) string { return pins[workflowType] }

// Probe asks the interpreter which engines it has.
func Probe(ctx context.Context, python string) (map[string]string, error) {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	argv := ProbeCommand(python)
	out, err := exec.CommandContext(ctx, argv[0], argv[1:]...).Output()
	if err != nil {
		return nil, fmt.Errorf("probe the engines of %s: %w", python, err)
	}
	return ParseProbe(string(out)), nil
}
