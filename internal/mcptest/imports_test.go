package mcptest_test

import (
	"testing"

	"github.com/idbroker/broker/internal/importcheck"
)

// TestImports holds the package to its doc comment: the broker, the
// test fakes and the sample server, never an MCP SDK.
func TestImports(t *testing.T) {
	importcheck.Only(t, []string{
		"github.com/idbroker/broker/broker",
		"github.com/idbroker/broker/examples/mcp/whoami",
		"github.com/idbroker/broker/internal/testenv",
		"github.com/idbroker/broker/storage/memory",
	})
}
