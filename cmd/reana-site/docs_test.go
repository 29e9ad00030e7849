package main

import (
	"go/ast"
	"go/parser"
	gotoken "go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/daemon/config"
)

// repoRoot is the module root, seen from this package's directory, where
// go test runs.
const repoRoot = "../.."

// referenceDoc holds the full table of variables.
const referenceDoc = "docs/configuration.md"

// The documents a site reads are checked against what the code reads: the
// REANA_SITE_ variables of config.Config's envconfig tags and the commands
// that run dispatches. The RPM installs the sysconfig template and the man
// page byte for byte (test/e2e/rpm_test.go), so what holds here holds for
// the installed files.
func TestDocsMatchCode(t *testing.T) {
	vars := configVariables(t)
	cmds := usageCommands(t)

	t.Run("Usage", func(t *testing.T) { checkUsage(t, usage, vars, cmds, dispatchedCommands(t)) })
	t.Run("Sysconfig", func(t *testing.T) {
		checkSysconfig(t, readRepoFile(t, "packaging/reana-site.sysconfig"), vars)
	})
	t.Run("ManPage", func(t *testing.T) {
		checkManPage(t, readRepoFile(t, "packaging/reana-site.8"), vars, append(cmds, dispatchedCommands(t)...))
	})
	t.Run("Reference", func(t *testing.T) { checkReference(t, readRepoFile(t, referenceDoc), vars) })
	t.Run("Links", func(t *testing.T) {
		docs, err := filepath.Glob(filepath.Join(repoRoot, "docs", "*.md"))
		require.NoError(t, err)
		for _, path := range append([]string{"README.md"}, relPaths(t, docs)...) {
			checkLinks(t, path, readRepoFile(t, path))
		}
	})
}

func relPaths(t *testing.T, paths []string) []string {
	t.Helper()
	var rel []string
	for _, p := range paths {
		r, err := filepath.Rel(repoRoot, p)
		require.NoError(t, err)
		rel = append(rel, filepath.ToSlash(r))
	}
	return rel
}

// checkLinks: every relative Markdown link of the document at path (from
// the module root) names a file of the tree, and its #anchor, if any, a
// heading of that file, as GitHub makes anchors from headings.
func checkLinks(t *testing.T, path, md string) {
	link := regexp.MustCompile(`\]\(([^)\s]+)\)`)
	for _, m := range link.FindAllStringSubmatch(md, -1) {
		target, anchor, _ := strings.Cut(m[1], "#")
		if strings.Contains(target, "://") || strings.HasPrefix(target, "mailto:") {
			continue
		}
		file := path
		if target != "" {
			file = filepath.ToSlash(filepath.Join(filepath.Dir(path), target))
		}
		b, err := os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(file)))
		if !assert.NoError(t, err, "%s links to %s", path, m[1]) || anchor == "" {
			continue
		}
		var anchors []string
		for _, l := range strings.Split(string(b), "\n") {
			if h, ok := strings.CutPrefix(strings.TrimLeft(l, "#"), " "); ok && strings.HasPrefix(l, "#") {
				anchors = append(anchors, headingAnchor(h))
			}
		}
		assert.Contains(t, anchors, anchor, "%s links to %s, which has no such heading", path, m[1])
	}
}

// headingAnchor is the anchor GitHub gives a Markdown heading: lower case,
// spaces to dashes, punctuation but dashes and underscores dropped.
func headingAnchor(h string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(strings.TrimSpace(h)) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r):
			b.WriteRune(r)
		}
	}
	return b.String()
}

func readRepoFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(path)))
	require.NoError(t, err)
	return string(b)
}

// internalVariables are set by the daemon for itself when it re-executes;
// the man page names them as such, the other documents not at all.
var internalVariables = []string{listenFDEnv, config.Prefix + "_PRIVSEP"}

// configVar is one REANA_SITE_ variable as config.Config declares it.
type configVar struct {
	name, def  string
	hasDefault bool
	typ        reflect.Type
}

// configVariables reads the envconfig tags of config.Config, which are
// what the daemon reads.
func configVariables(t *testing.T) []configVar {
	t.Helper()
	var vars []configVar
	typ := reflect.TypeFor[config.Config]()
	for i := range typ.NumField() {
		f := typ.Field(i)
		name, ok := f.Tag.Lookup("envconfig")
		if !ok {
			continue
		}
		def, hasDefault := f.Tag.Lookup("default")
		vars = append(vars, configVar{
			name: config.Prefix + "_" + name, def: def, hasDefault: hasDefault, typ: f.Type,
		})
	}
	require.GreaterOrEqual(t, len(vars), 20, "config.Config's envconfig tags")
	return vars
}

// defaultText is what the daemon uses when the variable is not set, as the
// sysconfig template writes it.
func (v configVar) defaultText() string {
	switch {
	case v.hasDefault:
		return v.def
	case v.name == config.Prefix+"_STATE_DIR":
		return config.RootStateDir // as root, like the service
	case v.typ == reflect.TypeFor[time.Duration]():
		return "0s"
	case v.typ.Kind() == reflect.Bool:
		return "false"
	case v.typ.Kind() >= reflect.Int && v.typ.Kind() <= reflect.Uint64:
		return "0"
	}
	return ""
}

// sameDefault: text, as a document writes the default, is v's; a duration
// may be written in any form Go parses ("0" for "0s").
func (v configVar) sameDefault(text string) bool {
	want := v.defaultText()
	if text == want {
		return true
	}
	if v.typ != reflect.TypeFor[time.Duration]() {
		return false
	}
	a, errA := time.ParseDuration(text)
	b, errB := time.ParseDuration(want)
	return errA == nil && errB == nil && a == b
}

// declaredNames are the variables the daemon reads, plus extra.
func declaredNames(vars []configVar, extra ...string) map[string]bool {
	declared := map[string]bool{}
	for _, v := range vars {
		declared[v.name] = true
	}
	for _, name := range extra {
		declared[name] = true
	}
	return declared
}

var variableName = regexp.MustCompile(`REANA_SITE_[A-Z0-9_]*[A-Z0-9]`)

// usageCommands are the commands that the usage text lists, such as
// "admin user add" and "token".
func usageCommands(t *testing.T) []string {
	t.Helper()
	var cmds []string
	for _, l := range strings.Split(usage, "\n") {
		rest, ok := strings.CutPrefix(l, "  reana-site ")
		if !ok {
			continue
		}
		rest, _, _ = strings.Cut(rest, "  ") // the description column
		var words []string
		for _, w := range strings.Fields(rest) {
			if strings.ContainsAny(w[:1], "[-") || strings.ToUpper(w) == w {
				break
			}
			words = append(words, w)
		}
		cmds = append(cmds, strings.Join(words, " "))
	}
	require.Contains(t, cmds, "serve")
	return cmds
}

// dispatchedCommands are the first arguments that run in main.go acts on,
// such as "serve", "worker" and "help"; not the aliases that begin with a
// dash ("--version", "-h").
func dispatchedCommands(t *testing.T) []string {
	t.Helper()
	f, err := parser.ParseFile(gotoken.NewFileSet(), "main.go", nil, 0)
	require.NoError(t, err)
	var cmds []string
	for _, d := range f.Decls {
		fn, ok := d.(*ast.FuncDecl)
		if !ok || fn.Name.Name != "run" {
			continue
		}
		ast.Inspect(fn.Body, func(n ast.Node) bool {
			cc, ok := n.(*ast.CaseClause)
			if !ok {
				return true
			}
			for _, e := range cc.List {
				lit, ok := e.(*ast.BasicLit)
				if !ok || lit.Kind != gotoken.STRING {
					continue
				}
				s, err := strconv.Unquote(lit.Value)
				require.NoError(t, err)
				if !strings.HasPrefix(s, "-") {
					cmds = append(cmds, s)
				}
			}
			return true
		})
	}
	require.Contains(t, cmds, "serve", "the commands of run in main.go")
	return cmds
}

// checkUsage: the usage text lists every command that run dispatches but
// the internal worker and help (which prints it), and no other; every
// variable it names is one the daemon reads, and a default it gives, as
// "(default VALUE)" after one variable, is the daemon's. It names the
// most used variables only, and points to the man page for the rest.
func checkUsage(t *testing.T, text string, vars []configVar, listed, dispatched []string) {
	top := map[string]bool{}
	for _, c := range listed {
		first, _, _ := strings.Cut(c, " ")
		top[first] = true
		assert.Contains(t, dispatched, first, "the usage text lists %q, which run does not dispatch", c)
	}
	for _, c := range dispatched {
		if c != "worker" && c != "help" {
			assert.True(t, top[c], "the usage text does not list %q", c)
		}
	}

	declared := declaredNames(vars)
	byName := map[string]configVar{}
	for _, v := range vars {
		byName[v.name] = v
	}
	defaultOf := regexp.MustCompile(`\(default ([^\s)]+)\)`)
	var current []string // the variables of the entry being read
	named := 0
	for _, l := range strings.Split(text, "\n") {
		if strings.HasPrefix(l, "  REANA_SITE_") {
			head, _, _ := strings.Cut(strings.TrimSpace(l), "  ")
			current = variableName.FindAllString(head, -1)
		} else if !strings.HasPrefix(l, "    ") {
			current = nil
		}
		for _, name := range variableName.FindAllString(l, -1) {
			named++
			assert.True(t, declared[name], "the usage text names %s, which daemon/config does not read", name)
		}
		for _, m := range defaultOf.FindAllStringSubmatch(l, -1) {
			if !assert.Len(t, current, 1, "%q: a default, but not of one variable", l) {
				continue
			}
			v, ok := byName[current[0]]
			if !ok {
				continue // reported above
			}
			assert.True(t, v.sameDefault(m[1]), "the usage text gives %s the default %q; the daemon's is %q", v.name, m[1], v.defaultText())
		}
	}
	assert.Positive(t, named, "the usage text names the variables a site sets first")
	assert.Contains(t, text, "man 8 reana-site", "the usage text points to the man page for the rest")
}

// checkSysconfig: every variable is there once, commented out with the
// daemon's default and preceded by a comment that explains it, and the
// template names no variable that the daemon does not read.
func checkSysconfig(t *testing.T, text string, vars []configVar) {
	lines := strings.Split(text, "\n")
	assign := regexp.MustCompile(`^#?\s*(REANA_SITE_[A-Z0-9_]+)=(.*)$`)
	seen := map[string][]int{}
	values := map[string]string{}
	for i, l := range lines {
		if m := assign.FindStringSubmatch(l); m != nil {
			assert.True(t, strings.HasPrefix(l, "#REANA_SITE_"), "line %d is not commented out: %s", i+1, l)
			seen[m[1]] = append(seen[m[1]], i)
			values[m[1]] = m[2]
		}
	}
	for _, v := range vars {
		at, ok := seen[v.name]
		if !assert.True(t, ok, "the sysconfig template lacks %s", v.name) {
			continue
		}
		assert.Len(t, at, 1, "%s appears more than once", v.name)
		assert.Equal(t, v.defaultText(), values[v.name], "%s: the default in the template", v.name)
		i := at[0]
		for i > 0 && assign.MatchString(lines[i-1]) { // a group such as TLS_CERT, TLS_KEY
			i--
		}
		assert.True(t, i > 0 && strings.HasPrefix(lines[i-1], "# "), "%s has no comment that explains it", v.name)
	}
	declared := declaredNames(vars)
	for name := range seen {
		assert.True(t, declared[name], "the sysconfig template sets %s, which daemon/config does not read", name)
	}
}

// checkManPage: each command heads an entry of COMMANDS, and each variable
// one of ENVIRONMENT, and ENVIRONMENT names no variable that the daemon
// does not read (but the internal ones).
func checkManPage(t *testing.T, roff string, vars []configVar, cmds []string) {
	sections := map[string][]string{}
	var cur string
	lines := strings.Split(roff, "\n")
	for i, l := range lines {
		if s, ok := strings.CutPrefix(l, ".SH "); ok {
			cur = strings.Trim(s, `"`)
			continue
		}
		if i > 0 && lines[i-1] == ".TP" {
			sections[cur] = append(sections[cur], plainRoff(l))
		}
	}
	for _, c := range cmds {
		found := false
		for _, tag := range sections["COMMANDS"] {
			if tag == c || strings.HasPrefix(tag, c+" ") || strings.HasPrefix(tag, c+",") {
				found = true
			}
		}
		assert.True(t, found, "reana-site(8) has no COMMANDS entry for %q (entries: %q)", c, sections["COMMANDS"])
	}
	tags := map[string]bool{}
	for _, tag := range sections["ENVIRONMENT"] {
		for _, name := range regexp.MustCompile(`[\s,]+`).Split(tag, -1) {
			tags[name] = true
		}
	}
	for _, v := range vars {
		assert.True(t, tags[v.name], "reana-site(8) has no ENVIRONMENT entry for %s", v.name)
	}
	declared := declaredNames(vars, internalVariables...)
	for name := range tags {
		assert.True(t, declared[name], "reana-site(8) documents %s, which daemon/config does not read", name)
	}
}

// plainRoff is the text of one line of roff, without its macro, font
// changes and quotes.
func plainRoff(l string) string {
	if strings.HasPrefix(l, ".") {
		_, l, _ = strings.Cut(l, " ")
	}
	l = regexp.MustCompile(`\\f[A-Z]`).ReplaceAllString(l, "")
	l = strings.NewReplacer(`\-`, "-", `"`, "").Replace(l)
	return strings.Join(strings.Fields(l), " ")
}

// checkReference: the Markdown table of variables (rows whose first cell
// names them, as `REANA_SITE_X`) has each variable in exactly one row,
// with the daemon's default as the first code span of the second cell, or
// "*(empty" when the default is empty; it names no variable the daemon
// does not read; and the text says which variables are internal.
func checkReference(t *testing.T, md string, vars []configVar) {
	rows := map[string][]string{} // name -> default cells
	code := regexp.MustCompile("`([^`]*)`")
	for _, l := range strings.Split(md, "\n") {
		if !strings.HasPrefix(l, "| `REANA_SITE_") {
			continue
		}
		cells := strings.Split(strings.Trim(l, "|"), " | ")
		if !assert.Len(t, cells, 3, "a row of the variables table: %s", l) {
			continue
		}
		for _, m := range code.FindAllStringSubmatch(cells[0], -1) {
			rows[m[1]] = append(rows[m[1]], strings.TrimSpace(cells[1]))
		}
	}
	for _, v := range vars {
		cells := rows[v.name]
		if !assert.Len(t, cells, 1, "%s: rows of the variables table in %s", v.name, referenceDoc) {
			continue
		}
		if v.defaultText() == "" {
			assert.True(t, strings.HasPrefix(cells[0], "*(empty"), "%s: the default in %s is %q; the daemon's is empty", v.name, referenceDoc, cells[0])
			continue
		}
		m := code.FindStringSubmatch(cells[0])
		assert.True(t, m != nil && v.sameDefault(m[1]), "%s: the default in %s is %q; the daemon's is %q", v.name, referenceDoc, cells[0], v.defaultText())
	}
	declared := declaredNames(vars)
	for name := range rows {
		assert.True(t, declared[name], "%s documents %s, which daemon/config does not read", referenceDoc, name)
	}
	for _, name := range internalVariables {
		assert.Contains(t, md, "`"+name+"`", "%s says that %s is internal", referenceDoc, name)
	}
}
