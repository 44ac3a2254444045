package broker_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"testing"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/storage/memory"
)

// TestMetadata_RFC8414 fetches authorization server metadata where OAuth
// and MCP clients look for it, and finds what OpenID discovery says,
// with S256 the only PKCE method and iss on authorization responses.
func TestMetadata_RFC8414(t *testing.T) {
	e := newEnv(t)
	var discovery, metadata map[string]any
	e.getJSON("/.well-known/openid-configuration", "", &discovery)
	resp := e.getJSON("/.well-known/oauth-authorization-server", "", &metadata)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("metadata: %d", resp.StatusCode)
	}
	if !reflect.DeepEqual(metadata, discovery) {
		t.Errorf("metadata and discovery differ:\n%v\n%v", metadata, discovery)
	}
	for _, field := range []string{"issuer", "authorization_endpoint", "token_endpoint", "jwks_uri", "revocation_endpoint",
		"introspection_endpoint", "response_types_supported", "grant_types_supported", "token_endpoint_auth_methods_supported"} {
		if metadata[field] == nil {
			t.Errorf("metadata lacks %s", field)
		}
	}
	if metadata["issuer"] != e.issuer {
		t.Errorf("issuer %v, want %s", metadata["issuer"], e.issuer)
	}
	if m, _ := metadata["code_challenge_methods_supported"].([]any); !slices.Equal(m, []any{"S256"}) {
		t.Errorf("code_challenge_methods_supported %v, want [S256]", m)
	}
	if metadata["authorization_response_iss_parameter_supported"] != true {
		t.Error("authorization_response_iss_parameter_supported is not true")
	}

	// Cached like discovery, and revalidated with its ETag.
	req, _ := http.NewRequest(http.MethodGet, e.issuer+"/.well-known/oauth-authorization-server", nil)
	req.Header.Set("If-None-Match", resp.Header.Get("ETag"))
	again, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	again.Body.Close()
	if resp.Header.Get("ETag") == "" || again.StatusCode != http.StatusNotModified {
		t.Errorf("conditional GET: ETag %q, status %d; want 304", resp.Header.Get("ETag"), again.StatusCode)
	}
	post, err := http.Post(e.issuer+"/.well-known/oauth-authorization-server", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	post.Body.Close()
	if post.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d, want 405", post.StatusCode)
	}
}

// TestMetadata_PathInsertedForIssuerWithPath: for an issuer with a path,
// RFC 8414 section 3.1 puts the well-known segment between the host and
// that path.
func TestMetadata_PathInsertedForIssuerWithPath(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String() + "/tenant-a"
	b, err := broker.New(t.Context(), broker.DevelopmentConfig(issuer, srv.Listener.Addr().String()),
		broker.Options{Storage: memory.New(), Secret: broker.NewEphemeralRootSecret()})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = b.Handler()
	srv.Start()
	defer srv.Close()
	resp, err := http.Get("http://" + srv.Listener.Addr().String() + "/.well-known/oauth-authorization-server/tenant-a")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var metadata struct {
		Issuer string `json:"issuer"`
	}
	if resp.StatusCode != http.StatusOK || json.Unmarshal(body, &metadata) != nil || metadata.Issuer != issuer {
		t.Errorf("path-inserted metadata: %d %s, want issuer %s", resp.StatusCode, body, issuer)
	}
}
