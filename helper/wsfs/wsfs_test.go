package wsfs

import (
	"archive/zip"
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

const secret = "SECRET outside the workspace"

// fixture is a workspace holding ordinary files and links that point out
// of it, next to an outside directory whose contents must never be read,
// written or removed through the workspace.
type fixture struct {
	ws, outside string
	w           *FS
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	outside := t.TempDir()
	writeFile(t, filepath.Join(outside, "secret"), secret)
	ws := filepath.Join(t.TempDir(), "ws")
	require.NoError(t, Create(ws))
	for name, content := range map[string]string{
		"f.txt":          "hello",
		".hidden":        "h",
		"etc/passwd":     "inside",
		"data/a.csv":     "1,2",
		"data/sub/b.csv": "3",
	} {
		writeFile(t, filepath.Join(ws, name), content)
	}
	for name, target := range map[string]string{
		"evil":  outside,
		"p":     filepath.Join(outside, "secret"),
		"etcln": "/etc",
		"etcpw": "/etc/passwd",
	} {
		require.NoError(t, os.Symlink(target, filepath.Join(ws, name)))
	}
	w, err := Open(ws)
	require.NoError(t, err)
	t.Cleanup(func() { w.Close() })
	return fixture{ws: ws, outside: outside, w: w}
}

// assertOutsideIntact checks that nothing outside the workspace changed.
func (fx fixture) assertOutsideIntact(t *testing.T) {
	t.Helper()
	got, err := os.ReadFile(filepath.Join(fx.outside, "secret"))
	require.NoError(t, err)
	assert.Equal(t, secret, string(got))
	names, err := os.ReadDir(fx.outside)
	require.NoError(t, err)
	assert.Len(t, names, 1, "something was created outside the workspace")
}

func writeFile(t *testing.T, name, content string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(name), 0o700))
	require.NoError(t, os.WriteFile(name, []byte(content), 0o600))
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	require.NoError(t, err)
	return string(b)
}

func assertMode(t *testing.T, name string, want fs.FileMode) {
	t.Helper()
	fi, err := os.Lstat(name)
	require.NoError(t, err)
	assert.Equal(t, want, fi.Mode().Perm(), name)
}

func assertIsLink(t *testing.T, name string) {
	t.Helper()
	fi, err := os.Lstat(name)
	require.NoError(t, err)
	assert.Equal(t, fs.ModeSymlink, fi.Mode().Type(), name)
}

func TestCleanPath(t *testing.T) {
	tests := []struct {
		in, want string
		err      error
	}{
		{in: "a.txt", want: "a.txt"},
		{in: "/code/hello.py", want: "code/hello.py"},
		{in: "/etc/passwd", want: "etc/passwd"},
		{in: "./a//b/./c/", want: "a/b/c"},
		{in: "..a/b..", want: "..a/b.."},
		{in: "../x", err: ErrBadPath},
		{in: "a/../../x", err: ErrBadPath},
		{in: "a/..", err: ErrBadPath},
		{in: "a\x00b", err: ErrBadPath},
		{in: `a\b`, err: ErrBadPath},
		{in: `..\x`, err: ErrBadPath},
		{in: "", err: ErrBadPath},
		{in: "/", err: ErrBadPath},
		{in: "./.", err: ErrBadPath},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := cleanPath(tt.in)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				assert.Contains(t, err.Error(), fmt.Sprintf("%q", tt.in), "the message names the path")
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestPatternMatch(t *testing.T) {
	tests := []struct {
		pattern, rel string
		want         bool
	}{
		{"*.txt", "a.txt", true},
		{"*.txt", "d/a.txt", false},
		{"*", ".hidden", true},
		{"d/*", "d/x", true},
		{"d/*", "d/x/y", false},
		{"**/*.txt", "a.txt", true},
		{"**/*.txt", "d/e/a.txt", true},
		{"d/**", "d", true},
		{"d/**", "d/e/f", true},
		{"d/**", "dd/e", false},
		{"**", "anything/at/all", true},
		{"d/**/x", "d/x", true},
		{"d/**/x", "d/a/b/x", true},
		{"a?c", "abc", true},
		{"a?c", "a/c", false},
		{"[a-c]x", "bx", true},
		{"[!a-c]x", "bx", false},
		{"[^a-c]x", "dx", true},
		{"[]]x", "]x", true},
		{"a[", "a[", true},
		{"a[b", "ab", false},
		{"é*", "été", true},
		{"*a*b*c", "xxaxxbxxc", true},
		{"*a*b*c", "xxaxxcxxb", false},
		{"data", "data", true},
		{"data", "data/x", false},
	}
	for _, tt := range tests {
		t.Run(tt.pattern+" "+tt.rel, func(t *testing.T) {
			p, err := compilePattern(tt.pattern)
			require.NoError(t, err)
			assert.Equal(t, tt.want, p.match(tt.rel))
		})
	}
}

func TestOpen(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "file"), "x")
	require.NoError(t, os.Symlink(dir, filepath.Join(dir, "link")))
	tests := []struct {
		name, path string
		err        error
	}{
		{"directory", dir, nil},
		{"missing", filepath.Join(dir, "missing"), ErrNotFound},
		{"file", filepath.Join(dir, "file"), ErrNotFound},
		{"symlink", filepath.Join(dir, "link"), ErrEscape},
		{"empty", "", ErrBadPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := Open(tt.path)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				if tt.err == ErrNotFound {
					assert.ErrorIs(t, err, os.ErrNotExist)
				}
				return
			}
			require.NoError(t, err)
			require.NoError(t, w.Close())
			require.NoError(t, w.Close(), "Close twice")
		})
	}
}

func TestCreate(t *testing.T) {
	base := t.TempDir()
	require.NoError(t, os.Symlink(t.TempDir(), filepath.Join(base, "link")))
	tests := []struct {
		name, path string
		created    []string // must exist with mode 0700 afterwards
		err        error
	}{
		{name: "with parents", path: filepath.Join(base, "a/b/ws"), created: []string{"a", "a/b", "a/b/ws"}},
		{name: "existing", path: filepath.Join(base, "a/b/ws"), created: []string{"a/b/ws"}},
		{name: "under an existing link", path: filepath.Join(base, "link/ws"), created: []string{"link/ws"}},
		{name: "is a link", path: filepath.Join(base, "link"), err: ErrEscape},
		{name: "relative", path: "rel/ws", err: ErrBadPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Create(tt.path)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			for _, c := range tt.created {
				assertMode(t, filepath.Join(base, c), 0o700)
			}
		})
	}
}

func TestCreateOwnedByAnother(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a directory away")
	}
	dir := filepath.Join(t.TempDir(), "ws")
	require.NoError(t, os.Mkdir(dir, 0o700))
	require.NoError(t, os.Chown(dir, 65534, 65534))
	require.ErrorIs(t, Create(dir), fs.ErrPermission)
}

func TestOpenRead(t *testing.T) {
	fx := newFixture(t)
	require.NoError(t, unix.Mkfifo(filepath.Join(fx.ws, "fifo"), 0o600))
	tests := []struct {
		rel, want string
		dir       bool
		err       error
	}{
		{rel: "f.txt", want: "hello"},
		{rel: "/f.txt", want: "hello"},
		{rel: "/etc/passwd", want: "inside"},
		{rel: "data/sub/b.csv", want: "3"},
		{rel: "data/", dir: true},
		{rel: "../x", err: ErrBadPath},
		{rel: "a/../../x", err: ErrBadPath},
		{rel: "data/../f.txt", err: ErrBadPath},
		{rel: "f.txt\x00", err: ErrBadPath},
		{rel: `data\a.csv`, err: ErrBadPath},
		{rel: "/", err: ErrBadPath},
		{rel: "fifo", err: ErrBadPath},
		{rel: "evil", err: ErrEscape},
		{rel: "evil/secret", err: ErrEscape},
		{rel: "p", err: ErrEscape},
		{rel: "etcln/passwd", err: ErrEscape},
		{rel: "etcpw", err: ErrEscape},
		{rel: "missing", err: ErrNotFound},
		{rel: "f.txt/x", err: ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.rel, func(t *testing.T) {
			f, fi, err := fx.w.OpenRead(tt.rel)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			defer f.Close()
			assert.Equal(t, tt.dir, fi.IsDir())
			if !tt.dir {
				b, err := io.ReadAll(f)
				require.NoError(t, err)
				assert.Equal(t, tt.want, string(b))
			}
		})
	}
}

func TestCreateTemp(t *testing.T) {
	tests := []struct {
		name, rel string
		commit    bool
		file      string   // where the content must land ("" for nowhere)
		newDirs   []string // must have been made with mode 0700
		link      string   // must still be a link
		replaced  int64    // the size commit reports for what it replaced
		err       error
	}{
		{name: "commit", rel: "up.txt", commit: true, file: "up.txt"},
		{name: "leading slash and parents", rel: "/new/dir/up.txt", commit: true, file: "new/dir/up.txt", newDirs: []string{"new", "new/dir"}},
		{name: "replace a file", rel: "f.txt", commit: true, file: "f.txt", replaced: 5},
		{name: "replace a link, not its target", rel: "p", commit: true, file: "p"},
		{name: "abort", rel: "up.txt"},
		{name: "abort keeps the old file", rel: "f.txt", file: "f.txt"},
		{name: "through a link to a directory", rel: "evil/x", err: ErrEscape, link: "evil"},
		{name: "through a link to /etc", rel: "etcln/x", err: ErrEscape, link: "etcln"},
		{name: "onto a directory", rel: "data", err: ErrBadPath},
		{name: "under a file", rel: "f.txt/x", err: ErrNotFound},
		{name: "traversal", rel: "../x", err: ErrBadPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFixture(t)
			f, commit, abort, err := fx.w.CreateTemp(tt.rel)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
			} else {
				require.NoError(t, err)
				fi, err := f.Stat()
				require.NoError(t, err)
				assert.Equal(t, fs.FileMode(0o600), fi.Mode().Perm())
				_, err = f.WriteString("uploaded")
				require.NoError(t, err)
				require.NoError(t, f.Close())
				if tt.commit {
					replaced, err := commit()
					require.NoError(t, err)
					assert.Equal(t, tt.replaced, replaced, "size of the replaced file")
					abort() // a no-op once committed
				} else {
					abort()
					_, err := commit()
					require.Error(t, err, "commit after abort")
				}
			}
			if tt.file != "" {
				want := map[bool]string{true: "uploaded", false: "hello"}[tt.commit]
				assert.Equal(t, want, readFile(t, filepath.Join(fx.ws, tt.file)))
				assertMode(t, filepath.Join(fx.ws, tt.file), 0o600)
			} else if tt.err == nil {
				assert.NoFileExists(t, filepath.Join(fx.ws, tt.rel))
			}
			for _, d := range tt.newDirs {
				assertMode(t, filepath.Join(fx.ws, d), 0o700)
			}
			if tt.link != "" {
				assertIsLink(t, filepath.Join(fx.ws, tt.link))
			}
			var leftovers []string
			for _, glob := range []string{"", "*", "*/*"} {
				found, _ := filepath.Glob(filepath.Join(fx.ws, glob, tempPrefix+"*"))
				leftovers = append(leftovers, found...)
			}
			assert.Empty(t, leftovers, "temporary files left behind")
			fx.assertOutsideIntact(t)
		})
	}
}

func TestList(t *testing.T) {
	all := []string{".hidden", "data/a.csv", "data/sub/b.csv", "etc/passwd", "etcln", "etcpw", "evil", "f.txt", "p"}
	tests := []struct {
		name    string
		pattern string
		search  map[string][]string
		want    []string
		err     error
	}{
		{name: "everything, links as files", want: all},
		{name: "root pattern", pattern: "/", want: all},
		{name: "directory", pattern: "data", want: []string{"data/a.csv", "data/sub", "data/sub/b.csv"}},
		{name: "glob", pattern: "*.txt", want: []string{"f.txt"}},
		{name: "globstar", pattern: "**/*.csv", want: []string{"data/a.csv", "data/sub/b.csv"}},
		{name: "glob with dirs", pattern: "data/*", want: []string{"data/a.csv", "data/sub"}},
		{name: "plain file", pattern: "/f.txt", want: []string{"f.txt"}},
		{name: "link itself", pattern: "evil", want: []string{"evil"}},
		{name: "no descent into a link", pattern: "evil/*", want: nil},
		{name: "missing", pattern: "nothing", want: nil},
		{name: "through a link", pattern: "evil/secret", err: ErrEscape},
		{name: "traversal", pattern: "../*", err: ErrBadPath},
		{name: "name filter ignores case", search: map[string][]string{"name": {"CSV"}}, want: []string{"data/a.csv", "data/sub/b.csv"}},
		{name: "every value must match", search: map[string][]string{"name": {"data", "b."}}, want: []string{"data/sub/b.csv"}},
		{name: "every field must match", search: map[string][]string{"name": {"t"}, "size": {"5"}}, want: []string{"f.txt"}},
		{name: "pattern and filter", pattern: "data", search: map[string][]string{"name": {"sub"}}, want: []string{"data/sub", "data/sub/b.csv"}},
		{name: "unknown field", search: map[string][]string{"owner": {"x"}}, err: ErrBadPath},
	}
	fx := newFixture(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es, err := fx.w.List(tt.pattern, tt.search)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			var names []string
			for _, e := range es {
				names = append(names, e.Name)
				assert.Equal(t, e.Name == "data/sub", e.IsDir, e.Name)
			}
			assert.Equal(t, tt.want, names)
		})
	}
	t.Run("sizes and times", func(t *testing.T) {
		es, err := fx.w.List("f.txt", nil)
		require.NoError(t, err)
		require.Len(t, es, 1)
		fi, err := os.Stat(filepath.Join(fx.ws, "f.txt"))
		require.NoError(t, err)
		assert.Equal(t, int64(5), es[0].Size)
		assert.True(t, fi.ModTime().Equal(es[0].ModTime))
		es, err = fx.w.List("", map[string][]string{"last-modified": {fi.ModTime().Format("2006-01-02T15:04")}, "name": {"f.txt"}})
		require.NoError(t, err)
		assert.Len(t, es, 1)
	})
}

func TestGlob(t *testing.T) {
	tests := []struct {
		pattern string
		want    []string
		err     error
	}{
		{pattern: "*", want: []string{".hidden", "data", "etc", "etcln", "etcpw", "evil", "f.txt", "p"}},
		{pattern: "data/**", want: []string{"data", "data/a.csv", "data/sub", "data/sub/b.csv"}},
		{pattern: "/data/*.csv", want: []string{"data/a.csv"}},
		{pattern: "data", want: []string{"data"}},
		{pattern: "e*/*", want: []string{"etc/passwd"}},
		{pattern: "none*", want: nil},
		{pattern: "", err: ErrBadPath},
		{pattern: "../*", err: ErrBadPath},
	}
	fx := newFixture(t)
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			got, err := fx.w.Glob(tt.pattern)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestDelete(t *testing.T) {
	tests := []struct {
		name    string
		pattern string
		deleted []string
		gone    []string // paths that must no longer exist
		kept    []string // paths that must still exist
		err     error
	}{
		{name: "link to a directory", pattern: "evil", deleted: []string{"evil"}, gone: []string{"evil"}},
		{name: "link to a file", pattern: "/p", deleted: []string{"p"}, gone: []string{"p"}},
		{name: "link to /etc", pattern: "etcln", deleted: []string{"etcln"}},
		{name: "through a link", pattern: "evil/secret", err: ErrEscape, kept: []string{"evil"}},
		{name: "glob through a link", pattern: "evil/*", kept: []string{"evil"}},
		{name: "file", pattern: "f.txt", deleted: []string{"f.txt"}, kept: []string{"data/a.csv"}},
		{name: "glob", pattern: "*.txt", deleted: []string{"f.txt"}},
		{
			name: "directory tree", pattern: "data",
			deleted: []string{"data", "data/a.csv", "data/sub", "data/sub/b.csv"}, gone: []string{"data"},
		},
		{name: "globstar", pattern: "**/*.csv", deleted: []string{"data/a.csv", "data/sub/b.csv"}, kept: []string{"data/sub"}},
		{
			name: "everything", pattern: "*",
			deleted: []string{".hidden", "data", "data/a.csv", "data/sub", "data/sub/b.csv", "etc", "etc/passwd", "etcln", "etcpw", "evil", "f.txt", "p"},
		},
		{name: "no match", pattern: "nothing*"},
		{name: "traversal", pattern: "../*", err: ErrBadPath},
		{name: "NUL", pattern: "f\x00", err: ErrBadPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFixture(t)
			deleted, failed, err := fx.w.Delete(tt.pattern)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
			} else {
				require.NoError(t, err)
				assert.Empty(t, failed)
				var names []string
				for name := range deleted {
					names = append(names, name)
				}
				slices.Sort(names)
				assert.Equal(t, tt.deleted, names)
				for _, name := range names {
					assert.NoFileExists(t, filepath.Join(fx.ws, name))
				}
			}
			for _, name := range tt.gone {
				_, err := os.Lstat(filepath.Join(fx.ws, name))
				assert.ErrorIs(t, err, os.ErrNotExist, name)
			}
			for _, name := range tt.kept {
				_, err := os.Lstat(filepath.Join(fx.ws, name))
				assert.NoError(t, err, name)
			}
			fx.assertOutsideIntact(t)
			assert.FileExists(t, "/etc/passwd")
		})
	}
	t.Run("sizes", func(t *testing.T) {
		fx := newFixture(t)
		deleted, _, err := fx.w.Delete("f.txt")
		require.NoError(t, err)
		assert.Equal(t, map[string]int64{"f.txt": 5}, deleted)
	})
}

func TestDeleteReadOnlyDirectory(t *testing.T) {
	fx := newFixture(t)
	writeFile(t, filepath.Join(fx.ws, "ro/sub/x"), "x")
	for _, d := range []string{"ro/sub", "ro"} {
		require.NoError(t, os.Chmod(filepath.Join(fx.ws, d), 0o500))
	}
	deleted, failed, err := fx.w.Delete("ro")
	require.NoError(t, err)
	assert.Empty(t, failed)
	assert.Len(t, deleted, 3)
	assert.NoDirExists(t, filepath.Join(fx.ws, "ro"))
}

func TestMove(t *testing.T) {
	tests := []struct {
		name, src, dst string
		want           string // where f.txt's content must be afterwards
		link           string // must be a link afterwards
		err            error
	}{
		{name: "rename", src: "f.txt", dst: "g.txt", want: "g.txt"},
		{name: "into a directory", src: "/f.txt", dst: "/data", want: "data/f.txt"},
		{name: "missing parents", src: "f.txt", dst: "new/dir/g.txt", want: "new/dir/g.txt"},
		{name: "same place", src: "data/a.csv", dst: "data"},
		{name: "a link moves itself", src: "p", dst: "q", link: "q"},
		{name: "into a linked directory", src: "f.txt", dst: "evil/x", err: ErrEscape, link: "evil"},
		{name: "onto a link", src: "f.txt", dst: "evil", err: os.ErrExist, link: "evil"},
		{name: "onto a file", src: "f.txt", dst: "etc/passwd", err: os.ErrExist},
		{name: "out of a linked directory", src: "evil/secret", dst: "stolen", err: ErrEscape},
		{name: "missing source", src: "missing", dst: "x", err: ErrNotFound},
		{name: "into itself", src: "data", dst: "data/sub", err: ErrBadPath},
		{name: "traversal", src: "f.txt", dst: "../x", err: ErrBadPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fx := newFixture(t)
			err := fx.w.Move(tt.src, tt.dst)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				assert.Equal(t, "hello", readFile(t, filepath.Join(fx.ws, "f.txt")))
				assert.Equal(t, "inside", readFile(t, filepath.Join(fx.ws, "etc/passwd")))
			} else {
				require.NoError(t, err)
			}
			if tt.want != "" {
				assert.Equal(t, "hello", readFile(t, filepath.Join(fx.ws, tt.want)))
				assert.NoFileExists(t, filepath.Join(fx.ws, "f.txt"))
			}
			if tt.link != "" {
				assertIsLink(t, filepath.Join(fx.ws, tt.link))
			}
			fx.assertOutsideIntact(t)
		})
	}
}

func TestWriteZip(t *testing.T) {
	tests := []struct {
		name  string
		paths []string
		want  map[string]string // entry name -> content ("" for directories)
		err   error
	}{
		{
			name:  "files, directories and links",
			paths: []string{"data", "/f.txt", "evil", "p", "etcln", "etcpw"},
			want: map[string]string{
				"data/": "", "data/a.csv": "1,2", "data/sub/": "", "data/sub/b.csv": "3", "f.txt": "hello",
			},
		},
		{name: "overlapping paths", paths: []string{"data/sub", "data/sub/b.csv", "data/sub"}, want: map[string]string{"data/sub/": "", "data/sub/b.csv": "3"}},
		{name: "through a link", paths: []string{"f.txt", "evil/secret"}, err: ErrEscape},
		{name: "missing", paths: []string{"f.txt", "missing"}, err: ErrNotFound},
		{name: "traversal", paths: []string{"../../etc/passwd"}, err: ErrBadPath},
	}
	fx := newFixture(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := fx.w.WriteZip(&buf, tt.paths)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				assert.Zero(t, buf.Len(), "nothing written before the error")
				return
			}
			require.NoError(t, err)
			zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
			require.NoError(t, err)
			got := map[string]string{}
			for _, zf := range zr.File {
				_, dup := got[zf.Name]
				assert.False(t, dup, "duplicate entry %s", zf.Name)
				rc, err := zf.Open()
				require.NoError(t, err)
				b, err := io.ReadAll(rc)
				require.NoError(t, err)
				rc.Close()
				got[zf.Name] = string(b)
				assert.NotContains(t, string(b), "SECRET")
			}
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestPrune(t *testing.T) {
	files := []string{"code/hello.py", "data/in.csv", "data/extra.csv", "results/plot.png", "results/tmp/x.log", "junk.txt", "logs/run.log"}
	tests := []struct {
		name             string
		inputs, outputs  []string
		includeInputs    bool
		includeOutputs   bool
		wantLeft         []string // files and directories left, links included
		wantRemovedCount int
	}{
		{
			name:   "keep inputs and outputs",
			inputs: []string{"/code/", "./data/in.csv"}, outputs: []string{"results/plot.png"},
			wantLeft:         []string{"code", "code/hello.py", "data", "data/in.csv", "results", "results/plot.png"},
			wantRemovedCount: 5,
		},
		{
			name:   "include inputs",
			inputs: []string{"code", "data/in.csv"}, outputs: []string{"results/plot.png"}, includeInputs: true,
			wantLeft:         []string{"results", "results/plot.png"},
			wantRemovedCount: 7,
		},
		{
			name:   "include everything",
			inputs: []string{"code"}, outputs: []string{"results"}, includeInputs: true, includeOutputs: true,
			wantRemovedCount: 8,
		},
		{
			name:    "output directory",
			outputs: []string{"results"}, includeInputs: true,
			wantLeft:         []string{"results", "results/plot.png", "results/tmp", "results/tmp/x.log"},
			wantRemovedCount: 6,
		},
		{
			name:     "workspace root",
			inputs:   []string{"."},
			wantLeft: append([]string{"code", "data", "evil", "logs", "results", "results/tmp"}, files...),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ws := filepath.Join(t.TempDir(), "ws")
			outside := t.TempDir()
			writeFile(t, filepath.Join(outside, "secret"), secret)
			for _, f := range files {
				writeFile(t, filepath.Join(ws, f), f)
			}
			require.NoError(t, os.Symlink(outside, filepath.Join(ws, "evil")))
			w, err := Open(ws)
			require.NoError(t, err)
			defer w.Close()

			n, err := w.Prune(tt.inputs, tt.outputs, tt.includeInputs, tt.includeOutputs)
			require.NoError(t, err)
			assert.Equal(t, tt.wantRemovedCount, n)
			var left []string
			require.NoError(t, filepath.WalkDir(ws, func(p string, _ fs.DirEntry, err error) error {
				if p != ws {
					rel, _ := filepath.Rel(ws, p)
					left = append(left, rel)
				}
				return err
			}))
			want := slices.Clone(tt.wantLeft)
			slices.Sort(want)
			slices.Sort(left)
			assert.Equal(t, want, left)
			assert.Equal(t, secret, readFile(t, filepath.Join(outside, "secret")))
		})
	}
}

// allocated is what du -s reports: st_blocks*512 of everything, each
// hard-linked inode once.
func allocated(t *testing.T, root string) int64 {
	t.Helper()
	var total int64
	seen := map[uint64]bool{}
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		if !d.IsDir() && st.Nlink > 1 {
			if seen[st.Ino] {
				return nil
			}
			seen[st.Ino] = true
		}
		total += st.Blocks * 512
		return nil
	}))
	return total
}

func TestDiskUsage(t *testing.T) {
	fx := newFixture(t)
	writeFile(t, filepath.Join(fx.ws, "data/big.bin"), strings.Repeat("x", 100_000))
	require.NoError(t, os.Link(filepath.Join(fx.ws, "data/big.bin"), filepath.Join(fx.ws, "data/sub/hardlink.bin")))
	total, dataTotal := allocated(t, fx.ws), allocated(t, filepath.Join(fx.ws, "data"))
	require.Positive(t, total)

	tests := []struct {
		name      string
		summarize bool
		search    map[string][]string
		want      map[string]int64 // name -> size; -1: any size
		err       error
	}{
		{name: "summarize", summarize: true, want: map[string]int64{".": total}},
		{name: "summarize a directory", summarize: true, search: map[string][]string{"name": {"data"}}, want: map[string]int64{"data": dataTotal}},
		{name: "summarize by size", summarize: true, search: map[string][]string{"size": {"1", "2"}}, want: map[string]int64{}},
		{name: "name filter", search: map[string][]string{"name": {"data/sub"}}, want: map[string]int64{"data/sub": -1, "data/sub/b.csv": -1, "data/sub/hardlink.bin": -1}},
		{name: "bad name filter", search: map[string][]string{"name": {"../x"}}, err: ErrBadPath},
		{name: "unknown field", search: map[string][]string{"last-modified": {"2020"}}, err: ErrBadPath},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			es, err := fx.w.DiskUsage(tt.summarize, tt.search)
			if tt.err != nil {
				require.ErrorIs(t, err, tt.err)
				return
			}
			require.NoError(t, err)
			got := map[string]int64{}
			for _, e := range es {
				got[e.Name] = e.Size
				if tt.want[e.Name] == -1 {
					got[e.Name] = -1
				}
			}
			assert.Equal(t, tt.want, got)
		})
	}

	t.Run("every entry", func(t *testing.T) {
		es, err := fx.w.DiskUsage(false, nil)
		require.NoError(t, err)
		require.NotEmpty(t, es)
		assert.Equal(t, Entry{Name: ".", Size: total, ModTime: es[0].ModTime, IsDir: true}, es[0])
		sizes := map[string]int64{}
		for _, e := range es {
			sizes[e.Name] = e.Size
			assert.False(t, strings.HasPrefix(e.Name, "evil/"), "walked into a link: %s", e.Name)
		}
		assert.Equal(t, dataTotal, sizes["data"])
		assert.Contains(t, sizes, "evil")
		exact := map[string][]string{"size": {"0"}}
		es, err = fx.w.DiskUsage(false, exact)
		require.NoError(t, err)
		for _, e := range es {
			assert.Zero(t, e.Size, e.Name)
		}
	})
}

func TestRemoveAll(t *testing.T) {
	fx := newFixture(t)
	require.NoError(t, fx.w.RemoveAll())
	_, err := os.Lstat(fx.ws)
	assert.ErrorIs(t, err, os.ErrNotExist)
	fx.assertOutsideIntact(t)
	assert.FileExists(t, "/etc/passwd")
	require.NoError(t, fx.w.Close())
	_, err = Open(fx.ws)
	assert.ErrorIs(t, err, ErrNotFound)
}

func TestRemoveAllReplacedDirectory(t *testing.T) {
	fx := newFixture(t)
	require.NoError(t, os.Rename(fx.ws, fx.ws+".moved"))
	require.NoError(t, os.Mkdir(fx.ws, 0o700))
	writeFile(t, filepath.Join(fx.ws, "other"), "x")
	require.Error(t, fx.w.RemoveAll())
	assert.FileExists(t, filepath.Join(fx.ws, "other"), "a directory put in its place is left alone")
}

func TestCheckZip(t *testing.T) {
	tests := []struct {
		name       string
		paths      []string
		locked     string // made mode 000 first
		err        error
		unreadable string // the path the error names
	}{
		{name: "readable tree", paths: []string{"data", "f.txt", "evil", "etcln"}},
		{name: "missing", paths: []string{"missing"}, err: ErrNotFound},
		{name: "through a link", paths: []string{"evil/secret"}, err: ErrEscape},
		{name: "unreadable file", paths: []string{"data"}, locked: "data/sub/b.csv", err: unix.EACCES, unreadable: "data/sub/b.csv"},
		{name: "unreadable directory", paths: []string{"data"}, locked: "data/sub", err: unix.EACCES, unreadable: "data/sub"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.locked != "" && os.Geteuid() == 0 {
				t.Skip("root reads mode-000 files; the api tests cover this with the helper as the test user")
			}
			fx := newFixture(t)
			if tt.locked != "" {
				p := filepath.Join(fx.ws, tt.locked)
				require.NoError(t, os.Chmod(p, 0))
				t.Cleanup(func() { _ = os.Chmod(p, 0o700) })
			}
			err := fx.w.CheckZip(tt.paths)
			if tt.err == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.err)
			if tt.unreadable != "" {
				var ue *UnreadableError
				require.ErrorAs(t, err, &ue)
				assert.Equal(t, tt.unreadable, ue.Path)
				assert.Contains(t, err.Error(), "cannot read "+tt.unreadable+": permission denied")
			}
		})
	}
}
