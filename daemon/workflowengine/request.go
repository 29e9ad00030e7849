package workflowengine

import (
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/daemon/engine"
	"github.com/reana-site/reana-site/daemon/spec"
	"github.com/reana-site/reana-site/daemon/store"
)

// JobRequest is one job as an adapter asks for it: the fields of REANA's
// job-controller JobRequest that say what to run, plus the adapter's
// idempotency key. There is no user, workspace or workflow in it: those
// are the run's.
type JobRequest struct {
	Key            string            `json:"key"`
	JobName        string            `json:"job_name"`
	Image          string            `json:"docker_img"`
	Cmd            string            `json:"cmd"`
	PrettifiedCmd  string            `json:"prettified_cmd"`
	Env            map[string]string `json:"env_vars"`
	ComputeBackend string            `json:"compute_backend"`
	// REANA's hints, as its engines send them.
	Kerberos                bool   `json:"kerberos"`
	VomsProxy               bool   `json:"voms_proxy"`
	Rucio                   bool   `json:"rucio"`
	UnpackedImg             bool   `json:"unpacked_img"`
	KubernetesUID           int    `json:"kubernetes_uid"`
	KubernetesCPURequest    string `json:"kubernetes_cpu_request"`
	KubernetesCPULimit      string `json:"kubernetes_cpu_limit"`
	KubernetesMemoryRequest string `json:"kubernetes_memory_request"`
	KubernetesMemoryLimit   string `json:"kubernetes_memory_limit"`
	KubernetesJobTimeout    int    `json:"kubernetes_job_timeout"`
	HTCondorMaxRuntime      string `json:"htcondor_max_runtime"`
	HTCondorAccountingGroup string `json:"htcondor_accounting_group"`
	SlurmPartition          string `json:"slurm_partition"`
	SlurmTime               string `json:"slurm_time"`
	C4PCPUCores             string `json:"c4p_cpu_cores"`
	C4PMemoryLimit          string `json:"c4p_memory_limit"`
	C4PAdditional           string `json:"c4p_additional_requirements"`
}

// Bounds of one job request.
const (
	maxKey     = 256
	maxName    = 256
	maxCmd     = 256 << 10
	maxEnvVars = 64
	maxField   = 1024
)

var envVarName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// errBadRequest marks what is wrong with a request (answered 400).
var errBadRequest = errors.New("bad job request")

func badf(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errBadRequest}, args...)...)
}

func isValidation(err error) bool {
	var ve *spec.ValidationError
	return errors.Is(err, errBadRequest) || errors.Is(err, engine.ErrBadBackend) || errors.As(err, &ve)
}

// Job checks the request and turns it into the job row daemon/engine
// records (without its id, which comes from the key).
func (r JobRequest) Job() (store.Job, error) {
	switch {
	case r.Key == "" || len(r.Key) > maxKey:
		return store.Job{}, badf("key must have 1 to %d bytes", maxKey)
	case r.JobName == "" || len(r.JobName) > maxName || strings.ContainsAny(r.JobName, "\n\r\x00"):
		return store.Job{}, badf("job_name must be one line of 1 to %d bytes", maxName)
	case strings.TrimSpace(r.Cmd) == "" || len(r.Cmd) > maxCmd || strings.Contains(r.Cmd, "\x00"):
		return store.Job{}, badf("cmd must have 1 to %d bytes", maxCmd)
	case len(r.Image) > maxField || strings.ContainsAny(r.Image, " \n\r\t\x00"):
		return store.Job{}, badf("docker_img must be an image name")
	case len(r.Env) > maxEnvVars:
		return store.Job{}, badf("at most %d env_vars", maxEnvVars)
	case r.KubernetesJobTimeout < 0:
		return store.Job{}, badf("kubernetes_job_timeout must not be negative")
	}
	for k, v := range r.Env {
		if !envVarName.MatchString(k) || strings.HasPrefix(k, "REANA_SITE_") || len(v) > maxField*4 || strings.Contains(v, "\x00") {
			return store.Job{}, badf("env_vars: bad variable %q", k)
		}
	}
	for _, f := range []string{r.KubernetesCPURequest, r.KubernetesCPULimit, r.KubernetesMemoryRequest, r.KubernetesMemoryLimit,
		r.HTCondorMaxRuntime, r.HTCondorAccountingGroup, r.SlurmPartition, r.SlurmTime, r.ComputeBackend} {
		if len(f) > maxField || strings.ContainsAny(f, "\n\r\x00") {
			return store.Job{}, badf("a resource field is too long or has a line break")
		}
	}
	backend, err := spec.CanonicalBackend(r.ComputeBackend)
	if err != nil {
		return store.Job{}, err
	}
	shown, run := r.Cmd, ""
	if p := strings.TrimSpace(r.PrettifiedCmd); p != "" && p != r.Cmd {
		if len(p) > maxCmd || strings.Contains(p, "\x00") {
			return store.Job{}, badf("prettified_cmd must have at most %d bytes", maxCmd)
		}
		shown, run = p, r.Cmd
	}
	req, err := json.Marshal(engine.JobRequest{Command: run, Env: r.Env, Hints: batch.Hints{
		SlurmPartition: r.SlurmPartition, SlurmTime: r.SlurmTime,
		MemoryLimit: r.KubernetesMemoryLimit, MemoryRequest: r.KubernetesMemoryRequest,
		CPULimit: r.KubernetesCPULimit, CPURequest: r.KubernetesCPURequest,
		JobTimeoutSeconds:  r.KubernetesJobTimeout,
		HTCondorMaxRuntime: r.HTCondorMaxRuntime, HTCondorAccountingGroup: r.HTCondorAccountingGroup,
	}})
	if err != nil {
		return store.Job{}, fmt.Errorf("encode the job request: %w", err)
	}
	return store.Job{StepName: r.JobName, Command: shown, Image: r.Image, Backend: backend, Request: req}, nil
}
