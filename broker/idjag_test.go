package broker_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/storage"
	upoidc "github.com/idbroker/broker/upstream/oidc"
	"github.com/idbroker/broker/upstream/workos"
)

// Identity assertion grants (ID-JAGs,
// draft-ietf-oauth-identity-assertion-authz-grant), both ways: one broker
// is the enterprise identity provider that issues them, another the
// authorization server of an MCP server that redeems them.
const (
	idJAGType      = "urn:ietf:params:oauth:token-type:id-jag"
	jwtBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
	// jagClientID is the agent, a client at both brokers.
	jagClientID     = "wiki"
	jagClientSecret = "wiki-secret-0123456789abcdefghijklmnopqrstuvwxyz"
	jagRedirect     = "http://127.0.0.1:7780/cb"
	// jagOtherID is another client at both: at the identity provider
	// its policy names the same servers; at the resource's server it may
	// use the grant.
	jagOtherID = "chatbot"
	// jagNoBearerID may not use the jwt-bearer grant.
	jagNoBearerID = "reporter"
	jagResource   = "https://chat.example.com/mcp"
	jagConnector  = "enterprise"
	jagEmail      = "ada@corp.example"
)

// jagWorld is an identity provider and two authorization servers that
// have it as a connector: rs accepts its identity assertions, untrusting
// does not.
type jagWorld struct {
	idp, rs, untrusting *env
	// lastAccessToken is the access token idToken's login came with.
	lastAccessToken string
	// signedIn are the ID tokens mustJAG got, by email.
	signedIn map[string]string
}

func newJAGWorld(t *testing.T) *jagWorld {
	idp := newEnv(t)
	server := func(accepts bool) *env {
		return newEnv(t, func(c *broker.Config, o *broker.Options) {
			c.Connectors = append(c.Connectors, jagConnectorTo(idp, accepts))
			c.Resources = append(c.Resources, broker.ResourceConfig{ID: jagResource, Scopes: []string{"chat.read", "chat.write"}})
			for _, id := range []string{jagClientID, jagOtherID} {
				c.Clients = append(c.Clients, broker.ClientConfig{ID: id, Secret: jagClientSecret, GrantTypes: []string{broker.GrantJWTBearer}})
			}
			c.Clients = append(c.Clients, broker.ClientConfig{ID: jagNoBearerID, Secret: jagClientSecret,
				GrantTypes: []string{broker.GrantClientCredentials}, Audiences: []string{jagResource}})
		})
	}
	w := &jagWorld{idp: idp, rs: server(true), untrusting: server(false)}
	// The identity provider's clients are stored: their policy names the
	// servers, whose issuers are known only now.
	for _, id := range []string{jagClientID, jagOtherID} {
		storeJAGClient(t, idp, id, w.rs.issuer, w.untrusting.issuer)
	}
	return w
}

// jagConnectorTo is an authorization server's connector to the identity
// provider idp, accepting its identity assertions when accepts.
func jagConnectorTo(idp *env, accepts bool) broker.ConnectorConfig {
	return broker.ConnectorConfig{ID: jagConnector, Type: "oidc", Name: "Enterprise",
		Config: &upoidc.Config{Issuer: idp.issuer, ClientID: "chat", ClientSecret: "chat-secret", TrustEmail: true,
			AcceptsIdentityAssertions: accepts}}
}

// storeJAGClient stores at the identity provider idp the client id, which
// signs people in and may get ID-JAGs for the authorization servers
// audiences.
func storeJAGClient(t *testing.T, idp *env, id string, audiences ...string) {
	t.Helper()
	h := sha256.Sum256([]byte(jagClientSecret))
	err := idp.store.CreateClient(context.Background(), storage.Client{ID: id, SecretHashes: []storage.SecretHash{{Hash: h[:]}},
		RedirectURIs: []string{jagRedirect}, GrantTypes: []string{broker.GrantAuthorizationCode, broker.GrantTokenExchange},
		IDJAGAudiences: audiences})
	if err != nil {
		t.Fatal(err)
	}
}

// idToken signs email in at the identity provider through jagClientID
// and returns the ID token and its subject.
func (w *jagWorld) idToken(t *testing.T, email string) (string, string) {
	t.Helper()
	l := w.idp.login(w.idp.browser(), email, authRequest{clientID: jagClientID, redirectURI: jagRedirect, scope: "openid email"})
	tr := w.idp.token(url.Values{"grant_type": {"authorization_code"}, "code": {l.code}, "redirect_uri": {jagRedirect},
		"code_verifier": {l.pkce.Verifier}}, jagClientID, jagClientSecret)
	if tr.Status != http.StatusOK || tr.IDToken == "" {
		t.Fatalf("login at the identity provider: %d %s %s", tr.Status, tr.Error, tr.Description)
	}
	w.lastAccessToken = tr.AccessToken
	return tr.IDToken, w.idp.verifyIDToken(tr.IDToken, jagClientID).Subject
}

// exchange asks the identity provider, as clientID, for an ID-JAG for
// audience, the way the MCP Go SDK's enterprise handler does (oauthex
// ExchangeToken: credentials in the form, an empty code), for jagResource
// and chat.read unless extra says otherwise.
func (w *jagWorld) exchange(clientID, subject, subjectType, audience string, extra ...string) tokenResponse {
	form := url.Values{"grant_type": {tokenExchangeGrant}, "code": {""}, "client_id": {clientID},
		"client_secret": {jagClientSecret}, "requested_token_type": {idJAGType}, "audience": {audience},
		"resource": {jagResource}, "scope": {"chat.read"}, "subject_token": {subject}, "subject_token_type": {subjectType}}
	for i := 0; i+1 < len(extra); i += 2 {
		form.Set(extra[i], extra[i+1])
	}
	return w.idp.token(form, "", "")
}

// mustJAG returns an ID-JAG for email, for audience (and extra, as for
// exchange).
func (w *jagWorld) mustJAG(t *testing.T, email, audience string, extra ...string) string {
	t.Helper()
	// One login per address: one-time codes are limited per address.
	if w.signedIn == nil {
		w.signedIn = map[string]string{}
	}
	idt := w.signedIn[email]
	if idt == "" {
		idt, _ = w.idToken(t, email)
		w.signedIn[email] = idt
	}
	tr := w.exchange(jagClientID, idt, idTokenType, audience, extra...)
	if tr.Status != http.StatusOK {
		t.Fatalf("exchange for an ID-JAG: %d %s %s", tr.Status, tr.Error, tr.Description)
	}
	return tr.AccessToken
}

// redeem presents assertion at e's jwt-bearer grant as clientID, as the
// SDK's enterprise handler does.
func redeemJAG(e *env, clientID, assertion string) tokenResponse {
	return e.token(url.Values{"grant_type": {jwtBearerGrant}, "code": {""}, "client_id": {clientID},
		"client_secret": {jagClientSecret}, "assertion": {assertion}}, "", "")
}

// joseVerified verifies raw against e's published key set with go-jose
// and returns its header and claims.
func joseVerified(t *testing.T, e *env, raw string) (jose.Header, map[string]any) {
	t.Helper()
	var set jose.JSONWebKeySet
	e.getJSON("/.well-known/jwks.json", "", &set)
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA})
	if err != nil || len(jws.Signatures) != 1 {
		t.Fatalf("parse %q: %v", raw, err)
	}
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) != 1 {
		t.Fatalf("no published key %q", jws.Signatures[0].Header.KeyID)
	}
	payload, err := jws.Verify(keys[0])
	if err != nil {
		t.Fatalf("does not verify with the published key: %v", err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return jws.Signatures[0].Protected, claims
}

// wantRefused checks an OAuth error answer and that nothing came with it.
func wantRefused(t *testing.T, what string, tr tokenResponse, status int, code string) {
	t.Helper()
	if tr.Status != status || tr.Error != code || tr.AccessToken != "" {
		t.Errorf("%s: %d %q (%s), want %d %s and no token", what, tr.Status, tr.Error, tr.Description, status, code)
	}
}

// TestIDJAG_EnterpriseIdPToResourceServer is the whole flow through HTTP:
// an ID token of the identity provider becomes an ID-JAG (typ, claims,
// signature with the provider's published keys, audited), which the
// resource's authorization server redeems for an access token for the
// resource whose sub is its own user's UUID, with no refresh or ID token.
func TestIDJAG_EnterpriseIdPToResourceServer(t *testing.T) {
	w := newJAGWorld(t)
	idt, sub := w.idToken(t, jagEmail)

	tr := w.exchange(jagClientID, idt, idTokenType, w.rs.issuer)
	if tr.Status != http.StatusOK || tr.IssuedTokenType != idJAGType || tr.TokenType != "N_A" || tr.ExpiresIn != 300 ||
		tr.Scope != "chat.read" || tr.RefreshToken != "" {
		t.Fatalf("exchange: %+v", tr)
	}
	header, c := joseVerified(t, w.idp, tr.AccessToken)
	if typ := header.ExtraHeaders[jose.HeaderType]; typ != "oauth-id-jag+jwt" {
		t.Errorf("typ %v, want oauth-id-jag+jwt", typ)
	}
	want := map[string]any{"iss": w.idp.issuer, "sub": sub, "aud": w.rs.issuer, "client_id": jagClientID,
		"resource": jagResource, "scope": "chat.read", "email": jagEmail, "email_verified": true}
	for k, v := range want {
		if c[k] != v {
			t.Errorf("ID-JAG %s = %v, want %v", k, c[k], v)
		}
	}
	if jti, _ := c["jti"].(string); jti == "" || c["exp"].(float64)-c["iat"].(float64) != 300 || c["auth_time"] == nil {
		t.Errorf("ID-JAG jti, exp, iat, auth_time: %v", c)
	}
	if got := w.idp.auditActions("user:"+sub, "client:"+jagClientID); !slices.Contains(got, "id_jag.issued") {
		t.Errorf("audit of the user: %v, want id_jag.issued", got)
	}

	// RFC 6749 section 3.2: a repeated parameter is refused before the
	// assertion is looked at, and burns nothing.
	twice := w.rs.token(url.Values{"grant_type": {jwtBearerGrant}, "client_id": {jagClientID},
		"client_secret": {jagClientSecret}, "assertion": {tr.AccessToken, tr.AccessToken}}, "", "")
	wantRefused(t, "the assertion twice", twice, http.StatusBadRequest, "invalid_request")

	at := redeemJAG(w.rs, jagClientID, tr.AccessToken)
	if at.Status != http.StatusOK || at.TokenType != "Bearer" || at.RefreshToken != "" || at.IDToken != "" || at.Scope != "chat.read" {
		t.Fatalf("redeem: %+v", at)
	}
	claims := w.rs.tokenClaims(at.AccessToken)
	user, err := w.rs.store.GetUserByEmail(context.Background(), jagEmail)
	if err != nil {
		t.Fatalf("the resource server's user: %v", err)
	}
	if _, err := uuid.Parse(user.ID); err != nil || claims["sub"] != user.ID || user.ID == sub {
		t.Errorf("access token sub %v, want the resource server's own user %s", claims["sub"], user.ID)
	}
	if aud, _ := claims["aud"].([]any); len(aud) != 1 || aud[0] != jagResource || claims["client_id"] != jagClientID ||
		claims["idp"] != jagConnector || claims["scope"] != "chat.read" {
		t.Errorf("access token claims: %v", claims)
	}
}

// TestIDJAG_ResourceServerRefusals: every assertion the resource's
// authorization server must not honour is refused with invalid_grant (or
// the grant with unauthorized_client), and writes nothing: no user, and
// no jti burnt by a client it was not for.
func TestIDJAG_ResourceServerRefusals(t *testing.T) {
	w := newJAGWorld(t)
	jag := w.mustJAG(t, jagEmail, w.rs.issuer)
	before := w.rs.rows()
	nothingWritten := func(what string) {
		t.Helper()
		if n := w.rs.rows(); n != before {
			t.Errorf("%s: %d users and identities, %d before", what, n, before)
		}
	}

	wantRefused(t, "another client", redeemJAG(w.rs, jagOtherID, jag), http.StatusBadRequest, "invalid_grant")
	nothingWritten("another client")
	wantRefused(t, "a client without the grant", redeemJAG(w.rs, jagNoBearerID, jag), http.StatusBadRequest, "unauthorized_client")
	nothingWritten("a client without the grant")

	idt, _ := w.idToken(t, jagEmail)
	wantRefused(t, "an ID token", redeemJAG(w.rs, jagClientID, idt), http.StatusBadRequest, "invalid_grant")
	wantRefused(t, "for another audience", redeemJAG(w.rs, jagClientID, w.mustJAG(t, jagEmail, w.untrusting.issuer)),
		http.StatusBadRequest, "invalid_grant")
	wantRefused(t, "a connector without acceptsIdentityAssertions", redeemJAG(w.untrusting, jagClientID,
		w.mustJAG(t, jagEmail, w.untrusting.issuer)), http.StatusBadRequest, "invalid_grant")
	wantRefused(t, "an unknown issuer", redeemJAG(w.rs, jagClientID, selfSignedJAG(t, w.rs.issuer)), http.StatusBadRequest, "invalid_grant")
	wantRefused(t, "an unknown resource", redeemJAG(w.rs, jagClientID, w.mustJAG(t, jagEmail, w.rs.issuer,
		"resource", "https://unknown.example.com/mcp")), http.StatusBadRequest, "invalid_target")
	expiring := w.mustJAG(t, jagEmail, w.rs.issuer)
	w.rs.clock.Advance(6*time.Minute + time.Second) // past exp, beyond the minute of skew
	wantRefused(t, "expired", redeemJAG(w.rs, jagClientID, expiring), http.StatusBadRequest, "invalid_grant")
	w.rs.clock.Advance(-(6*time.Minute + time.Second))
	nothingWritten("refused assertions")

	// Refused for another client, it was not used up: its own client
	// redeems it, once.
	if tr := redeemJAG(w.rs, jagClientID, jag); tr.Status != http.StatusOK {
		t.Fatalf("redeem after the refusals: %d %s %s", tr.Status, tr.Error, tr.Description)
	}
	before = w.rs.rows()
	wantRefused(t, "replayed", redeemJAG(w.rs, jagClientID, jag), http.StatusBadRequest, "invalid_grant")
	nothingWritten("replayed")
}

// selfSignedJAG is an ID-JAG for audience from an issuer no connector
// lists, signed with a key of its own.
func selfSignedJAG(t *testing.T, audience string) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType("oauth-id-jag+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	payload, _ := json.Marshal(map[string]any{"iss": "https://unknown-idp.example.com", "sub": "u1", "aud": audience,
		"client_id": jagClientID, "jti": uuid.NewString(), "iat": now.Unix(), "exp": now.Add(time.Minute).Unix(), "resource": jagResource})
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestIDJAG_IdentityProviderRefusals: the identity provider issues an
// ID-JAG only for a server the client's policy names, for an ID token
// issued to that client, of a user still enabled; a refusal audits
// nothing.
func TestIDJAG_IdentityProviderRefusals(t *testing.T) {
	w := newJAGWorld(t)
	idt, sub := w.idToken(t, jagEmail)
	issued := func() int {
		return len(slices.DeleteFunc(w.idp.auditActions("user:"+sub, "client:"), func(a string) bool { return a != "id_jag.issued" }))
	}

	wantRefused(t, "an audience outside the policy", w.exchange(jagClientID, idt, idTokenType, "https://elsewhere.example.com"),
		http.StatusBadRequest, "invalid_target")
	wantRefused(t, "another client's ID token", w.exchange(jagOtherID, idt, idTokenType, w.rs.issuer),
		http.StatusBadRequest, "invalid_request")
	wantRefused(t, "an access token as the ID token", w.exchange(jagClientID, w.lastAccessToken, idTokenType, w.rs.issuer),
		http.StatusBadRequest, "invalid_request")
	wantRefused(t, "an ID token named as an access token", w.exchange(jagClientID, idt, accessTokenType, w.rs.issuer),
		http.StatusBadRequest, "invalid_request")
	if err := w.idp.store.SetUserDisabled(context.Background(), sub, true); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, "a disabled user", w.exchange(jagClientID, idt, idTokenType, w.rs.issuer), http.StatusBadRequest, "invalid_grant")
	if n := issued(); n != 0 {
		t.Errorf("%d ID-JAGs audited, want none", n)
	}
}

// TestIDJAG_DiscoveryListsJWTBearerWhereItWorks: the jwt-bearer grant is
// in the metadata of a server where a client may use it and a connector
// accepts identity assertions, and nowhere else.
func TestIDJAG_DiscoveryListsJWTBearerWhereItWorks(t *testing.T) {
	w := newJAGWorld(t)
	for _, c := range []struct {
		e    *env
		want bool
	}{{w.rs, true}, {w.untrusting, false}, {w.idp, false}} {
		for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
			var d struct {
				Grants []string `json:"grant_types_supported"`
			}
			c.e.getJSON(path, "", &d)
			if got := slices.Contains(d.Grants, jwtBearerGrant); got != c.want {
				t.Errorf("%s%s lists jwt-bearer: %v, want %v", c.e.issuer, path, got, c.want)
			}
		}
	}
}

// TestIDJAG_ClientRules: the policy needs token exchange and issuer
// identifiers, and a public client may not use the jwt-bearer grant.
func TestIDJAG_ClientRules(t *testing.T) {
	for _, c := range []struct {
		client broker.ClientConfig
		want   string
	}{
		{broker.ClientConfig{ID: "a", Secret: jagClientSecret, GrantTypes: []string{broker.GrantAuthorizationCode},
			IDJAG: broker.IDJAGPolicy{Audiences: []string{"https://as.example.com"}}}, "idJAG.audiences"},
		{broker.ClientConfig{ID: "b", Secret: jagClientSecret, GrantTypes: []string{broker.GrantTokenExchange},
			IDJAG: broker.IDJAGPolicy{Audiences: []string{"http://as.example.com"}}}, "idJAG.audiences"},
		{broker.ClientConfig{ID: "c", Secret: jagClientSecret, GrantTypes: []string{broker.GrantTokenExchange},
			IDJAG: broker.IDJAGPolicy{Audiences: []string{"https://as.example.com?tenant=1"}}}, "idJAG.audiences"},
		{broker.ClientConfig{ID: "d", Public: true, RedirectURIs: []string{jagRedirect}, GrantTypes: []string{broker.GrantJWTBearer}}, "grantTypes"},
	} {
		cfg := broker.DevelopmentConfig("http://127.0.0.1:1", "127.0.0.1:1")
		cfg.Clients = append(cfg.Clients, c.client)
		if err := cfg.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("client %s: %v, want an error naming %s", c.client.ID, err, c.want)
		}
	}
}

// TestIDJAG_YAML: the client's policy and the connector's trust are
// settings of the configuration file.
func TestIDJAG_YAML(t *testing.T) {
	c, err := broker.ParseConfig([]byte(`
clients:
  - id: wiki
    secret: s3cret-0123456789abcdefghijklmnopqrstuvwxyz
    grantTypes: [authorization_code, token-exchange]
    redirectURIs: ["https://wiki.example.com/cb"]
    idJAG: { audiences: ["https://chat.example.com"] }
  - id: agent
    secret: s3cret-0123456789abcdefghijklmnopqrstuvwxyz
    grantTypes: ["urn:ietf:params:oauth:grant-type:jwt-bearer"]
connectors:
  - { id: enterprise, type: oidc, issuer: "https://idp.example.com", clientID: c, acceptsIdentityAssertions: true }
`), noEnv)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Clients[0].IDJAG.Audiences; !slices.Equal(got, []string{"https://chat.example.com"}) {
		t.Errorf("idJAG.audiences %v", got)
	}
	if cfg, ok := c.Connectors[0].Config.(*upoidc.Config); !ok || !cfg.AcceptsIdentityAssertions {
		t.Errorf("connector config %#v, want acceptsIdentityAssertions", c.Connectors[0].Config)
	}
}

// TestIDJAG_ImpersonatedLoginGetsNone: an ID token of an impersonated
// login (act names the impersonator) is not traded for an ID-JAG, which
// has no act: the other server would take the impersonator for the user.
func TestIDJAG_ImpersonatedLoginGetsNone(t *testing.T) {
	u := newUpstreams(t, nil, func(c *broker.Config, o *broker.Options) {
		for i := range c.Connectors {
			if c.Connectors[i].ID == "workos" {
				c.Connectors[i].Config.(*workos.Config).AllowImpersonation = true
			}
		}
		c.Clients = append(c.Clients, broker.ClientConfig{ID: jagClientID, Secret: jagClientSecret, RedirectURIs: []string{jagRedirect},
			GrantTypes: []string{broker.GrantAuthorizationCode, broker.GrantTokenExchange},
			IDJAG:      broker.IDJAGPolicy{Audiences: []string{"https://chat.example.com"}}})
	})
	u.workos.SetNextUser(testenv.User{Sub: "user_imp", Email: "wanda@acme.example", EmailVerified: true,
		Impersonator: "support@vendor.example", ImpersonationReason: "ticket 4711"})
	b := u.browser()
	a := authRequest{clientID: jagClientID, redirectURI: jagRedirect, scope: "openid email", pkce: testenv.NewPKCE(), state: "st", nonce: "nn"}
	page := b.Submit(b.Get(u.authorizeURL(a)), "/login", url.Values{"email": {"wanda@acme.example"}})
	page = b.Submit(page, "/login/connector", nil)
	if page.Location == nil || page.Location.Query().Get("code") == "" {
		t.Fatalf("impersonated login: %d %s", page.Status, page.Body)
	}
	tr := u.token(url.Values{"grant_type": {"authorization_code"}, "code": {page.Location.Query().Get("code")},
		"redirect_uri": {jagRedirect}, "code_verifier": {a.pkce.Verifier}}, jagClientID, jagClientSecret)
	if tr.IDToken == "" {
		t.Fatalf("code: %d %s", tr.Status, tr.Description)
	}
	wantRefused(t, "an impersonated login's ID token", u.token(url.Values{"grant_type": {tokenExchangeGrant},
		"requested_token_type": {idJAGType}, "audience": {"https://chat.example.com"}, "subject_token": {tr.IDToken},
		"subject_token_type": {idTokenType}}, jagClientID, jagClientSecret), http.StatusBadRequest, "invalid_request")
}

// TestIDJAG_ScopesAreTheResourcesAmongTheGrants: the access token carries
// the grant's scopes that its resource defines; a scope parameter narrows
// them and may not widen them.
func TestIDJAG_ScopesAreTheResourcesAmongTheGrants(t *testing.T) {
	w := newJAGWorld(t)
	tr := redeemJAG(w.rs, jagClientID, w.mustJAG(t, jagEmail, w.rs.issuer, "scope", "chat.read chat.write calendar"))
	if tr.Status != http.StatusOK || tr.Scope != "chat.read chat.write" {
		t.Errorf("redeem: %d %q, want the resource's scopes chat.read chat.write", tr.Status, tr.Scope)
	}
	jag := w.mustJAG(t, jagEmail, w.rs.issuer, "scope", "chat.read")
	form := url.Values{"grant_type": {jwtBearerGrant}, "assertion": {jag}, "scope": {"chat.read chat.write"}}
	wantRefused(t, "a wider scope", w.rs.token(form, jagClientID, jagClientSecret), http.StatusBadRequest, "invalid_scope")
	form.Set("scope", "chat.read")
	if tr := w.rs.token(form, jagClientID, jagClientSecret); tr.Status != http.StatusOK || tr.Scope != "chat.read" {
		t.Errorf("narrowed (Basic authentication): %d %q %s", tr.Status, tr.Scope, tr.Description)
	}
}

// TestIDJAG_EndedSessionGetsNone: an ID-JAG acts for the person where
// they are signed in; once the session the ID token came from has ended
// (a logout), the ID token, though unexpired, gets none.
func TestIDJAG_EndedSessionGetsNone(t *testing.T) {
	w := newJAGWorld(t)
	idt, _ := w.idToken(t, jagEmail)
	sid := w.idp.verifyIDToken(idt, jagClientID).SessionID
	if sid == "" {
		t.Fatal("the ID token has no sid")
	}
	if _, err := w.idp.store.EndSession(context.Background(), sid); err != nil {
		t.Fatal(err)
	}
	wantRefused(t, "the ID token of an ended session", w.exchange(jagClientID, idt, idTokenType, w.rs.issuer),
		http.StatusBadRequest, "invalid_request")
}
