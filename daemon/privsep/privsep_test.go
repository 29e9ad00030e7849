package privsep

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// status is the shape of /proc/PID/status around the capability lines.
func status(eff, prm, inh, bnd, amb string) string {
	lines := []string{"Name:\treana-site", "Umask:\t0022", "State:\tS (sleeping)", "Uid:\t0\t0\t0\t0", "Gid:\t0\t0\t0\t0"}
	for _, l := range []struct{ k, v string }{{"CapInh", inh}, {"CapPrm", prm}, {"CapEff", eff}, {"CapBnd", bnd}, {"CapAmb", amb}} {
		if l.v != "" {
			lines = append(lines, l.k+":\t"+l.v)
		}
	}
	return strings.Join(append(lines, "NoNewPrivs:\t0", "Seccomp:\t0", "Cpus_allowed:\tff"), "\n") + "\n"
}

func TestParseCaps(t *testing.T) {
	const all = 0x000001ffffffffff
	tests := []struct {
		name string
		in   string
		want Caps
		err  string
	}{
		{"root, before narrowing", status("000001ffffffffff", "000001ffffffffff", "0000000000000000", "000001ffffffffff", "0000000000000000"),
			Caps{Effective: all, Permitted: all, Bounding: all}, ""},
		{"the narrowed daemon", status("00000000000000c0", "00000000000000c0", "0000000000000000", "00000000000000c0", "0000000000000000"),
			Caps{Effective: Kept, Permitted: Kept, Bounding: Kept}, ""},
		{"a helper, as a user", status("0000000000000000", "0000000000000000", "0000000000000000", "00000000000000c0", "0000000000000000"),
			Caps{Bounding: Kept}, ""},
		{"ambient capabilities", status("0000000000000400", "0000000000000400", "0000000000000400", "000001ffffffffff", "0000000000000400"),
			Caps{Effective: 0x400, Permitted: 0x400, Inheritable: 0x400, Bounding: all, Ambient: 0x400}, ""},
		{"a kernel without CapAmb", status("0000000000000000", "0000000000000000", "0000000000000000", "000001ffffffffff", ""),
			Caps{Bounding: all}, ""},
		{"no capability lines", "Name:\tx\n", Caps{}, ""},
		{"similar names are not capability sets", "CapEffX:\t00ff\nXCapEff:\t00ff\n", Caps{}, ""},
		{"a malformed set", status("zz", "0", "0", "0", "0"), Caps{}, `parse CapEff: "zz"`},
		{"an empty set", "CapPrm:\t\n", Caps{}, `parse CapPrm: ""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseCaps(strings.NewReader(tt.in))
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestKept(t *testing.T) {
	assert.Equal(t, uint64(0xc0), Kept, "CAP_SETGID (6) and CAP_SETUID (7)")
}

func TestReadCaps(t *testing.T) {
	self, err := ReadCaps(0)
	require.NoError(t, err)
	byPID, err := ReadCaps(os.Getpid())
	require.NoError(t, err)
	assert.Equal(t, self, byPID)

	_, err = ReadCaps(1 << 30) // above any pid_max
	require.Error(t, err)
	assert.Contains(t, err.Error(), "read capabilities")
}
