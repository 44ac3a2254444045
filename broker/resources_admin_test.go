package broker_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/broker/admin"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/storage/memory"
)

// resourcePath is the admin API path of resource id: one percent-encoded
// path segment.
func resourcePath(id string) string { return "/resources/" + url.PathEscape(id) }

func TestAdminAPI_ResourceOperations(t *testing.T) {
	e := newEnv(t, withAdmin, withResources)
	ctx := t.Context()
	tok := e.mustClientToken(adminBotID, adminBotSecret, adminAudience)
	const stored = "https://files.example.com/mcp"

	var info admin.ResourceInfo
	resp := e.adminCall("POST", "/resources", tok, admin.ResourceSpec{ID: stored, Scopes: []string{"files:read"},
		AccessTokenTTL: "2m", ThirdParty: true}, &info)
	wantStatus(t, "create", resp, http.StatusCreated)
	if info.ID != stored || info.Source != admin.SourceStorage || info.AccessTokenTTL != "2m0s" || !info.ThirdParty {
		t.Fatalf("created %+v", info)
	}
	wantStatus(t, "create again", e.adminCall("POST", "/resources", tok, admin.ResourceSpec{ID: stored}, nil), http.StatusConflict)

	var list struct{ Resources []admin.ResourceInfo }
	wantStatus(t, "list", e.adminCall("GET", "/resources", tok, nil, &list), http.StatusOK)
	if len(list.Resources) != 3 || list.Resources[0].ID != mcpA || list.Resources[0].Source != admin.SourceConfig ||
		list.Resources[2].ID != stored {
		t.Fatalf("list %+v", list.Resources)
	}

	// The stored resource governs tokens at once.
	tr := e.token(url.Values{"grant_type": {clientCredentialsGrant}, "resource": {stored}}, mcpAgentID, mcpAgentKey)
	wantToken(t, "client_credentials for the stored resource", tr, stored, "files:read", 2*time.Minute)

	scopes := []string{"files:read", "files:write"}
	resp = e.adminCall("PATCH", resourcePath(stored), tok, admin.ResourceUpdate{Scopes: &scopes}, &info)
	wantStatus(t, "update", resp, http.StatusOK)
	if strings.Join(info.Scopes, " ") != "files:read files:write" || info.AccessTokenTTL != "2m0s" {
		t.Fatalf("updated %+v", info)
	}
	wantStatus(t, "show", e.adminCall("GET", resourcePath(stored), tok, nil, &info), http.StatusOK)
	if len(info.Scopes) != 2 {
		t.Fatalf("shown %+v", info)
	}

	// The configuration file's resources are read-only.
	wantStatus(t, "show configured", e.adminCall("GET", resourcePath(mcpA), tok, nil, &info), http.StatusOK)
	if info.Source != admin.SourceConfig {
		t.Fatalf("configured resource shown as %+v", info)
	}
	wantStatus(t, "update configured", e.adminCall("PATCH", resourcePath(mcpA), tok, admin.ResourceUpdate{Scopes: &scopes}, nil), http.StatusConflict)
	wantStatus(t, "delete configured", e.adminCall("DELETE", resourcePath(mcpA), tok, nil, nil), http.StatusConflict)
	wantStatus(t, "create configured", e.adminCall("POST", "/resources", tok, admin.ResourceSpec{ID: mcpA}, nil), http.StatusConflict)

	wantStatus(t, "delete", e.adminCall("DELETE", resourcePath(stored), tok, nil, nil), http.StatusNoContent)
	wantStatus(t, "show deleted", e.adminCall("GET", resourcePath(stored), tok, nil, nil), http.StatusNotFound)
	tr = e.token(url.Values{"grant_type": {clientCredentialsGrant}, "resource": {stored}}, mcpAgentID, mcpAgentKey)
	assertRefusedNamed(t, "client_credentials for a deleted resource", tr, http.StatusBadRequest, "invalid_target")

	events, err := e.store.ListAudit(ctx, 50)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, ev := range events {
		if strings.HasPrefix(ev.Action, "resource.") && ev.Target == stored {
			actions = append(actions, ev.Action)
		}
	}
	if got := strings.Join(actions, " "); !strings.Contains(got, "resource.create") || !strings.Contains(got, "resource.update") || !strings.Contains(got, "resource.delete") {
		t.Fatalf("audit actions %q", got)
	}
}

func TestAdminAPI_ResourceBadInputWritesNothing(t *testing.T) {
	e := newEnv(t, withAdmin, withResources)
	tok := e.mustClientToken(adminBotID, adminBotSecret, adminAudience)
	for _, tt := range []struct {
		name  string
		body  any
		field string
	}{
		{"http", admin.ResourceSpec{ID: "http://mcp.example.com/mcp"}, "id"},
		{"fragment", admin.ResourceSpec{ID: "https://mcp.example.com/mcp#frag"}, "id"},
		{"300 characters", admin.ResourceSpec{ID: "https://mcp.example.com/" + strings.Repeat("a", 276)}, "id"},
		{"no id", admin.ResourceSpec{}, "id"},
		{"lifetime too long", admin.ResourceSpec{ID: "https://mcp.example.com/mcp", AccessTokenTTL: "1h"}, "access_token_ttl"},
		{"lifetime not a duration", admin.ResourceSpec{ID: "https://mcp.example.com/mcp", AccessTokenTTL: "soon"}, "access_token_ttl"},
		{"bad scope", admin.ResourceSpec{ID: "https://mcp.example.com/mcp", Scopes: []string{"a b"}}, "scopes"},
		{"unknown field", map[string]any{"id": "https://mcp.example.com/mcp", "audience": "x"}, "audience"},
	} {
		var answer struct {
			ErrorDescription string `json:"error_description"`
		}
		resp := e.adminCall("POST", "/resources", tok, tt.body, &answer)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(answer.ErrorDescription, tt.field) {
			t.Errorf("%s: %d %q, want 400 naming %q", tt.name, resp.StatusCode, answer.ErrorDescription, tt.field)
		}
	}
	// A bad update changes nothing either.
	wantStatus(t, "create", e.adminCall("POST", "/resources", tok, admin.ResourceSpec{ID: "https://ok.example.com/mcp", Scopes: []string{"x"}}, nil), http.StatusCreated)
	ttl := "2h"
	wantStatus(t, "bad update", e.adminCall("PATCH", resourcePath("https://ok.example.com/mcp"), tok, admin.ResourceUpdate{AccessTokenTTL: &ttl}, nil), http.StatusBadRequest)
	list, err := e.store.ListResources(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].ID != "https://ok.example.com/mcp" || list[0].AccessTokenTTL != 0 {
		t.Fatalf("stored after refusals: %+v", list)
	}
}

func TestResources_SameIDConfiguredAndStoredStopsTheStart(t *testing.T) {
	store := memory.New()
	if err := store.CreateResource(t.Context(), storage.Resource{ID: mcpA}); err != nil {
		t.Fatal(err)
	}
	cfg := broker.DevelopmentConfig("http://127.0.0.1:1", "127.0.0.1:1")
	cfg.Resources = []broker.ResourceConfig{{ID: mcpA}}
	_, err := broker.New(t.Context(), cfg, broker.Options{Storage: store, Secret: broker.NewEphemeralRootSecret()})
	if err == nil || !strings.Contains(err.Error(), "both in the configuration file and stored") {
		t.Fatalf("New = %v", err)
	}
}
