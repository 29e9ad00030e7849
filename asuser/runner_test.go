package asuser_test

import (
	"context"
	"strconv"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/test/helpertest"
)

// TestCallReplyCap runs a stand-in for the helper that writes more than
// the daemon reads from one: the reply is refused, not decoded.
func TestCallReplyCap(t *testing.T) {
	r, acct, _ := helpertest.Runner(t)
	tests := []struct {
		name  string
		bytes int
		err   string
	}{
		{"over the cap", 64<<20 + 1, "reply larger than"},
		{"under the cap, but not a reply", 1 << 10, "bad reply"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sh := *r
			sh.Exe, sh.Args = "/bin/sh", []string{"-c", "head -c " + strconv.Itoa(tt.bytes) + " /dev/zero"}
			err := sh.Call(context.Background(), acct, asuser.OpExec, asuser.ExecArgs{}, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.err)
		})
	}
}

func TestCallRefusesRoot(t *testing.T) {
	r := &asuser.Runner{Exe: "/bin/true", CanSwitch: true}
	for _, acct := range []asuser.Account{{Name: "root"}, {Name: "wheel", UID: 1000}} {
		err := r.Call(context.Background(), acct, asuser.OpExec, asuser.ExecArgs{}, nil)
		require.Error(t, err, acct.Name)
		assert.Contains(t, err.Error(), "refusing to run as uid")
	}
}
