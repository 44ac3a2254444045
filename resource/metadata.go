package resource

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// Metadata is RFC 9728 protected resource metadata: what a client needs
// to learn which authorization server issues tokens for this service and
// how to present them. NewMetadataHandler serves it.
type Metadata struct {
	// Resource is this service's resource identifier (section 2): the
	// URL clients name as RFC 8707 resource, normally the audience the
	// Verifier accepts. Required.
	Resource string `json:"resource"`
	// AuthorizationServers are the issuers whose tokens the service
	// accepts: the broker's issuer.
	AuthorizationServers []string `json:"authorization_servers,omitempty"`
	// ScopesSupported are the scopes the service understands.
	ScopesSupported []string `json:"scopes_supported,omitempty"`
	// BearerMethodsSupported is always ["header"]: Middleware accepts a
	// token in the Authorization header only. Any value set is replaced.
	BearerMethodsSupported []string `json:"bearer_methods_supported"`
	// Optional human-facing fields (section 2).
	ResourceName          string `json:"resource_name,omitempty"`
	ResourceDocumentation string `json:"resource_documentation,omitempty"`
	ResourcePolicyURI     string `json:"resource_policy_uri,omitempty"`
	ResourceTOSURI        string `json:"resource_tos_uri,omitempty"`
}

// NewMetadataHandler returns a handler that serves m as JSON to GET and
// HEAD. Mount it at the path of MetadataURL(m.Resource), which for a
// resource without a path is /.well-known/oauth-protected-resource.
// A client checks that the resource it reads equals the identifier it
// built the URL from (section 3.3), so m.Resource must be exact.
//
// The document is public and carries no credentials, so any origin may
// read it: MCP clients running in a browser fetch it across origins,
// sending an MCP-Protocol-Version header, which takes a CORS preflight
// (OPTIONS) that the handler answers too.
func NewMetadataHandler(m Metadata) (http.Handler, error) {
	if _, err := MetadataURL(m.Resource); err != nil {
		return nil, err
	}
	for _, s := range m.AuthorizationServers {
		if err := checkURL(s); err != nil {
			return nil, fmt.Errorf("resource: authorization server %q: %w", s, err)
		}
	}
	m.BearerMethodsSupported = []string{"header"}
	body, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("resource: metadata: %w", err)
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Access-Control-Allow-Origin", "*")
		if r.Method == http.MethodOptions {
			w.Header().Set("Access-Control-Allow-Methods", "GET, HEAD")
			w.Header().Set("Access-Control-Allow-Headers", "MCP-Protocol-Version")
			w.Header().Set("Access-Control-Max-Age", "3600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD, OPTIONS")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=3600")
		w.Write(body)
	}), nil
}

// MetadataURL is where RFC 9728 section 3.1 says the metadata of resource
// lives: /.well-known/oauth-protected-resource inserted between its host
// and its path. Middleware.ResourceMetadata takes it.
func MetadataURL(resource string) (string, error) {
	u, err := url.Parse(resource)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("resource: resource identifier %q must be an absolute http(s) URL without query or fragment", resource)
	}
	u.Path = "/.well-known/oauth-protected-resource" + strings.TrimSuffix(u.Path, "/")
	u.RawPath = ""
	return u.String(), nil
}
