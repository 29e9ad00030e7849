package harness

import (
	"fmt"
	"os"
	"path/filepath"
)

// Apptainers are the Apptainer programs of the container tests.
type Apptainers struct {
	// Apptainer is the program the container tests run: RealApptainer
	// when there is one, else Standin; ApptainerNote says why it is the
	// stand-in (empty when real).
	Apptainer     string
	ApptainerNote string
	// Standin is the stand-in of test/apptainer, RealApptainer the real
	// Apptainer or empty, SIF a SIF file of the test image (made by the
	// real one, runnable by both) or empty.
	Standin       string
	RealApptainer string
	SIF           string
}

// ChooseApptainer picks the container tests' Apptainer from the variables
// of .cache/setup.env: the real one test/setup.sh recorded
// (APPTAINER_REAL; APPTAINER_NOTE says why there is none), unless override (REANA_SITE_TEST_APPTAINER at test
// time) is "standin" or names another program; without a real one, the
// stand-in of repo.
func ChooseApptainer(repo string, vars map[string]string, override string) Apptainers {
	a := Apptainers{Standin: vars["APPTAINER_STANDIN"], RealApptainer: vars["APPTAINER_REAL"], SIF: vars["APPTAINER_SIF"]}
	// The stand-in under test is this tree's, not the one of the checkout
	// that ran test/setup.sh (.cache may be shared between worktrees).
	if standin := filepath.Join(repo, "test", "apptainer", "apptainer"); a.Standin != "" {
		if _, err := os.Stat(standin); err == nil {
			a.Standin = standin
		}
	}
	switch {
	case override == "standin":
		// The SIF stays: the stand-in runs it by unpacking it.
		a.RealApptainer = ""
		a.ApptainerNote = "REANA_SITE_TEST_APPTAINER=standin"
	case override != "":
		a.RealApptainer = override
	case a.RealApptainer == "":
		a.ApptainerNote = "test/setup.sh: " + vars["APPTAINER_NOTE"]
		if vars["APPTAINER_NOTE"] == "" {
			a.ApptainerNote = "test/setup.sh recorded no real Apptainer (APPTAINER_REAL in .cache/setup.env)"
		}
	}
	if a.RealApptainer != "" {
		if _, err := os.Stat(a.RealApptainer); err != nil {
			a.ApptainerNote = fmt.Sprintf("the real Apptainer recorded by test/setup.sh is gone: %v", err)
			a.RealApptainer = ""
		}
	}
	if a.SIF != "" {
		if _, err := os.Stat(a.SIF); err != nil {
			a.SIF = ""
		}
	}
	a.Apptainer = a.RealApptainer
	if a.Apptainer == "" {
		a.Apptainer = a.Standin
	}
	return a
}
