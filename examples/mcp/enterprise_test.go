package mcp_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"testing"

	"github.com/idbroker/broker/examples/mcp/whoami"
	"github.com/idbroker/broker/internal/mcptest"
	"github.com/idbroker/broker/internal/testenv"
	"github.com/modelcontextprotocol/go-sdk/auth/extauth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
	"golang.org/x/oauth2"
)

const (
	agentClient = "agent" // the same client at both brokers: the ID-JAG names it for the second
	agentSecret = "agent-secret-0123456789abcdefghijklmnopqrstuv"
	linkSecret  = "broker-b-secret-0123456789abcdefghijklmnopqr"
)

// enterpriseIdP is broker A, the enterprise's identity provider: the
// agent signs its user in there and may get identity assertion grants
// for broker B; broker B signs in there too, as an OIDC upstream.
const enterpriseIdP = `
issuer: ${ISSUER}
storage: { type: memory }
connectors:
  - { id: otp, type: otp }
clients:
  - { id: agent, secret: "${AGENT_SECRET}", redirectURIs: ["http://127.0.0.1/callback"],
      grantTypes: [authorization_code, token-exchange], idJAG: { audiences: ["${B_ISSUER}"] } }
  - { id: broker-b, secret: "${LINK_SECRET}", redirectURIs: ["${B_ISSUER}/callback/corp"] }
`

// mcpAuthServer is broker B, the MCP server's authorization server: it
// trusts A as an upstream whose identity assertions it redeems at the
// jwt-bearer grant.
const mcpAuthServer = `
issuer: ${ISSUER}
storage: { type: memory }
connectors:
  - { id: corp, type: oidc, issuer: "${A_ISSUER}", clientID: broker-b, clientSecret: "${LINK_SECRET}",
      trustEmail: true, acceptsIdentityAssertions: true }
clients:
  - { id: agent, secret: "${AGENT_SECRET}", grantTypes: ["urn:ietf:params:oauth:grant-type:jwt-bearer"] }
resources:
  - { id: "${MCP_URL}", scopes: [whoami] }
`

// TestMCP_EnterpriseManagedAuthorization runs the SDK's enterprise
// handler (SEP-990): with the user's ID token from broker A it gets an
// ID-JAG from A by token exchange and redeems it at broker B, the MCP
// server's authorization server, for an access token to the server. The
// user never sees B's pages.
func TestMCP_EnterpriseManagedAuthorization(t *testing.T) {
	aSrv, bSrv, mcpSrv := httptest.NewUnstartedServer(nil), httptest.NewUnstartedServer(nil), httptest.NewUnstartedServer(nil)
	aIssuer, bIssuer := "http://"+aSrv.Listener.Addr().String(), "http://"+bSrv.Listener.Addr().String()
	mcpURL := "https://" + mcpSrv.Listener.Addr().String() + "/mcp"
	vars := map[string]string{"A_ISSUER": aIssuer, "B_ISSUER": bIssuer, "MCP_URL": mcpURL, "AGENT_SECRET": agentSecret, "LINK_SECRET": linkSecret}
	with := func(issuer string) map[string]string {
		m := map[string]string{"ISSUER": issuer}
		for k, v := range vars {
			m[k] = v
		}
		return m
	}
	mail := &testenv.Mailer{}
	f := mcptest.Extra{}
	mcptest.StartBroker(t, aSrv, enterpriseIdP, with(aIssuer), f, mail)
	mcptest.StartBroker(t, bSrv, mcpAuthServer, with(bIssuer), f, &testenv.Mailer{})
	mcpSrv.Config.Handler = mcptest.SampleServer(t, mcpURL, bIssuer, 0)
	mcpSrv.StartTLS()
	t.Cleanup(mcpSrv.Close)
	w := &world{World: &mcptest.World{Issuer: bIssuer, MCPURL: mcpURL, TLSClient: mcpSrv.Client()}, t: t}
	w.tokens = &tokenCounter{next: w.TLSClient.Transport, tokenURL: bIssuer + "/token"}
	grants, _ := w.metadata()["grant_types_supported"].([]any)
	mcptest.Require(t, slices.Contains(grants, any("urn:ietf:params:oauth:grant-type:jwt-bearer")), "the jwt-bearer grant at broker B")

	p := newPerson(userEmail, aIssuer, mail)
	idp := &oauth2.Config{ClientID: agentClient, ClientSecret: agentSecret, RedirectURL: redirectURL,
		Endpoint: oauth2.Endpoint{AuthURL: aIssuer + "/authorize", TokenURL: aIssuer + "/token"}, Scopes: []string{"openid", "email"}}
	h, err := extauth.NewEnterpriseHandler(&extauth.EnterpriseHandlerConfig{
		IdPIssuerURL:     aIssuer,
		IdPCredentials:   &oauthex.ClientCredentials{ClientID: agentClient, ClientSecretAuth: &oauthex.ClientSecretAuth{ClientSecret: agentSecret}},
		MCPAuthServerURL: bIssuer,
		MCPResourceURI:   mcpURL,
		MCPCredentials:   &oauthex.ClientCredentials{ClientID: agentClient, ClientSecretAuth: &oauthex.ClientSecretAuth{ClientSecret: agentSecret}},
		MCPScopes:        []string{whoami.DefaultScope},
		IDTokenFetcher: func(ctx context.Context) (*oauth2.Token, error) {
			verifier := oauth2.GenerateVerifier()
			back, err := p.signIn(ctx, idp.AuthCodeURL("state-a", oauth2.S256ChallengeOption(verifier), oauth2.SetAuthURLParam("nonce", "nonce-a")))
			if err != nil {
				return nil, err
			}
			if back.Query().Get("state") != "state-a" || back.Query().Get("code") == "" {
				return nil, fmt.Errorf("broker A came back with %s", back)
			}
			return idp.Exchange(ctx, back.Query().Get("code"), oauth2.VerifierOption(verifier))
		},
		HTTPClient: w.mcpClient(),
	})
	if err != nil {
		t.Fatal(err)
	}
	_, id := connect(t, w, mcpURL, h)
	if !regexp.MustCompile(uuidPattern).MatchString(id.Subject) || id.ClientID != agentClient ||
		!slices.Equal(id.Audience, []string{mcpURL}) || !slices.Equal(id.Scopes, []string{whoami.DefaultScope}) {
		t.Errorf("whoami = %+v; want a platform user of broker B, client %s, aud [%s], scopes [whoami]", id, agentClient, mcpURL)
	}
	if n := w.tokens.count("urn:ietf:params:oauth:grant-type:jwt-bearer", http.StatusOK); n != 1 {
		t.Errorf("%d jwt-bearer grants answered 200 at broker B, want 1", n)
	}
}
