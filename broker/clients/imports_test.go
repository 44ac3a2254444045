package clients_test

import (
	"testing"

	"github.com/idbroker/broker/internal/importcheck"
)

// TestImports holds the package to what doc.go says: upstream/jwks of the
// project's packages, never the broker itself, the admin package, the
// OpenID Connect library nor a connector.
func TestImports(t *testing.T) {
	importcheck.Only(t, []string{
		"github.com/idbroker/broker/upstream/jwks",
		"github.com/go-jose/go-jose/v4",
	})
}
