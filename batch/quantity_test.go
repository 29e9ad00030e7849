package batch

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMemoryMB(t *testing.T) {
	for in, want := range map[string]int64{"512Mi": 512, "2Gi": 2048, "1G": 954, "300M": 287, "1048576": 1, "1.5Gi": 1536} {
		got, err := MemoryMB(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"", "lots", "-1Gi", "0"} {
		_, err := MemoryMB(bad)
		assert.Error(t, err, bad)
	}
}
