package admin_test

import (
	"testing"

	"github.com/idbroker/broker/internal/importcheck"
)

// TestImports holds the package to what doc.go says: storage, upstream,
// broker/identity and broker/answer of the project's packages, never the
// broker itself, keys nor a connector.
func TestImports(t *testing.T) {
	importcheck.Only(t, []string{
		"github.com/idbroker/broker/storage",
		"github.com/idbroker/broker/upstream",
		"github.com/idbroker/broker/broker/identity",
		"github.com/idbroker/broker/broker/answer",
		"github.com/idbroker/broker/broker/edge",
		"github.com/google/uuid",
	})
}
