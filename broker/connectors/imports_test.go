package connectors_test

import (
	"testing"

	"github.com/idbroker/broker/internal/importcheck"
)

// TestImports holds the package to its doc comment: upstream, the otp
// connector and web, never the broker nor another connector.
func TestImports(t *testing.T) {
	importcheck.Only(t, []string{
		"github.com/idbroker/broker/upstream",
		"github.com/idbroker/broker/upstream/jwks",
		"github.com/idbroker/broker/upstream/otp",
		"github.com/idbroker/broker/web",
	})
}
