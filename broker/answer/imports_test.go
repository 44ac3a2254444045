package answer_test

import (
	"testing"

	"github.com/idbroker/broker/internal/importcheck"
)

// TestImports holds the package to what doc.go says: storage and web of
// the project's packages, the OpenID Connect library and Prometheus, and
// never the broker nor a connector.
func TestImports(t *testing.T) {
	importcheck.Only(t, []string{
		"github.com/idbroker/broker/broker/edge",
		"github.com/idbroker/broker/storage",
		"github.com/idbroker/broker/web",
		"github.com/zitadel/oidc/v3/pkg/oidc",
		"github.com/zitadel/oidc/v3/pkg/op",
		"github.com/prometheus/client_golang/prometheus",
	})
}
