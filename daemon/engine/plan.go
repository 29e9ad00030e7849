package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"

	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/daemon/spec"
	"github.com/reana-site/reana-site/daemon/store"
)

// plan is a workflow's expanded steps and the range of them that runs
// (from REANA's FROM/TARGET options), cached per workflow.
type plan struct {
	steps    []spec.Step // expanded
	from, to int
	total    int
	warning  string
	kerberos bool // workflow.resources.kerberos: every step gets a ticket
	// driven marks a workflow run by an engine process (driven.go).
	driven bool
}

// planFor is the cached plan of wf, built on first use.
func (e *Engine) planFor(wf store.Workflow) (*plan, error) {
	e.mu.Lock()
	p, ok := e.plans[wf.ID]
	e.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := BuildPlan(wf)
	if err != nil {
		return nil, err
	}
	e.mu.Lock()
	e.plans[wf.ID] = p
	e.mu.Unlock()
	return p, nil
}

// BuildPlan expands a workflow's specification with its parameters and
// applies its operational options. Errors are user errors: the workflow
// fails with their message, as REANA's engine does.
func BuildPlan(wf store.Workflow) (*plan, error) {
	s, _, err := spec.Parse(wf.Spec)
	if err != nil {
		return nil, err
	}
	if s.Workflow.Type != "serial" {
		// The engine itself reads the rest; workflow.resources.kerberos
		// gives every job it asks for a ticket, as for a serial run.
		return &plan{driven: true, kerberos: s.Workflow.Resources.Kerberos}, nil
	}
	steps, err := s.SerialSteps()
	if err != nil {
		return nil, err
	}
	var params, opts map[string]any
	if len(wf.InputParameters) > 0 {
		if err := json.Unmarshal(wf.InputParameters, &params); err != nil {
			return nil, fmt.Errorf("input parameters: %w", err)
		}
	}
	if len(wf.OperationalOptions) > 0 {
		if err := json.Unmarshal(wf.OperationalOptions, &opts); err != nil {
			return nil, fmt.Errorf("operational options: %w", err)
		}
	}
	expanded, err := spec.Expand(steps, spec.MergeParameters(s.Inputs.Parameters, params))
	if err != nil {
		return nil, err
	}
	from, to, warning, err := spec.SelectSteps(expanded, opts)
	if err != nil {
		return nil, err
	}
	return &plan{steps: expanded, from: from, to: to, total: spec.TotalCommands(steps), warning: warning,
		kerberos: s.Workflow.Resources.Kerberos}, nil
}

type position struct{ step, cmd, attempt int }

// nextCommand is the first command in the selected steps that has no
// finished job yet.
func nextCommand(p *plan, jobs []store.Job) (position, bool) {
	done := map[[2]int]bool{}
	attempts := map[[2]int]int{}
	for _, j := range jobs {
		k := [2]int{j.StepIndex, j.CommandIndex}
		if j.Status == store.JobFinished {
			done[k] = true
		}
		attempts[k] = max(attempts[k], j.Attempt+1)
	}
	for s := p.from; s < p.to; s++ {
		for c := range p.steps[s].Commands {
			k := [2]int{s, c}
			if !done[k] {
				return position{step: s, cmd: c, attempt: attempts[k]}, true
			}
		}
	}
	return position{}, false
}

// backendFor is the canonical name of the backend a step runs on, or why
// it cannot run here.
func (e *Engine) backendFor(st spec.Step) (string, error) {
	name, err := spec.CanonicalBackend(st.ComputeBackend)
	if err != nil {
		return "", err
	}
	if name == "" {
		name = e.DefaultBackend
	}
	if _, ok := e.Backends[name]; !ok {
		return "", fmt.Errorf("compute backend %q is not available on this site", st.ComputeBackend)
	}
	return name, nil
}

// JobSpec rebuilds the backend's view of a stored job.
func (e *Engine) JobSpec(ctx context.Context, wf store.Workflow, j store.Job) (batch.Spec, error) {
	acct, err := e.Account(ctx, wf.OwnerID)
	if err != nil {
		return batch.Spec{}, err
	}
	req := requestOf(j)
	hints := req.Hints
	var secrets batch.Secrets
	if e.SecretsDir != nil {
		secrets = batch.Secrets{Dir: e.SecretsDir(acct), KeytabSecrets: e.KeytabSecrets, UserSecrets: e.UserSecrets, KrbConfig: e.KrbConfig}
	}
	if p, err := e.planFor(wf); err == nil && p.driven {
		secrets.Kerberos = secrets.Dir != "" && p.kerberos && j.StepIndex != store.EngineStepIndex
	} else if err == nil && j.StepIndex < len(p.steps) {
		hints = hintsOf(p.steps[j.StepIndex])
		secrets.Kerberos = secrets.Dir != "" && (p.kerberos || p.steps[j.StepIndex].Kerberos)
	}
	env := map[string]string{}
	for k, v := range req.Env {
		env[k] = v
	}
	env["REANA_WORKSPACE"], env["REANA_WORKFLOW_UUID"] = wf.WorkspacePath, wf.ID
	command := j.Command
	if req.Command != "" {
		command = req.Command
	}
	return batch.Spec{
		JobID:        j.ID,
		WorkflowID:   wf.ID,
		WorkflowName: wf.FullName(),
		StepName:     j.StepName,
		Command:      command,
		Image:        j.Image,
		Workspace:    wf.WorkspacePath,
		JobDir:       filepath.Join(wf.JobsPath, j.ID),
		Env:          env,
		Hints:        hints,
		User:         acct,
		Secrets:      secrets,
	}, nil
}

// hintsOf is REANA's optional resource fields of a step.
func hintsOf(st spec.Step) batch.Hints {
	return batch.Hints{
		SlurmPartition: st.SlurmPartition, SlurmTime: st.SlurmTime,
		MemoryLimit: st.KubernetesMemoryLimit, MemoryRequest: st.KubernetesMemoryRequest,
		CPULimit: st.KubernetesCPULimit, CPURequest: st.KubernetesCPURequest,
		JobTimeoutSeconds:  st.KubernetesJobTimeout,
		HTCondorMaxRuntime: st.HTCondorMaxRuntime, HTCondorAccountingGroup: st.HTCondorAccountingGroup,
	}
}
