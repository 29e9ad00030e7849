package main

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/reana-site/reana-site/batch"
)

// TestEveryKindHasABuilder: a backend added to batch.Kinds must be
// buildable by serve, and serve builds nothing that is not in the table.
func TestEveryKindHasABuilder(t *testing.T) {
	builders := backendBuilders()
	var names []string
	for _, k := range batch.Kinds() {
		names = append(names, k.Name)
		assert.Contains(t, builders, k.Name)
	}
	for name := range builders {
		assert.Contains(t, names, name)
	}
}
