package kubelet

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestExpand: the cases of the kubelet's own expansion tests
// (third_party/forked/golang/expansion/expand_test.go, TestMapReference
// and TestExpand), with the container's environment as the mapping.
func TestExpand(t *testing.T) {
	env := map[string]string{"VAR_A": "A", "VAR_B": "B", "VAR_C": "C", "VAR_REF": "$(VAR_A)", "VAR_EMPTY": ""}
	tests := []struct{ in, want string }{
		{"$(VAR_A)", "A"},
		{"___$(VAR_B)___", "___B___"},
		{"$(VAR_A)-$(VAR_A)", "A-A"},
		{"$(VAR_A)$(VAR_B)$(VAR_C)", "ABC"},
		{"$(VAR_REF)", "$(VAR_A)"}, // not recursive
		{"$(VAR_EMPTY)", ""},
		{"$(UNKNOWN)", "$(UNKNOWN)"},
		{"$(UNKNOWN) $(VAR_A)", "$(UNKNOWN) A"},
		{"$$(VAR_A)", "$(VAR_A)"},
		{"$$$(VAR_A)", "$A"},
		{"$$$$(VAR_A)", "$$(VAR_A)"},
		{"$$", "$"},
		{"$$$$", "$$"},
		{"$", "$"},
		{"foo$", "foo$"},
		{"$VAR_A", "$VAR_A"},
		{"${VAR_A}", "${VAR_A}"},
		{"$(VAR_A", "$(VAR_A"},
		{"$()", "$()"},
		{"echo $(date)", "echo $(date)"},
		{"$1", "$1"},
		{"", ""},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			assert.Equal(t, tt.want, expand(tt.in, expansionOf(env)))
		})
	}
}
