package broker_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/google/uuid"
	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/storage/memory"
	upoidc "github.com/idbroker/broker/upstream/oidc"
)

// The exchanging clients and what they may ask for.
const (
	tokenExchangeGrant = "urn:ietf:params:oauth:grant-type:token-exchange"
	accessTokenType    = "urn:ietf:params:oauth:token-type:access_token"
	idTokenType        = "urn:ietf:params:oauth:token-type:id_token"
	jwtTokenType       = "urn:ietf:params:oauth:token-type:jwt"
	refreshTokenType   = "urn:ietf:params:oauth:token-type:refresh_token"

	exchangerID     = "agentic-backend"
	exchangerSecret = "exchanger-secret-0123456789abcdefghijklmnopqrstu"
	// otherExchangerID may exchange too, but names no actors.
	otherExchangerID     = "reports-backend"
	otherExchangerSecret = "other-exchanger-secret-0123456789abcdefghijklm"

	apiAudience     = "https://api.example.com"
	reportsAudience = "https://reports.example.com"
	billingAudience = "https://billing.example.com"
	azureAPI        = "api://exchange-backend"

	// importedAgentID is a platform user imported with an Auth0 identity
	// and named as an actor by user id.
	importedAgentID  = "7d3f2c1a-5b6e-4f70-8a9b-0c1d2e3f4a5b"
	importedAgentSub = "auth0|imported-agent"
)

// withExchange adds the exchanging clients and lets the Auth0 and Entra
// connectors accept tokens for exchange. It runs after newUpstreams has
// added the connectors.
func withExchange(c *broker.Config, o *broker.Options) {
	c.Clients = append(c.Clients,
		broker.ClientConfig{ID: exchangerID, Secret: exchangerSecret,
			GrantTypes: []string{broker.GrantTokenExchange},
			Audiences:  []string{apiAudience, reportsAudience, billingAudience},
			Actors:     []string{"client:" + exchangerID, "user:" + importedAgentID}},
		broker.ClientConfig{ID: otherExchangerID, Secret: otherExchangerSecret,
			GrantTypes: []string{broker.GrantTokenExchange},
			Audiences:  []string{apiAudience, reportsAudience}},
	)
	for i := range c.Connectors {
		switch cc := &c.Connectors[i]; cc.ID {
		case "auth0":
			// The API, and the client id so Auth0 ID tokens exchange too.
			a0 := cc.Config.(*upoidc.Auth0Config)
			a0.ExchangeAudiences = []string{apiAudience, a0.ClientID}
		case "entra":
			cc.Config.(*upoidc.AzureConfig).ExchangeAudiences = []string{azureAPI}
		}
	}
}

func newExchange(t *testing.T, opts ...envOption) *upstreams {
	return newUpstreams(t, nil, append([]envOption{withExchange}, opts...)...)
}

// tokenResponse is a token endpoint answer to an exchange.
// exchangeAs posts a token exchange as a client (basic authentication),
// adding the grant type when form lacks one.
func (u *upstreams) exchangeAs(clientID, secret string, form url.Values) tokenResponse {
	u.t.Helper()
	if !form.Has("grant_type") {
		form.Set("grant_type", tokenExchangeGrant)
	}
	return u.token(form, clientID, secret)
}

func (u *upstreams) exchange(form url.Values) tokenResponse {
	u.t.Helper()
	return u.exchangeAs(exchangerID, exchangerSecret, form)
}

// mustExchange exchanges subject (an access token) with extra parameters
// and fails the test unless a token comes back.
func (u *upstreams) mustExchange(subject string, extra url.Values) tokenResponse {
	u.t.Helper()
	form := url.Values{"subject_token": {subject}, "subject_token_type": {accessTokenType}}
	for k, v := range extra {
		form[k] = v
	}
	er := u.exchange(form)
	if er.Status != http.StatusOK || er.AccessToken == "" {
		u.t.Fatalf("exchange: %d %s: %s", er.Status, er.Error, er.Description)
	}
	return er
}

// exchangedClaims are the claims of an exchanged access token.
type exchangedClaims struct {
	Subject  string         `json:"sub"`
	Audience []string       `json:"aud"`
	ClientID string         `json:"client_id"`
	Scope    string         `json:"scope"`
	IDP      string         `json:"idp"`
	Org      string         `json:"org_id"`
	JTI      string         `json:"jti"`
	Act      map[string]any `json:"act"`
}

// verifyAccess checks an access token the way a downstream service
// would: go-oidc with the broker's JWKS alone, for audience.
func (u *upstreams) verifyAccess(raw, audience string) exchangedClaims {
	u.t.Helper()
	ctx := oidc.ClientContext(context.Background(), u.httpClient())
	var d struct {
		JWKSURI string `json:"jwks_uri"`
	}
	u.getJSON("/.well-known/openid-configuration", "", &d)
	v := oidc.NewVerifier(u.issuer, oidc.NewRemoteKeySet(ctx, d.JWKSURI), &oidc.Config{
		ClientID:             audience,
		SupportedSigningAlgs: []string{oidc.ES256, oidc.RS256, oidc.EdDSA},
	})
	tok, err := v.Verify(ctx, raw)
	if err != nil {
		u.t.Fatalf("exchanged token does not verify against the broker's JWKS for %s: %v", audience, err)
	}
	var c exchangedClaims
	if err := tok.Claims(&c); err != nil {
		u.t.Fatal(err)
	}
	return c
}

// assertRefused checks an error answer: status, code, no-store.
func assertRefused(t *testing.T, er tokenResponse, status int, code string) {
	t.Helper()
	if er.Status != status || er.Error != code || er.AccessToken != "" {
		t.Errorf("got %d %q (%s), want %d %q", er.Status, er.Error, er.Description, status, code)
	}
	if cc := er.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
}

// assertNotLogged checks no token reached the server log.
func (u *upstreams) assertNotLogged(tokens ...string) {
	u.t.Helper()
	logs := u.logText()
	for _, tok := range tokens {
		if tok != "" && strings.Contains(logs, tok) {
			u.t.Errorf("a token was written to the log")
		}
	}
}

// The incident (context/000): a backend receives an Auth0 JWT for a user
// the platform has never seen. It gets a broker token whose sub is a new
// platform UUID, verifiable with the broker's JWKS alone; the same person
// signing in through the browser later is the same sub.
func TestExchange_FirstTimeUserIsProvisioned(t *testing.T) {
	u := newExchange(t)
	person := testenv.User{Sub: "waad|abc123", Email: "jordan@corp.example.com", EmailVerified: true, Name: "Jordan Austin"}
	subject := u.auth0.AccessToken(person, apiAudience)

	er := u.mustExchange(subject, nil)
	if er.IssuedTokenType != accessTokenType || er.TokenType != "Bearer" || er.ExpiresIn <= 0 || er.Scope != "openid email profile" {
		t.Errorf("response %+v", er)
	}
	if cc := er.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("Cache-Control = %q, want no-store", cc)
	}
	c := u.verifyAccess(er.AccessToken, apiAudience)
	if _, err := uuid.Parse(c.Subject); err != nil || c.Subject == person.Sub {
		t.Fatalf("sub %q: want a platform UUID, never the Auth0 sub", c.Subject)
	}
	if c.ClientID != exchangerID || c.IDP != "auth0" || len(c.Audience) != 1 || c.Audience[0] != apiAudience || c.Act != nil {
		t.Errorf("claims %+v", c)
	}

	// The next exchange for the same person is the same user.
	if again := u.verifyAccess(u.mustExchange(u.auth0.AccessToken(person, apiAudience), nil).AccessToken, apiAudience); again.Subject != c.Subject {
		t.Errorf("second exchange sub %q, want %q", again.Subject, c.Subject)
	}
	// And so is the browser login.
	u.auth0.SetNextUser(person)
	if _, id := u.mustLoginVia(person.Email); id.Subject != c.Subject {
		t.Errorf("browser login sub %q, want the exchanged %q", id.Subject, c.Subject)
	}
	u.assertNotLogged(subject, er.AccessToken)
}

func TestExchange_AzureWorkOSAndIDTokens(t *testing.T) {
	u := newExchange(t)
	azure := u.azure.AccessToken(testenv.User{ObjectID: "oid-x", Sub: "per-app"}, azureAPI)
	// A multi-tenant Entra connector open to any tenant lists no issuer:
	// its tokens must name it.
	assertRefused(t, u.exchange(url.Values{"subject_token": {azure}, "subject_token_type": {accessTokenType}}), http.StatusBadRequest, "invalid_request")
	entra := u.verifyAccess(u.mustExchange(azure, url.Values{"connector": {"entra"}}).AccessToken, apiAudience)
	if _, err := uuid.Parse(entra.Subject); err != nil || entra.IDP != "entra" {
		t.Errorf("Entra exchange: %+v", entra)
	}

	wos := u.verifyAccess(u.mustExchange(u.workos.AccessToken(testenv.User{Sub: "user_01X", OrgID: "org_7"}), nil).AccessToken, apiAudience)
	// WorkOS's own organisation id never passes through: org_id names a
	// broker organisation, and none maps org_7 (orgs_test.go).
	if _, err := uuid.Parse(wos.Subject); err != nil || wos.IDP != "workos" || wos.Org != "" {
		t.Errorf("WorkOS exchange: %+v", wos)
	}

	person := testenv.User{Sub: "auth0|id-token", Email: "id@corp.example.com", EmailVerified: true}
	er := u.exchange(url.Values{"subject_token": {u.auth0.IDToken(person)}, "subject_token_type": {idTokenType}})
	if er.Status != http.StatusOK {
		t.Fatalf("Auth0 ID token: %d %s", er.Status, er.Description)
	}
	fromID := u.verifyAccess(er.AccessToken, apiAudience)
	fromAccess := u.verifyAccess(u.mustExchange(u.auth0.AccessToken(person, apiAudience), url.Values{"connector": {"auth0"}}).AccessToken, apiAudience)
	if fromID.Subject != fromAccess.Subject {
		t.Errorf("ID token and access token of one person: %q and %q", fromID.Subject, fromAccess.Subject)
	}

	// requested_token_type jwt: the same kind of token, labelled so.
	jwtResp := u.mustExchange(u.auth0.AccessToken(person, apiAudience), url.Values{"requested_token_type": {jwtTokenType}})
	if jwtResp.IssuedTokenType != jwtTokenType || u.verifyAccess(jwtResp.AccessToken, apiAudience).Subject != fromID.Subject {
		t.Errorf("jwt requested: %+v", jwtResp)
	}
}

func TestExchange_BadSubjectTokensRefused(t *testing.T) {
	u := newExchange(t)
	stranger := testenv.NewAuth0(t) // an Auth0 tenant no connector trusts
	person := testenv.User{Sub: "auth0|target", Email: "target@corp.example.com", EmailVerified: true}
	var seen []string
	for _, tc := range []struct {
		name, token, tokenType, connector string
	}{
		{"HS256 keyed with the public key", u.auth0.AccessToken(person, apiAudience, testenv.HS256WithPublicKey()), accessTokenType, ""},
		{"HS256 with connector named", u.auth0.AccessToken(person, apiAudience, testenv.HS256WithPublicKey()), accessTokenType, "auth0"},
		{"alg none", u.auth0.AccessToken(person, apiAudience, testenv.AlgNone()), accessTokenType, ""},
		{"expired", u.auth0.AccessToken(person, apiAudience, testenv.Expired()), accessTokenType, ""},
		{"signed by another key", u.auth0.AccessToken(person, apiAudience, testenv.SignedByOtherKey()), accessTokenType, ""},
		{"unknown kid", u.auth0.AccessToken(person, apiAudience, testenv.UnknownKID()), accessTokenType, ""},
		{"wrong audience", u.auth0.AccessToken(person, "https://evil.example.com"), accessTokenType, ""},
		{"wrong issuer", u.auth0.AccessToken(person, apiAudience, testenv.WithClaim("iss", "https://evil.example.com/")), accessTokenType, ""},
		{"wrong issuer, connector named", u.auth0.AccessToken(person, apiAudience, testenv.WithClaim("iss", "https://evil.example.com/")), accessTokenType, "auth0"},
		{"untrusted issuer", stranger.AccessToken(person, apiAudience), accessTokenType, ""},
		{"untrusted issuer, connector named", stranger.AccessToken(person, apiAudience), accessTokenType, "auth0"},
		{"another connector's token", u.auth0.AccessToken(person, apiAudience), accessTokenType, "workos"},
		{"upstream delegation", u.auth0.AccessToken(person, apiAudience, testenv.WithClaim("act", map[string]any{"sub": "someone"})), accessTokenType, ""},
		{"refresh token type", u.auth0.AccessToken(person, apiAudience), refreshTokenType, ""},
		{"opaque", "2YotnFZFEjr1zCsicMWpAA", accessTokenType, ""},
		{"WorkOS token as ID token", u.workos.AccessToken(testenv.User{Sub: "user_02"}), idTokenType, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{"subject_token": {tc.token}, "subject_token_type": {tc.tokenType}}
			if tc.connector != "" {
				form.Set("connector", tc.connector)
			}
			er := u.exchange(form)
			assertRefused(t, er, http.StatusBadRequest, "invalid_request")
			if er.Description != "subject_token is invalid or not acceptable" {
				t.Errorf("description %q tells the client more than it should", er.Description)
			}
			seen = append(seen, tc.token)
		})
	}
	if !strings.Contains(u.logText(), "token exchange refused") {
		t.Error("refusals are not logged")
	}
	// No refusal provisioned anyone, and none wrote a token to the log.
	if strings.Contains(u.logText(), "user provisioned") {
		t.Error("a refused exchange provisioned a user")
	}
	u.assertNotLogged(seen...)
}

func TestExchange_RequestErrors(t *testing.T) {
	u := newExchange(t)
	subject := u.auth0.AccessToken(testenv.User{Sub: "auth0|req"}, apiAudience)
	base := func(kv ...string) url.Values {
		f := url.Values{"subject_token": {subject}, "subject_token_type": {accessTokenType}}
		for i := 0; i < len(kv); i += 2 {
			f.Add(kv[i], kv[i+1])
		}
		return f
	}
	for _, tc := range []struct {
		name   string
		form   url.Values
		status int
		code   string
	}{
		{"no subject_token", url.Values{"subject_token_type": {accessTokenType}}, 400, "invalid_request"},
		{"no subject_token_type", url.Values{"subject_token": {subject}}, 400, "invalid_request"},
		{"subject_token twice", base("subject_token", subject), 400, "invalid_request"},
		{"subject_token_type twice", base("subject_token_type", accessTokenType), 400, "invalid_request"},
		{"scope twice", base("scope", "email", "scope", "profile"), 400, "invalid_request"},
		{"grant_type twice", base("grant_type", tokenExchangeGrant, "grant_type", tokenExchangeGrant), 400, "invalid_request"},
		{"grant_type twice, another grant first", base("grant_type", "client_credentials", "grant_type", tokenExchangeGrant), 400, "invalid_request"},
		{"grant_type twice, the exchange first", base("grant_type", tokenExchangeGrant, "grant_type", "client_credentials"), 400, "invalid_request"},
		{"connector twice", base("connector", "auth0", "connector", "auth0"), 400, "invalid_request"},
		{"actor_token without type", base("actor_token", subject), 400, "invalid_request"},
		{"actor_token_type without token", base("actor_token_type", accessTokenType), 400, "invalid_request"},
		{"requested refresh token", base("requested_token_type", refreshTokenType), 400, "invalid_request"},
		{"requested ID token", base("requested_token_type", idTokenType), 400, "invalid_request"},
		{"unknown connector", base("connector", "nope"), 400, "invalid_request"},
		{"connector that verifies no tokens", base("connector", "otp"), 400, "invalid_request"},
		{"audience not allowed", base("audience", "https://evil.example.com"), 400, "invalid_target"},
		{"one of two audiences not allowed", base("audience", apiAudience, "audience", "https://evil.example.com"), 400, "invalid_target"},
		{"resource not allowed", base("resource", "https://evil.example.com"), 400, "invalid_target"},
		{"resource not absolute", base("resource", "api.example.com"), 400, "invalid_target"},
		{"resource with fragment", base("resource", apiAudience+"#x"), 400, "invalid_target"},
		{"scope widened", base("scope", "email admin"), 400, "invalid_scope"},
		{"offline_access", base("scope", "openid offline_access"), 400, "invalid_scope"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assertRefused(t, u.exchange(tc.form), tc.status, tc.code)
		})
	}

	// What may repeat, and narrowing, works.
	er := u.mustExchange(subject, url.Values{"audience": {apiAudience, reportsAudience}, "resource": {apiAudience}, "scope": {"email"}})
	c := u.verifyAccess(er.AccessToken, reportsAudience)
	if len(c.Audience) != 2 || c.Scope != "email" || er.Scope != "email" {
		t.Errorf("audience %q scope %q (response scope %q)", c.Audience, c.Scope, er.Scope)
	}
	// client_secret_post authenticates as well as basic.
	form := base("grant_type", tokenExchangeGrant, "client_id", exchangerID, "client_secret", exchangerSecret)
	if resp := u.exchangeAs("", "", form); resp.Status != http.StatusOK {
		t.Errorf("client_secret_post: %d %s", resp.Status, resp.Description)
	}
	u.assertNotLogged(subject)
}

func TestExchange_ClientMustBeConfidentialAndAllowed(t *testing.T) {
	u := newExchange(t)
	if err := u.store.CreateClient(context.Background(), storage.Client{
		ID: "public-exchanger", Public: true, GrantTypes: []string{broker.GrantTokenExchange}, Audiences: []string{apiAudience},
	}); err != nil {
		t.Fatal(err)
	}
	subject := u.auth0.AccessToken(testenv.User{Sub: "auth0|cl"}, apiAudience)
	form := func(extra ...string) url.Values {
		f := url.Values{"subject_token": {subject}, "subject_token_type": {accessTokenType}}
		for i := 0; i < len(extra); i += 2 {
			f.Set(extra[i], extra[i+1])
		}
		return f
	}
	for _, tc := range []struct {
		name, id, secret string
		form             url.Values
		status           int
		code             string
	}{
		{"wrong secret", exchangerID, "wrong", form(), 401, "invalid_client"},
		{"no credentials", "", "", form(), 401, "invalid_client"},
		{"public client allowed the grant", "", "", form("client_id", "public-exchanger"), 401, "invalid_client"},
		{"public client without the grant", "", "", form("client_id", broker.DevClientID), 401, "invalid_client"},
		{"confidential client without the grant", backendID, backendSecret, form(), 400, "unauthorized_client"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			er := u.exchangeAs(tc.id, tc.secret, tc.form)
			assertRefused(t, er, tc.status, tc.code)
			if tc.status == http.StatusUnauthorized && er.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

func TestExchange_PublicClientIsInvalidClient(t *testing.T) {
	u := newExchange(t)
	subject := u.auth0.AccessToken(testenv.User{Sub: "auth0|public"}, apiAudience)
	// RFC 6749 section 5.2: a client_id alone is "no client
	// authentication included", invalid_client, whatever grants the
	// client has; unauthorized_client is for an authenticated client.
	for name, form := range map[string]url.Values{
		"token exchange": {"grant_type": {tokenExchangeGrant}, "client_id": {broker.DevClientID},
			"subject_token": {subject}, "subject_token_type": {accessTokenType}},
		"client credentials": {"grant_type": {clientCredentialsGrant}, "client_id": {broker.DevClientID}},
	} {
		t.Run(name, func(t *testing.T) {
			r := u.token(form, "", "")
			assertRefused(t, r, http.StatusUnauthorized, "invalid_client")
			if r.Header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

func TestExchange_RefreshTokenIsNeverASubject(t *testing.T) {
	u := newExchange(t)
	u.auth0.SetNextUser(testenv.User{Sub: "auth0|rt", Email: "rt@corp.example.com", EmailVerified: true})
	tr, _ := u.mustLoginVia("rt@corp.example.com")
	if tr.RefreshToken == "" {
		t.Fatal("login gave no refresh token")
	}
	for _, typ := range []string{refreshTokenType, accessTokenType, jwtTokenType} {
		er := u.exchange(url.Values{"subject_token": {tr.RefreshToken}, "subject_token_type": {typ}})
		assertRefused(t, er, http.StatusBadRequest, "invalid_request")
	}
	// The refresh token still works for its own client: nothing was consumed.
	if r := u.refresh(broker.DevClientID, tr.RefreshToken); r.Status != http.StatusOK {
		t.Errorf("refresh after refused exchanges: %d %s", r.Status, r.Description)
	}
	u.assertNotLogged(tr.RefreshToken)
}

func TestExchange_BrokerTokenCanOnlyNarrow(t *testing.T) {
	u := newExchange(t)
	wide := u.mustExchange(u.auth0.AccessToken(testenv.User{Sub: "auth0|narrow"}, apiAudience),
		url.Values{"audience": {apiAudience, reportsAudience}})
	wc := u.verifyAccess(wide.AccessToken, apiAudience)

	narrow := u.mustExchange(wide.AccessToken, url.Values{"audience": {reportsAudience}, "scope": {"email"}})
	nc := u.verifyAccess(narrow.AccessToken, reportsAudience)
	if nc.Subject != wc.Subject || len(nc.Audience) != 1 || nc.Scope != "email" || nc.IDP != "auth0" || nc.JTI == wc.JTI {
		t.Errorf("narrowed claims %+v from %+v", nc, wc)
	}
	// Without audience or scope: the subject token's own.
	same := u.verifyAccess(u.mustExchange(wide.AccessToken, nil).AccessToken, reportsAudience)
	if len(same.Audience) != 2 || same.Scope != wc.Scope {
		t.Errorf("unnarrowed exchange: %+v", same)
	}

	for _, tc := range []struct {
		name  string
		token string
		extra url.Values
		code  string
	}{
		{"audience the client may have but the token lacks", wide.AccessToken, url.Values{"audience": {billingAudience}}, "invalid_target"},
		{"back to the wider audience", narrow.AccessToken, url.Values{"audience": {apiAudience}}, "invalid_target"},
		{"scope the token lacks", wide.AccessToken, url.Values{"scope": {"email admin"}}, "invalid_scope"},
		{"back to the wider scope", narrow.AccessToken, url.Values{"scope": {"openid email"}}, "invalid_scope"},
		{"ID token type", wide.AccessToken, url.Values{"subject_token_type": {idTokenType}}, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{"subject_token": {tc.token}, "subject_token_type": {accessTokenType}}
			for k, v := range tc.extra {
				form[k] = v
			}
			assertRefused(t, u.exchange(form), http.StatusBadRequest, tc.code)
		})
	}

	// Another client that the token was neither issued to nor meant for.
	other := u.exchangeAs(otherExchangerID, otherExchangerSecret, url.Values{"subject_token": {wide.AccessToken}, "subject_token_type": {accessTokenType}})
	assertRefused(t, other, http.StatusBadRequest, "invalid_request")

	// Revoked, then expired.
	if resp := u.postForm("/revoke", url.Values{"token": {narrow.AccessToken}}, exchangerID, exchangerSecret); resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	assertRefused(t, u.exchange(url.Values{"subject_token": {narrow.AccessToken}, "subject_token_type": {accessTokenType}}), http.StatusBadRequest, "invalid_request")
	u.clock.Advance(16 * time.Minute)
	assertRefused(t, u.exchange(url.Values{"subject_token": {wide.AccessToken}, "subject_token_type": {accessTokenType}}), http.StatusBadRequest, "invalid_request")
}

// resolveFails is a store whose identity resolution cannot reach the
// database.
type resolveFails struct{ storage.Storage }

func (resolveFails) ResolveIdentity(context.Context, storage.ResolveRequest) (storage.Resolution, error) {
	return storage.Resolution{}, errors.New("dial tcp 10.0.0.5:5432: connect: connection refused")
}

func TestExchange_StoreDownIs503AndNoToken(t *testing.T) {
	u := newExchange(t, func(c *broker.Config, o *broker.Options) { o.Storage = resolveFails{memory.New()} })
	er := u.exchange(url.Values{"subject_token": {u.auth0.AccessToken(testenv.User{Sub: "auth0|down"}, apiAudience)}, "subject_token_type": {accessTokenType}})
	assertRefused(t, er, http.StatusServiceUnavailable, "temporarily_unavailable")
	if !strings.Contains(u.logText(), "connection refused") {
		t.Error("the store failure is not in the log")
	}
}

func TestExchange_DisabledUser(t *testing.T) {
	u := newExchange(t)
	person := testenv.User{Sub: "auth0|leaver"}
	er := u.mustExchange(u.auth0.AccessToken(person, apiAudience), url.Values{"audience": {apiAudience, reportsAudience}})
	sub := u.verifyAccess(er.AccessToken, apiAudience).Subject
	if info := u.introspect(er.AccessToken, exchangerID, exchangerSecret); info["active"] != true || info["sub"] != sub || info["client_id"] != exchangerID {
		t.Fatalf("exchanged token introspects %v", info)
	}
	if err := u.store.SetUserDisabled(context.Background(), sub, true); err != nil {
		t.Fatal(err)
	}
	if info := u.introspect(er.AccessToken, exchangerID, exchangerSecret); info["active"] != false {
		t.Errorf("a disabled user's exchanged token introspects %v", info)
	}
	upstreamAgain := u.exchange(url.Values{"subject_token": {u.auth0.AccessToken(person, apiAudience)}, "subject_token_type": {accessTokenType}})
	assertRefused(t, upstreamAgain, http.StatusBadRequest, "invalid_grant")
	narrowing := u.exchange(url.Values{"subject_token": {er.AccessToken}, "subject_token_type": {accessTokenType}, "audience": {apiAudience}})
	assertRefused(t, narrowing, http.StatusBadRequest, "invalid_grant")
}

func TestExchange_IntrospectionAndRevocation(t *testing.T) {
	u := newExchange(t)
	er := u.mustExchange(u.auth0.AccessToken(testenv.User{Sub: "auth0|intro"}, apiAudience), nil)
	info := u.introspect(er.AccessToken, exchangerID, exchangerSecret)
	if info["active"] != true || info["scope"] != "openid email profile" {
		t.Fatalf("introspection %v", info)
	}
	if resp := u.postForm("/revoke", url.Values{"token": {er.AccessToken}, "token_type_hint": {"access_token"}}, exchangerID, exchangerSecret); resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	if info := u.introspect(er.AccessToken, exchangerID, exchangerSecret); info["active"] != false {
		t.Errorf("revoked exchanged token introspects %v", info)
	}
	var ui map[string]any
	if resp := u.getJSON("/userinfo", er.AccessToken, &ui); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("userinfo with a revoked exchanged token: %d", resp.StatusCode)
	}
}

func TestExchange_Delegation(t *testing.T) {
	u := newExchange(t)
	ctx := context.Background()
	if _, err := u.store.ImportUsers(ctx, []storage.ImportUser{{ID: importedAgentID,
		Identities: []storage.ImportIdentity{{Connector: "auth0", Subject: importedAgentSub}}}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	upstreamToken := func(sub string) string { return u.auth0.AccessToken(testenv.User{Sub: sub}, apiAudience) }
	withActor := func(subject, actor string) url.Values {
		return url.Values{"subject_token": {subject}, "subject_token_type": {accessTokenType},
			"actor_token": {actor}, "actor_token_type": {accessTokenType}}
	}

	// Agents A and B hold broker tokens issued to the exchanging client,
	// which its policy names ("client:agentic-backend").
	agentA := u.mustExchange(upstreamToken("auth0|agent-a"), nil).AccessToken
	agentB := u.mustExchange(upstreamToken("auth0|agent-b"), nil).AccessToken
	subA, subB := u.verifyAccess(agentA, apiAudience).Subject, u.verifyAccess(agentB, apiAudience).Subject

	// A acts for the user.
	t1 := u.exchange(withActor(upstreamToken("auth0|user"), agentA))
	if t1.Status != http.StatusOK {
		t.Fatalf("delegation: %d %s", t1.Status, t1.Description)
	}
	c1 := u.verifyAccess(t1.AccessToken, apiAudience)
	if c1.Act["sub"] != subA || c1.Act["client_id"] != exchangerID || c1.Act["act"] != nil || c1.Subject == subA {
		t.Fatalf("act %v (sub %s), want A %s", c1.Act, c1.Subject, subA)
	}

	// B acts with the token A got: B is the actor, A the prior one.
	t2 := u.exchange(withActor(t1.AccessToken, agentB))
	if t2.Status != http.StatusOK {
		t.Fatalf("delegation of a delegated token: %d %s", t2.Status, t2.Description)
	}
	c2 := u.verifyAccess(t2.AccessToken, apiAudience)
	prior, _ := c2.Act["act"].(map[string]any)
	if c2.Subject != c1.Subject || c2.Act["sub"] != subB || prior["sub"] != subA {
		t.Errorf("nested act %v, want B %s then A %s", c2.Act, subB, subA)
	}

	// The delegated token itself acts (its own act nests).
	t3 := u.exchange(withActor(upstreamToken("auth0|another-user"), t1.AccessToken))
	if t3.Status != http.StatusOK {
		t.Fatalf("delegated actor: %d %s", t3.Status, t3.Description)
	}
	c3 := u.verifyAccess(t3.AccessToken, apiAudience)
	prior, _ = c3.Act["act"].(map[string]any)
	if c3.Act["sub"] != c1.Subject || prior["sub"] != subA {
		t.Errorf("act of a delegated actor %v", c3.Act)
	}

	// Narrowing a delegated token keeps its act.
	kept := u.verifyAccess(u.mustExchange(t1.AccessToken, url.Values{"scope": {"email"}}).AccessToken, apiAudience)
	if kept.Act["sub"] != subA {
		t.Errorf("narrowing dropped act: %v", kept.Act)
	}

	// An upstream actor named by its platform user id.
	t4 := u.exchange(withActor(upstreamToken("auth0|user"), upstreamToken(importedAgentSub)))
	if t4.Status != http.StatusOK {
		t.Fatalf("upstream actor: %d %s", t4.Status, t4.Description)
	}
	if c4 := u.verifyAccess(t4.AccessToken, apiAudience); c4.Act["sub"] != importedAgentID || c4.Act["client_id"] != nil {
		t.Errorf("upstream actor act %v, want sub %s", c4.Act, importedAgentID)
	}

	// Refusals.
	devToken := u.redeem(u.login(u.browser(), "someone@example.org", authRequest{})).AccessToken
	for _, tc := range []struct {
		name       string
		id, secret string
		form       url.Values
	}{
		{"a client that names no actors", otherExchangerID, otherExchangerSecret, withActor(upstreamToken("auth0|user"), agentA)},
		{"another client's token", exchangerID, exchangerSecret, withActor(upstreamToken("auth0|user"), devToken)},
		{"an upstream actor not named", exchangerID, exchangerSecret, withActor(upstreamToken("auth0|user"), upstreamToken("auth0|stranger"))},
		{"a forged actor", exchangerID, exchangerSecret, withActor(upstreamToken("auth0|user"), u.auth0.AccessToken(testenv.User{Sub: importedAgentSub}, apiAudience, testenv.SignedByOtherKey()))},
		{"a refresh token as actor", exchangerID, exchangerSecret, withActor(upstreamToken("auth0|user"), "opaque-refresh-token-value")},
		{"two chains of actors", exchangerID, exchangerSecret, withActor(t1.AccessToken, t1.AccessToken)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			er := u.exchangeAs(tc.id, tc.secret, tc.form)
			assertRefused(t, er, http.StatusBadRequest, "invalid_request")
			if er.Description != "actor_token is invalid or not acceptable" {
				t.Errorf("description %q", er.Description)
			}
		})
	}

	// A client that names no user actors refuses an upstream actor
	// before resolving it, so no user is provisioned for it.
	provisioned := strings.Count(u.logText(), "user provisioned")
	er := u.exchangeAs(otherExchangerID, otherExchangerSecret, withActor(agentA, upstreamToken("auth0|never-provisioned")))
	assertRefused(t, er, http.StatusBadRequest, "invalid_request")
	if strings.Count(u.logText(), "user provisioned") != provisioned {
		t.Error("a refused upstream actor was provisioned")
	}

	// A disabled actor acts no more.
	if err := u.store.SetUserDisabled(ctx, subA, true); err != nil {
		t.Fatal(err)
	}
	assertRefused(t, u.exchange(withActor(upstreamToken("auth0|user"), agentA)), http.StatusBadRequest, "invalid_request")
	u.assertNotLogged(agentA, agentB, t1.AccessToken, t2.AccessToken, devToken)
}

func TestExchange_DiscoveryListsTheGrantOnlyWhenAClientHasIt(t *testing.T) {
	grants := func(e *env) []any {
		var d map[string]any
		e.getJSON("/.well-known/openid-configuration", "", &d)
		g, _ := d["grant_types_supported"].([]any)
		return g
	}
	has := func(g []any) bool {
		for _, v := range g {
			if v == tokenExchangeGrant {
				return true
			}
		}
		return false
	}
	if g := grants(newEnv(t)); has(g) {
		t.Errorf("no client exchanges, yet discovery lists %v", g)
	}
	if g := grants(newExchange(t).env); !has(g) {
		t.Errorf("discovery lists %v without token exchange", g)
	}
}

func TestExchange_ActorsConfigValidated(t *testing.T) {
	for _, tc := range []struct {
		actors []string
		grants []string
		ok     bool
	}{
		{[]string{"client:agent", "user:" + importedAgentID}, []string{broker.GrantTokenExchange}, true},
		{[]string{"user:not-a-uuid"}, []string{broker.GrantTokenExchange}, false},
		{[]string{"client:"}, []string{broker.GrantTokenExchange}, false},
		{[]string{"agent"}, []string{broker.GrantTokenExchange}, false},
		{[]string{"client:agent"}, []string{broker.GrantAuthorizationCode}, false},
	} {
		cfg := broker.DevelopmentConfig("http://localhost:8080", ":8080")
		cfg.Clients = append(cfg.Clients, broker.ClientConfig{ID: "x", Secret: "s", GrantTypes: tc.grants, Actors: tc.actors})
		if err := cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("actors %q with grants %q: err %v, want ok %v", tc.actors, tc.grants, err, tc.ok)
		}
	}
}

func TestExchange_MetricsMoveByExactlyOne(t *testing.T) {
	u := newExchange(t)
	before := u.counter("broker_token_exchanges_total", `connector="auth0"`, `outcome="issued"`)
	u.mustExchange(u.auth0.AccessToken(testenv.User{Sub: "auth0|counted"}, apiAudience), nil)
	if d := u.counter("broker_token_exchanges_total", `connector="auth0"`, `outcome="issued"`) - before; d != 1 {
		t.Errorf("exchanges issued moved by %v", d)
	}
}
