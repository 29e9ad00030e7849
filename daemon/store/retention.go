package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// RetentionRule is one workspace.retention_days entry of a workflow.
// Status is REANA's: created, active, inactive, applied or pending.
type RetentionRule struct {
	ID         int64
	WorkflowID string
	Pattern    string // a glob relative to the workspace
	Days       int
	Status     string
	ApplyOn    *time.Time // set when the rule becomes active
}

const ruleCols = `id, workflow_id, pattern, days, status, apply_on`

func scanRule(sc scanner) (RetentionRule, error) {
	var r RetentionRule
	err := sc.Scan(&r.ID, &r.WorkflowID, &r.Pattern, &r.Days, &r.Status, nullTimeCol{&r.ApplyOn})
	return r, err
}

// CreateRetentionRules adds rules to the workflow; their ID and
// WorkflowID are ignored.
func (db *DB) CreateRetentionRules(ctx context.Context, workflowID string, rules []RetentionRule) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		return insertRules(ctx, tx, workflowID, rules)
	})
	if err != nil {
		return fmt.Errorf("add retention rules of workflow %s: %w", workflowID, err)
	}
	return nil
}

func insertRules(ctx context.Context, tx *sql.Tx, workflowID string, rules []RetentionRule) error {
	for _, r := range rules {
		if _, err := tx.ExecContext(ctx, `INSERT INTO retention_rules (workflow_id, pattern, days, status, apply_on)
			VALUES (?, ?, ?, ?, ?)`, workflowID, r.Pattern, r.Days, r.Status, encTimePtr(r.ApplyOn)); err != nil {
			return err
		}
	}
	return nil
}

// RetentionRules returns the workflow's rules in the order they were
// added.
func (db *DB) RetentionRules(ctx context.Context, workflowID string) ([]RetentionRule, error) {
	rows, err := db.r.QueryContext(ctx, `SELECT `+ruleCols+` FROM retention_rules WHERE workflow_id = ? ORDER BY id`, workflowID)
	rules, err := collect(rows, err, scanRule)
	if err != nil {
		return nil, fmt.Errorf("read retention rules of workflow %s: %w", workflowID, err)
	}
	return rules, nil
}

// UpdateRetentionRules passes the workflow's rules to fn and stores what
// it returns, in one transaction: a returned rule with the ID of a stored
// one replaces it, one with ID 0 is added, and a stored rule fn leaves
// out is deleted. fn must not use the store.
func (db *DB) UpdateRetentionRules(ctx context.Context, workflowID string, fn func([]RetentionRule) []RetentionRule) error {
	err := db.write(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, `SELECT `+ruleCols+` FROM retention_rules WHERE workflow_id = ? ORDER BY id`, workflowID)
		old, err := collect(rows, err, scanRule)
		if err != nil {
			return err
		}
		stored := make(map[int64]bool, len(old))
		for _, r := range old {
			stored[r.ID] = true
		}
		var added []RetentionRule
		for _, r := range fn(old) {
			if r.ID == 0 || !stored[r.ID] {
				added = append(added, r)
				continue
			}
			delete(stored, r.ID)
			if _, err := tx.ExecContext(ctx, `UPDATE retention_rules SET pattern = ?, days = ?, status = ?, apply_on = ?
				WHERE id = ?`, r.Pattern, r.Days, r.Status, encTimePtr(r.ApplyOn), r.ID); err != nil {
				return err
			}
		}
		for id := range stored {
			if _, err := tx.ExecContext(ctx, `DELETE FROM retention_rules WHERE id = ?`, id); err != nil {
				return err
			}
		}
		return insertRules(ctx, tx, workflowID, added)
	})
	if err != nil {
		return fmt.Errorf("update retention rules of workflow %s: %w", workflowID, err)
	}
	return nil
}
