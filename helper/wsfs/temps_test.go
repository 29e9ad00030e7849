package wsfs

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestUploadTemps: uploads in progress are hidden from listings, du,
// globs and downloads; CleanTemps removes the orphaned ones (unlocked and
// old) and leaves the locked one of a live upload.
func TestUploadTemps(t *testing.T) {
	fx := newFixture(t)
	live, _, abort, err := fx.w.CreateTemp("data/live.bin")
	require.NoError(t, err)
	defer live.Close()
	defer abort()
	old := time.Now().Add(-2 * time.Hour)
	orphan := filepath.Join(fx.ws, "data", tempPrefix+"ORPHAN")
	fresh := filepath.Join(fx.ws, tempPrefix+"FRESH")
	for _, p := range []string{orphan, fresh} {
		require.NoError(t, os.WriteFile(p, []byte("partial"), 0o600))
	}
	require.NoError(t, os.Chtimes(orphan, old, old))
	livePath := filepath.Join(fx.ws, "data", liveNameOnDisk(t, filepath.Join(fx.ws, "data")))
	require.NoError(t, os.Chtimes(livePath, old, old))

	entries, err := fx.w.List("", nil)
	require.NoError(t, err)
	du, err := fx.w.DiskUsage(false, nil)
	require.NoError(t, err)
	matches, err := fx.w.Glob("**")
	require.NoError(t, err)
	for _, e := range append(entries, du...) {
		assert.NotContains(t, e.Name, tempPrefix)
	}
	for _, m := range matches {
		assert.NotContains(t, m, tempPrefix)
	}
	_, _, err = fx.w.OpenRead("data/" + tempPrefix + "ORPHAN")
	assert.ErrorIs(t, err, ErrNotFound)

	n, err := fx.w.CleanTemps(time.Minute)
	require.NoError(t, err)
	assert.Equal(t, 1, n)
	assert.NoFileExists(t, orphan)
	assert.FileExists(t, fresh, "too new to judge")
	assert.FileExists(t, livePath, "locked by a live upload")
}

// liveNameOnDisk finds the one upload file in dir other than the planted ones.
func liveNameOnDisk(t *testing.T, dir string) string {
	t.Helper()
	des, err := os.ReadDir(dir)
	require.NoError(t, err)
	for _, de := range des {
		if isTemp(de.Name()) && de.Name() != tempPrefix+"ORPHAN" {
			return de.Name()
		}
	}
	t.Fatal("no upload file in " + dir)
	return ""
}
