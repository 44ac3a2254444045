package tokens_test

import (
	"testing"

	"github.com/idbroker/broker/internal/importcheck"
)

// TestImports holds the package to its doc comment: never the broker,
// the login flow nor token exchange, nor a concrete connector.
func TestImports(t *testing.T) {
	importcheck.Only(t, []string{
		"github.com/idbroker/broker/broker/admin",
		"github.com/idbroker/broker/broker/answer",
		"github.com/idbroker/broker/broker/clients",
		"github.com/idbroker/broker/broker/connectors",
		"github.com/idbroker/broker/broker/identity",
		"github.com/idbroker/broker/keys",
		"github.com/idbroker/broker/storage",
		"github.com/idbroker/broker/upstream",
		"github.com/idbroker/broker/upstream/jwks",
		"github.com/go-jose/go-jose/v4",
		"github.com/google/uuid",
		"github.com/zitadel/oidc/v3/pkg/oidc",
		"github.com/zitadel/oidc/v3/pkg/op",
	})
}
