package engine

import (
	"context"
	"time"

	"github.com/reana-site/reana-site/daemon/store"
)

// activateRetentionRules starts the clock of a workflow's retention rules
// when it finishes or fails, as REANA does: each rule applies at the end of
// the day (server local time) retention_days days later.
func activateRetentionRules(ctx context.Context, db *store.DB, workflowID string, at time.Time) error {
	local := at.Local()
	endOfDay := time.Date(local.Year(), local.Month(), local.Day(), 23, 59, 59, 0, time.Local)
	return db.UpdateRetentionRules(ctx, workflowID, func(rules []store.RetentionRule) []store.RetentionRule {
		for i := range rules {
			if rules[i].Status != "created" {
				continue
			}
			t := endOfDay.AddDate(0, 0, rules[i].Days).UTC()
			rules[i].Status = "active"
			rules[i].ApplyOn = &t
		}
		return rules
	})
}
