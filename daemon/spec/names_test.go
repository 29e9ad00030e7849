package spec

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidateWorkflowName(t *testing.T) {
	tests := []struct {
		name string
		kind error
		msg  string
	}{
		{"", nil, ""},
		{"myanalysis", nil, ""},
		{"my-analysis_2 with spaces", nil, ""},
		{"v1.2", ErrNameIllegalCharacter, `Workflow name v1.2 contains illegal character "."`},
		{"é.x", ErrNameIllegalCharacter, `Workflow name é.x contains illegal character "."`},
		{"8f3b7a5e-1c2d-4e5f-9a0b-1c2d3e4f5a6b", ErrNameInvalid, "Workflow name cannot be a valid UUIDv4."},
		{"8f3b7a5e1c2d4e5f9a0b1c2d3e4f5a6b", ErrNameInvalid, "Workflow name cannot be a valid UUIDv4."},
		{"8f3b-7a5e1c2d4e5f9a0b1c2d3e4f5a6b-", ErrNameInvalid, "Workflow name cannot be a valid UUIDv4."},
		{"8F3B7A5E-1C2D-4E5F-9A0B-1C2D3E4F5A6B", nil, ""},          // Python compares with the lower-case hex
		{"8f3b7a5e-1c2d-1e5f-9a0b-1c2d3e4f5a6b", nil, ""},          // version 1
		{"8f3b7a5e-1c2d-4e5f-ca0b-1c2d3e4f5a6b", nil, ""},          // wrong variant
		{"{8f3b7a5e-1c2d-4e5f-9a0b-1c2d3e4f5a6b}", nil, ""},        // braces stay in the comparison
		{"urn:uuid:8f3b7a5e-1c2d-4e5f-9a0b-1c2d3e4f5a6b", nil, ""}, // so does the prefix
		{"analyse-données", ErrNameInvalid, "Workflow name analyse-données is not valid."},
		{strings.Repeat("n", 255), nil, ""},
		{strings.Repeat("n", 256), ErrNameInvalid, "Workflow name is too long: at most 255 characters."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateWorkflowName(tt.name)
			if tt.kind == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.kind)
			require.EqualError(t, err, tt.msg)
			other := ErrNameInvalid
			if tt.kind == ErrNameInvalid {
				other = ErrNameIllegalCharacter
			}
			require.False(t, errors.Is(err, other))
		})
	}
}

func TestCanonicalBackend(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", ""},
		{"kubernetes", "kubernetes"},
		{"htcondorcern", "htcondor"},
		{"htcondor", "htcondor"},
		{"slurmcern", "slurm"},
		{"slurm", "slurm"},
		{"compute4punch", "compute4punch"},
		{"local", "local"},
	}
	for _, tt := range tests {
		got, err := CanonicalBackend(tt.in)
		require.NoError(t, err, tt.in)
		require.Equal(t, tt.want, got, tt.in)
	}
	for _, bad := range []string{"Kubernetes", "lsf", " slurm"} {
		_, err := CanonicalBackend(bad)
		var verr *ValidationError
		require.ErrorAs(t, err, &verr, bad)
	}
	_, err := CanonicalBackend("lsf")
	require.EqualError(t, err, `Compute backend "lsf" is not supported. Use one of: kubernetes, htcondorcern, slurmcern, compute4punch, htcondor, slurm, local.`)
}
