package htcondor

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
)

func baseSpec() batch.Spec {
	return batch.Spec{
		JobID:        "0b5e7a52-5c1e-4c36-9d7e-6f1f2a3b4c5d",
		WorkflowID:   "9f0c1d2e-3a4b-4c5d-8e6f-7a8b9c0d1e2f",
		WorkflowName: "root6-fit.1",
		StepName:     "gendata",
		Command:      "echo hi",
		Workspace:    "/var/lib/reana-site/workspaces/alice/w1",
		JobDir:       "/var/lib/reana-site/workspaces/alice/w1/.reana/jobs/j1",
		User:         asuser.Account{Name: "alice", UID: 4101, GID: 4101, Home: "/home/alice"},
	}
}

type submitCase struct {
	name   string
	edit   func(*batch.Spec, *Config)
	lines  []string       // exact lines the description must contain
	absent []string       // substrings it must not contain
	parsed map[string]any // what HTCondor reads back (keys lower-case)
	err    string         // non-empty: rendering must fail with this text
}

func submitCases() []submitCase {
	return []submitCase{
		{
			name: "defaults",
			lines: []string{
				"universe = vanilla",
				"executable = /var/lib/reana-site/workspaces/alice/w1/.reana/jobs/j1/job.sh",
				"initialdir = /var/lib/reana-site/workspaces/alice/w1",
				"output = /var/lib/reana-site/workspaces/alice/w1/.reana/jobs/j1/output.log",
				"error = /var/lib/reana-site/workspaces/alice/w1/.reana/jobs/j1/output.log",
				"log = /var/lib/reana-site/workspaces/alice/w1/.reana/jobs/j1/events.log",
				"getenv = false",
				`environment = "HOME='/home/alice' LOGNAME='alice' PATH='/usr/local/bin:/usr/bin:/bin' USER='alice'"`,
				"should_transfer_files = NO",
				`+ReanaWorkflow = "9f0c1d2e-3a4b-4c5d-8e6f-7a8b9c0d1e2f"`,
				`+ReanaStep = "gendata"`,
				`+ReanaJob = "0b5e7a52-5c1e-4c36-9d7e-6f1f2a3b4c5d"`,
				`+ReanaRun = "root6-fit.1"`,
				"request_cpus = 1",
				"queue 1",
			},
			absent: []string{"request_memory", "MaxRuntime", "periodic_remove", "accounting_group", "requirements"},
			parsed: map[string]any{
				"executable":            "/var/lib/reana-site/workspaces/alice/w1/.reana/jobs/j1/job.sh",
				"my.reanastep":          "gendata",
				"my.reanajob":           "0b5e7a52-5c1e-4c36-9d7e-6f1f2a3b4c5d",
				"my.reanarun":           "root6-fit.1",
				"request_cpus":          "1",
				"getenv":                "false",
				"environment":           `"HOME='/home/alice' LOGNAME='alice' PATH='/usr/local/bin:/usr/bin:/bin' USER='alice'"`,
				"should_transfer_files": "NO",
				"universe":              "vanilla",
				"my.reanaworkflow":      "9f0c1d2e-3a4b-4c5d-8e6f-7a8b9c0d1e2f",
			},
		},
		{
			name: "resources, flavour and accounting group",
			edit: func(s *batch.Spec, c *Config) {
				s.Hints.MemoryLimit = "2Gi"
				s.Hints.CPURequest = "1500m"
				s.Hints.HTCondorMaxRuntime = "longlunch"
				s.Hints.HTCondorAccountingGroup = "group_u_ATLAS.alice"
			},
			lines: []string{
				"request_memory = 2048",
				"request_cpus = 2",
				`+JobFlavour = "longlunch"`,
				"+MaxRuntime = 7200",
				"periodic_remove = (JobStatus == 2) && ((time() - EnteredCurrentStatus) > 7200)",
				"accounting_group = group_u_ATLAS.alice",
			},
			parsed: map[string]any{"my.maxruntime": 7200.0, "my.jobflavour": "longlunch", "request_memory": "2048"},
		},
		{
			name:   "runtime in plain seconds sets no flavour",
			edit:   func(s *batch.Spec, c *Config) { s.Hints.HTCondorMaxRuntime = "90" },
			lines:  []string{"+MaxRuntime = 90"},
			absent: []string{"JobFlavour"},
		},
		{
			name: "site defaults and extra commands",
			edit: func(s *batch.Spec, c *Config) {
				c.AccountingGroup = "group_reana"
				c.Requirements = `(OpSysAndVer == "AlmaLinux9")`
				c.ExtraCommands = []string{"should_transfer_files = NO", "+SiteTag = \"reana\""}
			},
			lines: []string{
				"accounting_group = group_reana",
				`requirements = (OpSysAndVer == "AlmaLinux9")`,
				"should_transfer_files = NO",
				`+SiteTag = "reana"`,
			},
			parsed: map[string]any{"my.sitetag": "reana", "should_transfer_files": "NO"},
		},
		{
			name: "quotes, backslashes, macros and hashes stay text",
			edit: func(s *batch.Spec, c *Config) {
				s.StepName = `say "hi" \ $(HOME) $ENV(HOME) # not a comment é`
				s.WorkflowName = `w$x.1`
			},
			lines: []string{
				`+ReanaStep = "say \"hi\" \\ $(DOLLAR)(HOME) $(DOLLAR)ENV(HOME) # not a comment é"`,
				`+ReanaRun = "w$(DOLLAR)x.1"`,
			},
			parsed: map[string]any{
				"my.reanastep": `say "hi" \ $(HOME) $ENV(HOME) # not a comment é`,
				"my.reanarun":  `w$x.1`,
			},
		},
		{
			name:   "dollar in a path is literal",
			edit:   func(s *batch.Spec, c *Config) { s.Workspace = "/scratch/$(Cluster)/w" },
			lines:  []string{"initialdir = /scratch/$(DOLLAR)(Cluster)/w"},
			parsed: map[string]any{"initialdir": "/scratch/$(Cluster)/w"},
		},
		{
			name: "newline in a step name cannot start a command",
			edit: func(s *batch.Spec, c *Config) { s.StepName = "x\"\nexecutable = /bin/evil\n+A = \"" },
			err:  "control character",
		},
		{
			name: "carriage return in a workflow name",
			edit: func(s *batch.Spec, c *Config) { s.WorkflowName = "w\r.1" },
			err:  "control character",
		},
		{
			name: "match-time substitution refused",
			edit: func(s *batch.Spec, c *Config) { s.StepName = "$$(Memory)" },
			err:  "match-time substitution",
		},
		{
			name: "trailing backslash in a path would continue the line",
			edit: func(s *batch.Spec, c *Config) { s.Workspace = `/w\` },
			err:  "backslash",
		},
		{
			name: "relative job directory",
			edit: func(s *batch.Spec, c *Config) { s.JobDir = "jobs/j1" },
			err:  "absolute",
		},
		{
			name: "unknown flavour",
			edit: func(s *batch.Spec, c *Config) { s.Hints.HTCondorMaxRuntime = "lunch" },
			err:  "htcondor_max_runtime",
		},
		{
			name: "bad memory",
			edit: func(s *batch.Spec, c *Config) { s.Hints.MemoryLimit = "lots" },
			err:  "kubernetes_memory_limit",
		},
		{
			name: "accounting group with a space",
			edit: func(s *batch.Spec, c *Config) { s.Hints.HTCondorAccountingGroup = "a b" },
			err:  "htcondor_accounting_group",
		},
		{
			name: "extra command may not move the event log",
			edit: func(s *batch.Spec, c *Config) { c.ExtraCommands = []string{"log = /tmp/x"} },
			err:  "set by reana-site",
		},
		{
			name: "extra command may not queue",
			edit: func(s *batch.Spec, c *Config) { c.ExtraCommands = []string{"queue 5"} },
			err:  "key = value",
		},
		{
			name: "extra command may not span lines",
			edit: func(s *batch.Spec, c *Config) { c.ExtraCommands = []string{"a = 1\nqueue 2"} },
			err:  "control character",
		},
		{
			name: "extra command may not set our attributes",
			edit: func(s *batch.Spec, c *Config) { c.ExtraCommands = []string{`MY.ReanaJob = "x"`} },
			err:  "set by reana-site",
		},
	}
}

func render(t *testing.T, tc submitCase) (string, error) {
	t.Helper()
	s, c := baseSpec(), Config{}
	if tc.edit != nil {
		tc.edit(&s, &c)
	}
	return SubmitDescription(s, c)
}

func TestSubmitDescription(t *testing.T) {
	for _, tc := range submitCases() {
		t.Run(tc.name, func(t *testing.T) {
			got, err := render(t, tc)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				return
			}
			require.NoError(t, err)
			lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
			for _, l := range tc.lines {
				assert.Contains(t, lines, l)
			}
			for _, a := range tc.absent {
				assert.NotContains(t, got, a)
			}
			assert.Equal(t, "queue 1", lines[len(lines)-1], "queue must come last")
			assert.Equal(t, 1, strings.Count(got, "queue"), "exactly one queue statement")
		})
	}
}

// condorPython is the virtualenv's Python when it can import HTCondor's
// bindings; tests that need them skip otherwise.
func condorPython(t *testing.T) string {
	t.Helper()
	py, err := filepath.Abs("../../.cache/venv/bin/python")
	require.NoError(t, err)
	if _, err := os.Stat(py); err != nil {
		t.Skip("no .cache/venv: run make setup to check against HTCondor's own parser")
	}
	if err := exec.Command(py, "-c", "import htcondor2, classad2").Run(); err != nil {
		t.Skip("htcondor2 bindings not importable in .cache/venv")
	}
	return py
}

// TestSubmitDescriptionWithHTCondor has HTCondor's own submit parser read
// every description and checks it reads back what we meant, in particular
// that quoted and escaped user text arrives unchanged.
func TestSubmitDescriptionWithHTCondor(t *testing.T) {
	py := condorPython(t)
	for _, tc := range submitCases() {
		if tc.err != "" {
			continue
		}
		t.Run(tc.name, func(t *testing.T) {
			text, err := render(t, tc)
			require.NoError(t, err)
			cmd := exec.Command(py, "testdata/check_submit.py")
			cmd.Stdin = strings.NewReader(text)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			require.NoError(t, err, "htcondor2 rejected:\n%s\n%s", text, stderr.String())
			var got map[string]any
			require.NoError(t, json.Unmarshal(out, &got))
			for k, want := range tc.parsed {
				assert.Equal(t, want, got[k], "%s", k)
			}
			// Whatever the case, the step's own text must come back intact.
			s, c := baseSpec(), Config{}
			if tc.edit != nil {
				tc.edit(&s, &c)
			}
			assert.Equal(t, s.StepName, got["my.reanastep"])
			assert.Equal(t, s.WorkflowName, got["my.reanarun"])
			assert.Equal(t, s.JobID, got["my.reanajob"])
			assert.Equal(t, filepath.Join(s.JobDir, "events.log"), got["log"])
		})
	}
}

func TestMaxRuntime(t *testing.T) {
	cases := []struct {
		in      string
		secs    int64
		flavour string
		err     bool
	}{
		{"espresso", 1200, "espresso", false},
		{"microcentury", 3600, "microcentury", false},
		{"longlunch", 7200, "longlunch", false},
		{"workday", 28800, "workday", false},
		{"tomorrow", 86400, "tomorrow", false},
		{"testmatch", 259200, "testmatch", false},
		{"nextweek", 604800, "nextweek", false},
		{"Workday", 28800, "workday", false},
		{"3600", 3600, "", false},
		{"0", 0, "", true},
		{"-5", 0, "", true},
		{"1h", 0, "", true},
		{"", 0, "", true},
	}
	for _, tc := range cases {
		t.Run(tc.in, func(t *testing.T) {
			secs, flavour, err := MaxRuntime(tc.in)
			if tc.err {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.secs, secs)
			assert.Equal(t, tc.flavour, flavour)
		})
	}
}

func TestMemoryMBAndCPUs(t *testing.T) {
	mem := []struct {
		in   string
		want int64
		err  bool
	}{
		{"512Mi", 512, false}, {"2Gi", 2048, false}, {"1G", 954, false}, {"300M", 287, false},
		{"1", 1, false}, {"1.5Gi", 1536, false}, {"0", 0, true}, {"x", 0, true}, {"", 0, true},
	}
	for _, tc := range mem {
		t.Run("mem "+tc.in, func(t *testing.T) {
			got, err := batch.MemoryMB(tc.in)
			if tc.err {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	cpu := []struct {
		in   string
		want int64
		err  bool
	}{
		{"1", 1, false}, {"2.5", 3, false}, {"500m", 1, false}, {"4000m", 4, false},
		{"0", 0, true}, {"-1", 0, true}, {"m", 0, true}, {"NaN", 0, true},
	}
	for _, tc := range cpu {
		t.Run("cpu "+tc.in, func(t *testing.T) {
			got, err := CPUs(tc.in)
			if tc.err {
				assert.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

func TestSiteTransferSettingWins(t *testing.T) {
	for _, extra := range []string{"should_transfer_files = IF_NEEDED", "+ShouldTransferFiles = \"YES\"", "MY.ShouldTransferFiles = \"YES\""} {
		d, err := SubmitDescription(baseSpec(), Config{ExtraCommands: []string{extra}})
		require.NoError(t, err)
		assert.NotContains(t, d, "should_transfer_files = NO", extra)
		assert.Contains(t, d, extra)
	}
}
