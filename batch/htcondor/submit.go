// Package htcondor runs steps as HTCondor jobs submitted by the user who
// owns the workflow, and follows them through their user event logs.
//
// The submit description (submit.go) and the event-log reader
// (eventlog.go) are pure and tested against HTCondor's own parsers; the
// backend (backend.go) runs condor_submit and condor_rm in the user's
// helper process and reads the user's logs there, from offsets it keeps in
// the job's handle, so in steady state the schedd is asked nothing.
package htcondor

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
)

// Name is the backend's canonical name (REANA's "htcondorcern" maps to it).
const Name = "htcondor"

// EventLogFile is the job's user event log (submit command `log`), in the
// job directory beside the job script.
const EventLogFile = "events.log"

// Config is the site's HTCondor setup.
type Config struct {
	// BinDir holds condor_submit, condor_q, condor_history and condor_rm;
	// empty means PATH.
	BinDir string
	// Schedd and Pool name the schedd to submit to (condor_submit -name and
	// -pool); empty means the local schedd of the local pool. They are
	// command-line options, not part of the submit description.
	Schedd string
	Pool   string
	// Requirements is a ClassAd expression every job must match (submit
	// command `requirements`); empty leaves HTCondor's defaults.
	Requirements string
	// AccountingGroup is used when a step names no htcondor_accounting_group;
	// empty sets none.
	AccountingGroup string
	// ExtraCommands are whole submit commands ("key = value") the admin adds
	// to every job, e.g. "should_transfer_files = NO" or "request_disk = 1GB".
	// They may not set what this package writes itself (see reservedKeys).
	ExtraCommands []string
	// ConfigFile, when set, is handed to every HTCondor command as
	// CONDOR_CONFIG (a site whose configuration is not in /etc/condor).
	ConfigFile string
	// HoldTimeout is how long a job may stay held before it is removed and
	// its step fails with the hold reason; zero waits for ever.
	HoldTimeout time.Duration
	// LogGrace is how long a job's event log may be missing after
	// submission, or lag behind the job's recorded exit status, before the
	// schedd is asked; zero means DefaultLogGrace.
	LogGrace time.Duration
	// SilenceCheck is how long a job's event log may say nothing new before
	// the schedd is asked whether the job still exists; zero means
	// DefaultSilenceCheck.
	SilenceCheck time.Duration
}

// Flavours are CERN's JobFlavour names as REANA accepts them for
// htcondor_max_runtime, with their wall-time limits in seconds
// (reana-commons HTCONDOR_JOB_FLAVOURS).
var flavours = map[string]int64{
	"espresso":     20 * 60,
	"microcentury": 60 * 60,
	"longlunch":    2 * 60 * 60,
	"workday":      8 * 60 * 60,
	"tomorrow":     24 * 60 * 60,
	"testmatch":    3 * 24 * 60 * 60,
	"nextweek":     7 * 24 * 60 * 60,
}

// MaxRuntime turns REANA's htcondor_max_runtime into seconds. It accepts a
// flavour name (returned as flavour, so a CERN-style pool can also see
// +JobFlavour) or a positive whole number of seconds. REANA falls back to
// one hour on anything else; we refuse instead, because a typo silently
// becoming a one-hour limit kills long steps for no visible reason.
func MaxRuntime(v string) (seconds int64, flavour string, err error) {
	v = strings.TrimSpace(v)
	if s, ok := flavours[strings.ToLower(v)]; ok {
		return s, strings.ToLower(v), nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return 0, "", fmt.Errorf("htcondor_max_runtime %q is neither a number of seconds nor one of espresso, microcentury, longlunch, workday, tomorrow, testmatch, nextweek", v)
	}
	return n, "", nil
}

// CPUs converts a Kubernetes-style CPU quantity ("1", "2.5", "500m") to
// whole CPUs for request_cpus, rounding up: HTCondor slots hold whole CPUs.
func CPUs(q string) (int64, error) {
	s := strings.TrimSpace(q)
	div := 1.0
	if m, ok := strings.CutSuffix(s, "m"); ok {
		s, div = m, 1000
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v <= 0 || math.IsInf(v, 0) || math.IsNaN(v) || v/div > 1<<16 {
		return 0, fmt.Errorf("cpu %q is not a quantity such as 1, 2.5 or 500m", q)
	}
	return int64(math.Ceil(v / div)), nil
}

var (
	// accountingGroup is what HTCondor group names look like in practice
	// ("group_u_ATLAS.alice"); anything else is refused rather than quoted,
	// since the value is a bare word in the submit language.
	accountingGroup = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.@-]*$`)
	// commandKey is a submit command name, or a custom attribute.
	commandKey = regexp.MustCompile(`^(\+|(?i:my)\.)?[A-Za-z_][A-Za-z0-9_.]*$`)
)

// reservedKeys are the commands SubmitDescription writes itself; an admin
// command setting one of them would silently change where the job runs, its
// output goes or its events are logged, and the backend depends on those.
var reservedKeys = map[string]bool{
	"universe": true, "executable": true, "arguments": true, "args": true,
	"initialdir": true, "initial_dir": true, "iwd": true,
	"output": true, "error": true, "input": true, "log": true, "log_xml": true, "user_log": true,
	"getenv": true, "environment": true, "env": true,
	"request_cpus": true, "request_memory": true, "accounting_group": true,
	"periodic_remove": true, "queue": true,
	// These make HTCondor run a job again after its terminate event, which
	// the event-log follower takes as the job's end.
	"max_retries": true, "retry_until": true, "on_exit_remove": true, "success_exit_code": true,
}

// SubmitDescription renders the HTCondor submit description for one step.
//
// Everything the step or the user controls is either validated to a narrow
// form (numbers, accounting groups) or written as a ClassAd string literal
// of a custom attribute, escaped twice: for ClassAd (backslash and double
// quote), then for the submit language's macro expansion (every '$'). Text
// with control characters is refused rather than cleaned, so what condor_q
// shows for +ReanaJob is exactly our job id, which is how a job whose
// submission was interrupted is found again.
//
// Output and error go to one file, asuser.OutputFile, as on Slurm: the
// engine shows the step's log from that one file with stdout and stderr
// interleaved as they happened, and HTCondor supports naming the same file
// for both (its 9.0.14 release notes fix a bug "when output and error are
// the same").
func SubmitDescription(spec batch.Spec, cfg Config) (string, error) {
	if !filepath.IsAbs(spec.JobDir) || !filepath.IsAbs(spec.Workspace) {
		return "", fmt.Errorf("htcondor: job directory %q and workspace %q must be absolute paths", spec.JobDir, spec.Workspace)
	}
	var d desc
	d.comment("Generated by reana-site; changing it by hand changes nothing.")
	d.plain("universe", "vanilla")
	d.path("executable", filepath.Join(spec.JobDir, asuser.ScriptFile))
	d.path("initialdir", spec.Workspace)
	out := filepath.Join(spec.JobDir, asuser.OutputFile)
	d.path("output", out)
	d.path("error", out)
	d.path("log", filepath.Join(spec.JobDir, EventLogFile))
	// The job script sets the step's environment itself; the submitter's
	// (the user's helper process) must not leak into the job. Without
	// getenv HTCondor starts the job with no HOME or PATH at all, so the
	// basics a login gives (and the local and Slurm backends pass) are set.
	d.plain("getenv", "false")
	d.env(map[string]string{"HOME": spec.User.Home, "USER": spec.User.Name, "LOGNAME": spec.User.Name,
		"PATH": "/usr/local/bin:/usr/bin:/bin"})
	// The job runs where the workspace is, on the shared filesystem, and
	// writes its output and exit status there as it goes; file transfer
	// would run it in a scratch directory and bring its output back only at
	// the end. A site that knows better says so in its extra commands.
	if !setsKey(cfg.ExtraCommands, "should_transfer_files") {
		d.plain("should_transfer_files", "NO")
	}
	d.str("+ReanaWorkflow", spec.WorkflowID)
	d.str("+ReanaStep", spec.StepName)
	d.str("+ReanaJob", spec.JobID)
	d.str("+ReanaRun", spec.WorkflowName)

	cpus := int64(1)
	if q := firstNonEmpty(spec.Hints.CPURequest, spec.Hints.CPULimit); q != "" {
		n, err := CPUs(q)
		if err != nil {
			return "", fmt.Errorf("htcondor: step %q: %w", spec.StepName, err)
		}
		cpus = n
	}
	d.plain("request_cpus", strconv.FormatInt(cpus, 10))
	if m := spec.Hints.MemoryLimit; m != "" {
		mb, err := batch.MemoryMB(m)
		if err != nil {
			return "", fmt.Errorf("htcondor: step %q: kubernetes_memory_limit: %w", spec.StepName, err)
		}
		d.plain("request_memory", strconv.FormatInt(mb, 10))
	}
	if r := spec.Hints.HTCondorMaxRuntime; r != "" {
		secs, flavour, err := MaxRuntime(r)
		if err != nil {
			return "", fmt.Errorf("htcondor: step %q: %w", spec.StepName, err)
		}
		if flavour != "" {
			d.str("+JobFlavour", flavour)
		}
		d.plain("+MaxRuntime", strconv.FormatInt(secs, 10))
		// The limit is enforced by the job itself rather than left to a
		// site policy that may not exist outside CERN: remove it once it
		// has run longer than asked (JobStatus 2 is Running, and
		// EnteredCurrentStatus is when it started running).
		d.plain("periodic_remove", "(JobStatus == 2) && ((time() - EnteredCurrentStatus) > "+strconv.FormatInt(secs, 10)+")")
	}
	if g := firstNonEmpty(spec.Hints.HTCondorAccountingGroup, cfg.AccountingGroup); g != "" {
		if !accountingGroup.MatchString(g) {
			return "", fmt.Errorf("htcondor: step %q: htcondor_accounting_group %q: only letters, digits, '_', '.', '@' and '-' are allowed", spec.StepName, g)
		}
		d.plain("accounting_group", g)
	}
	if cfg.Requirements != "" {
		if err := oneLine(cfg.Requirements); err != nil {
			return "", fmt.Errorf("htcondor: site requirements: %w", err)
		}
		d.line("requirements = " + strings.TrimSpace(cfg.Requirements))
	}
	for _, c := range cfg.ExtraCommands {
		if err := checkExtra(c); err != nil {
			return "", fmt.Errorf("htcondor: site extra command %q: %w", c, err)
		}
		d.line(strings.TrimSpace(c))
	}
	if d.err != nil {
		return "", fmt.Errorf("htcondor: step %q: %w", spec.StepName, d.err)
	}
	d.line("queue 1")
	return d.b.String(), nil
}

// CheckSite reports whether the site's requirements, accounting group and
// extra commands can be written into a submit description, so a bad
// setting stops the daemon at start rather than failing every step.
func CheckSite(cfg Config) error {
	probe := batch.Spec{JobID: "probe", WorkflowID: "probe", WorkflowName: "probe.1", StepName: "probe",
		Workspace: "/probe", JobDir: "/probe/job"}
	if _, err := SubmitDescription(probe, cfg); err != nil {
		return errors.New(strings.TrimPrefix(err.Error(), `htcondor: step "probe": `))
	}
	return nil
}

// checkExtra accepts one admin-written "key = value" command that does not
// override what the backend relies on.
func checkExtra(c string) error {
	if err := oneLine(c); err != nil {
		return err
	}
	key, value, ok := strings.Cut(c, "=")
	key = strings.TrimSpace(key)
	if !ok || !commandKey.MatchString(key) || strings.TrimSpace(value) == "" {
		return fmt.Errorf("not a submit command of the form key = value")
	}
	lk := strings.ToLower(key)
	if reservedKeys[lk] || strings.HasPrefix(lk, "+reana") || strings.HasPrefix(lk, "my.reana") {
		return fmt.Errorf("%s is set by reana-site itself", key)
	}
	return nil
}

// oneLine refuses text that would end the submit command it is part of
// (newlines), continue it onto the next line (a trailing backslash) or that
// a terminal would interpret (other control characters).
func oneLine(s string) error {
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' {
			return fmt.Errorf("contains control character %U", r)
		}
	}
	if strings.HasSuffix(strings.TrimSpace(s), `\`) {
		return fmt.Errorf("ends with a backslash, which continues a submit command onto the next line")
	}
	return nil
}

// escapeMacros hides every '$' from the submit language's macro expansion
// ($(NAME), $ENV(NAME), $RANDOM_CHOICE(...), ...): $(DOLLAR) is the
// predefined macro that expands to a literal '$'.
func escapeMacros(s string) string { return strings.ReplaceAll(s, "$", "$(DOLLAR)") }

// desc accumulates a submit description; the first error sticks, so the
// caller checks once.
type desc struct {
	b   strings.Builder
	err error
}

func (d *desc) line(s string) { d.b.WriteString(s + "\n") }

func (d *desc) comment(s string) { d.line("# " + s) }

// plain writes a value we produced ourselves (keywords, numbers,
// expressions over them).
func (d *desc) plain(key, value string) { d.line(key + " = " + value) }

// path writes a file name, which the submit language takes verbatim to the
// end of the line after trimming surrounding blanks.
func (d *desc) path(key, p string) {
	if d.err != nil {
		return
	}
	if err := oneLine(p); err != nil {
		d.err = fmt.Errorf("%s %q: %w", key, p, err)
		return
	}
	if strings.TrimSpace(p) != p {
		d.err = fmt.Errorf("%s %q: leading or trailing blanks would be lost", key, p)
		return
	}
	if strings.Contains(p, "$$") {
		// The schedd would substitute $$(Attr) in Cmd, Out and Err at
		// match time (see str).
		d.err = fmt.Errorf("%s %q: \"$$\" is HTCondor's match-time substitution", key, p)
		return
	}
	d.line(key + " = " + escapeMacros(p))
}

// env writes the environment command in its new syntax: the whole value
// in double quotes (two of them for a literal one), each NAME='value' in
// single quotes (two of them for a literal one), so blanks in values
// survive. Empty values are left out.
func (d *desc) env(vars map[string]string) {
	if d.err != nil {
		return
	}
	names := make([]string, 0, len(vars))
	for k := range vars {
		names = append(names, k)
	}
	sort.Strings(names)
	var parts []string
	for _, k := range names {
		v := vars[k]
		if v == "" {
			continue
		}
		if err := oneLine(v); err != nil || strings.Contains(v, "$$") {
			d.err = fmt.Errorf("environment %s=%q cannot be written into a submit description", k, v)
			return
		}
		v = strings.ReplaceAll(v, "'", "''")
		parts = append(parts, k+"='"+strings.ReplaceAll(v, `"`, `""`)+"'")
	}
	if len(parts) > 0 {
		d.line(`environment = "` + escapeMacros(strings.Join(parts, " ")) + `"`)
	}
}

// setsKey tells whether one of the commands sets key, in any of its
// spellings: should_transfer_files, +ShouldTransferFiles and
// MY.ShouldTransferFiles all set the job attribute ShouldTransferFiles.
func setsKey(commands []string, key string) bool {
	norm := func(k string) string {
		k = strings.ToLower(strings.TrimSpace(k))
		k = strings.TrimPrefix(strings.TrimPrefix(k, "+"), "my.")
		return strings.ReplaceAll(k, "_", "")
	}
	for _, c := range commands {
		k, _, ok := strings.Cut(c, "=")
		if ok && norm(k) == norm(key) {
			return true
		}
	}
	return false
}

// str writes a custom attribute as a ClassAd string literal. Within one,
// backslash escapes a double quote and itself ("" would instead end the
// string and start another, which ClassAd concatenates).
func (d *desc) str(key, v string) {
	if d.err != nil {
		return
	}
	if err := oneLine(v); err != nil {
		d.err = fmt.Errorf("%s %q: %w", key, v, err)
		return
	}
	if strings.Contains(v, "$$") {
		// The schedd substitutes $$(Attr) in job attributes with the
		// matched machine's values when the job starts, after every
		// submit-side escape has been undone.
		d.err = fmt.Errorf("%s %q: \"$$\" is HTCondor's match-time substitution and cannot be passed through", key, v)
		return
	}
	q := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(v)
	d.line(key + ` = "` + escapeMacros(q) + `"`)
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
