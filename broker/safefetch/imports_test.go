package safefetch_test

import (
	"testing"

	"github.com/idbroker/broker/internal/importcheck"
)

// TestImports holds the package to its doc comment: the standard
// library alone.
func TestImports(t *testing.T) {
	importcheck.Only(t, nil)
}
