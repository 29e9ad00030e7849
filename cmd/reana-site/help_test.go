package main

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestCommandHelp(t *testing.T) {
	for _, tc := range []struct {
		cmd  string
		args []string
		want string // "" means not help
	}{
		{"serve", []string{"--help"}, "Usage: reana-site serve"},
		{"serve", []string{"-h"}, "Usage: reana-site serve"},
		{"admin", []string{"--help"}, "reana-site admin user add NAME"},
		{"admin", []string{"user", "add", "-h"}, "reana-site admin token issue NAME"},
		{"token", []string{"--help"}, "Usage: reana-site token"},
		{"login-link", []string{"--help"}, "Usage: reana-site login-link"},
		{"doctor", []string{"-h"}, "Usage: reana-site doctor"},
		{"version", []string{"--help"}, "Usage: reana-site version"},
		{"serve", nil, ""},
		{"admin", []string{"user", "list"}, ""},
		{"nosuch", []string{"--help"}, ""},
	} {
		var out bytes.Buffer
		got := commandHelp(&out, tc.cmd, tc.args)
		assert.Equal(t, tc.want != "", got, "%s %v", tc.cmd, tc.args)
		assert.Contains(t, out.String(), tc.want)
	}
}

// TestServeHelpDoesNotServe runs the dispatcher itself: serve --help must
// return at once with status 0 instead of starting a daemon.
func TestServeHelpDoesNotServe(t *testing.T) {
	assert.Equal(t, 0, run([]string{"serve", "--help"}))
	assert.Equal(t, 0, run([]string{"admin", "--help"}))
}
