package asuser

// Account is the POSIX identity a helper, and every job, runs as. It is
// looked up through NSS at the time of use, so LDAP/SSSD accounts work and
// group changes apply to the next operation.
type Account struct {
	Name   string
	UID    uint32
	GID    uint32
	Groups []uint32
	Home   string
}
