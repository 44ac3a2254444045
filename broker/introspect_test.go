package broker_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/idbroker/broker/broker"
)

// Confidential clients of the introspection tests: caller gets tokens
// for backend's API; bystander has nothing to do with them.
const (
	callerID        = "caller"
	callerSecret    = "caller-secret-0123456789abcdefghijklmnopqrstuv"
	bystanderID     = "bystander"
	bystanderSecret = "bystander-secret-0123456789abcdefghijklmnopqr"
)

func withCallerAndBystander(c *broker.Config, _ *broker.Options) {
	c.Clients = append(c.Clients,
		broker.ClientConfig{ID: callerID, Secret: callerSecret, GrantTypes: []string{clientCredentialsGrant}, Audiences: []string{backendID}},
		broker.ClientConfig{ID: bystanderID, Secret: bystanderSecret, GrantTypes: []string{clientCredentialsGrant}, Audiences: []string{"https://bystander.example.com"}})
}

// introspectHinted is introspect with a token_type_hint.
func (e *env) introspectHinted(token, hint, user, pass string) map[string]any {
	e.t.Helper()
	resp := e.postForm("/introspect", url.Values{"token": {token}, "token_type_hint": {hint}}, user, pass)
	defer resp.Body.Close()
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return m
}

func TestIntrospect_TellsAClientOnlyAboutItsOwnTokens(t *testing.T) {
	e := newEnv(t, withCallerAndBystander)
	person := e.redeem(e.login(e.browser(), "intro-own@example.com", authRequest{}))
	machine := e.token(url.Values{"grant_type": {clientCredentialsGrant}, "audience": {backendID}}, callerID, callerSecret)
	if person.AccessToken == "" || person.RefreshToken == "" || machine.AccessToken == "" {
		t.Fatalf("no tokens: %+v %+v", person, machine)
	}
	type who struct{ id, secret string }
	var (
		caller       = who{callerID, callerSecret}
		backend      = who{backendID, backendSecret}
		bystander    = who{bystanderID, bystanderSecret}
		introspector = who{introspectorID, introspectorSecret}
	)
	for _, tc := range []struct {
		name   string
		token  string
		by     who
		active bool
	}{
		{"the token's own client", machine.AccessToken, caller, true},
		{"a client named in the audience", machine.AccessToken, backend, true},
		{"an introspector, access token", machine.AccessToken, introspector, true},
		{"a bystander, access token", machine.AccessToken, bystander, false},
		{"another client, a person's access token", person.AccessToken, backend, false},
		{"another client, a person's refresh token", person.RefreshToken, backend, false},
		{"an introspector, a person's access token", person.AccessToken, introspector, true},
		{"an introspector, a person's refresh token", person.RefreshToken, introspector, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info := e.introspect(tc.token, tc.by.id, tc.by.secret)
			if tc.active && (info["active"] != true || info["sub"] == nil) {
				t.Errorf("want the token described, got %v", info)
			}
			// RFC 7662 section 4: a caller not allowed to know about a
			// token learns nothing, not even that the token exists.
			if !tc.active && (info["active"] != false || len(info) != 1) {
				t.Errorf(`want exactly {"active": false}, got %v`, info)
			}
		})
	}
	// RFC 7662 section 2.1: a server that does not find the token by its
	// hint "MUST extend its search across all of its supported token
	// types".
	if info := e.introspectHinted(person.AccessToken, "refresh_token", introspectorID, introspectorSecret); info["active"] != true || info["token_type"] != "access_token" {
		t.Errorf("access token hinted as a refresh token: %v", info)
	}
	if info := e.introspectHinted(person.RefreshToken, "access_token", introspectorID, introspectorSecret); info["active"] != true || info["token_type"] != "refresh_token" {
		t.Errorf("refresh token hinted as an access token: %v", info)
	}
}

func TestConfig_IntrospectorMustBeConfidential(t *testing.T) {
	_, err := broker.ParseConfig([]byte(`
clients:
  - { id: spa, public: true, introspector: true, redirectURIs: [https://app.example.com/cb] }
`), func(string) (string, bool) { return "", false })
	if err == nil || !strings.Contains(err.Error(), "introspector") {
		t.Errorf("a public introspector: err = %v", err)
	}
	if _, err := broker.ParseConfig([]byte(`
clients:
  - { id: gateway, secret: gateway-secret-0123456789abcdefghijklmnopqrstuv, introspector: true, grantTypes: [client_credentials] }
`), func(string) (string, bool) { return "", false }); err != nil {
		t.Errorf("a confidential introspector: %v", err)
	}
}
