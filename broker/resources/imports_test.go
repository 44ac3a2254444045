package resources_test

import (
	"testing"

	"github.com/idbroker/broker/internal/importcheck"
)

// TestImports holds the package to what doc.go says: storage, the client
// model and the OpenID Connect library's errors.
func TestImports(t *testing.T) {
	importcheck.Only(t, []string{
		"github.com/idbroker/broker/broker/clients",
		"github.com/idbroker/broker/broker/edge",
		"github.com/idbroker/broker/storage",
		"github.com/zitadel/oidc/v3/pkg/oidc",
	})
}
