package asuser

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestTrustedPrefix(t *testing.T) {
	for _, tc := range []struct{ template, home, want string }{
		{"/scratch/{user}", "/home/alice", "/scratch"},
		{"/scratch/{user}/reana", "/home/alice", "/scratch"},
		{"/data/reana-{uid}", "/home/alice", "/data"},
		{"{home}/reana", "/home/alice", "/home"},
		{"{home}/reana", "/", "/"},
		{"/srv/reana/ws", "/home/alice", "/srv/reana/ws"},
		{"/{user}", "/home/alice", "/"},
		{"", "/home/alice", "/"},
	} {
		assert.Equal(t, tc.want, TrustedPrefix(tc.template, tc.home), "%q", tc.template)
	}
}
