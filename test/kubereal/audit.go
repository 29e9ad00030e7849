package kubereal

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"os"
)

// auditPolicy records every pod create and delete (not their
// subresources: a binding, a status) at the Metadata level: who, what,
// the answer's code.
const auditPolicy = `apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: ["RequestReceived"]
rules:
- level: Metadata
  verbs: ["create", "delete"]
  resources: [{group: "", resources: ["pods"]}]
- level: None
`

// AuditEvent is what the audit log says of one pod create or delete.
type AuditEvent struct {
	Verb       string `json:"verb"`
	RequestURI string `json:"requestURI"`
	User       struct {
		Username string `json:"username"`
	} `json:"user"`
	ObjectRef struct {
		Namespace string `json:"namespace"`
		Name      string `json:"name"`
	} `json:"objectRef"`
	ResponseStatus struct {
		Code int `json:"code"`
	} `json:"responseStatus"`
}

// DryRun reports whether the request was a dry-run.
func (e AuditEvent) DryRun() bool {
	u, err := url.Parse(e.RequestURI)
	return err == nil && len(u.Query()["dryRun"]) > 0
}

// Audit reads the audit log's events from offset on, and the offset of
// its end, for the next call.
func (c *Cluster) Audit(offset int64) ([]AuditEvent, int64, error) {
	f, err := os.Open(c.AuditLog)
	if os.IsNotExist(err) {
		return nil, 0, nil
	}
	if err != nil {
		return nil, offset, fmt.Errorf("read the audit log: %w", err)
	}
	defer f.Close()
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return nil, offset, fmt.Errorf("read the audit log: %w", err)
	}
	var events []AuditEvent
	r := bufio.NewReader(f)
	for {
		line, err := r.ReadBytes('\n')
		if err != nil {
			// A line not yet whole is for the next call.
			return events, offset, nil
		}
		offset += int64(len(line))
		var e AuditEvent
		if line = bytes.TrimSpace(line); len(line) > 0 {
			if err := json.Unmarshal(line, &e); err != nil {
				return events, offset, fmt.Errorf("audit log line %q: %w", line, err)
			}
			events = append(events, e)
		}
	}
}
