package authflow_test

import (
	"testing"

	"github.com/idbroker/broker/internal/importcheck"
)

// TestImports holds the package to its doc comment: never the broker,
// token exchange nor the admin API, and of the connectors only otp.
func TestImports(t *testing.T) {
	importcheck.Only(t, []string{
		"github.com/idbroker/broker/broker/answer",
		"github.com/idbroker/broker/broker/backchannel",
		"github.com/idbroker/broker/broker/clients",
		"github.com/idbroker/broker/broker/connectors",
		"github.com/idbroker/broker/broker/edge",
		"github.com/idbroker/broker/broker/identity",
		"github.com/idbroker/broker/broker/ratelimit",
		"github.com/idbroker/broker/broker/tokens",
		"github.com/idbroker/broker/keys",
		"github.com/idbroker/broker/storage",
		"github.com/idbroker/broker/upstream",
		"github.com/idbroker/broker/upstream/otp",
		"github.com/idbroker/broker/web",
		"github.com/google/uuid",
		"github.com/prometheus/client_golang/prometheus",
		"github.com/zitadel/oidc/v3/pkg/http",
		"github.com/zitadel/oidc/v3/pkg/oidc",
		"github.com/zitadel/oidc/v3/pkg/op",
	})
}
