package broker_test

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/storage"
)

// An organisation that requires SSO refuses "token exchange of another
// connector's token" (README, Organisations), whatever email the token
// carries. The check used to read only that email: an Auth0 access token
// carries none, and a known identity is not completed upstream, so a
// person of the SSO domain who once signed in through the shared Auth0
// connector kept being exchanged. The resolved user's address is now
// checked too.
func TestOrgs_RequireSSORefusesAnExchangeOfATokenWithoutEmail(t *testing.T) {
	globex := testOrg("globex")
	globex.RequireSSO = true
	u := newExchange(t, withOrg(globex, "globex.example"), withOrgScope)
	// Hank signed in through the shared Auth0 connector before Globex
	// required SSO: his identity is known, with his Globex address.
	_, err := u.store.ResolveIdentity(context.Background(), storage.ResolveRequest{
		Connector: "auth0", Subject: "auth0|hank", Email: "hank@globex.example", EmailVerified: true, LinkByEmail: true, Now: time.Now(),
	})
	if err != nil {
		t.Fatal(err)
	}
	hank := testenv.User{Sub: "auth0|hank", Email: "hank@globex.example", EmailVerified: true}
	er := u.exchange(url.Values{"subject_token": {u.auth0.AccessToken(hank, apiAudience)}, "subject_token_type": {accessTokenType}})
	if er.Status == http.StatusOK {
		t.Errorf("exchange of another connector's token for an address of an SSO-required organisation was issued a token (sub of %s)", u.tokenClaims(er.AccessToken)["sub"])
	}
	assertRefused(t, er, http.StatusBadRequest, "invalid_grant")
}

// A refresh family started with a one-time code before the address's
// organisation required SSO is refused at its next refresh, as single
// sign-on from such a session is (TestOrgs_RequireSSOEndsOtherSessionsSingleSignOn):
// require_sso "closes the hole of a removed employee who keeps signing
// in by code" (README). It used to refresh for its whole 30-day life.
func TestOrgs_RequireSSOStopsTheRefreshOfACodeLogin(t *testing.T) {
	globex := testOrg("globex")
	e := newEnv(t, withOrg(globex, "globex.example"), withPoll)
	running(t, e)
	tr := e.redeem(e.login(e.browser(), "hank@globex.example", authRequest{}))
	if tr.RefreshToken == "" {
		t.Fatalf("no refresh token: %+v", tr)
	}
	if _, err := e.store.UpdateOrganization(context.Background(), globex.ID, func(o storage.Organization) (storage.Organization, error) {
		o.RequireSSO = true
		return o, nil
	}); err != nil {
		t.Fatal(err)
	}
	// Wait until the broker sees it: a new code is refused.
	waitUntil(t, "SSO required seen", func() bool {
		b := e.browser()
		page := b.Get(e.authorizeURL(authRequest{pkce: testenv.NewPKCE(), state: "s"}))
		page = b.Submit(page, "/login", url.Values{"email": {"hank@globex.example"}})
		return page.Status == http.StatusForbidden
	})
	next := e.refresh(broker.DevClientID, tr.RefreshToken)
	if next.Status == http.StatusOK {
		t.Errorf("a one-time-code login's refresh family still refreshes after its organisation requires SSO")
	}
}

// RFC 7009 section 2.1: token_type_hint is only a hint; a server that
// does not find the token by it "MUST extend its search across all of
// its supported token types". A client logging a user out that revoked
// its refresh token with the hint access_token used to be told 200 while
// the family lived on.
func TestRevocation_ARefreshTokenHintedAsAnAccessTokenIsRevoked(t *testing.T) {
	e := newEnv(t)
	tr := e.redeem(e.login(e.browser(), "hint@example.com", authRequest{}))
	if tr.RefreshToken == "" {
		t.Fatalf("no refresh token: %+v", tr)
	}
	resp := e.postForm("/revoke", url.Values{"token": {tr.RefreshToken}, "client_id": {broker.DevClientID}, "token_type_hint": {"access_token"}}, "", "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke: %d", resp.StatusCode)
	}
	if next := e.refresh(broker.DevClientID, tr.RefreshToken); next.Status == http.StatusOK {
		t.Errorf("the refresh token still refreshes after /revoke answered 200 (hint access_token)")
	}
}

// Removing a member through the admin API ends what
// their login into the organisation issued: the refresh token is
// refused and its access token introspects inactive, so no token keeps
// the organisation's claims past the removal (only the organisation's
// context: the user's login outside it lives on).
func TestOrgs_ARemovedMemberLosesTheOrganisationsTokens(t *testing.T) {
	acme := testOrg("acme")
	e := newEnv(t, withAdmin, withOrg(acme), withOrgScope)
	tok := e.mustClientToken(adminBotID, adminBotSecret, adminAudience)
	ann := e.resolveUser("ann@example.org")
	wantStatus(t, "add", e.adminCall("POST", "/orgs/acme/members", tok, map[string]string{"user_id": ann}, nil), http.StatusCreated)

	inOrg := e.redeem(e.login(e.browser(), "ann@example.org", authRequest{scope: orgScopes, extra: url.Values{"organization": {"acme"}}}))
	if id, _ := e.orgOf(inOrg.AccessToken); id != acme.ID || inOrg.RefreshToken == "" {
		t.Fatalf("login into acme: org_id %q, refresh %q", id, inOrg.RefreshToken)
	}
	outside := e.redeem(e.login(e.browser(), "ann@example.org", authRequest{scope: orgScopes}))
	if id, _ := e.orgOf(outside.AccessToken); id != "" {
		t.Fatalf("login outside acme: org_id %q", id)
	}

	wantStatus(t, "remove", e.adminCall("DELETE", "/orgs/acme/members/"+ann, tok, nil, nil), http.StatusNoContent)
	if next := e.refresh(broker.DevClientID, inOrg.RefreshToken); next.Status == http.StatusOK {
		t.Errorf("the removed member's refresh in acme still works: org_id %v", e.tokenClaims(next.AccessToken)["org_id"])
	}
	if info := e.introspect(inOrg.AccessToken, introspectorID, introspectorSecret); info["active"] != false {
		t.Errorf("the removed member's access token in acme: %v", info)
	}
	if next := e.refresh(broker.DevClientID, outside.RefreshToken); next.Status != http.StatusOK {
		t.Errorf("the login outside acme ended with the membership: %s", next.Description)
	}
}

// An organisation's connector deleted or disabled "signs nobody in" and
// "its users' refresh tokens are refused at their next use"; its access
// tokens introspect inactive (connectorGone), and so does the refresh
// token itself, which used to say active, naming the organisation, for a
// token the token endpoint refuses (RFC 7662 section 2.2: active means
// "currently active").
func TestIntrospection_ARefreshTokenOfAGoneConnectorIsInactive(t *testing.T) {
	acme := testOrg("acme")
	u := newUpstreams(t, nil, withOrg(acme, "acme.example"), withAdmin, withPoll, withOrgScope)
	running(t, u.env)
	tok := u.mustClientToken(adminBotID, adminBotSecret, adminAudience)
	u.orgConnector(t, tok, "acme-sso", acme)
	u.auth0.SetNextUser(testenv.User{Sub: "auth0|ann", Email: "ann@acme.example", EmailVerified: true})
	tr := u.mustLoginIdp("acme-sso", orgScopes, nil)
	if tr.RefreshToken == "" {
		t.Fatal("no refresh token")
	}
	wantStatus(t, "disable", u.adminCall("POST", "/connectors/acme-sso/disable", tok, nil, nil), http.StatusOK)
	waitUntil(t, "access token inactive", func() bool {
		return u.introspect(tr.AccessToken, introspectorID, introspectorSecret)["active"] == false
	})
	if info := u.introspect(tr.RefreshToken, introspectorID, introspectorSecret); info["active"] != false {
		t.Errorf("the refresh token of a disabled connector introspects %v", info)
	}
	if next := u.refresh(broker.DevClientID, tr.RefreshToken); next.Status == http.StatusOK {
		t.Errorf("the refresh token of a disabled connector still refreshes")
	}
}
