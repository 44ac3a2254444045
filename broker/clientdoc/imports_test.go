package clientdoc_test

import (
	"testing"

	"github.com/idbroker/broker/internal/importcheck"
)

// TestImports holds the package to its doc comment.
func TestImports(t *testing.T) {
	importcheck.Only(t, []string{
		"github.com/idbroker/broker/broker/admin",
		"github.com/idbroker/broker/broker/clients",
		"github.com/idbroker/broker/broker/edge",
		"github.com/idbroker/broker/broker/ratelimit",
		"github.com/idbroker/broker/broker/safefetch",
		"github.com/idbroker/broker/storage",
	})
}
