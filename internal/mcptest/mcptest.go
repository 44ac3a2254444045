package mcptest

import (
	"context"
	"crypto/x509"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/examples/mcp/whoami"
	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/storage/memory"
)

// The configuration's first-party client, its redirect URI (never
// reached: the test's person stops there) and the sample servers' scope.
const (
	CLIClient   = "mcp-cli"
	RedirectURL = "http://127.0.0.1/callback"
	Scope       = whoami.DefaultScope
)

// config is what an operator writes for an MCP server: the server's
// endpoint registered as a resource whose tokens are short-lived (so the
// client must refresh), another server, and a first-party public client
// for the operator's own CLI.
const config = `
issuer: ${ISSUER}
storage: { type: memory }
connectors:
  - { id: otp, type: otp }
clients:
  - { id: mcp-cli, name: "MCP CLI", public: true, redirectURIs: ["http://127.0.0.1/callback"],
      grantTypes: [authorization_code, refresh_token], scopes: [whoami] }
resources:
  - { id: "${MCP_URL}", scopes: [whoami], thirdParty: true, accessTokenTTL: "${TOKEN_TTL}" }
  - { id: "${OTHER_URL}", scopes: [whoami], thirdParty: true }
`

// Extra is what a test adds to the broker: settings appended to the
// configuration, and the roots it trusts for the hosts serving client ID
// metadata documents.
type Extra struct {
	YAML                string
	ClientDocumentRoots *x509.CertPool
}

// Options are a World's.
type Options struct {
	// TokenTTL is the sample server's access-token lifetime at the
	// broker. Default 5 s.
	TokenTTL time.Duration
	// ClockSkew is the sample servers'; default the resource package's.
	ClockSkew time.Duration
	Extra     Extra
}

// World is a broker and two sample MCP servers.
type World struct {
	Issuer   string
	MCPURL   string // the sample server's endpoint: its resource identifier
	OtherURL string // a second sample server, another resource
	Mail     *testenv.Mailer
	// TLSClient trusts the sample servers; Certificate is theirs (every
	// httptest TLS server has the same).
	TLSClient   *http.Client
	Certificate *x509.Certificate
}

// Start starts a World.
func Start(t *testing.T, o Options) *World {
	t.Helper()
	if o.TokenTTL == 0 {
		o.TokenTTL = 5 * time.Second
	}
	mcpSrv, otherSrv, brokerSrv := httptest.NewUnstartedServer(nil), httptest.NewUnstartedServer(nil), httptest.NewUnstartedServer(nil)
	w := &World{
		Issuer:   "http://" + brokerSrv.Listener.Addr().String(),
		MCPURL:   "https://" + mcpSrv.Listener.Addr().String() + "/mcp",
		OtherURL: "https://" + otherSrv.Listener.Addr().String() + "/other",
		Mail:     &testenv.Mailer{},
	}
	vars := map[string]string{"ISSUER": w.Issuer, "MCP_URL": w.MCPURL, "OTHER_URL": w.OtherURL, "TOKEN_TTL": o.TokenTTL.String()}
	StartBroker(t, brokerSrv, config, vars, o.Extra, w.Mail)
	for srv, resource := range map[*httptest.Server]string{mcpSrv: w.MCPURL, otherSrv: w.OtherURL} {
		srv.Config.Handler = SampleServer(t, resource, w.Issuer, o.ClockSkew)
		srv.StartTLS()
		t.Cleanup(srv.Close)
	}
	w.TLSClient, w.Certificate = mcpSrv.Client(), mcpSrv.Certificate()
	return w
}

// StartBroker serves on srv a broker of config with x's settings, ${NAME}
// replaced from vars, whose one-time codes go to mail. Its log is shown
// when the test fails.
func StartBroker(t *testing.T, srv *httptest.Server, config string, vars map[string]string, x Extra, mail *testenv.Mailer) {
	t.Helper()
	lookup := func(k string) (string, bool) { v, ok := vars[k]; return v, ok }
	cfg, err := broker.ParseConfig([]byte(config+x.YAML), lookup)
	if err != nil {
		t.Fatal(err)
	}
	logs := &testenv.SyncBuffer{}
	opts := broker.Options{
		Storage: memory.New(),
		Secret:  broker.NewEphemeralRootSecret(),
		Mailer:  mail,
		Logger:  slog.New(slog.NewTextHandler(logs, nil)),

		ClientDocumentRoots: x.ClientDocumentRoots,
	}
	b, err := broker.New(context.Background(), cfg, opts)
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = b.Handler()
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("log of the broker at %s:\n%s", srv.URL, logs.String())
		}
	})
}

// Require fails the test when the broker does not advertise what it
// needs.
func Require(t *testing.T, present bool, what string) {
	t.Helper()
	if !present {
		t.Fatalf("the broker's metadata lacks %s", what)
	}
}

// SampleServer is the handler of examples/mcp/whoami for resource, with
// issuer as its authorization server.
func SampleServer(t *testing.T, resource, issuer string, skew time.Duration) http.Handler {
	t.Helper()
	h, err := whoami.New(context.Background(), whoami.Config{Resource: resource, Issuer: issuer, ClockSkew: skew})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// Metadata is the RFC 8414 document of the broker at issuer.
func Metadata(t *testing.T, issuer string) map[string]any {
	t.Helper()
	resp, err := http.Get(issuer + "/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("authorization server metadata: %d %v", resp.StatusCode, err)
	}
	return m
}
