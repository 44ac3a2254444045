package clients_test

import (
	"testing"

	"github.com/idbroker/broker/internal/importcheck"
)

// TestImports holds the package to what doc.go says: storage and
// upstream/jwks of the project's packages and the OpenID Connect library
// it implements op.Client for, never the broker itself, the admin
// package nor a connector.
func TestImports(t *testing.T) {
	importcheck.Only(t, []string{
		"github.com/idbroker/broker/storage",
		"github.com/idbroker/broker/upstream/jwks",
		"github.com/go-jose/go-jose/v4",
		"github.com/zitadel/oidc/v3/pkg/oidc",
		"github.com/zitadel/oidc/v3/pkg/op",
	})
}
