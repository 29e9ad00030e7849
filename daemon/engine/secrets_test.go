package engine

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/google/uuid"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/reana-site/reana-site/asuser"
	"github.com/reana-site/reana-site/batch"
	"github.com/reana-site/reana-site/daemon/store"
)

// TestJobSpecSecrets: every job is told where its owner's secrets are,
// and gets a Kerberos ticket when workflow.resources or its step says
// kerberos: true.
func TestJobSpecSecrets(t *testing.T) {
	tests := []struct {
		name      string
		resources map[string]any
		step      map[string]any
		want      bool
	}{
		{"no kerberos", nil, nil, false},
		{"workflow.resources.kerberos", map[string]any{"kerberos": true}, nil, true},
		{"the step's kerberos", nil, map[string]any{"kerberos": true}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.eng.SecretsDir = func(a asuser.Account) string { return "/home/" + a.Name + "/.reana-site/secrets" }
			f.eng.KeytabSecrets, f.eng.UserSecrets = []string{"CERN_KEYTAB"}, []string{"CERN_USER"}
			step := map[string]any{"name": "s", "environment": "img", "commands": []string{"ok"}}
			for k, v := range tt.step {
				step[k] = v
			}
			w := map[string]any{"type": "serial", "specification": map[string]any{"steps": []any{step}}}
			if tt.resources != nil {
				w["resources"] = tt.resources
			}
			spec, err := json.Marshal(map[string]any{"workflow": w})
			require.NoError(t, err)
			wf := store.Workflow{ID: uuid.NewString(), OwnerID: f.owner, Spec: spec, WorkspacePath: "/ws", JobsPath: "/jobs"}
			f.eng.init()
			s, err := f.eng.JobSpec(context.Background(), wf, store.Job{ID: "j", StepIndex: 0})
			require.NoError(t, err)
			assert.Equal(t, batch.Secrets{Dir: "/home/alice/.reana-site/secrets", Kerberos: tt.want,
				KeytabSecrets: []string{"CERN_KEYTAB"}, UserSecrets: []string{"CERN_USER"}}, s.Secrets)
		})
	}
}
