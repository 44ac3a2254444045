package broker_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/resource"
)

// Registered resources (RFC 8707): two MCP servers, and a machine client
// that may use client_credentials and token exchange.
const (
	mcpA        = "https://mcp-a.example.com/mcp"
	mcpB        = "https://mcp-b.example.com/mcp"
	mcpUnknown  = "https://mcp-unknown.example.com/mcp"
	mcpAgentID  = "mcp-agent"
	mcpAgentKey = "mcp-agent-secret-0123456789abcdefghijklmnopq"
	// mcpAppID is a public client that lists the resources' scopes: a
	// client asks only for scopes its own list names.
	mcpAppID = "mcp-app"
)

func withResources(c *broker.Config, o *broker.Options) {
	c.Resources = append(c.Resources,
		broker.ResourceConfig{ID: mcpA, Scopes: []string{"tools:read", "tools:call"}, AccessTokenTTL: 5 * time.Minute},
		broker.ResourceConfig{ID: mcpB, Scopes: []string{"files:read"}, ThirdParty: true},
	)
	c.Clients = append(c.Clients, broker.ClientConfig{ID: mcpAppID, Public: true, RedirectURIs: []string{devRedirect},
		GrantTypes: []string{broker.GrantAuthorizationCode, broker.GrantRefreshToken},
		Scopes:     []string{"tools:read", "tools:call", "files:read"}})
	c.Clients = append(c.Clients, broker.ClientConfig{ID: mcpAgentID, Secret: mcpAgentKey,
		GrantTypes: []string{clientCredentialsGrant, broker.GrantTokenExchange},
		Scopes:     []string{"tools:read", "tools:call", "files:read", "other"}})
}

// resourceLogin signs in through mcpAppID asking for the given
// resources.
func resourceLogin(e *env, email, scope string, resources ...string) loginResult {
	e.t.Helper()
	return e.login(e.browser(), email, authRequest{clientID: mcpAppID, redirectURI: devRedirect, scope: scope, extra: url.Values{"resource": resources}})
}

// redeemFor redeems l's code, naming resource at the token endpoint when
// it is not empty.
func redeemFor(e *env, l loginResult, res string) tokenResponse {
	e.t.Helper()
	form := url.Values{"grant_type": {"authorization_code"}, "code": {l.code}, "redirect_uri": {l.redirectURI},
		"client_id": {l.clientID}, "code_verifier": {l.pkce.Verifier}}
	if res != "" {
		form.Set("resource", res)
	}
	return e.token(form, "", "")
}

func refreshFor(e *env, token, res string) tokenResponse {
	e.t.Helper()
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}, "client_id": {mcpAppID}}
	if res != "" {
		form.Set("resource", res)
	}
	return e.token(form, "", "")
}

// mcpVerifier is what an MCP server for aud checks tokens with.
func mcpVerifier(t *testing.T, e *env, aud string) *resource.Verifier {
	t.Helper()
	v, err := resource.NewVerifier(context.Background(), resource.Config{Issuer: e.issuer, Audience: aud})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func wantToken(t *testing.T, what string, tr tokenResponse, aud, scope string, ttl time.Duration) {
	t.Helper()
	if tr.Status != http.StatusOK || tr.AccessToken == "" {
		t.Fatalf("%s: %d %s: %s", what, tr.Status, tr.Error, tr.Description)
	}
	c := claimsOf(t, tr.AccessToken)
	if !slices.Equal(c.Audience, []string{aud}) || c.Scope != scope || tr.Scope != scope {
		t.Fatalf("%s: aud %q scope %q (response scope %q), want aud [%s] scope %q", what, c.Audience, c.Scope, tr.Scope, aud, scope)
	}
	if tr.ExpiresIn != int(ttl/time.Second) {
		t.Fatalf("%s: expires_in %d, want %d", what, tr.ExpiresIn, int(ttl/time.Second))
	}
}

func TestResources_TokenIsForItsResourceAlone(t *testing.T) {
	e := newEnv(t, withResources)
	l := resourceLogin(e, "ada@example.com", "openid email offline_access tools:read files:read", mcpA)
	tr := e.redeem(l)
	// The access token carries A's share of the scope and lives as long
	// as A says; the ID token is still issued (openid was granted).
	wantToken(t, "code for A", tr, mcpA, "tools:read", 5*time.Minute)
	if tr.IDToken == "" || tr.RefreshToken == "" {
		t.Fatalf("want an ID token and a refresh token: %+v", tr)
	}
	ctx := context.Background()
	tok, err := mcpVerifier(t, e, mcpA).Verify(ctx, tr.AccessToken)
	if err != nil {
		t.Fatalf("MCP server A refuses its own token: %v", err)
	}
	if !tok.HasScopes("tools:read") {
		t.Fatalf("token for A lacks tools:read: %+v", tok)
	}
	if _, err := mcpVerifier(t, e, mcpB).Verify(ctx, tr.AccessToken); err == nil {
		t.Fatal("MCP server B accepts a token for A")
	}
	// A refresh keeps to A, with the broker's access-token lifetime
	// capped by A's.
	wantToken(t, "refresh for A", e.refresh(mcpAppID, tr.RefreshToken), mcpA, "tools:read", 5*time.Minute)
}

func TestResources_UnknownResourceIsInvalidTarget(t *testing.T) {
	e := newEnv(t, withResources)
	// At /authorize: an error redirect to the client.
	page := e.browser().Get(e.authorizeURL(authRequest{pkce: testenv.NewPKCE(), state: "s", extra: url.Values{"resource": {mcpUnknown}}}))
	if page.Location == nil || page.Location.Query().Get("error") != "invalid_target" || page.Location.Query().Get("state") != "s" {
		t.Fatalf("authorize with an unknown resource: %d %v: %s", page.Status, page.Location, page.Body)
	}
	// At /token: 400 JSON, for each grant.
	l := resourceLogin(e, "bo@example.com", "openid offline_access tools:read", mcpA)
	assertRefusedNamed(t, "code with an unknown resource", redeemFor(e, l, mcpUnknown), http.StatusBadRequest, "invalid_target")
	l = resourceLogin(e, "bo@example.com", "openid offline_access tools:read", mcpA)
	tr := e.redeem(l)
	assertRefusedNamed(t, "refresh with an unknown resource", refreshFor(e, tr.RefreshToken, mcpUnknown), http.StatusBadRequest, "invalid_target")
	cc := e.token(url.Values{"grant_type": {clientCredentialsGrant}, "resource": {mcpUnknown}}, mcpAgentID, mcpAgentKey)
	assertRefusedNamed(t, "client_credentials with an unknown resource", cc, http.StatusBadRequest, "invalid_target")
}

func TestResources_RefreshNarrowsNeverWidens(t *testing.T) {
	e := newEnv(t, withResources)
	l := resourceLogin(e, "cy@example.com", "openid offline_access tools:read tools:call files:read", mcpA, mcpB)
	// Two resources granted: the token request names one.
	assertRefusedNamed(t, "code naming no resource of two", redeemFor(e, l, ""), http.StatusBadRequest, "invalid_target")
	l = resourceLogin(e, "cy@example.com", "openid offline_access tools:read tools:call files:read", mcpA, mcpB)
	tr := redeemFor(e, l, mcpB)
	wantToken(t, "code for B", tr, mcpB, "files:read", 15*time.Minute)
	wantToken(t, "refresh narrowed to A", refreshFor(e, tr.RefreshToken, mcpA), mcpA, "tools:read tools:call", 5*time.Minute)
	// The refused refreshes rotate nothing: the token still works.
	l2 := resourceLogin(e, "cy@example.com", "openid offline_access tools:read", mcpA)
	only := e.redeem(l2)
	assertRefusedNamed(t, "refresh widened to B", refreshFor(e, only.RefreshToken, mcpB), http.StatusBadRequest, "invalid_target")
	wantToken(t, "refresh after a refused widening", refreshFor(e, only.RefreshToken, ""), mcpA, "tools:read", 5*time.Minute)

	// A login without a resource gets today's audience, and cannot be
	// widened to a resource at refresh.
	plain := e.redeem(e.login(e.browser(), "cy@example.com", authRequest{clientID: mcpAppID, redirectURI: devRedirect}))
	if c := claimsOf(t, plain.AccessToken); slices.Contains(c.Audience, mcpA) {
		t.Fatalf("a token without resource names %v", c.Audience)
	}
	assertRefusedNamed(t, "refresh widened from the default audience", refreshFor(e, plain.RefreshToken, mcpA), http.StatusBadRequest, "invalid_target")
}

func TestResources_ClientCredentialsAndExchange(t *testing.T) {
	e := newEnv(t, withResources)
	cc := func(form url.Values) tokenResponse {
		form.Set("grant_type", clientCredentialsGrant)
		return e.token(form, mcpAgentID, mcpAgentKey)
	}
	// Without scope: the client's scopes that A defines.
	tr := cc(url.Values{"resource": {mcpA}})
	wantToken(t, "client_credentials for A", tr, mcpA, "tools:read tools:call", 5*time.Minute)
	// A scope named explicitly that A does not define is refused.
	assertRefusedNamed(t, "client_credentials for A with files:read", cc(url.Values{"resource": {mcpA}, "scope": {"tools:read files:read"}}),
		http.StatusBadRequest, "invalid_scope")
	// A registered resource is asked for alone.
	assertRefusedNamed(t, "client_credentials for A and B", cc(url.Values{"resource": {mcpA, mcpB}}), http.StatusBadRequest, "invalid_target")

	exchange := func(form url.Values) tokenResponse {
		form.Set("grant_type", tokenExchangeGrant)
		form.Set("subject_token", tr.AccessToken)
		form.Set("subject_token_type", accessTokenType)
		return e.token(form, mcpAgentID, mcpAgentKey)
	}
	ex := exchange(url.Values{"resource": {mcpA}, "scope": {"tools:read"}})
	wantToken(t, "exchange narrowed within A", ex, mcpA, "tools:read", 5*time.Minute)
	if _, err := mcpVerifier(t, e, mcpA).Verify(context.Background(), ex.AccessToken); err != nil {
		t.Fatalf("MCP server A refuses the exchanged token: %v", err)
	}
	assertRefusedNamed(t, "exchange widened to B", exchange(url.Values{"resource": {mcpB}}), http.StatusBadRequest, "invalid_target")
	assertRefusedNamed(t, "exchange to an unknown resource", exchange(url.Values{"resource": {mcpUnknown}}), http.StatusBadRequest, "invalid_target")
}

func TestResources_ConfigurationIsChecked(t *testing.T) {
	for _, tt := range []struct{ name, yaml, want string }{
		{"http", "resources:\n  - id: http://mcp.example.com/mcp\n", "id"},
		{"fragment", "resources:\n  - id: https://mcp.example.com/mcp#x\n", "fragment"},
		{"too long", "resources:\n  - id: https://mcp.example.com/" + strings.Repeat("a", 300) + "\n", "longer than"},
		{"lifetime", "resources:\n  - id: https://mcp.example.com/mcp\n    accessTokenTTL: 1h\n", "accessTokenTTL"},
		{"twice", "resources:\n  - id: https://mcp.example.com/mcp\n  - id: https://mcp.example.com/mcp\n", "twice"},
		{"unknown setting", "resources:\n  - id: https://mcp.example.com/mcp\n    audience: x\n", "audience"},
	} {
		_, err := broker.ParseConfig([]byte(tt.yaml), func(string) (string, bool) { return "", false })
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: err %v, want one naming %q", tt.name, err, tt.want)
		}
	}
}
