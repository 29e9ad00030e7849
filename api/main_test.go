package api_test

import (
	"os"
	"testing"

	"github.com/reana-site/reana-site/test/helpertest"
)

// TestMain lets the test binary act as the helper, so file operations go
// through the real helper across the real process boundary.
func TestMain(m *testing.M) {
	helpertest.MaybeRunHelper()
	os.Exit(m.Run())
}
