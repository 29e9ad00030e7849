package batch

// Kind is one backend this server implements: the canonical name used in
// configuration, in job handles and by the engine, the name shown to
// users, and REANA's names for the same kind of batch system. This table
// is the one list of backends; configuration checks, the API and the
// workflow specification take their names from it.
type Kind struct {
	Name    string
	Display string
	// REANANames are compute_backend values that REANA clients send and
	// that mean this backend (CERN's htcondorcern is the site's HTCondor).
	REANANames []string
}

// Kinds lists every backend, in the order they are named to users.
func Kinds() []Kind {
	return []Kind{
		{Name: "kubernetes", Display: "Kubernetes"},
		{Name: "htcondor", Display: "HTCondor", REANANames: []string{"htcondorcern"}},
		{Name: "slurm", Display: "Slurm", REANANames: []string{"slurmcern"}},
		{Name: "local", Display: "Local"},
	}
}

// KindOf finds the backend that a canonical or a REANA name means.
func KindOf(name string) (Kind, bool) {
	for _, k := range Kinds() {
		if k.Name == name {
			return k, true
		}
		for _, a := range k.REANANames {
			if a == name {
				return k, true
			}
		}
	}
	return Kind{}, false
}
