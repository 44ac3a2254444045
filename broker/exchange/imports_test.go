package exchange_test

import (
	"testing"

	"github.com/idbroker/broker/internal/importcheck"
)

// TestImports holds the package to its doc comment: never the broker
// nor the login flow, nor a concrete connector.
func TestImports(t *testing.T) {
	importcheck.Only(t, []string{
		"github.com/idbroker/broker/broker/answer",
		"github.com/idbroker/broker/broker/clients",
		"github.com/idbroker/broker/broker/connectors",
		"github.com/idbroker/broker/broker/identity",
		"github.com/idbroker/broker/broker/tokens",
		"github.com/idbroker/broker/storage",
		"github.com/idbroker/broker/upstream",
		"github.com/idbroker/broker/upstream/jwks",
		"github.com/prometheus/client_golang/prometheus",
		"github.com/zitadel/oidc/v3/pkg/oidc",
		"github.com/zitadel/oidc/v3/pkg/op",
	})
}
