package spec

import (
	"fmt"
	"slices"
	"strings"
)

// Rule is a workspace retention rule: files matching Pattern (a glob
// relative to the workspace) are deleted Days after the run ends.
type Rule struct {
	Pattern string
	Days    int
}

// DefaultRetentionPattern is the rule REANA adds when a maximum retention
// period is configured and the user did not give one for it.
const DefaultRetentionPattern = "**/*"

// RetentionRules validates workspace.retention_days as reana-server does
// and returns the rules sorted by pattern. maxDays <= 0 means no maximum
// (REANA's default "forever"). Otherwise every rule must stay below
// maxDays, and, as in REANA, a rule DefaultRetentionPattern with maxDays
// days is appended unless the user gave that pattern.
func RetentionRules(s *Spec, maxDays int) ([]Rule, error) {
	days := s.Workspace.RetentionDays
	rules := make([]Rule, 0, len(days)+1)
	for _, pattern := range sortedKeys(days) {
		if err := validateRetentionRule(pattern, days[pattern], maxDays); err != nil {
			return nil, err
		}
		rules = append(rules, Rule{Pattern: pattern, Days: days[pattern]})
	}
	if maxDays > 0 && !slices.ContainsFunc(rules, func(r Rule) bool { return r.Pattern == DefaultRetentionPattern }) {
		rules = append(rules, Rule{Pattern: DefaultRetentionPattern, Days: maxDays})
	}
	return rules, nil
}

// validateRetentionRule mirrors reana-server's validate_retention_rule,
// whose checks go through pathlib.PurePosixPath: "." components vanish,
// so "." or "./" count as empty.
func validateRetentionRule(pattern string, days, maxDays int) error {
	if strings.HasPrefix(pattern, "/") {
		return &ValidationError{Msg: fmt.Sprintf("Retention rule %s cannot be an absolute path", pattern)}
	}
	parts := slices.DeleteFunc(strings.Split(pattern, "/"), func(p string) bool { return p == "" || p == "." })
	if len(parts) == 0 {
		return &ValidationError{Msg: fmt.Sprintf("Retention rule %s cannot be empty", pattern)}
	}
	if slices.Contains(parts, "..") {
		return &ValidationError{Msg: fmt.Sprintf("Retention rule %s cannot contain '..'", pattern)}
	}
	if days < 0 {
		return &ValidationError{Msg: fmt.Sprintf("Retention rule %s must have a non-negative number of days", pattern)}
	}
	if maxDays > 0 && days >= maxDays {
		return &ValidationError{Msg: fmt.Sprintf(
			"Maximum workflow retention period was reached. Please use less than %d days.", maxDays)}
	}
	return nil
}
