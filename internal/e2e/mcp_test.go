package e2e

import (
	"context"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/idbroker/broker/internal/mcptest"
)

// TestMCP_TypeScriptSDK runs e2e/mcp.spec.mjs: the TypeScript MCP SDK's
// client (Client, StreamableHTTPClientTransport and an OAuthClientProvider)
// against a broker and the sample server of examples/mcp/whoami, signing
// in over HTTP, calling the tool and refreshing.
//
// It needs node and `npm ci` in e2e/. Without them it skips, except
// under CI=true, where it fails.
func TestMCP_TypeScriptSDK(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	node := lookPath("node")
	_, depsErr := os.Stat(filepath.Join(root, "e2e", "node_modules", "@modelcontextprotocol", "sdk"))
	if node == "" || depsErr != nil {
		msg := fmt.Sprintf("the TypeScript MCP SDK test needs node (found %q) and `npm ci` in e2e/ (%v)", node, depsErr)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}

	// Tokens of 2 s, and a millisecond of clock skew at the servers: an
	// expired token is refused at once, which is what makes the client
	// refresh. Registration is open, for the dynamic registration case.
	const ttl = 2 * time.Second
	w := mcptest.Start(t, mcptest.Options{TokenTTL: ttl, ClockSkew: time.Millisecond, Extra: mcptest.Extra{YAML: "registration: { policy: open }\n"}})
	// Node trusts the sample servers' certificate through
	// NODE_EXTRA_CA_CERTS.
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: w.Certificate.Raw}), 0o600); err != nil {
		t.Fatal(err)
	}
	mail := w.Mail
	mailbox := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, mail.LastCode(r.URL.Query().Get("to")))
	}))
	t.Cleanup(mailbox.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", "mcp.spec.mjs")
	cmd.Dir = filepath.Join(root, "e2e")
	cmd.Env = append(os.Environ(),
		"BROKER_URL="+w.Issuer,
		"MCP_URL="+w.MCPURL,
		"OTHER_URL="+w.OtherURL,
		"MAILBOX_URL="+mailbox.URL,
		"CLIENT_ID="+mcptest.CLIClient,
		"TOKEN_TTL_MS="+strconv.FormatInt(ttl.Milliseconds(), 10),
		"NODE_EXTRA_CA_CERTS="+caFile,
	)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("node run (%v):\n%s", time.Since(start).Round(time.Millisecond), out)
	if err != nil {
		t.Fatalf("the TypeScript MCP SDK test failed: %v", err)
	}
}
