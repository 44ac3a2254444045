package mcp_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/idbroker/broker/internal/mcptest"
	"github.com/modelcontextprotocol/go-sdk/auth"
	"github.com/modelcontextprotocol/go-sdk/oauthex"
)

// TestMCP_ClientIDMetadataDocument: a client the broker has never seen
// names itself by the https URL of its metadata document (the MCP
// 2025-11-25 preferred registration). The broker fetches the document
// from a TLS test server it is told to trust, and the person consents to
// the third-party client before signing in completes.
func TestMCP_ClientIDMetadataDocument(t *testing.T) {
	var docURL string
	docs := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/client.json" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "max-age=60")
		json.NewEncoder(w).Encode(map[string]any{
			"client_id":                  docURL,
			"client_name":                "whoami agent",
			"redirect_uris":              []string{redirectURL},
			"grant_types":                []string{"authorization_code", "refresh_token"},
			"response_types":             []string{"code"},
			"token_endpoint_auth_method": "none",
		})
	}))
	docs.StartTLS()
	t.Cleanup(docs.Close)
	docURL = docs.URL + "/client.json"
	roots := docs.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs

	w := newWorld(t, mcptest.Extra{
		// The document server is on loopback, which the broker refuses
		// unless the operator names the host.
		YAML:                "clientMetadataDocuments: { enabled: true, allowPrivateHosts: [\"127.0.0.1\"] }\n",
		ClientDocumentRoots: roots,
	})
	supported, _ := w.metadata()["client_id_metadata_document_supported"].(bool)
	mcptest.Require(t, supported, "client_id_metadata_document_supported")

	p := newPerson(userEmail, w.Issuer, w.Mail)
	h := codeHandler(t, w, p, auth.AuthorizationCodeHandlerConfig{
		ClientIDMetadataDocumentConfig: &auth.ClientIDMetadataDocumentConfig{URL: docURL},
		RedirectURL:                    redirectURL,
	})
	checkFlow(t, w, p, h, func(id string) bool { return id == docURL }, true)
}

// TestMCP_DynamicRegistration: a client the broker has never seen
// registers itself at /register (RFC 7591, the open policy: a public
// client with a loopback redirect URI), and the person consents to it.
func TestMCP_DynamicRegistration(t *testing.T) {
	w := newWorld(t, mcptest.Extra{YAML: "registration: { policy: open }\n"})
	endpoint, _ := w.metadata()["registration_endpoint"].(string)
	mcptest.Require(t, endpoint != "", "registration_endpoint")

	p := newPerson(userEmail, w.Issuer, w.Mail)
	h := codeHandler(t, w, p, auth.AuthorizationCodeHandlerConfig{
		DynamicClientRegistrationConfig: &auth.DynamicClientRegistrationConfig{Metadata: &oauthex.ClientRegistrationMetadata{
			RedirectURIs:            []string{redirectURL},
			TokenEndpointAuthMethod: "none",
			GrantTypes:              []string{"authorization_code", "refresh_token"},
			ResponseTypes:           []string{"code"},
			ClientName:              "whoami agent",
		}},
	})
	checkFlow(t, w, p, h, func(id string) bool { return id != "" && id != cliClient }, true)
}
