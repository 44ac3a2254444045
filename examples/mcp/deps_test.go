package mcp_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestBrokerBinary_LeavesOutTheMCPSDK holds the rule that the MCP SDK
// is a dependency of the examples and tests alone: nothing the broker
// binary is built from imports it.
func TestBrokerBinary_LeavesOutTheMCPSDK(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/idbroker/broker/cmd/broker").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, pkg := range strings.Fields(string(out)) {
		if strings.HasPrefix(pkg, "github.com/modelcontextprotocol/") {
			t.Errorf("the broker binary imports %s", pkg)
		}
	}
}
