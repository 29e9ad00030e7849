package wsfs

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestCreateBelow: the way from the trusted prefix to a workspace must be
// one that nobody but the user and root can change.
func TestCreateBelow(t *testing.T) {
	base := t.TempDir()
	mk := func(rel string, mode os.FileMode) string {
		p := filepath.Join(base, rel)
		require.NoError(t, os.MkdirAll(p, 0o700))
		require.NoError(t, os.Chmod(p, mode))
		return p
	}
	site := mk("site", 0o755)
	require.NoError(t, os.Symlink(site, filepath.Join(base, "site-link")))
	mk("site/open", 0o777)
	mk("site/sticky", os.ModeSticky|0o777)
	mk("site/user-link-target", 0o700)
	require.NoError(t, os.Symlink(filepath.Join(site, "user-link-target"), filepath.Join(site, "planted")))
	for _, tc := range []struct {
		name, dir, trusted string
		err                error
	}{
		{name: "fresh chain", dir: site + "/u/workflows/1", trusted: site},
		{name: "existing chain", dir: site + "/u/workflows/1", trusted: site},
		{name: "the site's part may be a link", dir: base + "/site-link/u/workflows/2", trusted: base + "/site-link"},
		{name: "sticky shared directory", dir: site + "/sticky/u/workflows/1", trusted: site},
		{name: "world-writable directory on the way", dir: site + "/open/u/workflows/1", trusted: site, err: ErrUnsafe},
		{name: "link below the prefix", dir: site + "/planted/workflows/1", trusted: site, err: ErrEscape},
		{name: "not below the prefix", dir: base + "/elsewhere/ws", trusted: site, err: ErrBadPath},
		{name: "relative", dir: "u/ws", trusted: site, err: ErrBadPath},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CreateBelow(tc.dir, tc.trusted)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			assertMode(t, tc.dir, 0o700)
			w, err := OpenBelow(tc.dir, tc.trusted)
			require.NoError(t, err)
			require.NoError(t, w.Close())
		})
	}
	// Opening checks the same chain: a directory made writable by others
	// after the workspace was created is refused from then on.
	require.NoError(t, os.Chmod(filepath.Join(site, "u"), 0o777))
	_, err := OpenBelow(site+"/u/workflows/1", site)
	require.ErrorIs(t, err, ErrUnsafe)
}

// TestCreateBelowAnotherUsersRoot is the attack of a shared scratch area:
// before alice's first run, bob makes her per-user root himself.
func TestCreateBelowAnotherUsersRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a directory away")
	}
	scratch := filepath.Join(t.TempDir(), "scratch")
	require.NoError(t, os.Mkdir(scratch, 0o755))
	require.NoError(t, os.Chmod(scratch, os.ModeSticky|0o777))
	planted := filepath.Join(scratch, "alice")
	require.NoError(t, os.Mkdir(planted, 0o777))
	require.NoError(t, os.Chown(planted, 12345, 12345))
	require.NoError(t, os.Chmod(planted, 0o700)) // even closed again: bob owns it
	err := CreateBelow(filepath.Join(planted, "workflows", "1"), scratch)
	require.ErrorIs(t, err, ErrUnsafe)
	assert.Contains(t, err.Error(), "owned by uid 12345")
	_, err = OpenBelow(planted, scratch)
	require.ErrorIs(t, err, ErrUnsafe)
}
