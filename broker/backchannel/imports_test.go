package backchannel_test

import (
	"testing"

	"github.com/idbroker/broker/internal/importcheck"
)

// TestImports holds the package to what doc.go says: storage and keys of
// the project's packages, never the broker itself, the OpenID Connect
// library nor a connector.
func TestImports(t *testing.T) {
	importcheck.Only(t, []string{
		"github.com/idbroker/broker/storage",
		"github.com/idbroker/broker/keys",
		"github.com/google/uuid",
	})
}
