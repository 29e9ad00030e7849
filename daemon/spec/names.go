package spec

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/reana-site/reana-site/batch"
)

// reanaComputeBackends is the compute_backend enum of REANA's schema.
// compute4punch is accepted as REANA accepts it, though no backend of this
// server runs it: the engine refuses it unless a site enables it.
func reanaComputeBackends() []string {
	return []string{"kubernetes", "htcondorcern", "slurmcern", "compute4punch"}
}

// computeBackends are the accepted compute_backend values: REANA's schema
// enum, then the names this server adds for sites that run their own
// Slurm or HTCondor, or run steps on the server host (batch.Kinds).
func computeBackends() []string {
	out := reanaComputeBackends()
	for _, k := range batch.Kinds() {
		if !slices.Contains(out, k.Name) {
			out = append(out, k.Name)
		}
	}
	return out
}

// CanonicalBackend maps a step's compute_backend to the name of the batch
// backend that runs it: "" (site default), a batch.Kinds name, or
// "compute4punch". REANA's CERN-specific names htcondorcern and slurmcern
// mean the site's HTCondor and Slurm, so that reana.yaml files written for
// REANA at CERN run unchanged.
func CanonicalBackend(name string) (string, error) {
	if name == "" || name == "compute4punch" {
		return name, nil
	}
	if k, ok := batch.KindOf(name); ok {
		return k.Name, nil
	}
	return "", &ValidationError{Msg: fmt.Sprintf("Compute backend %q is not supported. Use one of: %s.",
		name, strings.Join(computeBackends(), ", "))}
}

// Kinds of NameError. REANA answers an illegal character with 403 and the
// other invalid names with 400; the API keeps those codes.
var (
	ErrNameIllegalCharacter = errors.New("workflow name contains an illegal character")
	ErrNameInvalid          = errors.New("invalid workflow name")
)

// NameError is a rejected workflow name. Msg is REANA's message;
// errors.Is(err, ErrNameIllegalCharacter) or ErrNameInvalid tells the kind.
type NameError struct {
	Msg  string
	Kind error
}

func (e *NameError) Error() string { return e.Msg }
func (e *NameError) Unwrap() error { return e.Kind }

// MaxWorkflowNameLength is the longest workflow name accepted.
const MaxWorkflowNameLength = 255

// ValidateWorkflowName applies, in REANA's order, the checks of
// reana-server (no ".", not a UUIDv4) and reana-workflow-controller
// (ASCII only) to a name given at creation. "" is valid: the caller then
// uses the default name "workflow".
func ValidateWorkflowName(name string) error {
	if strings.Contains(name, ".") {
		return &NameError{Kind: ErrNameIllegalCharacter,
			Msg: fmt.Sprintf(`Workflow name %s contains illegal character "."`, name)}
	}
	if isUUIDv4(name) {
		return &NameError{Kind: ErrNameInvalid, Msg: "Workflow name cannot be a valid UUIDv4."}
	}
	for i := 0; i < len(name); i++ {
		if name[i] >= 0x80 {
			return &NameError{Kind: ErrNameInvalid, Msg: fmt.Sprintf("Workflow name %s is not valid.", name)}
		}
	}
	// REANA keeps names in a column of 255 characters and fails on longer
	// ones with a server error; the name is the client's to shorten.
	if len(name) > MaxWorkflowNameLength {
		return &NameError{Kind: ErrNameInvalid, Msg: fmt.Sprintf("Workflow name is too long: at most %d characters.", MaxWorkflowNameLength)}
	}
	return nil
}

// isUUIDv4 mirrors REANA's is_uuid_v4: uuid.UUID(s, version=4).hex must
// equal s without its hyphens. Python drops hyphens anywhere, and forcing
// version 4 changes the version and variant nibbles of anything that is not
// already a v4 UUID, so: 32 lower-case hex digits once hyphens are removed,
// the 13th being 4 and the 17th one of 8, 9, a, b.
func isUUIDv4(s string) bool {
	h := strings.ReplaceAll(s, "-", "")
	if len(h) != 32 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return h[12] == '4' && strings.IndexByte("89ab", h[16]) >= 0
}
