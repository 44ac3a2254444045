package orgs_test

import (
	"testing"

	"github.com/idbroker/broker/internal/importcheck"
)

// TestImports holds the package to its doc comment: storage alone.
func TestImports(t *testing.T) {
	importcheck.Only(t, []string{"github.com/idbroker/broker/storage"})
}
