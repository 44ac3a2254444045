// Package mcp_test runs the official Go MCP SDK's client against the
// sample server of examples/mcp/whoami, protected by a real broker: the
// client knows only the server's URL, finds the broker through the
// server's RFC 9728 metadata and the broker's RFC 8414 metadata, gets a
// client identity (preregistered, by client ID metadata document, or by
// dynamic registration), signs a person in through the broker's pages,
// calls the tool, and refreshes.
package mcp_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/examples/mcp/whoami"
	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/storage/memory"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

const (
	userEmail   = "ada@example.com"
	redirectURL = "http://127.0.0.1/callback" // the MCP client's; never reached: the person stops there
	cliClient   = "mcp-cli"                   // a first-party public client of the configuration
	uuidPattern = `^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`
)

// brokerConfig is what an operator writes for an MCP server: the server's
// endpoint registered as a resource (short-lived tokens, so the client
// must refresh), and a first-party client for the operator's own CLI.
const brokerConfig = `
issuer: ${ISSUER}
storage: { type: memory }
connectors:
  - { id: otp, type: otp }
clients:
  - { id: mcp-cli, name: "MCP CLI", public: true, redirectURIs: ["http://127.0.0.1/callback"],
      grantTypes: [authorization_code, refresh_token], scopes: [whoami] }
resources:
  - { id: "${MCP_URL}", scopes: [whoami], thirdParty: true, accessTokenTTL: 5s }
  - { id: "${OTHER_URL}", scopes: [whoami], thirdParty: true }
`

// world is a broker and two sample MCP servers, each a resource of its
// own, served over TLS as a resource identifier must be.
type world struct {
	t        *testing.T
	issuer   string
	mail     *testenv.Mailer
	logs     *testenv.SyncBuffer
	mcpURL   string // the sample server's endpoint: its resource identifier
	otherURL string // a second sample server, another resource
	// tlsClient trusts the test servers' certificate.
	tlsClient *http.Client
	// tokens counts the MCP client's token endpoint requests by grant
	// type and answer.
	tokens *tokenCounter
}

// feature is what a test adds to the world for a feature that may be
// built on another branch: its settings, appended to brokerConfig, and
// what it sets in the broker's options (by field name, since the field
// may not exist yet).
type feature struct {
	name    string // as requireFeature names it
	yaml    string
	options map[string]any
}

// newWorld starts it all, with f's settings.
func newWorld(t *testing.T, f feature) *world {
	t.Helper()
	mcpSrv := httptest.NewUnstartedServer(nil)
	otherSrv := httptest.NewUnstartedServer(nil)
	brokerSrv := httptest.NewUnstartedServer(nil)
	w := &world{
		t:        t,
		issuer:   "http://" + brokerSrv.Listener.Addr().String(),
		mail:     &testenv.Mailer{},
		logs:     &testenv.SyncBuffer{},
		mcpURL:   "https://" + mcpSrv.Listener.Addr().String() + "/mcp",
		otherURL: "https://" + otherSrv.Listener.Addr().String() + "/other",
	}
	vars := map[string]string{"ISSUER": w.issuer, "MCP_URL": w.mcpURL, "OTHER_URL": w.otherURL}
	startBroker(t, brokerSrv, brokerConfig+f.yaml, vars, f, w.mail, w.logs)
	mcpSrv.Config.Handler = sampleServer(t, w.mcpURL, w.issuer)
	mcpSrv.StartTLS()
	t.Cleanup(mcpSrv.Close)
	otherSrv.Config.Handler = sampleServer(t, w.otherURL, w.issuer)
	otherSrv.StartTLS()
	t.Cleanup(otherSrv.Close)
	w.tlsClient = mcpSrv.Client() // every httptest TLS server has the same certificate

	w.tokens = &tokenCounter{next: w.tlsClient.Transport, tokenURL: w.issuer + "/token"}
	return w
}

// startBroker serves a broker of config on srv. A configuration that
// names a setting this broker does not know means f is not merged yet.
func startBroker(t *testing.T, srv *httptest.Server, config string, vars map[string]string, f feature, mail *testenv.Mailer, logs *testenv.SyncBuffer) {
	t.Helper()
	cfg, err := broker.ParseConfig([]byte(config), func(k string) (string, bool) { v, ok := vars[k]; return v, ok })
	if err != nil && f.name != "" && strings.Contains(err.Error(), "not found in type") {
		requireFeature(t, false, f.name+" (its configuration: "+err.Error()+")")
	}
	if err != nil {
		t.Fatal(err)
	}
	opts := broker.Options{
		Storage: memory.New(),
		Secret:  broker.NewEphemeralRootSecret(),
		Mailer:  mail,
		Logger:  slog.New(slog.NewTextHandler(logs, nil)),
	}
	setOptions(t, &opts, f.options)
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

// setOptions sets the named fields of opts, failing t for a field the
// broker's Options lack.
func setOptions(t *testing.T, opts *broker.Options, fields map[string]any) {
	t.Helper()
	v := reflect.ValueOf(opts).Elem()
	for name, value := range fields {
		field := v.FieldByName(name)
		if !field.IsValid() || !reflect.TypeOf(value).AssignableTo(field.Type()) {
			t.Fatalf("broker.Options has no field %s of type %T", name, value)
		}
		field.Set(reflect.ValueOf(value))
	}
}

// sampleServer is the handler of examples/mcp/whoami for resource.
func sampleServer(t *testing.T, resource, issuer string) http.Handler {
	t.Helper()
	h, err := whoami.New(context.Background(), whoami.Config{Resource: resource, Issuer: issuer})
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// mcpClient is the HTTP client the MCP SDK uses: it trusts the test
// servers and counts token requests.
func (w *world) mcpClient() *http.Client {
	return &http.Client{Transport: w.tokens, Timeout: 30 * time.Second}
}

// metadata is the broker's RFC 8414 document.
func (w *world) metadata() map[string]any {
	w.t.Helper()
	resp, err := http.Get(w.issuer + "/.well-known/oauth-authorization-server")
	if err != nil {
		w.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != http.StatusOK {
		w.t.Fatalf("authorization server metadata: %d %v", resp.StatusCode, err)
	}
	return m
}

// requireFeature stops the test when the broker does not advertise a
// feature that is built on another branch: the test is written in full
// and runs as soon as the feature is merged.
func requireFeature(t *testing.T, advertised bool, feature string) {
	t.Helper()
	if !advertised {
		t.Skipf("the broker lacks %s, built on another branch", feature)
	}
}

// connect runs the MCP SDK's client with handler against url and calls
// the whoami tool.
func connect(t *testing.T, w *world, endpoint string, handler auth.OAuthHandler) (*mcp.ClientSession, whoami.Identity) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	client := mcp.NewClient(&mcp.Implementation{Name: "broker-mcp-test", Version: "1.0.0"}, nil)
	session, err := client.Connect(ctx, &mcp.StreamableClientTransport{Endpoint: endpoint, HTTPClient: w.mcpClient(), OAuthHandler: handler}, nil)
	if err != nil {
		t.Fatalf("connect to %s: %v", endpoint, err)
	}
	t.Cleanup(func() { session.Close() })
	return session, callWhoami(t, session)
}

func callWhoami(t *testing.T, session *mcp.ClientSession) whoami.Identity {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := session.CallTool(ctx, &mcp.CallToolParams{Name: "whoami"})
	if err != nil {
		t.Fatalf("call whoami: %v", err)
	}
	if res.IsError {
		t.Fatalf("whoami answered an error: %+v", res.Content)
	}
	raw, err := json.Marshal(res.StructuredContent)
	if err != nil {
		t.Fatal(err)
	}
	var id whoami.Identity
	if err := json.Unmarshal(raw, &id); err != nil {
		t.Fatalf("whoami answer %s: %v", raw, err)
	}
	return id
}

// codeHandler is the SDK's authorization code handler for person, with
// registration as given.
func codeHandler(t *testing.T, w *world, p *person, cfg auth.AuthorizationCodeHandlerConfig) *auth.AuthorizationCodeHandler {
	t.Helper()
	cfg.AuthorizationCodeFetcher = p.Fetch
	cfg.RequestRefreshToken = true
	cfg.Client = w.mcpClient()
	h, err := auth.NewAuthorizationCodeHandler(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// checkFlow runs what every registration shares: the client connects
// with only the server's URL, the person signs in (consenting when the
// client is third-party), the tool names the person, the client and the
// resource; the short-lived token is refreshed and the tool called
// again; and the token is refused by the other server.
func checkFlow(t *testing.T, w *world, p *person, h *auth.AuthorizationCodeHandler, wantClient func(id string) bool, consent bool) {
	t.Helper()
	session, id := connect(t, w, w.mcpURL, h)
	if !regexp.MustCompile(uuidPattern).MatchString(id.Subject) {
		t.Errorf("whoami sub %q is not a platform UUID", id.Subject)
	}
	if !wantClient(id.ClientID) || !slices.Equal(id.Scopes, []string{whoami.DefaultScope}) || !slices.Equal(id.Audience, []string{w.mcpURL}) {
		t.Errorf("whoami = %+v; want the client's id, scopes [whoami], aud [%s]", id, w.mcpURL)
	}
	if got := p.consents.Load(); (got > 0) != consent {
		t.Errorf("consent pages answered: %d; want consent %v", got, consent)
	}

	// The resource's tokens live 5 s, inside the oauth2 package's 10 s
	// expiry margin, so each use refreshes: the call after the first
	// runs on a refreshed token.
	before := w.tokens.count("refresh_token", http.StatusOK)
	again := callWhoami(t, session)
	if again.Subject != id.Subject {
		t.Errorf("after refresh whoami sub %q, before %q", again.Subject, id.Subject)
	}
	if after := w.tokens.count("refresh_token", http.StatusOK); after <= before {
		t.Errorf("refreshes answered 200: %d before the second call, %d after; want more", before, after)
	}
	if n := w.tokens.count("refresh_token", 0) - w.tokens.count("refresh_token", http.StatusOK); n != 0 {
		t.Errorf("%d refreshes were refused", n)
	}
	if logins := w.mail.Count(p.email); logins != 1 {
		t.Errorf("%d codes were mailed; the refresh must not sign the person in again", logins)
	}

	// The same token at another MCP server: refused, and the challenge
	// sends the client to that server's own metadata.
	ts, err := h.TokenSource(context.Background())
	if err != nil || ts == nil {
		t.Fatalf("token source: %v", err)
	}
	tok, err := ts.Token()
	if err != nil {
		t.Fatal(err)
	}
	status, challenge := post(t, w.tlsClient, w.otherURL, tok.AccessToken)
	otherMetadata := strings.Replace(w.otherURL, "/other", "/.well-known/oauth-protected-resource/other", 1)
	if status != http.StatusUnauthorized || !strings.Contains(challenge, `error="invalid_token"`) ||
		!strings.Contains(challenge, `resource_metadata="`+otherMetadata+`"`) {
		t.Errorf("the other server answered %d %q; want 401 invalid_token naming %s", status, challenge, otherMetadata)
	}
	if status, _ := post(t, w.tlsClient, w.mcpURL, tok.AccessToken); status == http.StatusUnauthorized || status == http.StatusForbidden {
		t.Errorf("the sample server itself refused the token: %d", status)
	}
}

// post sends an MCP initialize request to endpoint with token.
func post(t *testing.T, c *http.Client, endpoint, token string) (int, string) {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`
	req, _ := http.NewRequest(http.MethodPost, endpoint, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, resp.Body)
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
}

// TestMCP_PreregisteredClient: a first-party client of the
// configuration, known to the MCP client beforehand, signs in without a
// consent page.
func TestMCP_PreregisteredClient(t *testing.T) {
	w := newWorld(t, feature{})
	p := newPerson(userEmail, w.issuer, w.mail)
	h := codeHandler(t, w, p, auth.AuthorizationCodeHandlerConfig{
		PreregisteredClient: &oauthex.ClientCredentials{ClientID: cliClient},
		RedirectURL:         redirectURL,
	})
	checkFlow(t, w, p, h, func(id string) bool { return id == cliClient }, false)
}

// TestMCP_ServerAnswersWithoutToken shows where an MCP client starts: a
// request without a token gets 401 and a challenge naming the server's
// metadata, which names the broker, whose metadata lists what the client
// needs.
func TestMCP_ServerAnswersWithoutToken(t *testing.T) {
	w := newWorld(t, feature{})
	status, challenge := post(t, w.tlsClient, w.mcpURL, "")
	metadataURL := strings.Replace(w.mcpURL, "/mcp", "/.well-known/oauth-protected-resource/mcp", 1)
	if status != http.StatusUnauthorized || !strings.Contains(challenge, `resource_metadata="`+metadataURL+`"`) ||
		!strings.Contains(challenge, `scope="whoami"`) {
		t.Fatalf("no token: %d %q; want 401 naming %s and scope whoami", status, challenge, metadataURL)
	}
	ctx := context.Background()
	prm, err := oauthex.GetProtectedResourceMetadata(ctx, metadataURL, w.mcpURL, w.tlsClient)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(prm.AuthorizationServers, []string{w.issuer}) || !slices.Equal(prm.ScopesSupported, []string{"whoami"}) ||
		!slices.Equal(prm.BearerMethodsSupported, []string{"header"}) {
		t.Errorf("protected resource metadata %+v", prm)
	}
	asm, err := auth.GetAuthServerMetadata(ctx, w.issuer, http.DefaultClient)
	if err != nil || asm == nil {
		t.Fatalf("authorization server metadata: %v", err)
	}
	if asm.Issuer != w.issuer || !slices.Contains(asm.CodeChallengeMethodsSupported, "S256") || !asm.AuthorizationResponseIssParameterSupported {
		t.Errorf("authorization server metadata %+v", asm)
	}
}

// tokenCounter is an http.RoundTripper that counts the requests to the
// broker's token endpoint by grant type and answer.
type tokenCounter struct {
	next     http.RoundTripper
	tokenURL string

	mu     sync.Mutex // guards counts
	counts map[string]map[int]int
}

func (c *tokenCounter) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.String() != c.tokenURL || req.Body == nil {
		return c.next.RoundTrip(req)
	}
	body, err := io.ReadAll(req.Body)
	req.Body.Close()
	if err != nil {
		return nil, err
	}
	form, _ := url.ParseQuery(string(body))
	req = req.Clone(req.Context())
	req.Body = io.NopCloser(bytes.NewReader(body))
	resp, err := c.next.RoundTrip(req)
	if err == nil {
		c.mu.Lock()
		if c.counts == nil {
			c.counts = map[string]map[int]int{}
		}
		if c.counts[form.Get("grant_type")] == nil {
			c.counts[form.Get("grant_type")] = map[int]int{}
		}
		c.counts[form.Get("grant_type")][resp.StatusCode]++
		c.mu.Unlock()
	}
	return resp, err
}

// count is how many grant requests got status; status 0 counts all.
func (c *tokenCounter) count(grant string, status int) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for s, k := range c.counts[grant] {
		if status == 0 || s == status {
			n += k
		}
	}
	return n
}

// TestWhoami_SessionBelongsToItsUser: the sample server hands the
// verified token's subject to the SDK, which binds each MCP session to
// it, so another user's valid token cannot drive a session whose id it
// learnt.
func TestWhoami_SessionBelongsToItsUser(t *testing.T) {
	w := newWorld(t, feature{})
	signIn := func(email string) (*mcp.ClientSession, string) {
		p := newPerson(email, w.issuer, w.mail)
		h := codeHandler(t, w, p, auth.AuthorizationCodeHandlerConfig{
			PreregisteredClient: &oauthex.ClientCredentials{ClientID: cliClient},
			RedirectURL:         redirectURL,
		})
		session, _ := connect(t, w, w.mcpURL, h)
		ts, err := h.TokenSource(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		tok, err := ts.Token()
		if err != nil {
			t.Fatal(err)
		}
		return session, tok.AccessToken
	}
	ada, adaToken := signIn("ada@example.com")
	_, bobToken := signIn("bob@example.com")

	call := func(token string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, w.mcpURL, strings.NewReader(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"whoami"}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Session-Id", ada.ID())
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := w.tlsClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode
	}
	if got := call(bobToken); got != http.StatusForbidden {
		t.Errorf("another user's token on ada's session: %d, want 403", got)
	}
	if got := call(adaToken); got != http.StatusOK {
		t.Errorf("ada's token on her session: %d, want 200", got)
	}
}
