package broker_test

import (
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/internal/testenv"
	upoidc "github.com/idbroker/broker/upstream/oidc"
)

// An Auth0 access token names no email, so a first contact by exchange
// resolved from the token alone would give an OTP user a second user of
// their own, for good. The broker asks Auth0's userinfo first (trusted
// connector, identity not yet known), and so finds the OTP user; a later
// browser login is the same user. With userinfo down, the exchange is 503
// and nothing is written, rather than a split.
func TestExchange_FirstContactWithoutEmailAsksUserinfo(t *testing.T) {
	u := newExchange(t)
	otpUser := func(email string) string {
		return u.verifyIDToken(u.redeem(u.login(u.browser(), email, authRequest{})).IDToken, broker.DevClientID).Subject
	}
	ada := otpUser("ada@x.example")
	person := testenv.User{Sub: "auth0|ada", Email: "ada@x.example", EmailVerified: true, Name: "Ada"}

	got := u.verifyAccess(u.mustExchange(u.auth0.AccessToken(person, apiAudience), nil).AccessToken, apiAudience)
	if got.Subject != ada {
		t.Fatalf("first exchange of Ada's Auth0 access token (no email) resolved to %q, want the OTP user %q", got.Subject, ada)
	}
	u.auth0.SetNextUser(person)
	if _, id := u.mustLoginViaButton("auth0"); id.Subject != ada {
		t.Errorf("browser login through Auth0 after the exchange: sub %q, want %q", id.Subject, ada)
	}

	// Userinfo down at a first contact: 503, and no user or identity
	// written. The keys and discovery are cached, so only userinfo fails.
	grace := otpUser("grace@x.example")
	graceAuth0 := testenv.User{Sub: "auth0|grace", Email: "grace@x.example", EmailVerified: true}
	subject := u.auth0.AccessToken(graceAuth0, apiAudience)
	before := u.rows()
	u.auth0.FailWith(http.StatusServiceUnavailable)
	er := u.exchange(url.Values{"subject_token": {subject}, "subject_token_type": {accessTokenType}})
	assertRefused(t, er, http.StatusServiceUnavailable, "temporarily_unavailable")
	u.assertNothingWritten(before)
	u.auth0.Recover()
	if got := u.verifyAccess(u.mustExchange(subject, nil).AccessToken, apiAudience); got.Subject != grace {
		t.Errorf("exchange once userinfo is back: sub %q, want the OTP user %q", got.Subject, grace)
	}

	// A known identity is resolved without asking userinfo again: with
	// Auth0 down but its keys cached, Ada's exchange still succeeds.
	u.auth0.FailWith(http.StatusServiceUnavailable)
	if got := u.verifyAccess(u.mustExchange(u.auth0.AccessToken(person, apiAudience), nil).AccessToken, apiAudience); got.Subject != ada {
		t.Errorf("known identity with userinfo down: sub %q, want %q", got.Subject, ada)
	}
	u.auth0.Recover()
	u.assertNotLogged(subject)
}

// Entra ID v1.0 access tokens (iss https://sts.windows.net/{tid}/, ver
// 1.0) are exchanged when the connector accepts them, with the checks of
// v2.0 tokens: the tenant allowed, iss the v1 issuer of the token's tid,
// the same keys, the audience. They name the same person as v2.0 tokens
// (tid+oid).
func TestExchange_EntraV1AccessTokens(t *testing.T) {
	person := testenv.User{ObjectID: "oid-v1", Sub: "per-app-v1", PreferredUsername: "v1@contoso.example"}
	entra := func(accept bool) envOption {
		return func(c *broker.Config, o *broker.Options) {
			for i := range c.Connectors {
				if cc := &c.Connectors[i]; cc.ID == "entra" {
					az := cc.Config.(*upoidc.AzureConfig)
					az.AcceptV1Tokens = accept
					az.V1AuthorityURL = ""
					if accept {
						az.V1AuthorityURL = strings.TrimSuffix(az.AuthorityURL, "/")
					}
				}
			}
		}
	}

	t.Run("refused unless accepted", func(t *testing.T) {
		u := newExchange(t, entra(false))
		er := u.exchange(url.Values{"subject_token": {u.azure.AccessTokenV1(person, azureAPI)}, "subject_token_type": {accessTokenType}, "connector": {"entra"}})
		assertRefused(t, er, http.StatusBadRequest, "invalid_request")
	})

	t.Run("accepted", func(t *testing.T) {
		u := newExchange(t, entra(true), func(c *broker.Config, o *broker.Options) {
			for i := range c.Connectors {
				if c.Connectors[i].ID == "entra" {
					c.Connectors[i].Config.(*upoidc.AzureConfig).AllowedTenants = []string{testenvTenantA}
				}
			}
		})
		if u.azure.TenantA != testenvTenantA {
			t.Fatalf("the fake's TenantA is %q", u.azure.TenantA)
		}
		// Found by its v1 issuer, like a v2.0 token by its own.
		v1 := u.verifyAccess(u.mustExchange(u.azure.AccessTokenV1(person, azureAPI), nil).AccessToken, apiAudience)
		v2 := u.verifyAccess(u.mustExchange(u.azure.AccessToken(person, azureAPI), nil).AccessToken, apiAudience)
		if v1.Subject != v2.Subject || v1.IDP != "entra" {
			t.Errorf("v1.0 and v2.0 tokens of one person: %+v and %+v", v1, v2)
		}

		other := person
		other.TenantID = u.azure.TenantB
		for name, tok := range map[string]string{
			"tenant not allowed":           u.azure.AccessTokenV1(other, azureAPI),
			"v1 issuer of another tenant":  u.azure.AccessTokenV1(other, azureAPI, testenv.WithClaim("iss", u.azure.V1Issuer(u.azure.TenantA))),
			"v2 issuer with ver 1.0":       u.azure.AccessTokenV1(person, azureAPI, testenv.WithClaim("iss", u.azure.Issuer(u.azure.TenantA))),
			"v1 issuer with ver 2.0":       u.azure.AccessToken(person, azureAPI, testenv.WithClaim("iss", u.azure.V1Issuer(u.azure.TenantA))),
			"wrong audience":               u.azure.AccessTokenV1(person, "api://someone-else"),
			"signed by an unpublished key": u.azure.AccessTokenV1(person, azureAPI, testenv.SignedByOtherKey()),
			"expired":                      u.azure.AccessTokenV1(person, azureAPI, testenv.Expired()),
		} {
			er := u.exchange(url.Values{"subject_token": {tok}, "subject_token_type": {accessTokenType}, "connector": {"entra"}})
			if er.Status != http.StatusBadRequest || er.Error != "invalid_request" {
				t.Errorf("%s: %d %q, want 400 invalid_request", name, er.Status, er.Error)
			}
		}
	})

	// An auth0 connector's settings have no acceptV1Tokens to set.
	_, err := broker.ParseConfig([]byte("connectors:\n  - {id: a0, type: auth0, issuer: https://t.example/, clientID: c, acceptV1Tokens: true}\n"), noEnv)
	if err == nil || !strings.Contains(err.Error(), "acceptV1Tokens") {
		t.Errorf("acceptV1Tokens on an auth0 connector: %v", err)
	}
}

// testenvTenantA is the fake Entra authority's first tenant.
const testenvTenantA = "aaaaaaaa-0000-4000-8000-00000000000a"

// With the default scopes, Auth0 and Entra logins come with an upstream
// refresh token (offline_access), so a user blocked upstream loses the
// broker session at the next re-check. A connector whose scopes leave
// offline_access out is never re-checked, and the broker says so at start.
func TestRefresh_DefaultScopesAllowUpstreamRecheck(t *testing.T) {
	u := newUpstreams(t, nil, func(c *broker.Config, o *broker.Options) {
		var auth0Issuer string
		for i := range c.Connectors {
			switch cfg := c.Connectors[i].Config.(type) {
			case *upoidc.Auth0Config:
				cfg.Scopes = nil
				auth0Issuer = cfg.Issuer
			case *upoidc.AzureConfig:
				cfg.Scopes = nil
			}
		}
		c.Connectors = append(c.Connectors, broker.ConnectorConfig{ID: "no-offline", Type: "oidc",
			Config: &upoidc.Config{Issuer: auth0Issuer, ClientID: "other-client", Scopes: []string{"openid", "email"}}})
	})
	// Both log in before the clock moves: the fakes sign with the real
	// time, the broker checks on its test clock.
	u.auth0.SetNextUser(testenv.User{Sub: "auth0|blocked", Email: "blocked@corp.example.com", EmailVerified: true})
	auth0Login, _ := u.mustLoginViaButton("auth0")
	u.azure.SetNextUser(testenv.User{ObjectID: "oid-blocked", Sub: "per-app-blocked"})
	entraLogin, _ := u.mustLoginViaButton("entra")
	u.auth0.Block("auth0|blocked")
	u.azure.Block("per-app-blocked")
	u.clock.Advance(61 * time.Minute)
	for connector, tr := range map[string]tokenResponse{"auth0": auth0Login, "entra": entraLogin} {
		if r := u.refresh(broker.DevClientID, tr.RefreshToken); r.Error != "invalid_grant" {
			t.Errorf("%s with default scopes, user blocked upstream: refresh %d %q, want invalid_grant", connector, r.Status, r.Error)
		}
	}
	logs := u.logText()
	if !lineWith(logs, "never re-checked", "connector=no-offline") {
		t.Errorf("no start-up line says connector no-offline is never re-checked:\n%s", logs)
	}
	for _, id := range []string{"auth0", "entra", "workos"} {
		if lineWith(logs, "never re-checked", "connector="+id+" ") {
			t.Errorf("connector %s is said never to be re-checked", id)
		}
	}
}

// lineWith reports whether one line of text contains every part.
func lineWith(text string, parts ...string) bool {
	for line := range strings.SplitSeq(text, "\n") {
		if !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(line, p) }) {
			return true
		}
	}
	return false
}
