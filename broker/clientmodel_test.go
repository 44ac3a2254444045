package broker_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/broker/admin"
	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/storage"
)

// twinClients are clients defined twice with the same fields: once in the
// configuration file (ids prefixed "yaml-") and once in storage (ids
// prefixed "stored-"). twinSecret is every twin's secret.
const (
	twinSecret   = "twin-secret-0123456789abcdefghijklmnopqrstuvwxyz"
	twinRedirect = "http://127.0.0.1:7777/cb"
	// twinJAGAudience is an authorization server the web twins may get
	// identity assertion grants for.
	twinJAGAudience = "https://as.example.com"
)

// twinClients returns the twins of prefix as the configuration file
// spells them: a web client with its own ID-token algorithm that may
// trade its ID tokens for identity assertion grants, a machine
// client, a token exchanger that names itself as an actor, and an
// introspector.
func twinClients(prefix string) []broker.ClientConfig {
	return []broker.ClientConfig{
		{ID: prefix + "web", Secret: twinSecret, RedirectURIs: []string{twinRedirect},
			PostLogoutRedirectURIs: []string{"http://127.0.0.1:7777/bye"},
			GrantTypes:             []string{broker.GrantAuthorizationCode, broker.GrantRefreshToken, broker.GrantTokenExchange},
			Audiences:              []string{apiAudience}, AllowedOrigins: []string{"https://" + prefix + "app.example.com"},
			BackchannelLogoutURI:     "http://127.0.0.1:7777/backchannel",
			IDTokenSignedResponseAlg: "ES256", IDJAG: broker.IDJAGPolicy{Audiences: []string{twinJAGAudience}}},
		{ID: prefix + "machine", Secret: twinSecret, GrantTypes: []string{broker.GrantClientCredentials},
			Audiences: []string{apiAudience}, Scopes: []string{"invoices.read"}},
		{ID: prefix + "exchanger", Secret: twinSecret, GrantTypes: []string{broker.GrantTokenExchange},
			Audiences: []string{apiAudience}, Actors: []string{"client:" + prefix + "exchanger"}},
		{ID: prefix + "gateway", Secret: twinSecret, Introspector: true},
	}
}

// storedTwin is c as storage holds it, written field by field here rather
// than by the broker's own conversion, so the test does not trust it.
func storedTwin(c broker.ClientConfig) storage.Client {
	h := sha256.Sum256([]byte(c.Secret))
	return storage.Client{ID: c.ID, Name: c.Name, Public: c.Public, SecretHashes: []storage.SecretHash{{Hash: h[:]}},
		RedirectURIs: c.RedirectURIs, PostLogoutRedirectURIs: c.PostLogoutRedirectURIs, GrantTypes: c.GrantTypes,
		Audiences: c.Audiences, Scopes: c.Scopes, AllowedOrigins: c.AllowedOrigins, BackchannelLogoutURI: c.BackchannelLogoutURI,
		IDTokenSignedResponseAlg: c.IDTokenSignedResponseAlg, Actors: c.Actors, Introspector: c.Introspector,
		IDJAGAudiences: c.IDJAG.Audiences}
}

// withTwins configures the "yaml-" twins and stores the "stored-" ones
// before the broker starts.
func withTwins(c *broker.Config, o *broker.Options) {
	c.Clients = append(c.Clients, twinClients("yaml-")...)
	for _, tc := range twinClients("stored-") {
		if err := o.Storage.CreateClient(context.Background(), storedTwin(tc)); err != nil {
			panic(err)
		}
	}
}

// jwtAlg is the alg of a JWT's header.
func jwtAlg(t *testing.T, raw string) string {
	t.Helper()
	head, _, _ := strings.Cut(raw, ".")
	data, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatalf("JWT header: %v", err)
	}
	var h struct {
		Alg string `json:"alg"`
	}
	json.Unmarshal(data, &h)
	return h.Alg
}

// TestClientModel_StoredAndConfiguredClientsAnswerAlike runs every grant,
// through HTTP, for a configured client and for a stored client with the
// same fields, and wants the same answers, ids aside.
func TestClientModel_StoredAndConfiguredClientsAnswerAlike(t *testing.T) {
	u := newExchange(t, withTwins)
	upstreamToken := func(sub string) string { return u.auth0.AccessToken(testenv.User{Sub: sub}, apiAudience) }

	// answers runs the grants as the twins of prefix and describes what
	// came back, with the prefix taken out of client ids.
	answers := func(t *testing.T, prefix string) map[string]any {
		out := map[string]any{}
		strip := func(s any) any {
			if s, ok := s.(string); ok {
				return strings.ReplaceAll(s, prefix, "")
			}
			return s
		}
		web, machine, exchanger, gateway := prefix+"web", prefix+"machine", prefix+"exchanger", prefix+"gateway"

		// authorization_code, with the client's ID-token algorithm.
		l := u.login(u.browser(), "twin-"+strings.TrimSuffix(prefix, "-")+"@example.org", authRequest{clientID: web, redirectURI: twinRedirect})
		code := u.token(url.Values{"grant_type": {"authorization_code"}, "code": {l.code}, "redirect_uri": {twinRedirect},
			"code_verifier": {l.pkce.Verifier}}, web, twinSecret)
		out["code.status"], out["code.scope"], out["code.refresh"] = code.Status, code.Scope, code.RefreshToken != ""
		if code.Status == http.StatusOK {
			out["code.id_token.alg"] = jwtAlg(t, code.IDToken)
			out["code.id_token.aud"] = strip(strings.Join(u.verifyAccess(code.IDToken, web).Audience, " "))
			out["code.access.aud"] = strings.Join(u.verifyAccess(code.AccessToken, apiAudience).Audience, " ")
		}

		// An identity assertion grant for the ID token, by the client's
		// policy, and none for a server it does not name.
		for _, aud := range []string{twinJAGAudience, "https://elsewhere.example.com"} {
			jag := u.exchangeAs(web, twinSecret, url.Values{"subject_token": {code.IDToken}, "subject_token_type": {idTokenType},
				"requested_token_type": {idJAGType}, "audience": {aud}})
			out["id_jag.status "+aud], out["id_jag.issued_token_type "+aud] = jag.Status, jag.IssuedTokenType
			if jag.Status == http.StatusOK {
				c := u.tokenClaims(jag.AccessToken)
				out["id_jag.aud"], out["id_jag.client_id"] = c["aud"], strip(c["client_id"])
			}
		}

		// refresh_token, again with the client's algorithm.
		ref := u.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {code.RefreshToken}}, web, twinSecret)
		out["refresh.status"], out["refresh.scope"] = ref.Status, ref.Scope
		if ref.Status == http.StatusOK {
			out["refresh.id_token.alg"] = jwtAlg(t, ref.IDToken)
		}

		// client_credentials, with the client's scope and audience.
		cc := u.token(url.Values{"grant_type": {"client_credentials"}, "scope": {"invoices.read"}}, machine, twinSecret)
		out["client_credentials.status"], out["client_credentials.scope"] = cc.Status, cc.Scope
		if cc.Status == http.StatusOK {
			c := u.verifyAccess(cc.AccessToken, apiAudience)
			out["client_credentials.client_id"] = strip(c.ClientID)
		}
		// A scope it was not given.
		out["client_credentials.other_scope"] = u.token(url.Values{"grant_type": {"client_credentials"}, "scope": {"admin"}}, machine, twinSecret).Scope

		// Token exchange, with an actor the client's actors name...
		agent := u.exchangeAs(exchanger, twinSecret, url.Values{"subject_token": {upstreamToken("auth0|twin-agent")},
			"subject_token_type": {accessTokenType}})
		out["exchange.status"] = agent.Status
		delegated := u.exchangeAs(exchanger, twinSecret, url.Values{
			"subject_token": {upstreamToken("auth0|twin-user")}, "subject_token_type": {accessTokenType},
			"actor_token": {agent.AccessToken}, "actor_token_type": {accessTokenType}})
		out["exchange.actor.status"] = delegated.Status
		if delegated.Status == http.StatusOK {
			out["exchange.actor.act.client_id"] = strip(u.verifyAccess(delegated.AccessToken, apiAudience).Act["client_id"])
		}
		// ...and with one they do not (a token of another exchanger).
		other := u.exchangeAs(otherExchangerID, otherExchangerSecret, url.Values{"subject_token": {upstreamToken("auth0|twin-other")},
			"subject_token_type": {accessTokenType}})
		refused := u.exchangeAs(exchanger, twinSecret, url.Values{
			"subject_token": {upstreamToken("auth0|twin-user")}, "subject_token_type": {accessTokenType},
			"actor_token": {other.AccessToken}, "actor_token_type": {accessTokenType}})
		out["exchange.other_actor"] = refused.Error

		// Introspection of another client's token: an introspector may,
		// another client may not.
		out["introspect.introspector"] = u.introspect(code.AccessToken, gateway, twinSecret)["active"]
		out["introspect.other"] = u.introspect(code.AccessToken, machine, twinSecret)["active"]
		return out
	}

	configured := answers(t, "yaml-")
	stored := answers(t, "stored-")
	if !reflect.DeepEqual(configured, stored) {
		t.Errorf("a stored client answers\n%v\nwhere its configured twin answers\n%v", stored, configured)
	}
	// And the answers are the right ones, not merely alike.
	want := map[string]any{
		"code.status": http.StatusOK, "code.id_token.alg": "ES256", "refresh.status": http.StatusOK, "refresh.id_token.alg": "ES256",
		"client_credentials.status": http.StatusOK, "client_credentials.scope": "invoices.read", "client_credentials.client_id": "machine",
		"exchange.status": http.StatusOK, "exchange.actor.status": http.StatusOK, "exchange.actor.act.client_id": "exchanger",
		"exchange.other_actor": "invalid_request", "introspect.introspector": true, "introspect.other": false,
		"id_jag.status " + twinJAGAudience: http.StatusOK, "id_jag.issued_token_type " + twinJAGAudience: idJAGType,
		"id_jag.aud": twinJAGAudience, "id_jag.client_id": "web", "id_jag.status https://elsewhere.example.com": http.StatusBadRequest,
	}
	for k, v := range want {
		if configured[k] != v {
			t.Errorf("%s = %v, want %v", k, configured[k], v)
		}
	}
}

// TestClientModel_DiscoveryAdvertisesAStoredClientsTokenExchange: token
// exchange is in discovery once a stored client allows it, as for a
// configured one.
func TestClientModel_DiscoveryAdvertisesAStoredClientsTokenExchange(t *testing.T) {
	e := newEnv(t, func(c *broker.Config, o *broker.Options) {
		if err := o.Storage.CreateClient(context.Background(), storedTwin(twinClients("stored-")[2])); err != nil {
			t.Fatal(err)
		}
	})
	var d struct {
		Grants []string `json:"grant_types_supported"`
	}
	e.getJSON("/.well-known/openid-configuration", "", &d)
	if !slices.Contains(d.Grants, tokenExchangeGrant) {
		t.Errorf("grant_types_supported %v lacks token exchange", d.Grants)
	}
}

// TestAdminAPI_ClientHoldsEveryField: the admin API writes and reads every
// setting of the client model, holds a stored client to the ID-token
// algorithms the broker signs with, and never makes one an introspector.
func TestAdminAPI_ClientHoldsEveryField(t *testing.T) {
	e := newEnv(t, withAdmin, func(c *broker.Config, o *broker.Options) {
		// A configured client's algorithm gives the broker an ES256 ID-token key.
		c.Clients = append(c.Clients, twinClients("yaml-")[0])
	})
	tok := e.mustClientToken(adminBotID, adminBotSecret, adminAudience)
	refusal := func(what string, method, path string, body any, field string) {
		t.Helper()
		var answer struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		wantStatus(t, what, e.adminCall(method, path, tok, body, &answer), http.StatusBadRequest)
		if answer.Error != "invalid_request" || !strings.Contains(answer.Description, field) {
			t.Errorf("%s: %+v, want invalid_request naming %s", what, answer, field)
		}
	}

	spec := admin.ClientSpec{ID: "agent", GrantTypes: []string{broker.GrantTokenExchange, broker.GrantAuthorizationCode},
		RedirectURIs: []string{twinRedirect}, Audiences: []string{apiAudience}, Actors: []string{"client:agent"},
		BackchannelLogoutURI: "https://agent.example.com/bc", IDTokenSignedResponseAlg: "ES256",
		IDJAGAudiences: []string{twinJAGAudience}}
	var created admin.ClientInfo
	wantStatus(t, "create", e.adminCall("POST", "/clients", tok, spec, &created), http.StatusCreated)
	var got admin.ClientInfo
	resp := e.adminCall("GET", "/clients/agent", tok, nil, &got)
	wantStatus(t, "show", resp, http.StatusOK)
	if !reflect.DeepEqual(got.ClientSpec, spec) || len(got.Secrets) != 1 {
		t.Errorf("show: %+v, want %+v with one secret", got.ClientSpec, spec)
	}
	raw := map[string]any{}
	e.adminCall("GET", "/clients/agent", tok, nil, &raw)
	for k := range raw {
		if strings.Contains(k, "hash") {
			t.Errorf("the admin API shows %q", k)
		}
	}

	bad := spec
	bad.ID, bad.IDTokenSignedResponseAlg = "ps256", "PS256"
	refusal("an algorithm the broker does not sign with", "POST", "/clients", bad, "id_token_signed_response_alg")
	bad = spec
	bad.ID, bad.Introspector = "gateway", true
	refusal("an introspector", "POST", "/clients", bad, "introspector")
	refusal("made an introspector", "PATCH", "/clients/agent", map[string]any{"introspector": true}, "introspector")
	refusal("actors without token exchange", "PATCH", "/clients/agent", map[string]any{"grant_types": []string{broker.GrantAuthorizationCode}}, "actors")
	refusal("a bad actor", "PATCH", "/clients/agent", map[string]any{"actors": []string{"agent"}}, "actors")
	refusal("an ID-JAG audience that is no issuer", "PATCH", "/clients/agent", map[string]any{"id_jag_audiences": []string{"http://as.example.com"}}, "id_jag_audiences")

	wantStatus(t, "update", e.adminCall("PATCH", "/clients/agent", tok, map[string]any{"actors": []string{"user:" + importedAgentID},
		"id_token_signed_response_alg": "", "id_jag_audiences": []string{"https://other-as.example.com"}}, &got), http.StatusOK)
	stored, err := e.store.GetClient(t.Context(), "agent")
	if err != nil || !slices.Equal(stored.Actors, []string{"user:" + importedAgentID}) || stored.IDTokenSignedResponseAlg != "" || stored.Introspector ||
		!slices.Equal(stored.IDJAGAudiences, []string{"https://other-as.example.com"}) {
		t.Errorf("stored after update: %+v, %v", stored, err)
	}
}
