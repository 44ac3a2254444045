package broker_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/broker/registration"
	"github.com/idbroker/broker/storage/postgres/pgtest"
)

const dcrRedirect = "http://127.0.0.1:7777/callback"

// withRegistration sets the registration policy.
func withRegistration(policy string) envOption {
	return func(c *broker.Config, o *broker.Options) { c.Registration.Policy = policy }
}

// registered is the answer of /register or of a client's configuration
// endpoint, success or error.
type registered struct {
	Status                  int
	Header                  http.Header
	ClientID                string   `json:"client_id"`
	ClientIDIssuedAt        int64    `json:"client_id_issued_at"`
	ClientSecret            string   `json:"client_secret"`
	ClientSecretExpiresAt   *int64   `json:"client_secret_expires_at"`
	RegistrationAccessToken string   `json:"registration_access_token"`
	RegistrationClientURI   string   `json:"registration_client_uri"`
	RedirectURIs            []string `json:"redirect_uris"`
	TokenEndpointAuthMethod string   `json:"token_endpoint_auth_method"`
	GrantTypes              []string `json:"grant_types"`
	ResponseTypes           []string `json:"response_types"`
	ClientName              string   `json:"client_name"`
	Scope                   string   `json:"scope"`
	Error                   string   `json:"error"`
	Description             string   `json:"error_description"`
}

// dcrCall sends method to path with a raw body (JSON unless contentType
// says otherwise) and an optional bearer token.
func (e *env) dcrCall(method, path, bearer string, body []byte, header http.Header) registered {
	e.t.Helper()
	req, _ := http.NewRequest(method, e.issuer+path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := e.httpClient().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var r registered
	json.NewDecoder(resp.Body).Decode(&r)
	r.Status, r.Header = resp.StatusCode, resp.Header
	return r
}

// register posts metadata to /register.
func (e *env) register(metadata any, bearer string) registered {
	e.t.Helper()
	body, _ := json.Marshal(metadata)
	return e.dcrCall(http.MethodPost, "/register", bearer, body, nil)
}

// publicClient is the metadata of a typical native MCP client.
func publicClient() map[string]any {
	return map[string]any{
		"client_name": "Desktop agent", "redirect_uris": []string{dcrRedirect},
		"token_endpoint_auth_method": "none", "grant_types": []string{"authorization_code", "refresh_token"},
		"response_types": []string{"code"}, "scope": "openid email offline_access",
		"logo_uri": "https://agent.example.com/logo.png", "software_id": "ignored-metadata",
	}
}

// wantRefused fails unless r is a refusal with status and error code.
func wantRegistrationRefused(t *testing.T, what string, r registered, status int, code string) {
	t.Helper()
	if r.Status != status || r.Error != code {
		t.Fatalf("%s: %d %q (%s), want %d %q", what, r.Status, r.Error, r.Description, status, code)
	}
	if r.ClientID != "" {
		t.Fatalf("%s: a client id was issued: %s", what, r.ClientID)
	}
}

// wantNothingRegistered fails if any client is stored or any
// registration audited.
func (e *env) wantNothingRegistered(what string) {
	e.t.Helper()
	list, err := e.store.ListClients(e.t.Context())
	if err != nil {
		e.t.Fatal(err)
	}
	if len(list) != 0 {
		e.t.Fatalf("%s: %d clients stored, want none", what, len(list))
	}
	if n := len(e.auditTargets("client.register")); n != 0 {
		e.t.Fatalf("%s: %d registrations audited, want none", what, n)
	}
}

// auditTargets returns the targets of the audit events of action.
func (e *env) auditTargets(action string) []string {
	e.t.Helper()
	events, err := e.store.ListAudit(e.t.Context(), 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	var targets []string
	for _, ev := range events {
		if ev.Action == action {
			targets = append(targets, ev.Target)
		}
	}
	return targets
}

// metadataDoc fetches a discovery or metadata document.
func (e *env) metadataDoc(path string) map[string]any {
	e.t.Helper()
	var doc map[string]any
	if resp := e.getJSON(path, "", &doc); resp.StatusCode != http.StatusOK {
		e.t.Fatalf("%s: status %d", path, resp.StatusCode)
	}
	return doc
}

func TestRegistration_DisabledByDefault(t *testing.T) {
	e := newEnv(t)
	r := e.register(publicClient(), "")
	if r.Status != http.StatusNotFound {
		t.Fatalf("/register with registration disabled: status %d, want 404", r.Status)
	}
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		if v, ok := e.metadataDoc(path)["registration_endpoint"]; ok {
			t.Errorf("%s names a registration endpoint %v while registration is disabled", path, v)
		}
	}
	e.wantNothingRegistered("disabled")
}

func TestRegistration_OpenRegistersAPublicClientThatLogsInWithPKCE(t *testing.T) {
	e := newEnv(t, withRegistration(registration.PolicyOpen))
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		if got := e.metadataDoc(path)["registration_endpoint"]; got != e.issuer+"/register" {
			t.Errorf("%s: registration_endpoint = %v, want %s/register", path, got, e.issuer)
		}
	}
	r := e.register(publicClient(), "")
	if r.Status != http.StatusCreated {
		t.Fatalf("register: %d %s %s", r.Status, r.Error, r.Description)
	}
	if r.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", r.Header.Get("Cache-Control"))
	}
	if r.ClientID == "" || r.RegistrationAccessToken == "" || r.RegistrationClientURI != e.issuer+"/register/"+r.ClientID {
		t.Fatalf("response lacks client_id, registration_access_token or registration_client_uri: %+v", r)
	}
	if r.ClientSecret != "" || r.ClientSecretExpiresAt != nil {
		t.Errorf("a public client got a secret: %+v", r)
	}
	if d := time.Since(time.Unix(r.ClientIDIssuedAt, 0)); d < -time.Minute || d > time.Minute {
		t.Errorf("client_id_issued_at %d is not now", r.ClientIDIssuedAt)
	}
	if r.TokenEndpointAuthMethod != "none" || !slices.Equal(r.RedirectURIs, []string{dcrRedirect}) ||
		r.ClientName != "Desktop agent" || r.Scope != "openid email offline_access" ||
		!slices.Equal(r.GrantTypes, []string{"authorization_code", "refresh_token"}) || !slices.Equal(r.ResponseTypes, []string{"code"}) {
		t.Errorf("metadata not echoed as registered: %+v", r)
	}
	c, err := e.store.GetClient(t.Context(), r.ClientID)
	if err != nil {
		t.Fatal(err)
	}
	if !c.ThirdParty || !c.Public || c.RegistrationTokenHash == nil {
		t.Errorf("stored client: third party %t, public %t, registration token hash %x", c.ThirdParty, c.Public, c.RegistrationTokenHash)
	}
	if targets := e.auditTargets("client.register"); !slices.Equal(targets, []string{"client:" + r.ClientID}) {
		t.Errorf("audited registrations %v", targets)
	}

	// The client signs a user in with PKCE and gets tokens; without PKCE
	// it is refused, as every public client is.
	// The consent page says the client registered itself, and where the
	// browser goes next, which its self-chosen name cannot disguise.
	b := e.browser()
	page, a := e.consentPage(b, "agent-user@example.com", authRequest{clientID: r.ClientID, redirectURI: dcrRedirect, scope: "openid email offline_access"})
	redirect, _ := url.Parse(dcrRedirect)
	if !strings.Contains(page.Body, "registered itself") || !strings.Contains(page.Body, "<code>"+redirect.Host+"</code>") {
		t.Errorf("consent page of a registered client lacks the self-registration warning or the redirect host %s: %s", redirect.Host, page.Body)
	}
	login := e.landed(decide(b, page, "allow"), a)
	tr := e.redeem(login)
	if tr.Status != http.StatusOK || tr.AccessToken == "" || tr.IDToken == "" || tr.RefreshToken == "" {
		t.Fatalf("redeem: %d %s %s", tr.Status, tr.Error, tr.Description)
	}
	if tr := e.refresh(r.ClientID, tr.RefreshToken); tr.Status != http.StatusOK {
		t.Fatalf("refresh: %d %s %s", tr.Status, tr.Error, tr.Description)
	}
	page = e.browser().Get(e.authorizeURL(authRequest{clientID: r.ClientID, redirectURI: dcrRedirect, noPKCE: true}))
	if page.Location == nil || page.Location.Query().Get("error") != "invalid_request" {
		t.Errorf("authorize without PKCE: want an invalid_request redirect, got %d %v", page.Status, page.Location)
	}
}

func TestRegistration_RefusesBadRedirectURIsNamingThem(t *testing.T) {
	e := newEnv(t, withRegistration(registration.PolicyOpen), func(c *broker.Config, o *broker.Options) {
		c.Registration.OpenRateLimit = broker.Limit{Count: 100, Window: time.Hour}
	})
	for _, tc := range []struct{ name, uri string }{
		{"http not on loopback", "http://agent.example.com/cb"},
		{"fragment", "https://agent.example.com/cb#frag"},
		{"wildcard host", "https://*.example.com/cb"},
		{"wildcard path", "https://agent.example.com/*"},
		{"javascript", "javascript:alert(1)"},
		{"data", "data:text/html,hi"},
		{"user information", "https://user@agent.example.com/cb"},
		{"relative", "/cb"},
		{"custom scheme", "com.example.agent:/cb"},
	} {
		m := publicClient()
		m["redirect_uris"] = []string{"https://agent.example.com/ok", tc.uri}
		r := e.register(m, "")
		wantRegistrationRefused(t, tc.name, r, http.StatusBadRequest, "invalid_redirect_uri")
		if !strings.Contains(r.Description, "redirect_uris") || !strings.Contains(r.Description, strconv.Quote(tc.uri)) {
			t.Errorf("%s: description %q does not name redirect_uris and %q", tc.name, r.Description, tc.uri)
		}
	}
	m := publicClient()
	delete(m, "redirect_uris")
	wantRegistrationRefused(t, "no redirect URI", e.register(m, ""), http.StatusBadRequest, "invalid_redirect_uri")

	// Bytes that are not UTF-8 are refused before anything reads them.
	body := []byte("{\"redirect_uris\":[\"https://agent.example.com/\xff\"],\"token_endpoint_auth_method\":\"none\"}")
	wantRegistrationRefused(t, "invalid UTF-8", e.dcrCall(http.MethodPost, "/register", "", body, nil), http.StatusBadRequest, "invalid_client_metadata")
	body = []byte(`{"redirect_uris":["https://agent.example.com/\u0000"],"token_endpoint_auth_method":"none"}`)
	wantRegistrationRefused(t, "escaped NUL", e.dcrCall(http.MethodPost, "/register", "", body, nil), http.StatusBadRequest, "invalid_client_metadata")
	e.wantNothingRegistered("bad redirect URIs")
}

func TestRegistration_RefusesMetadataOutsideThePolicyNamingTheField(t *testing.T) {
	e := newEnv(t, withRegistration(registration.PolicyOpen), func(c *broker.Config, o *broker.Options) {
		c.Registration.OpenRateLimit = broker.Limit{Count: 100, Window: time.Hour}
	})
	for _, tc := range []struct {
		name, field string
		value       any
	}{
		{"confidential under open", "token_endpoint_auth_method", "client_secret_basic"},
		{"secret post under open", "token_endpoint_auth_method", "client_secret_post"},
		{"private_key_jwt under open", "token_endpoint_auth_method", "private_key_jwt"},
		{"unknown auth method", "token_endpoint_auth_method", "tls_client_auth"},
		{"client credentials", "grant_types", []string{"authorization_code", "client_credentials"}},
		{"implicit", "grant_types", []string{"implicit"}},
		{"refresh alone", "grant_types", []string{"refresh_token"}},
		{"token response", "response_types", []string{"code", "token"}},
		{"admin scope", "scope", "openid admin"},
		{"long name", "client_name", strings.Repeat("n", 101)},
		{"DEL in name", "client_name", "agent\x7f"},
		{"C1 control in name", "client_name", "agent\u0085"},
		{"right-to-left override in name", "client_name", "Helpful \u202egnp.exe"},
		{"bidi isolate in name", "client_name", "Helpful \u2067Agent"},
		{"keys on a public client", "jwks_uri", "https://agent.example.com/jwks"},
		{"wrong type", "redirect_uris", "https://agent.example.com/cb"},
	} {
		m := publicClient()
		m[tc.field] = tc.value
		r := e.register(m, "")
		wantRegistrationRefused(t, tc.name, r, http.StatusBadRequest, "invalid_client_metadata")
		if !strings.HasPrefix(r.Description, strings.TrimSuffix(tc.field, "_uri")) {
			t.Errorf("%s: description %q does not start with the field %s", tc.name, r.Description, tc.field)
		}
	}
	for name, body := range map[string]string{"not JSON": "redirect_uris=x", "an array": `[{"redirect_uris":["https://a.example.com/"]}]`, "empty": "",
		"over 64 KiB": `{"client_name":"` + strings.Repeat("a", 70<<10) + `"}`} {
		wantRegistrationRefused(t, name, e.dcrCall(http.MethodPost, "/register", "", []byte(body), nil), http.StatusBadRequest, "invalid_client_metadata")
	}
	form := http.Header{"Content-Type": {"application/x-www-form-urlencoded"}}
	wantRegistrationRefused(t, "a form", e.dcrCall(http.MethodPost, "/register", "", []byte("redirect_uris=https%3A%2F%2Fa.example.com%2F"), form),
		http.StatusBadRequest, "invalid_client_metadata")
	e.wantNothingRegistered("bad metadata")

	// Left out, the auth method is none under open (RFC 7591 section
	// 3.2.1 lets the server choose), and the grant authorization_code.
	r := e.register(map[string]any{"redirect_uris": []string{"https://agent.example.com/cb"}}, "")
	if r.Status != http.StatusCreated || r.TokenEndpointAuthMethod != "none" || !slices.Equal(r.GrantTypes, []string{"authorization_code"}) {
		t.Errorf("minimal registration: %d %s %+v", r.Status, r.Error, r)
	}
}

func TestRegistration_OpenIsRateLimitedPerClientAddress(t *testing.T) {
	e := newEnv(t, withRegistration(registration.PolicyOpen), func(c *broker.Config, o *broker.Options) {
		c.Registration.OpenRateLimit = broker.Limit{Count: 2, Window: time.Hour}
		c.HTTP.TrustedProxies = []string{"127.0.0.1"}
	})
	from := func(addr string) http.Header { return http.Header{"X-Forwarded-For": {addr}} }
	body, _ := json.Marshal(publicClient())
	for i := range 2 {
		if r := e.dcrCall(http.MethodPost, "/register", "", body, from("203.0.113.7")); r.Status != http.StatusCreated {
			t.Fatalf("registration %d: %d %s", i+1, r.Status, r.Error)
		}
	}
	r := e.dcrCall(http.MethodPost, "/register", "", body, from("203.0.113.7"))
	wantRegistrationRefused(t, "third registration from one address", r, http.StatusTooManyRequests, "temporarily_unavailable")
	if s, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || s < 1 || s > 3600 {
		t.Errorf("Retry-After = %q", r.Header.Get("Retry-After"))
	}
	if r := e.dcrCall(http.MethodPost, "/register", "", body, from("203.0.113.8")); r.Status != http.StatusCreated {
		t.Fatalf("another address is limited too: %d %s", r.Status, r.Error)
	}
	if n := len(e.auditTargets("client.register")); n != 3 {
		t.Errorf("%d registrations audited, want 3", n)
	}
	e.clock.Advance(time.Hour)
	if r := e.dcrCall(http.MethodPost, "/register", "", body, from("203.0.113.7")); r.Status != http.StatusCreated {
		t.Fatalf("after the window: %d %s", r.Status, r.Error)
	}
}

// createRegistrationToken creates an initial access token through the
// admin API and returns it and its id.
func (e *env) createRegistrationToken(admin string, spec map[string]any) (token, id string) {
	e.t.Helper()
	var created struct {
		ID    string `json:"id"`
		Token string `json:"token"`
	}
	wantStatus(e.t, "create registration token", e.adminCall("POST", "/registration-tokens", admin, spec, &created), http.StatusCreated)
	if created.Token == "" || created.ID == "" {
		e.t.Fatalf("no token or id created: %+v", created)
	}
	return created.Token, created.ID
}

func TestRegistration_TokenPolicyNeedsALiveInitialAccessToken(t *testing.T) {
	e := newEnv(t, withAdmin, withRegistration(registration.PolicyToken))
	admin := e.mustClientToken(adminBotID, adminBotSecret, adminAudience)

	r := e.register(publicClient(), "")
	wantRegistrationRefused(t, "no token", r, http.StatusUnauthorized, "invalid_token")
	if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
		t.Errorf("WWW-Authenticate = %q", r.Header.Get("WWW-Authenticate"))
	}
	wantRegistrationRefused(t, "unknown token", e.register(publicClient(), "not-a-token"), http.StatusUnauthorized, "invalid_token")
	// An admin access token is not an initial access token.
	wantRegistrationRefused(t, "admin access token", e.register(publicClient(), admin), http.StatusUnauthorized, "invalid_token")

	expiring, _ := e.createRegistrationToken(admin, map[string]any{"note": "expires", "expires_in": "1h"})
	once, _ := e.createRegistrationToken(admin, map[string]any{"note": "one client", "max_uses": 1})
	revoked, revokedID := e.createRegistrationToken(admin, map[string]any{"note": "revoked"})
	var list struct {
		Tokens []map[string]any `json:"registration_tokens"`
	}
	wantStatus(t, "list tokens", e.adminCall("GET", "/registration-tokens", admin, nil, &list), http.StatusOK)
	raw, _ := json.Marshal(list)
	if len(list.Tokens) != 3 || strings.Contains(string(raw), expiring) || strings.Contains(string(raw), once) {
		t.Errorf("list: %s", raw)
	}
	wantStatus(t, "revoke", e.adminCall("DELETE", "/registration-tokens/"+revokedID, admin, nil, nil), http.StatusNoContent)
	wantRegistrationRefused(t, "revoked token", e.register(publicClient(), revoked), http.StatusUnauthorized, "invalid_token")

	// Bad metadata under a good token spends nothing.
	bad := publicClient()
	bad["redirect_uris"] = []string{"http://agent.example.com/cb"}
	wantRegistrationRefused(t, "bad metadata", e.register(bad, once), http.StatusBadRequest, "invalid_redirect_uri")
	e.wantNothingRegistered("refusals under the token policy")

	// A confidential client gets a secret, shown once, that
	// authenticates it at the token endpoint.
	conf := publicClient()
	conf["token_endpoint_auth_method"] = "client_secret_basic"
	r = e.register(conf, once)
	if r.Status != http.StatusCreated || r.ClientSecret == "" || r.ClientSecretExpiresAt == nil || *r.ClientSecretExpiresAt != 0 {
		t.Fatalf("confidential registration: %d %s %+v", r.Status, r.Error, r)
	}
	code := url.Values{"grant_type": {"authorization_code"}, "code": {"no-such-code"}, "redirect_uri": {dcrRedirect}}
	if tr := e.token(code, r.ClientID, r.ClientSecret); tr.Error != "invalid_grant" {
		t.Errorf("with its secret the client authenticates (then the code is refused): %d %s", tr.Status, tr.Error)
	}
	if tr := e.token(code, r.ClientID, "wrong"); tr.Error != "invalid_client" {
		t.Errorf("with a wrong secret: %d %s, want invalid_client", tr.Status, tr.Error)
	}
	wantRegistrationRefused(t, "used-up token", e.register(publicClient(), once), http.StatusUnauthorized, "invalid_token")

	if r := e.register(publicClient(), expiring); r.Status != http.StatusCreated {
		t.Fatalf("with the expiring token: %d %s", r.Status, r.Error)
	}
	e.clock.Advance(time.Hour)
	wantRegistrationRefused(t, "expired token", e.register(publicClient(), expiring), http.StatusUnauthorized, "invalid_token")
	if n := len(e.auditTargets("client.register")); n != 2 {
		t.Errorf("%d registrations audited, want 2", n)
	}
	for _, action := range []string{"registration-token.create", "registration-token.revoke"} {
		if len(e.auditTargets(action)) == 0 {
			t.Errorf("no %s audited", action)
		}
	}
}

func TestRegistration_ReadAndDeleteNeedTheClientsOwnRegistrationToken(t *testing.T) {
	e := newEnv(t, withRegistration(registration.PolicyOpen))
	a, b := e.register(publicClient(), ""), e.register(publicClient(), "")
	if a.Status != http.StatusCreated || b.Status != http.StatusCreated {
		t.Fatalf("register: %d, %d", a.Status, b.Status)
	}
	path := "/register/" + a.ClientID
	got := e.dcrCall(http.MethodGet, path, a.RegistrationAccessToken, nil, nil)
	if got.Status != http.StatusOK || got.ClientID != a.ClientID || got.ClientName != "Desktop agent" ||
		!slices.Equal(got.RedirectURIs, a.RedirectURIs) || got.TokenEndpointAuthMethod != "none" || got.RegistrationClientURI != e.issuer+path ||
		got.RegistrationAccessToken != a.RegistrationAccessToken {
		t.Fatalf("read with its token: %d %+v", got.Status, got)
	}
	// Another client's token, none, or a wrong one: the same 401, and
	// an unknown client answers alike.
	for name, r := range map[string]registered{
		"other client's token":  e.dcrCall(http.MethodGet, path, b.RegistrationAccessToken, nil, nil),
		"no token":              e.dcrCall(http.MethodGet, path, "", nil, nil),
		"wrong token":           e.dcrCall(http.MethodGet, path, "x"+a.RegistrationAccessToken, nil, nil),
		"unknown client":        e.dcrCall(http.MethodGet, "/register/reg-nobody", a.RegistrationAccessToken, nil, nil),
		"configured client":     e.dcrCall(http.MethodGet, "/register/"+broker.DevClientID, a.RegistrationAccessToken, nil, nil),
		"delete with b's token": e.dcrCall(http.MethodDelete, path, b.RegistrationAccessToken, nil, nil),
	} {
		wantRegistrationRefused(t, name, r, http.StatusUnauthorized, "invalid_token")
	}
	if r := e.dcrCall(http.MethodGet, "/register/%FF", a.RegistrationAccessToken, nil, nil); r.Status != http.StatusBadRequest || r.Error != "invalid_request" {
		t.Errorf("a path that is not UTF-8: %d %q, want 400 invalid_request in JSON", r.Status, r.Error)
	}
	if r := e.dcrCall(http.MethodPut, path, a.RegistrationAccessToken, []byte(`{}`), nil); r.Status != http.StatusMethodNotAllowed {
		t.Errorf("PUT: status %d, want 405", r.Status)
	}

	tr := e.redeem(e.login(e.browser(), "leaving@example.com", authRequest{thirdParty: true, clientID: a.ClientID, redirectURI: dcrRedirect}))
	if tr.RefreshToken == "" {
		t.Fatalf("redeem: %d %s", tr.Status, tr.Error)
	}
	if r := e.dcrCall(http.MethodDelete, path, a.RegistrationAccessToken, nil, nil); r.Status != http.StatusNoContent {
		t.Fatalf("delete with its token: %d %s", r.Status, r.Error)
	}
	wantRegistrationRefused(t, "read after delete", e.dcrCall(http.MethodGet, path, a.RegistrationAccessToken, nil, nil), http.StatusUnauthorized, "invalid_token")
	if tr := e.refresh(a.ClientID, tr.RefreshToken); tr.Status == http.StatusOK {
		t.Errorf("the deleted client's refresh token still works")
	}
	if r := e.dcrCall(http.MethodGet, "/register/"+b.ClientID, b.RegistrationAccessToken, nil, nil); r.Status != http.StatusOK {
		t.Errorf("the other client is gone too: %d", r.Status)
	}
	if targets := e.auditTargets("client.unregister"); !slices.Equal(targets, []string{"client:" + a.ClientID}) {
		t.Errorf("audited deletions %v", targets)
	}
}

func TestRegistration_UnusedClientsExpireAndUseIsRecordedHourly(t *testing.T) {
	e := newEnv(t, withRegistration(registration.PolicyOpen), func(c *broker.Config, o *broker.Options) {
		c.Registration.UnusedClientLifetime = 48 * time.Hour
		c.Keys.RotationPeriod = 30 * 24 * time.Hour // the clock moves days; nothing here rotates keys
	})
	used, idle := e.register(publicClient(), ""), e.register(publicClient(), "")
	lastUsed := func() time.Time {
		c, err := e.store.GetClient(t.Context(), used.ClientID)
		if err != nil {
			t.Fatal(err)
		}
		return c.LastUsedAt
	}
	tr := e.redeem(e.login(e.browser(), "busy@example.com", authRequest{thirdParty: true, clientID: used.ClientID, redirectURI: dcrRedirect}))
	first := lastUsed()
	if first.IsZero() {
		t.Fatal("the client's first token recorded no use")
	}
	// Within the hour another token writes nothing.
	e.clock.Advance(30 * time.Minute)
	if tr = e.refresh(used.ClientID, tr.RefreshToken); tr.Status != http.StatusOK {
		t.Fatalf("refresh: %d %s", tr.Status, tr.Error)
	}
	if got := lastUsed(); !got.Equal(first) {
		t.Errorf("use recorded again within the hour: %v, then %v", first, got)
	}
	e.clock.Advance(25 * time.Hour)
	if tr = e.refresh(used.ClientID, tr.RefreshToken); tr.Status != http.StatusOK {
		t.Fatalf("refresh: %d %s", tr.Status, tr.Error)
	}
	if got := lastUsed(); !got.After(first.Add(25 * time.Hour)) {
		t.Errorf("use a day later not recorded: %v, then %v", first, got)
	}

	e.clock.Advance(24 * time.Hour) // idle 49.5 h, used 24 h ago
	e.broker.Sweep(t.Context())
	if _, err := e.store.GetClient(t.Context(), idle.ClientID); err == nil {
		t.Error("the unused client outlived its lifetime")
	}
	if _, err := e.store.GetClient(t.Context(), used.ClientID); err != nil {
		t.Errorf("the used client was deleted: %v", err)
	}
	if targets := e.auditTargets("client.expire"); !slices.Equal(targets, []string{"client:" + idle.ClientID}) {
		t.Errorf("audited expiries %v", targets)
	}
	page := e.browser().Get(e.authorizeURL(authRequest{clientID: idle.ClientID, redirectURI: dcrRedirect}))
	if page.Status != http.StatusBadRequest || page.Location != nil {
		t.Errorf("authorize for the expired client: %d %v, want a 400 page", page.Status, page.Location)
	}
}

func TestRegistration_AdminListsAndDeletesRegisteredClients(t *testing.T) {
	e := newEnv(t, withAdmin, withRegistration(registration.PolicyOpen))
	admin := e.mustClientToken(adminBotID, adminBotSecret, adminAudience)
	r := e.register(publicClient(), "")
	wantStatus(t, "create a third-party client", e.adminCall("POST", "/clients", admin, map[string]any{
		"client_id": "partner", "public": true, "redirect_uris": []string{"https://partner.example.com/cb"}, "third_party": true}, nil), http.StatusCreated)
	var list struct {
		Clients []struct {
			ID         string `json:"client_id"`
			ThirdParty bool   `json:"third_party"`
			Registered bool   `json:"registered"`
		} `json:"clients"`
	}
	wantStatus(t, "list", e.adminCall("GET", "/clients", admin, nil, &list), http.StatusOK)
	shown := map[string]string{}
	for _, c := range list.Clients {
		shown[c.ID] = fmt.Sprintf("third_party=%t registered=%t", c.ThirdParty, c.Registered)
	}
	if shown[r.ClientID] != "third_party=true registered=true" || shown["partner"] != "third_party=true registered=false" {
		t.Errorf("admin list: %v", shown)
	}
	// A registered client stays third-party.
	wantStatus(t, "make a registered client first-party", e.adminCall("PATCH", "/clients/"+r.ClientID, admin,
		map[string]any{"third_party": false}, nil), http.StatusBadRequest)

	wantStatus(t, "delete", e.adminCall("DELETE", "/clients/"+r.ClientID, admin, nil, nil), http.StatusNoContent)
	wantRegistrationRefused(t, "read after the admin deleted it", e.dcrCall(http.MethodGet, "/register/"+r.ClientID, r.RegistrationAccessToken, nil, nil),
		http.StatusUnauthorized, "invalid_token")
	if targets := e.auditTargets("client.delete"); !slices.Equal(targets, []string{"client:" + r.ClientID}) {
		t.Errorf("audited deletions %v", targets)
	}
}

func TestRegistration_ConfigNamesTheBadSetting(t *testing.T) {
	for _, tc := range []struct{ yaml, want string }{
		{"registration: { policy: sometimes }", "registration.policy"},
		{"registration: { policy: open, unusedClientLifetime: 30m }", "registration.unusedClientLifetime"},
		{"registration: { policy: open, openRateLimit: { count: 0, window: 1h } }", "registration.openRateLimit"},
	} {
		cfg, err := broker.ParseConfig([]byte(tc.yaml), func(string) (string, bool) { return "", false })
		if err == nil {
			err = cfg.Validate()
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one naming %s", tc.yaml, err, tc.want)
		}
	}
	cfg, err := broker.ParseConfig([]byte("issuer: https://id.example.com"), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Registration.Policy != registration.PolicyDisabled || cfg.Registration.UnusedClientLifetime != 30*24*time.Hour {
		t.Errorf("defaults: %+v", cfg.Registration)
	}
}

func TestRegistration_ASingleUseTokenRegistersOneClientHoweverManyTryAtOnce(t *testing.T) {
	singleUseTokenRace(t)
}

// On Postgres a row lock, not the memory store's one mutex, does it.
func TestRegistration_ASingleUseTokenRegistersOneClientOnPostgres(t *testing.T) {
	store := pgtest.NewStore(t)
	singleUseTokenRace(t, func(c *broker.Config, o *broker.Options) { o.Storage = store })
}

// singleUseTokenRace has 16 registrations race for an initial access token
// of one use: exactly one registers a client.
func singleUseTokenRace(t *testing.T, opts ...envOption) {
	e := newEnv(t, append([]envOption{withAdmin, withRegistration(registration.PolicyToken)}, opts...)...)
	admin := e.mustClientToken(adminBotID, adminBotSecret, adminAudience)
	once, _ := e.createRegistrationToken(admin, map[string]any{"max_uses": 1})
	const n = 16
	statuses := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { statuses[i] = e.register(publicClient(), once).Status })
	}
	wg.Wait()
	created := 0
	for _, s := range statuses {
		switch s {
		case http.StatusCreated:
			created++
		case http.StatusUnauthorized:
		default:
			t.Fatalf("statuses %v: want 201 or 401 each", statuses)
		}
	}
	list, err := e.store.ListClients(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if created != 1 || len(list) != 1 {
		t.Fatalf("%d registrations succeeded and %d clients stored, want 1 and 1 (statuses %v)", created, len(list), statuses)
	}
}

func TestRegistration_ARegisteredClientGetsOnlyResourcesThatAcceptThirdParties(t *testing.T) {
	e := newEnv(t, withResources, withRegistration(registration.PolicyOpen))
	m := publicClient()
	m["scope"] = "openid tools:read"
	r := e.register(m, "")
	wantRegistrationRefused(t, "a scope of a first-party resource", r, http.StatusBadRequest, "invalid_client_metadata")
	if !strings.Contains(r.Description, `"tools:read"`) {
		t.Errorf("description %q does not name the scope", r.Description)
	}
	m["scope"] = "openid offline_access files:read"
	r = e.register(m, "")
	if r.Status != http.StatusCreated || r.Scope != "openid offline_access files:read" {
		t.Fatalf("register with a third-party resource's scope: %d %s %s", r.Status, r.Error, r.Description)
	}
	l := e.login(e.browser(), "mcp-user@example.com", authRequest{thirdParty: true, clientID: r.ClientID, redirectURI: dcrRedirect,
		scope: "openid offline_access files:read", extra: url.Values{"resource": {mcpB}}})
	wantToken(t, "code for the third-party resource", e.redeem(l), mcpB, "files:read", 15*time.Minute)
	page := e.browser().Get(e.authorizeURL(authRequest{clientID: r.ClientID, redirectURI: dcrRedirect, pkce: l.pkce, state: "s",
		extra: url.Values{"resource": {mcpA}}}))
	if page.Location == nil || page.Location.Query().Get("error") != "invalid_target" {
		t.Errorf("authorize for a first-party resource: %d %v, want an invalid_target redirect", page.Status, page.Location)
	}
}

func TestRegistration_TokenPolicyRegistersAPrivateKeyJWTClient(t *testing.T) {
	e := newEnv(t, withAdmin, withRegistration(registration.PolicyToken))
	admin := e.mustClientToken(adminBotID, adminBotSecret, adminAudience)
	token, _ := e.createRegistrationToken(admin, map[string]any{"max_uses": 3})
	key := newClientKey(t, "agent-key")
	m := publicClient()
	m["token_endpoint_auth_method"] = "private_key_jwt"
	wantRegistrationRefused(t, "private_key_jwt without keys", e.register(m, token), http.StatusBadRequest, "invalid_client_metadata")
	m["jwks_uri"] = "http://127.0.0.1:9/jwks"
	wantRegistrationRefused(t, "a jwks_uri over http", e.register(m, token), http.StatusBadRequest, "invalid_client_metadata")
	delete(m, "jwks_uri")
	m["jwks"] = json.RawMessage(key.jwks)
	r := e.register(m, token)
	if r.Status != http.StatusCreated || r.ClientSecret != "" || r.TokenEndpointAuthMethod != "private_key_jwt" {
		t.Fatalf("register: %d %s %s %+v", r.Status, r.Error, r.Description, r)
	}
	// Its assertions authenticate it at the token endpoint (the code is
	// then refused), and another key's do not.
	form := url.Values{"grant_type": {"authorization_code"}, "code": {"no-such-code"}, "redirect_uri": {dcrRedirect},
		"client_assertion_type": {assertionType}, "client_assertion": {key.assertion(t, r.ClientID, e.issuer+"/token", time.Minute)}}
	if tr := e.token(form, "", ""); tr.Error != "invalid_grant" {
		t.Errorf("with its key: %d %s %s, want invalid_grant", tr.Status, tr.Error, tr.Description)
	}
	form.Set("client_assertion", newClientKey(t, "agent-key").assertion(t, r.ClientID, e.issuer+"/token", time.Minute))
	if tr := e.token(form, "", ""); tr.Error != "invalid_client" {
		t.Errorf("with another key: %d %s, want invalid_client", tr.Status, tr.Error)
	}
}

// A registered client names its own jwks_uri, so the broker fetches it as
// it fetches metadata documents (broker/safefetch): an address that is not
// public is never dialled, and the failure is the client's invalid_client,
// not the broker's 503.
func TestRegistration_AJWKSURIAtAPrivateAddressIsNeverFetched(t *testing.T) {
	var hits atomic.Int32
	keys := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"keys":[]}`)
	}))
	t.Cleanup(keys.Close)
	e := newEnv(t, withAdmin, withRegistration(registration.PolicyToken))
	admin := e.mustClientToken(adminBotID, adminBotSecret, adminAudience)
	token, _ := e.createRegistrationToken(admin, map[string]any{"max_uses": 1})
	m := publicClient()
	m["token_endpoint_auth_method"] = "private_key_jwt"
	m["jwks_uri"] = keys.URL + "/jwks"
	r := e.register(m, token)
	if r.Status != http.StatusCreated {
		t.Fatalf("register: %d %s %s", r.Status, r.Error, r.Description)
	}
	key := newClientKey(t, "agent-key")
	form := url.Values{"grant_type": {"authorization_code"}, "code": {"no-such-code"}, "redirect_uri": {dcrRedirect},
		"client_assertion_type": {assertionType}, "client_assertion": {key.assertion(t, r.ClientID, e.issuer+"/token", time.Minute)}}
	if tr := e.token(form, "", ""); tr.Status != http.StatusUnauthorized || tr.Error != "invalid_client" {
		t.Errorf("assertion of a client whose keys are on loopback: %d %s %s, want 401 invalid_client", tr.Status, tr.Error, tr.Description)
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the key set on loopback was fetched %d times", n)
	}
}

// RFC 6749 section 3.1.2: "The endpoint URI MUST NOT include a fragment
// component." A URI ending in "#" has one, empty: url.Parse reports no
// Fragment for it, and it used to be registered. (Metadata documents go
// through the same check.)
func TestRegistration_RedirectURIWithAnEmptyFragmentIsRefused(t *testing.T) {
	e := newEnv(t, withRegistration(registration.PolicyOpen))
	m := publicClient()
	m["redirect_uris"] = []string{"https://agent.example.com/cb#"}
	r := e.register(m, "")
	wantRegistrationRefused(t, "redirect URI with an empty fragment", r, http.StatusBadRequest, "invalid_redirect_uri")
}

// RFC 7592 management of a client the unused-client
// sweep deleted is the same 401 as for a client that never existed.
func TestRegistration_ManagementOfASweptClientIsRefused(t *testing.T) {
	e := newEnv(t, withRegistration(registration.PolicyOpen))
	r := e.register(publicClient(), "")
	if r.Status != http.StatusCreated {
		t.Fatalf("register: %d %s", r.Status, r.Error)
	}
	e.clock.Advance(31 * 24 * time.Hour)
	e.broker.Sweep(t.Context())
	for _, method := range []string{http.MethodGet, http.MethodDelete} {
		wantRegistrationRefused(t, method+" after expiry", e.dcrCall(method, "/register/"+r.ClientID, r.RegistrationAccessToken, nil, nil),
			http.StatusUnauthorized, "invalid_token")
	}
}
