package clients_test

import (
	"testing"

	"github.com/idbroker/broker/internal/importcheck"
)

// TestImports holds the package to what doc.go says: the broker's
// answer, edge and ratelimit parts, storage, upstream and upstream/jwks of
// the project's packages and the OpenID Connect library it implements
// op.Client for, never the broker itself, the admin package nor a
// connector.
func TestImports(t *testing.T) {
	importcheck.Only(t, []string{
		"github.com/idbroker/broker/broker/answer",
		"github.com/idbroker/broker/broker/edge",
		"github.com/idbroker/broker/broker/ratelimit",
		"github.com/idbroker/broker/storage",
		"github.com/idbroker/broker/upstream",
		"github.com/idbroker/broker/upstream/jwks",
		"github.com/google/uuid",
		"github.com/go-jose/go-jose/v4/jwt",
		"github.com/go-jose/go-jose/v4",
		"github.com/zitadel/oidc/v3/pkg/oidc",
		"github.com/zitadel/oidc/v3/pkg/op",
	})
}
