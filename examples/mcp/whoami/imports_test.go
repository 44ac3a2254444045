package whoami_test

import (
	"testing"

	"github.com/idbroker/broker/internal/importcheck"
)

// TestImports holds the package to its doc comment: a downstream
// service, which knows the broker only through the resource package.
func TestImports(t *testing.T) {
	importcheck.Only(t, []string{
		"github.com/idbroker/broker/resource",
		"github.com/modelcontextprotocol/go-sdk/auth",
		"github.com/modelcontextprotocol/go-sdk/mcp",
	})
}
