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
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idbroker/broker/examples/mcp/whoami"
	"github.com/idbroker/broker/internal/mcptest"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/mcp"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

const (
	userEmail   = "ada@example.com"
	redirectURL = mcptest.RedirectURL
	cliClient   = mcptest.CLIClient
	uuidPattern = `^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`
)

// world is mcptest's, seen by the MCP SDK's client.
type world struct {
	*mcptest.World
	t *testing.T
	// tokens counts the MCP client's token endpoint requests by grant
	// type and answer.
	tokens *tokenCounter
}

// newWorld starts a broker and two sample servers, with f's settings.
func newWorld(t *testing.T, x mcptest.Extra) *world {
	t.Helper()
	w := mcptest.Start(t, mcptest.Options{Extra: x})
	return &world{World: w, t: t, tokens: &tokenCounter{next: w.TLSClient.Transport, tokenURL: w.Issuer + "/token"}}
}

// mcpClient is the HTTP client the MCP SDK uses: it trusts the test
// servers and counts token requests.
func (w *world) mcpClient() *http.Client {
	return &http.Client{Transport: w.tokens, Timeout: 30 * time.Second}
}

// metadata is the broker's RFC 8414 document.
func (w *world) metadata() map[string]any {
	w.t.Helper()
	return mcptest.Metadata(w.t, w.Issuer)
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
	session, id := connect(t, w, w.MCPURL, h)
	if !regexp.MustCompile(uuidPattern).MatchString(id.Subject) {
		t.Errorf("whoami sub %q is not a platform UUID", id.Subject)
	}
	if !wantClient(id.ClientID) || !slices.Equal(id.Scopes, []string{whoami.DefaultScope}) || !slices.Equal(id.Audience, []string{w.MCPURL}) {
		t.Errorf("whoami = %+v; want the client's id, scopes [whoami], aud [%s]", id, w.MCPURL)
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
	if logins := w.Mail.Count(p.email); logins != 1 {
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
	status, challenge := post(t, w.TLSClient, w.OtherURL, tok.AccessToken)
	otherMetadata := strings.Replace(w.OtherURL, "/other", "/.well-known/oauth-protected-resource/other", 1)
	if status != http.StatusUnauthorized || !strings.Contains(challenge, `error="invalid_token"`) ||
		!strings.Contains(challenge, `resource_metadata="`+otherMetadata+`"`) {
		t.Errorf("the other server answered %d %q; want 401 invalid_token naming %s", status, challenge, otherMetadata)
	}
	if status, _ := post(t, w.TLSClient, w.MCPURL, tok.AccessToken); status == http.StatusUnauthorized || status == http.StatusForbidden {
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
	w := newWorld(t, mcptest.Extra{})
	p := newPerson(userEmail, w.Issuer, w.Mail)
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
	w := newWorld(t, mcptest.Extra{})
	status, challenge := post(t, w.TLSClient, w.MCPURL, "")
	metadataURL := strings.Replace(w.MCPURL, "/mcp", "/.well-known/oauth-protected-resource/mcp", 1)
	if status != http.StatusUnauthorized || !strings.Contains(challenge, `resource_metadata="`+metadataURL+`"`) ||
		!strings.Contains(challenge, `scope="whoami"`) {
		t.Fatalf("no token: %d %q; want 401 naming %s and scope whoami", status, challenge, metadataURL)
	}
	ctx := context.Background()
	prm, err := oauthex.GetProtectedResourceMetadata(ctx, metadataURL, w.MCPURL, w.TLSClient)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(prm.AuthorizationServers, []string{w.Issuer}) || !slices.Equal(prm.ScopesSupported, []string{"whoami"}) ||
		!slices.Equal(prm.BearerMethodsSupported, []string{"header"}) {
		t.Errorf("protected resource metadata %+v", prm)
	}
	asm, err := auth.GetAuthServerMetadata(ctx, w.Issuer, http.DefaultClient)
	if err != nil || asm == nil {
		t.Fatalf("authorization server metadata: %v", err)
	}
	if asm.Issuer != w.Issuer || !slices.Contains(asm.CodeChallengeMethodsSupported, "S256") || !asm.AuthorizationResponseIssParameterSupported {
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
	w := newWorld(t, mcptest.Extra{})
	signIn := func(email string) (*mcp.ClientSession, string) {
		p := newPerson(email, w.Issuer, w.Mail)
		h := codeHandler(t, w, p, auth.AuthorizationCodeHandlerConfig{
			PreregisteredClient: &oauthex.ClientCredentials{ClientID: cliClient},
			RedirectURL:         redirectURL,
		})
		session, _ := connect(t, w, w.MCPURL, h)
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
		req, _ := http.NewRequest(http.MethodPost, w.MCPURL, strings.NewReader(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"whoami"}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Mcp-Session-Id", ada.ID())
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := w.TLSClient.Do(req)
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
