package edge_test

import (
	"testing"

	"github.com/idbroker/broker/internal/importcheck"
)

// TestImports holds the package to its doc comment: the standard library
// only.
func TestImports(t *testing.T) {
	importcheck.Only(t, nil)
}
