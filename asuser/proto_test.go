package asuser

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestEncodeRequest(t *testing.T) {
	tests := []struct {
		name string
		op   Op
		args any
		want string
	}{
		{"arguments", OpFSMove, MoveArgs{Workspace: "/ws", Source: "a", Target: "b"},
			`{"op":"fs.move","args":{"workspace":"/ws","source":"a","target":"b"}}`},
		{"omitted fields", OpFSCreate, WorkspaceArgs{Workspace: "/ws"}, `{"op":"fs.create","args":{"workspace":"/ws"}}`},
		{"no arguments", OpExec, nil, `{"op":"exec","args":null}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := encodeRequest(tt.op, tt.args)
			require.NoError(t, err)
			assert.JSONEq(t, tt.want, string(b))
			var req Request
			require.NoError(t, json.Unmarshal(b, &req), "the helper can decode it")
			assert.Equal(t, tt.op, req.Op)
		})
	}

	_, err := encodeRequest(OpExec, map[string]any{"f": func() {}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "encode exec arguments")
}

func TestDecodeReply(t *testing.T) {
	acct := Account{Name: "alice"}
	tests := []struct {
		name   string
		stdout string
		stderr string
		runErr error
		want   any    // decoded result, when there is no error
		err    string // substring of the error, "" for none
		kind   string // the error's kind, when it crossed the boundary
	}{
		{"result", `{"result":{"size":5}}`, "", nil, &UploadResult{Size: 5}, "", ""},
		{"no result", `{}`, "", nil, &UploadResult{}, "", ""},
		{"an error crossed the boundary", `{"error":{"kind":"not_found","message":"no such file"}}`, "", errors.New("exit status 1"),
			nil, "no such file", KindNotFound},
		{"a helper that died says why on stderr", ``, "  panic: boom\n", errors.New("exit status 2"),
			nil, "asuser: fs.upload as alice: exit status 2: panic: boom", ""},
		{"a reply that is not JSON", `PASS`, "", nil, nil, "asuser: fs.upload as alice: bad reply", ""},
		{"a result of the wrong shape", `{"result":"five"}`, "", nil, nil, "asuser: fs.upload as alice: decode result", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got UploadResult
			err := decodeReply(OpFSUpload, acct, []byte(tt.stdout), tt.stderr, tt.runErr, &got)
			if tt.err == "" {
				require.NoError(t, err)
				assert.Equal(t, tt.want, &got)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.err)
			if tt.kind != "" {
				assert.True(t, IsKind(err, tt.kind), "kind of %v", err)
			}
		})
	}
}

func TestCapped(t *testing.T) {
	tests := []struct {
		name   string
		writes []string
		max    int
		kept   string
		over   bool
	}{
		{"under", []string{"ab", "cd"}, 5, "abcd", false},
		{"exactly", []string{"ab", "cde"}, 5, "abcde", false},
		{"over in one write", []string{"abcdefg"}, 5, "abcde", true},
		{"over across writes", []string{"abc", "def", "g"}, 5, "abcde", true},
		{"nothing allowed", []string{"a"}, 0, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &capped{max: tt.max}
			for _, w := range tt.writes {
				n, err := c.Write([]byte(w))
				require.NoError(t, err, "a writer that stops would block the helper, not bound it")
				assert.Equal(t, len(w), n)
			}
			assert.Equal(t, tt.kept, c.String())
			assert.Equal(t, tt.kept, string(c.Bytes()))
			assert.Equal(t, tt.over, c.over)
		})
	}
}

// TestCappedThroughCopy is how os/exec fills a non-file Stdout: with
// io.Copy, which would use the writer's ReadFrom if it had one.
func TestCappedThroughCopy(t *testing.T) {
	c := &capped{max: 10}
	n, err := io.Copy(c, strings.NewReader(strings.Repeat("x", 100)))
	require.NoError(t, err)
	assert.Equal(t, int64(100), n)
	assert.Equal(t, 10, len(c.Bytes()))
	assert.True(t, c.over)
}

func TestIsKind(t *testing.T) {
	notFound := Errorf(KindNotFound, "no %s", "file")
	tests := []struct {
		name string
		err  error
		kind string
		want bool
	}{
		{"the kind", notFound, KindNotFound, true},
		{"another kind", notFound, KindExists, false},
		{"wrapped", fmt.Errorf("open: %w", notFound), KindNotFound, true},
		{"not an *Error", errors.New("not_found"), KindNotFound, false},
		{"nil", nil, KindNotFound, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, IsKind(tt.err, tt.kind))
		})
	}
	assert.Equal(t, "no file", notFound.Error())
}

func TestErrorJSON(t *testing.T) {
	b, err := json.Marshal(Reply{Error: Errorf(KindBadPath, "bad %q", "..")})
	require.NoError(t, err)
	assert.JSONEq(t, `{"error":{"kind":"bad_path","message":"bad \"..\""}}`, string(b))
}
