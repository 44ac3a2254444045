package broker_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/broker/admin"
)

// The admin API validates a client as the configuration file is
// validated: a redirect URI is https, or http on a loopback address.
// javascript: and data: URIs would run in the broker's origin; plain http
// elsewhere hands codes to the network.
func TestAdminAPI_RefusesUnsafeRedirectURIs(t *testing.T) {
	e := newEnv(t, withAdmin)
	bot := e.mustClientToken(adminBotID, adminBotSecret, adminAudience)
	type answer struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	for _, tc := range []struct{ name, field, uri string }{
		{"javascript", "redirect_uris", "javascript:alert(document.cookie)"},
		{"javascript with slashes", "redirect_uris", "javascript://%0aalert(1)"},
		{"data", "redirect_uris", "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg=="},
		{"http not loopback", "redirect_uris", "http://app.example.com/cb"},
		{"custom scheme", "redirect_uris", "com.example.app:/cb"},
		{"https with user information", "redirect_uris", "https://app.example.com@evil.example/cb"},
		{"post-logout javascript", "post_logout_redirect_uris", "javascript:alert(1)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			spec := admin.ClientSpec{ID: "web-" + strings.Join(strings.Fields(tc.name), "-"), Public: true}
			if tc.field == "redirect_uris" {
				spec.RedirectURIs = []string{tc.uri}
			} else {
				spec.RedirectURIs = []string{"https://app.example.com/cb"}
				spec.PostLogoutRedirectURIs = []string{tc.uri}
			}
			var a answer
			wantStatus(t, "create", e.adminCall("POST", "/clients", bot, spec, &a), http.StatusBadRequest)
			if a.Error != "invalid_request" || !strings.Contains(a.Description, tc.field) {
				t.Errorf("answer %+v, want invalid_request naming %s", a, tc.field)
			}
		})
	}

	ok := admin.ClientSpec{ID: "web", Public: true, RedirectURIs: []string{"https://app.example.com/cb", "http://127.0.0.1/cb", "http://localhost:3000/cb", "http://[::1]/cb"}}
	wantStatus(t, "create a sound client", e.adminCall("POST", "/clients", bot, ok, nil), http.StatusCreated)
	var a answer
	wantStatus(t, "update to javascript:", e.adminCall("PATCH", "/clients/web", bot, map[string]any{"redirect_uris": []string{"javascript:alert(1)"}}, &a), http.StatusBadRequest)
	if !strings.Contains(a.Description, "redirect_uris") {
		t.Errorf("update refused with %+v, want it to name redirect_uris", a)
	}
	if c, _ := e.store.GetClient(t.Context(), "web"); !slices.Equal(c.RedirectURIs, ok.RedirectURIs) {
		t.Errorf("redirect URIs after a refused update: %v", c.RedirectURIs)
	}
}

// The configuration file follows the same rule, in its own words.
func TestConfig_RefusesUnsafeRedirectURIs(t *testing.T) {
	env := func(string) (string, bool) { return "", false }
	for _, uri := range []string{"javascript:alert(1)", "data:text/html,x", "http://app.example.com/cb"} {
		_, err := broker.ParseConfig([]byte("clients:\n  - { id: web, public: true, redirectURIs: [\""+uri+"\"] }\n"), env)
		if err == nil || !strings.Contains(err.Error(), "redirectURIs") {
			t.Errorf("redirect URI %q: %v, want a refusal naming redirectURIs", uri, err)
		}
	}
}
