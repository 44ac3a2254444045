package registration_test

import (
	"testing"

	"github.com/idbroker/broker/internal/importcheck"
)

// TestImports holds the package to its doc comment.
func TestImports(t *testing.T) {
	importcheck.Only(t, []string{
		"github.com/idbroker/broker/broker/answer",
		"github.com/idbroker/broker/broker/clients",
		"github.com/idbroker/broker/broker/edge",
		"github.com/idbroker/broker/broker/ratelimit",
		"github.com/idbroker/broker/keys",
		"github.com/idbroker/broker/storage",
	})
}
