package broker_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/broker/admin"
	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/storage/postgres/pgtest"
)

// TestOrgs_OnboardingAcrossReplicas onboards a customer without a deploy,
// as the README's worked example does, on two replicas of one Postgres
// database. Through replica one an administrator creates the
// organisation, claims its domain and verifies it by a TXT record (a DNS
// server on loopback), requires SSO and adds its connector; within the
// poll interval a person of that domain signs in through replica two,
// lands in the organisation and gets its org_id in both tokens. After the
// connector is deleted, the next login of that domain gets a page, and a
// login started before the delete ends on a page at the callback: never
// a 500.
func TestOrgs_OnboardingAcrossReplicas(t *testing.T) {
	db := pgtest.New(t)
	txt := testenv.NewDNS(t)
	secret := broker.NewEphemeralRootSecret()
	shared := func(c *broker.Config, o *broker.Options) { o.Storage, o.Secret = db.Open(t), secret }
	one := newUpstreams(t, nil, withAdmin, withPoll, withOrgScope, withDNS(txt.Addr), shared)
	two := newUpstreamsOf(t, one, withAdmin, withPoll, withOrgScope, withDNS(txt.Addr), shared)
	running(t, one.env)
	running(t, two.env)
	tok := one.mustClientToken(adminBotID, adminBotSecret, adminAudience)

	var org admin.OrgInfo
	wantStatus(t, "create org", one.adminCall("POST", "/orgs", tok, map[string]any{"slug": "contoso", "name": "Contoso"}, &org), http.StatusCreated)
	var claim admin.DomainInfo
	wantStatus(t, "claim", one.adminCall("POST", "/orgs/contoso/domains", tok, map[string]string{"domain": "contoso.example"}, &claim), http.StatusCreated)
	txt.SetTXT(claim.TXTRecord.Name, claim.TXTRecord.Value)
	wantStatus(t, "verify", one.adminCall("POST", "/orgs/contoso/domains/contoso.example/verify", tok, map[string]any{}, nil), http.StatusOK)
	wantStatus(t, "require sso", one.adminCall("PATCH", "/orgs/contoso", tok, map[string]any{"require_sso": true}, nil), http.StatusOK)
	connector := auth0Connector(one, "contoso-sso")
	connector["org_id"], connector["name"] = org.ID, "Contoso SSO"
	wantStatus(t, "create connector", one.adminCall("POST", "/connectors", tok, connector, nil), http.StatusCreated)

	// Replica two: the email goes to the organisation's connector.
	var tr tokenResponse
	waitUntil(t, "a contoso login through replica two", func() bool {
		one.auth0.SetNextUser(testenv.User{Sub: "auth0|dana", Email: "dana@contoso.example", EmailVerified: true})
		b := two.browser()
		pkce := testenv.NewPKCE()
		page := b.Get(two.authorizeURL(authRequest{pkce: pkce, state: "s", nonce: "n", scope: orgScopes}))
		page = b.Submit(page, "/login", url.Values{"email": {"dana@contoso.example"}})
		if !strings.Contains(page.Body, `value="contoso-sso"`) {
			return false
		}
		page = b.Submit(page, "/login/connector", nil)
		if !loggedIn(page) {
			t.Fatalf("login through contoso-sso: %d %.300s", page.Status, page.Body)
		}
		tr = two.redeem(loginResult{code: page.Location.Query().Get("code"), pkce: pkce, redirectURI: devRedirect, clientID: broker.DevClientID})
		return true
	})
	if tr.Status != http.StatusOK {
		t.Fatalf("token: %d %s", tr.Status, tr.Description)
	}
	for name, token := range map[string]string{"ID token": tr.IDToken, "access token": tr.AccessToken} {
		if id, slug := two.orgOf(token); id != org.ID || slug != "contoso" {
			t.Errorf("%s: org_id %q org_slug %q, want %s contoso", name, id, slug, org.ID)
		}
	}
	user := two.verifyIDToken(tr.IDToken, broker.DevClientID).Subject
	if got := two.memberships(user); got[org.ID] != storage.OrgRoleMember {
		t.Errorf("memberships of the new user: %v", got)
	}

	// A login under way on replica two when the connector goes.
	started := testenv.NewBrowser(t, false, two.srv.Listener.Addr().String()) // stops at the upstream
	inFlight := started.Get(two.authorizeURL(authRequest{pkce: testenv.NewPKCE(), state: "s", nonce: "n", extra: url.Values{"idp": {"contoso-sso"}}}))
	if inFlight.Location == nil || !strings.HasPrefix(inFlight.Location.String(), one.auth0.URL) {
		t.Fatalf("login did not go to the upstream: %d %v", inFlight.Status, inFlight.Location)
	}
	wantStatus(t, "delete connector", one.adminCall("DELETE", "/connectors/contoso-sso", tok, nil, nil), http.StatusNoContent)
	waitUntil(t, "replica two without the connector", func() bool {
		b := two.browser()
		page := b.Get(two.authorizeURL(authRequest{pkce: testenv.NewPKCE(), state: "s"}))
		page = b.Submit(page, "/login", url.Values{"email": {"erin@contoso.example"}})
		if page.Status >= 500 {
			t.Fatalf("login of the domain after the delete: %d %.300s", page.Status, page.Body)
		}
		// No button of the deleted connector, no code sent: a page.
		return !strings.Contains(page.Body, `value="contoso-sso"`) && !strings.Contains(page.Body, `autocomplete="one-time-code"`)
	})
	if code := two.mailer.LastCode("erin@contoso.example"); code != "" {
		t.Error("a one-time code was sent to an address whose organisation requires SSO")
	}
	one.auth0.SetNextUser(testenv.User{Sub: "auth0|dana", Email: "dana@contoso.example", EmailVerified: true})
	back := started.Get(inFlight.Location.String())
	if back.Status >= 500 || back.Location != nil {
		t.Errorf("callback of a login started before the delete: %d %v", back.Status, back.Location)
	}
}
