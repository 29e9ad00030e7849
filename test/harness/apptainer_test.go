package harness

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestChooseApptainer(t *testing.T) {
	dir := t.TempDir()
	repo := filepath.Join(dir, "repo")
	standin := filepath.Join(repo, "test", "apptainer", "apptainer")
	prog, sif := filepath.Join(dir, "apptainer"), filepath.Join(dir, "img.sif")
	for _, p := range []string{standin, prog, sif} {
		assert.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		assert.NoError(t, os.WriteFile(p, nil, 0o755))
	}
	recorded := map[string]string{"APPTAINER_STANDIN": "/elsewhere/test/apptainer/apptainer", "APPTAINER_REAL": prog, "APPTAINER_SIF": sif}
	for _, tt := range []struct {
		name     string
		vars     map[string]string
		override string
		want     Apptainers
	}{
		{"real recorded", recorded, "",
			Apptainers{Apptainer: prog, Standin: standin, RealApptainer: prog, SIF: sif}},
		{"stand-in forced; the SIF stays", recorded, "standin",
			Apptainers{Apptainer: standin, ApptainerNote: "REANA_SITE_TEST_APPTAINER=standin", Standin: standin, SIF: sif}},
		{"another program", map[string]string{"APPTAINER_STANDIN": standin}, prog,
			Apptainers{Apptainer: prog, Standin: standin, RealApptainer: prog}},
		{"none recorded, with the reason", map[string]string{"APPTAINER_STANDIN": standin, "APPTAINER_NOTE": "no kit"}, "",
			Apptainers{Apptainer: standin, ApptainerNote: "test/setup.sh: no kit", Standin: standin}},
		{"recorded but gone", map[string]string{"APPTAINER_STANDIN": standin, "APPTAINER_REAL": filepath.Join(dir, "gone"), "APPTAINER_SIF": filepath.Join(dir, "gone.sif")}, "",
			Apptainers{Apptainer: standin, Standin: standin}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := ChooseApptainer(repo, tt.vars, tt.override)
			if tt.name == "recorded but gone" {
				assert.Contains(t, got.ApptainerNote, "is gone")
				got.ApptainerNote = ""
			}
			assert.Equal(t, tt.want, got)
		})
	}
}
