package harness

import (
	"os"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestKDCIssuesTickets(t *testing.T) {
	k := StartKDC(t)
	cc := k.Kinit(t, "alice", "")
	out := k.Run(t, cc, "klist")
	assert.Contains(t, out, "alice@"+k.Realm)
	// A service ticket for the daemon's principal, and the keytab that
	// decrypts it is root's alone.
	k.Run(t, cc, "kvno", k.ServicePrincipal)
	fi, err := os.Stat(k.ServiceKeytab)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
	assert.Contains(t, k.Run(t, "", "klist", "-k", k.ServiceKeytab), k.ServicePrincipal+"@"+k.Realm)
}

func TestKDCCacheForAUser(t *testing.T) {
	k := StartKDC(t)
	cc := k.Kinit(t, "alice/admin", "alice")
	assert.Contains(t, k.Run(t, cc, "klist"), "alice/admin@"+k.Realm)
	fi, err := os.Stat(cc)
	require.NoError(t, err)
	assert.EqualValues(t, 4101, statUID(fi))
}

func statUID(fi os.FileInfo) uint32 { return fi.Sys().(*syscall.Stat_t).Uid }
