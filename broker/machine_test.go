package broker_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"
	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/storage"
)

const (
	clientCredentialsGrant = "client_credentials"
	assertionType          = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"

	svcSecretID     = "svc-secret"
	svcSecret       = "svc-secret-0123456789abcdefghijklmnopqrstuvwxyz"
	svcJWKSID       = "svc-jwks"
	svcJWKSURIID    = "svc-jwks-uri"
	svcAudience     = "https://api.example.com"
	svcOtherAud     = "https://reports.example.com"
	forbiddenTarget = "https://billing.example.com"
)

// clientKey is a machine client's signing key and its public JWKS.
type clientKey struct {
	signer jose.Signer
	jwks   []byte
}

func newClientKey(t testing.TB, kid string) clientKey {
	t.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: priv, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	jwks, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &priv.PublicKey, KeyID: kid, Algorithm: "ES256", Use: "sig"}}})
	return clientKey{signer: signer, jwks: jwks}
}

// assertion signs a client assertion for clientID with aud, valid for
// ttl; tweak may change the claims first.
func (k clientKey) assertion(t testing.TB, clientID, aud string, ttl time.Duration, tweak ...func(*jwt.Claims)) string {
	t.Helper()
	now := time.Now()
	c := jwt.Claims{Issuer: clientID, Subject: clientID, Audience: jwt.Audience{aud}, ID: uuid.NewString(),
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(ttl))}
	for _, f := range tweak {
		f(&c)
	}
	raw, err := jwt.Signed(k.signer).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// machineEnv is a broker with three machine clients, one per
// authentication method (secret, inline JWKS, JWKS by URL).
type machineEnv struct {
	*env
	inline, remote clientKey
	jwksServer     *httptest.Server
}

func machineClient(id string) broker.ClientConfig {
	return broker.ClientConfig{ID: id, GrantTypes: []string{clientCredentialsGrant},
		Audiences: []string{svcAudience, svcOtherAud}, Scopes: []string{"read", "write"}}
}

func newMachineEnv(t *testing.T, opts ...envOption) *machineEnv {
	m := &machineEnv{inline: newClientKey(t, "inline-1"), remote: newClientKey(t, "remote-1")}
	m.jwksServer = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(m.remote.jwks)
	}))
	t.Cleanup(m.jwksServer.Close)
	withMachines := func(c *broker.Config, o *broker.Options) {
		secret := machineClient(svcSecretID)
		secret.Secret = svcSecret
		inline := machineClient(svcJWKSID)
		inline.JWKS = m.inline.jwks
		remote := machineClient(svcJWKSURIID)
		remote.JWKSURI = m.jwksServer.URL
		c.Clients = append(c.Clients, secret, inline, remote)
	}
	m.env = newEnv(t, append([]envOption{withMachines}, opts...)...)
	return m
}

func (m *machineEnv) clientCredentials(form url.Values, user, pass string) tokenResponse {
	m.t.Helper()
	form.Set("grant_type", clientCredentialsGrant)
	return m.token(form, user, pass)
}

func (m *machineEnv) withAssertion(assertion string, extra url.Values) tokenResponse {
	m.t.Helper()
	form := url.Values{"client_assertion_type": {assertionType}, "client_assertion": {assertion}}
	for k, v := range extra {
		form[k] = v
	}
	return m.clientCredentials(form, "", "")
}

// accessClaims decodes an access token's payload; the signature is the
// business of the tests that verify tokens as services do.
type machineClaims struct {
	Subject  string   `json:"sub"`
	Audience []string `json:"aud"`
	ClientID string   `json:"client_id"`
	Scope    string   `json:"scope"`
}

func claimsOf(t testing.TB, raw string) machineClaims {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", raw)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c machineClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestClientCredentials_EachAuthenticationMethodGetsAServiceUser(t *testing.T) {
	m := newMachineEnv(t)
	for _, tc := range []struct {
		name, clientID string
		get            func() tokenResponse
	}{
		{"client_secret_basic", svcSecretID, func() tokenResponse {
			return m.clientCredentials(url.Values{}, svcSecretID, svcSecret)
		}},
		{"client_secret_post", svcSecretID, func() tokenResponse {
			return m.clientCredentials(url.Values{"client_id": {svcSecretID}, "client_secret": {svcSecret}}, "", "")
		}},
		{"private_key_jwt inline JWKS", svcJWKSID, func() tokenResponse {
			return m.withAssertion(m.inline.assertion(t, svcJWKSID, m.issuer+"/token", time.Minute), nil)
		}},
		{"private_key_jwt JWKS by URL", svcJWKSURIID, func() tokenResponse {
			return m.withAssertion(m.remote.assertion(t, svcJWKSURIID, m.issuer, time.Minute), url.Values{"client_id": {svcJWKSURIID}})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			first, second := tc.get(), tc.get()
			for _, tr := range []tokenResponse{first, second} {
				if tr.Status != http.StatusOK || tr.AccessToken == "" {
					t.Fatalf("client credentials: %d %s: %s", tr.Status, tr.Error, tr.Description)
				}
				if tr.RefreshToken != "" || tr.IDToken != "" {
					t.Errorf("client credentials issued a refresh or ID token: %+v", tr)
				}
			}
			a, b := claimsOf(t, first.AccessToken), claimsOf(t, second.AccessToken)
			if _, err := uuid.Parse(a.Subject); err != nil {
				t.Errorf("sub %q is not a UUID", a.Subject)
			}
			if a.Subject != b.Subject {
				t.Errorf("sub changed between calls: %s, %s", a.Subject, b.Subject)
			}
			if a.ClientID != tc.clientID || !slices.Equal(a.Audience, []string{svcAudience}) || a.Scope != "read write" {
				t.Errorf("claims = %+v; want client_id %s, the default audience, the client's scopes", a, tc.clientID)
			}
			u, err := m.store.GetUser(t.Context(), a.Subject)
			if err != nil {
				t.Fatalf("service user not stored: %v", err)
			}
			ids, _ := m.store.ListIdentities(t.Context(), u.ID)
			if len(ids) != 1 || ids[0].Connector != "client" || ids[0].Subject != tc.clientID {
				t.Errorf("service user's identities = %+v", ids)
			}
			// The broker's introspection knows it.
			if info := m.introspect(first.AccessToken, introspectorID, introspectorSecret); info["active"] != true || info["client_id"] != tc.clientID {
				t.Errorf("introspection: %v", info)
			}
		})
	}
	// Each client has a service user of its own.
	s1 := claimsOf(t, m.clientCredentials(url.Values{}, svcSecretID, svcSecret).AccessToken).Subject
	s2 := claimsOf(t, m.withAssertion(m.inline.assertion(t, svcJWKSID, m.issuer, time.Minute), nil).AccessToken).Subject
	if s1 == s2 {
		t.Error("two clients share a service user")
	}
}

func TestClientCredentials_AudienceAndScopeAreLimited(t *testing.T) {
	m := newMachineEnv(t)
	ok := m.clientCredentials(url.Values{"resource": {svcOtherAud}, "scope": {"read"}}, svcSecretID, svcSecret)
	if c := claimsOf(t, ok.AccessToken); !slices.Equal(c.Audience, []string{svcOtherAud}) || c.Scope != "read" {
		t.Errorf("narrowed token: %+v", c)
	}
	assertRefused(t, m.clientCredentials(url.Values{"audience": {forbiddenTarget}}, svcSecretID, svcSecret), http.StatusBadRequest, "invalid_target")
	assertRefused(t, m.clientCredentials(url.Values{"resource": {forbiddenTarget}}, svcSecretID, svcSecret), http.StatusBadRequest, "invalid_target")
	assertRefused(t, m.clientCredentials(url.Values{"scope": {"read admin"}}, svcSecretID, svcSecret), http.StatusBadRequest, "invalid_scope")
	// A client without the grant, and a public one, are refused.
	assertRefused(t, m.clientCredentials(url.Values{}, backendID, backendSecret), http.StatusBadRequest, "unauthorized_client")
	if r := m.clientCredentials(url.Values{"client_id": {broker.DevClientID}}, "", ""); r.AccessToken != "" {
		t.Errorf("a public client got a client_credentials token")
	}
	assertRefused(t, m.clientCredentials(url.Values{}, svcSecretID, "wrong"), http.StatusUnauthorized, "invalid_client")
}

func TestPrivateKeyJWT_RefusesReplaysAndBadAssertions(t *testing.T) {
	m := newMachineEnv(t)
	a := m.inline.assertion(t, svcJWKSID, m.issuer+"/token", time.Minute)
	if r := m.withAssertion(a, nil); r.Status != http.StatusOK {
		t.Fatalf("first use: %d %s %s", r.Status, r.Error, r.Description)
	}
	replay := m.withAssertion(a, nil)
	assertRefused(t, replay, http.StatusUnauthorized, "invalid_client")
	if !strings.HasPrefix(replay.Header.Get("WWW-Authenticate"), "Basic") && replay.Header.Get("WWW-Authenticate") == "" {
		t.Error("401 without WWW-Authenticate")
	}
	if !strings.Contains(m.logText(), "replayed") {
		t.Error("the replay is not in the log")
	}

	other := newClientKey(t, "inline-1") // same kid, another key
	hs, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("0123456789abcdef0123456789abcdef")}, nil)
	hsAssertion, _ := jwt.Signed(hs).Claims(jwt.Claims{Issuer: svcJWKSID, Subject: svcJWKSID, Audience: jwt.Audience{m.issuer},
		ID: "hs", Expiry: jwt.NewNumericDate(time.Now().Add(time.Minute))}).Serialize()
	for name, raw := range map[string]string{
		"signed by another key": other.assertion(t, svcJWKSID, m.issuer, time.Minute),
		"HS256":                 hsAssertion,
		"other audience":        m.inline.assertion(t, svcJWKSID, "https://elsewhere.example.com", time.Minute),
		"exp too far ahead":     m.inline.assertion(t, svcJWKSID, m.issuer, time.Hour),
		"expired":               m.inline.assertion(t, svcJWKSID, m.issuer, -5*time.Minute),
		"no jti":                m.inline.assertion(t, svcJWKSID, m.issuer, time.Minute, func(c *jwt.Claims) { c.ID = "" }),
		"no exp":                m.inline.assertion(t, svcJWKSID, m.issuer, time.Minute, func(c *jwt.Claims) { c.Expiry = nil }),
		"iss not the client":    m.inline.assertion(t, svcJWKSID, m.issuer, time.Minute, func(c *jwt.Claims) { c.Issuer = "someone" }),
		"another client's key":  m.remote.assertion(t, svcJWKSID, m.issuer, time.Minute),
		"unknown client":        m.inline.assertion(t, "nobody", m.issuer, time.Minute),
	} {
		assertRefusedNamed(t, name, m.withAssertion(raw, nil), http.StatusUnauthorized, "invalid_client")
		if strings.Contains(m.logText(), raw) {
			t.Errorf("%s: the assertion reached the log", name)
		}
	}
	// client_id must match the assertion.
	assertRefusedNamed(t, "client_id mismatch", m.withAssertion(m.inline.assertion(t, svcJWKSID, m.issuer, time.Minute),
		url.Values{"client_id": {svcSecretID}}), http.StatusUnauthorized, "invalid_client")
}

func assertRefusedNamed(t *testing.T, name string, er tokenResponse, status int, code string) {
	t.Helper()
	if er.Status != status || er.Error != code || er.AccessToken != "" {
		t.Errorf("%s: got %d %q (%s), want %d %q", name, er.Status, er.Error, er.Description, status, code)
	}
}

func TestPrivateKeyJWT_FailuresCountTowardTheClientLimit(t *testing.T) {
	m := newMachineEnv(t, func(c *broker.Config, o *broker.Options) {
		c.Limits.TokenFailuresPerClient = broker.Limit{Count: 2, Window: time.Minute}
	})
	other := newClientKey(t, "inline-1")
	for range 2 {
		m.withAssertion(other.assertion(t, svcJWKSID, m.issuer, time.Minute), nil)
	}
	r := m.withAssertion(m.inline.assertion(t, svcJWKSID, m.issuer, time.Minute), nil)
	if r.Status != http.StatusTooManyRequests {
		t.Errorf("after the limit of failures a good assertion got %d %s, want 429", r.Status, r.Error)
	}
}

func TestDiscovery_ListsClientCredentialsAndPrivateKeyJWT(t *testing.T) {
	var d struct {
		Grants  []string `json:"grant_types_supported"`
		Methods []string `json:"token_endpoint_auth_methods_supported"`
		Algs    []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	}
	newEnv(t).getJSON("/.well-known/openid-configuration", "", &d)
	if slices.Contains(d.Grants, clientCredentialsGrant) {
		t.Errorf("no machine client, yet discovery lists %v", d.Grants)
	}
	newMachineEnv(t).getJSON("/.well-known/openid-configuration", "", &d)
	if !slices.Contains(d.Grants, clientCredentialsGrant) || !slices.Contains(d.Methods, "private_key_jwt") ||
		!slices.Contains(d.Algs, "ES256") || slices.Contains(d.Algs, "HS256") {
		t.Errorf("discovery: %+v", d)
	}
}

// A machine client stored by another replica (or the CLI) reaches this
// replica's discovery within the stored-clients interval, without anyone
// using it here first.
func TestDiscovery_ListsClientCredentialsStoredElsewhere(t *testing.T) {
	e := newEnv(t)
	grants := func() []string {
		var d struct {
			Grants []string `json:"grant_types_supported"`
		}
		e.getJSON("/.well-known/openid-configuration", "", &d)
		return d.Grants
	}
	if slices.Contains(grants(), clientCredentialsGrant) {
		t.Fatal("no machine client, yet discovery lists client_credentials")
	}
	if err := e.store.CreateClient(t.Context(), storage.Client{
		ID: "stored-elsewhere", GrantTypes: []string{clientCredentialsGrant}, Audiences: []string{"https://api.example.com"},
		SecretHashes: []storage.SecretHash{{Hash: make([]byte, 32)}},
	}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(31 * time.Second)
	if !slices.Contains(grants(), clientCredentialsGrant) {
		t.Error("31 s after a machine client was stored, discovery does not list client_credentials")
	}
}

// TestDisable_MidSession disables a user who holds a session, a refresh
// token and an access token, then tries everything they could still do.
func TestDisable_MidSession(t *testing.T) {
	u := newExchange(t)
	ctx := t.Context()
	const email = "pat@example.org"
	b := u.browser()
	// OTP login by the dev client, with a session in the browser.
	tr := u.redeem(u.login(b, email, authRequest{}))
	if tr.RefreshToken == "" {
		t.Fatalf("no refresh token: %+v", tr)
	}
	sub := claimsOf(t, tr.AccessToken).Subject
	if err := broker.NewAdmin(broker.Config{}, u.store, nil).DisableUser(ctx, "test", email); err != nil {
		t.Fatal(err)
	}

	assertRefused(t, u.refresh(broker.DevClientID, tr.RefreshToken), http.StatusBadRequest, "invalid_grant")
	if info := u.introspect(tr.AccessToken, introspectorID, introspectorSecret); info["active"] != false {
		t.Errorf("introspection of a disabled user's token: %v", info)
	}
	if sessions, _ := u.store.ListSessions(ctx, sub, time.Now()); len(sessions) != 0 {
		t.Errorf("disabled user keeps sessions %+v", sessions)
	}
	// A new login (the session is gone, so the code is asked again) ends
	// on a page that says why.
	page := u.env.startLogin(b, email)
	page = b.Submit(page, "/login/code", url.Values{"code": {u.mailer.LastCode(email)}})
	if page.Status != http.StatusForbidden || !strings.Contains(page.Body, "disabled") {
		t.Errorf("login of a disabled user: %d %s", page.Status, page.Body)
	}
	// An Auth0 token for the same verified address links to them: refused.
	subject := u.auth0.IDToken(testenv.User{Sub: "auth0|pat", Email: email, EmailVerified: true})
	er := u.exchange(url.Values{"subject_token": {subject}, "subject_token_type": {idTokenType}})
	assertRefused(t, er, http.StatusBadRequest, "invalid_grant")
}
