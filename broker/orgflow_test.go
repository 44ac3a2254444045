package broker_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/storage/memory"
	"github.com/idbroker/broker/storage/postgres/pgtest"
)

// loginIdp signs in through connector idp in a new browser, with scope
// and extra parameters, and returns the page the browser ended on and
// the PKCE pair.
func (u *upstreams) loginIdp(idp, scope string, extra url.Values) (*testenv.Page, testenv.PKCE) {
	u.t.Helper()
	pkce := testenv.NewPKCE()
	q := url.Values{"idp": {idp}}
	for k, v := range extra {
		q[k] = v
	}
	return u.browser().Get(u.authorizeURL(authRequest{pkce: pkce, state: "s", nonce: "n", scope: scope, extra: q})), pkce
}

// mustLoginIdp is loginIdp that redeems the code the client got.
func (u *upstreams) mustLoginIdp(idp, scope string, extra url.Values) tokenResponse {
	u.t.Helper()
	page, pkce := u.loginIdp(idp, scope, extra)
	if page.Location == nil || page.Location.Query().Get("code") == "" {
		u.t.Fatalf("login via %s: %d %.400s", idp, page.Status, page.Body)
	}
	tr := u.redeem(loginResult{code: page.Location.Query().Get("code"), pkce: pkce, redirectURI: devRedirect, clientID: broker.DevClientID})
	if tr.Status != http.StatusOK {
		u.t.Fatalf("redeem after login via %s: %s", idp, tr.Description)
	}
	return tr
}

// orgOf returns the org_id and org_slug claims of a broker token.
func (e *env) orgOf(token string) (id, slug string) {
	e.t.Helper()
	c := e.tokenClaims(token)
	id, _ = c["org_id"].(string)
	slug, _ = c["org_slug"].(string)
	return id, slug
}

// memberships returns the organisation ids user is a member of, with
// their roles.
func (e *env) memberships(userID string) map[string]string {
	e.t.Helper()
	ms, err := e.store.Memberships(context.Background(), userID)
	if err != nil {
		e.t.Fatal(err)
	}
	out := map[string]string{}
	for _, m := range ms {
		out[m.OrgID] = m.Role
	}
	return out
}

// A login through a shared connector whose identity names an upstream
// organisation lands in the broker organisation that maps it: the user
// becomes a member, and with the organization scope both tokens carry
// the organisation's UUID and slug, never the upstream's id; refresh
// keeps it, and /userinfo and introspection say the same.
func TestOrgs_UpstreamOrgMapsToTheOrganisationInEveryToken(t *testing.T) {
	acme := testOrg("acme", "org_acme")
	u := newUpstreams(t, nil, withOrg(acme), withOrgScope)
	u.auth0.SetNextUser(testenv.User{Sub: "auth0|wile", Email: "wile@corp.example.com", EmailVerified: true, OrgID: "org_acme"})
	tr := u.mustLoginIdp("auth0", orgScopes, nil)
	for name, tok := range map[string]string{"ID token": tr.IDToken, "access token": tr.AccessToken} {
		if id, slug := u.orgOf(tok); id != acme.ID || slug != "acme" {
			t.Errorf("%s: org_id %q org_slug %q, want %s acme", name, id, slug, acme.ID)
		}
	}
	sub := u.verifyIDToken(tr.IDToken, broker.DevClientID).Subject
	if got := u.memberships(sub); got[acme.ID] != storage.OrgRoleMember || len(got) != 1 {
		t.Errorf("memberships after the first login: %v, want member of acme", got)
	}

	next := u.refresh(broker.DevClientID, tr.RefreshToken)
	if next.Status != http.StatusOK {
		t.Fatalf("refresh: %s", next.Description)
	}
	if id, slug := u.orgOf(next.AccessToken); id != acme.ID || slug != "acme" {
		t.Errorf("refreshed access token: org_id %q org_slug %q", id, slug)
	}
	if id, _ := u.orgOf(next.IDToken); id != acme.ID {
		t.Errorf("refreshed ID token: org_id %q", id)
	}

	var info map[string]any
	if resp := u.getJSON("/userinfo", next.AccessToken, &info); resp.StatusCode != http.StatusOK {
		t.Fatalf("userinfo: %d", resp.StatusCode)
	}
	if info["org_id"] != acme.ID || info["org_slug"] != "acme" {
		t.Errorf("userinfo: %v", info)
	}
	in := u.introspect(next.AccessToken, introspectorID, introspectorSecret)
	if in["active"] != true || in["org_id"] != acme.ID || in["org_slug"] != "acme" {
		t.Errorf("introspection of the access token: %v", in)
	}
	in = u.introspect(next.RefreshToken, introspectorID, introspectorSecret)
	if in["active"] != true || in["org_id"] != acme.ID {
		t.Errorf("introspection of the refresh token: %v", in)
	}

	// Without the scope the tokens say nothing of the organisation; the
	// membership is there all the same.
	u.auth0.SetNextUser(testenv.User{Sub: "auth0|wile", Email: "wile@corp.example.com", EmailVerified: true, OrgID: "org_acme"})
	plain := u.mustLoginIdp("auth0", "", nil)
	if id, slug := u.orgOf(plain.IDToken); id != "" || slug != "" {
		t.Errorf("without the organization scope: org_id %q org_slug %q", id, slug)
	}
	if in := u.introspect(plain.AccessToken, introspectorID, introspectorSecret); in["org_id"] != nil {
		t.Errorf("introspection without the scope: %v", in)
	}
}

// The discovery document lists the organization scope and its claims.
func TestOrgs_DiscoveryListsTheScope(t *testing.T) {
	e := newEnv(t)
	var d struct {
		Scopes []string `json:"scopes_supported"`
		Claims []string `json:"claims_supported"`
	}
	e.getJSON("/.well-known/openid-configuration", "", &d)
	if !strings.Contains(strings.Join(d.Scopes, " "), "organization") || !strings.Contains(strings.Join(d.Claims, " "), "org_slug") {
		t.Errorf("discovery: scopes %v claims %v", d.Scopes, d.Claims)
	}
}

// A client not allowed the organization scope gets tokens without it.
func TestOrgs_ScopeNeedsTheClientsLeave(t *testing.T) {
	acme := testOrg("acme", "org_acme")
	u := newUpstreams(t, nil, withOrg(acme))
	u.auth0.SetNextUser(testenv.User{Sub: "auth0|wile", Email: "wile@corp.example.com", EmailVerified: true, OrgID: "org_acme"})
	tr := u.mustLoginIdp("auth0", orgScopes, nil)
	if id, _ := u.orgOf(tr.AccessToken); id != "" || strings.Contains(tr.Scope, "organization") {
		t.Errorf("a client without the scope: org_id %q, scope %q", id, tr.Scope)
	}
}

// Token exchange of an upstream token naming a mapped upstream
// organisation carries the organisation, and makes a member.
func TestOrgs_ExchangeCarriesTheOrganisation(t *testing.T) {
	acme := testOrg("acme", "org_acme")
	u := newExchange(t, withOrg(acme), withOrgScope)
	person := testenv.User{Sub: "auth0|roadrunner", Email: "rr@corp.example.com", EmailVerified: true, OrgID: "org_acme"}
	er := u.mustExchange(u.auth0.AccessToken(person, apiAudience), nil)
	c := u.verifyAccess(er.AccessToken, apiAudience)
	if id, slug := u.orgOf(er.AccessToken); id != acme.ID || slug != "acme" {
		t.Errorf("exchanged token: org_id %q org_slug %q, want %s acme", id, slug, acme.ID)
	}
	if got := u.memberships(c.Subject); got[acme.ID] != storage.OrgRoleMember {
		t.Errorf("memberships after the exchange: %v", got)
	}
	// Narrowing the broker's own token keeps it.
	own := u.mustExchange(er.AccessToken, url.Values{"scope": {"openid organization"}})
	if id, _ := u.orgOf(own.AccessToken); id != acme.ID {
		t.Errorf("narrowed token: org_id %q", id)
	}
}

// An upstream organisation no organisation maps is ignored by default
// (no org_id), and refused with unknownUpstreamOrg: refuse, at login
// with a page and in exchange with invalid_grant.
func TestOrgs_UnknownUpstreamOrg(t *testing.T) {
	stranger := testenv.User{Sub: "auth0|stranger", Email: "s@corp.example.com", EmailVerified: true, OrgID: "org_nobody"}
	t.Run("ignore", func(t *testing.T) {
		u := newExchange(t, withOrg(testOrg("acme", "org_acme")), withOrgScope)
		u.auth0.SetNextUser(stranger)
		if id, _ := u.orgOf(u.mustLoginIdp("auth0", orgScopes, nil).AccessToken); id != "" {
			t.Errorf("org_id %q for an unmapped upstream organisation", id)
		}
	})
	t.Run("refuse", func(t *testing.T) {
		u := newExchange(t, withOrg(testOrg("acme", "org_acme")), withOrgScope, func(c *broker.Config, o *broker.Options) {
			c.Organizations.UnknownUpstreamOrg = "refuse"
		})
		u.auth0.SetNextUser(stranger)
		page, _ := u.loginIdp("auth0", orgScopes, nil)
		if page.Status != http.StatusForbidden || !strings.Contains(page.Body, "Organisation not recognised") {
			t.Errorf("login: %d %.300s", page.Status, page.Body)
		}
		assertRefused(t, u.exchange(url.Values{"subject_token": {u.auth0.AccessToken(stranger, apiAudience)}, "subject_token_type": {accessTokenType}}),
			http.StatusBadRequest, "invalid_grant")
		// A mapped one still signs in.
		u.auth0.SetNextUser(testenv.User{Sub: "auth0|wile", Email: "wile@corp.example.com", EmailVerified: true, OrgID: "org_acme"})
		u.mustLoginIdp("auth0", orgScopes, nil)
	})
	cfg := broker.DevelopmentConfig("http://127.0.0.1:1", "127.0.0.1:1")
	cfg.Organizations.UnknownUpstreamOrg = "maybe"
	if err := cfg.Validate(); err == nil ||
		!strings.Contains(err.Error(), "unknownUpstreamOrg") {
		t.Errorf("a bad unknownUpstreamOrg: %v", err)
	}
}

// An organisation that requires SSO for its verified domain refuses its
// addresses a one-time code (a page, no code sent), a login through a
// connector that is not its own, and the exchange of such a connector's
// token; each refusal is counted. Its own upstream organisation, through
// a shared connector, signs in.
func TestOrgs_SSOEnforced(t *testing.T) {
	globex := testOrg("globex", "org_globex")
	globex.RequireSSO = true
	u := newExchange(t, withOrg(globex, "globex.example"), withOrgScope)

	b := u.browser()
	page := b.Get(u.authorizeURL(authRequest{pkce: testenv.NewPKCE(), state: "s", nonce: "n"}))
	page = b.Submit(page, "/login", url.Values{"email": {"hank@globex.example"}})
	if page.Status != http.StatusForbidden || !strings.Contains(page.Body, "company login") || strings.Contains(page.Body, "one-time-code") {
		t.Errorf("one-time code for an SSO domain: %d %.400s", page.Status, page.Body)
	}
	if code := u.mailer.LastCode("hank@globex.example"); code != "" {
		t.Error("a code was sent to an address of an SSO domain")
	}
	if n := u.counter("broker_sso_enforced_total", `path="otp"`); n != 1 {
		t.Errorf("sso_enforced{otp} = %v", n)
	}
	// An unverified claim does nothing: another domain gets its code.
	u.login(u.browser(), "ann@example.org", authRequest{})

	u.auth0.SetNextUser(testenv.User{Sub: "auth0|hank", Email: "hank@globex.example", EmailVerified: true})
	page, _ = u.loginIdp("auth0", "", nil)
	if page.Status != http.StatusForbidden || !strings.Contains(page.Body, "company login") {
		t.Errorf("another connector for an SSO domain: %d %.400s", page.Status, page.Body)
	}
	if n := u.counter("broker_sso_enforced_total", `path="connector"`); n != 1 {
		t.Errorf("sso_enforced{connector} = %v", n)
	}

	before := u.rows()
	hank := testenv.User{Sub: "auth0|hank", Email: "hank@globex.example", EmailVerified: true}
	assertRefused(t, u.exchange(url.Values{"subject_token": {u.auth0.AccessToken(hank, apiAudience)}, "subject_token_type": {accessTokenType}}),
		http.StatusBadRequest, "invalid_grant")
	if n := u.counter("broker_sso_enforced_total", `path="exchange"`); n != 1 {
		t.Errorf("sso_enforced{exchange} = %v", n)
	}
	u.assertNothingWritten(before)

	// Globex's own upstream organisation is its login.
	u.auth0.SetNextUser(testenv.User{Sub: "auth0|hank", Email: "hank@globex.example", EmailVerified: true, OrgID: "org_globex"})
	tr := u.mustLoginIdp("auth0", orgScopes, nil)
	if id, _ := u.orgOf(tr.IDToken); id != globex.ID {
		t.Errorf("globex login: org_id %q", id)
	}
}

// organization at /authorize starts the login in an organisation, named
// by slug or id; the tokens name it (the parameter asks for the scope),
// only for a member; an unknown one goes back to the client as
// invalid_request, and the parameter may not repeat.
func TestOrgs_OrganizationParameter(t *testing.T) {
	acme := testOrg("acme", "org_acme")
	u := newUpstreams(t, nil, withOrg(acme), withOrg(testOrg("other")), withOrgScope)
	wile := testenv.User{Sub: "auth0|wile", Email: "wile@corp.example.com", EmailVerified: true, OrgID: "org_acme"}
	for _, name := range []string{"acme", acme.ID} {
		u.auth0.SetNextUser(wile)
		tr := u.mustLoginIdp("auth0", "", url.Values{"organization": {name}})
		if id, slug := u.orgOf(tr.AccessToken); id != acme.ID || slug != "acme" {
			t.Errorf("organization=%s: org_id %q org_slug %q", name, id, slug)
		}
	}

	u.auth0.SetNextUser(wile)
	page, _ := u.loginIdp("auth0", "", url.Values{"organization": {"other"}})
	if page.Status != http.StatusForbidden || !strings.Contains(page.Body, "Not a member") {
		t.Errorf("a login into an organisation it does not belong to: %d %.300s", page.Status, page.Body)
	}

	b := u.browser()
	page = b.Get(u.authorizeURL(authRequest{pkce: testenv.NewPKCE(), state: "s", extra: url.Values{"organization": {"nope"}}}))
	if page.Location == nil || page.Location.Host != "127.0.0.1:5555" || page.Location.Query().Get("error") != "invalid_request" ||
		page.Location.Query().Get("iss") == "" {
		t.Errorf("unknown organization: %d %v", page.Status, page.Location)
	}
	page = b.Get(u.authorizeURL(authRequest{pkce: testenv.NewPKCE(), state: "s", extra: url.Values{"organization": {"acme", "acme"}}}))
	if page.Location == nil || page.Location.Query().Get("error") != "invalid_request" {
		t.Errorf("organization twice: %d %v", page.Status, page.Location)
	}

	// A one-time code into an organisation: only a member.
	b = u.browser()
	page = b.Get(u.authorizeURL(authRequest{pkce: testenv.NewPKCE(), state: "s", extra: url.Values{"organization": {"acme"}}}))
	page = b.Submit(page, "/login", url.Values{"email": {"guest@example.org"}})
	page = b.Submit(page, "/login/code", url.Values{"code": {u.mailer.LastCode("guest@example.org")}})
	if page.Status != http.StatusForbidden || !strings.Contains(page.Body, "Not a member") {
		t.Errorf("a non-member's code into acme: %d %.300s", page.Status, page.Body)
	}
}

// An identity arriving through organisation alpha's login never links by
// email to the user of an address whose domain beta holds verified.
func TestOrgs_IdentityDoesNotLinkAcrossOrganisations(t *testing.T) {
	alpha, beta := testOrg("alpha", "org_alpha"), testOrg("beta")
	u := newUpstreams(t, nil, withOrg(alpha), withOrg(beta, "beta.example"))
	owner := u.verifyIDToken(u.redeem(u.login(u.browser(), "pat@beta.example", authRequest{})).IDToken, broker.DevClientID).Subject

	u.auth0.SetNextUser(testenv.User{Sub: "auth0|pat-alpha", Email: "pat@beta.example", EmailVerified: true, OrgID: "org_alpha"})
	viaAlpha := u.verifyIDToken(u.mustLoginIdp("auth0", "", nil).IDToken, broker.DevClientID).Subject
	if viaAlpha == owner {
		t.Error("alpha's identity provider linked to the owner of a beta address")
	}
	// Through no organisation, the trusted connector links as before.
	u.auth0.SetNextUser(testenv.User{Sub: "auth0|pat", Email: "pat@beta.example", EmailVerified: true})
	if got := u.verifyIDToken(u.mustLoginIdp("auth0", "", nil).IDToken, broker.DevClientID).Subject; got != owner {
		t.Errorf("a trusted login without an organisation: user %s, want the owner %s", got, owner)
	}
}

// Twenty concurrent first logins of one new member, on two brokers
// sharing one store (memory; Postgres with a pool each), make one user
// and one membership.
func TestOrgs_ConcurrentFirstLoginsMakeOneMember(t *testing.T) {
	t.Run("memory", func(t *testing.T) {
		s := memory.New()
		concurrentFirstLogins(t, s, s)
	})
	t.Run("postgres", func(t *testing.T) {
		db := pgtest.New(t)
		concurrentFirstLogins(t, db.Open(t), db.Open(t))
	})
}

// concurrentFirstLogins runs the first logins on a broker over store a
// and one over store b, both of one database.
func concurrentFirstLogins(t *testing.T, storeA, storeB storage.Storage) {
	acme := testOrg("acme", "org_acme")
	secret := broker.NewEphemeralRootSecret()
	a := newUpstreams(t, nil, func(c *broker.Config, o *broker.Options) { o.Storage, o.Secret = storeA, secret }, withOrg(acme))
	b := newUpstreamsOf(t, a, func(c *broker.Config, o *broker.Options) { o.Storage, o.Secret = storeB, secret })
	person := testenv.User{Sub: "auth0|newbie", Email: "newbie@corp.example.com", EmailVerified: true, OrgID: "org_acme"}
	a.auth0.AddUser(person)
	idTokens := make([]string, 20)
	var wg sync.WaitGroup
	for i := range idTokens {
		u := []*upstreams{a, b}[i%2]
		wg.Go(func() {
			page, pkce := u.loginIdp("auth0", "", url.Values{"login_hint": {person.Email}})
			if page.Location == nil || page.Location.Query().Get("code") == "" {
				t.Errorf("login %d: %d %.200s", i, page.Status, page.Body)
				return
			}
			tr := u.redeem(loginResult{code: page.Location.Query().Get("code"), pkce: pkce, redirectURI: devRedirect, clientID: broker.DevClientID})
			if tr.Status != http.StatusOK {
				t.Errorf("login %d: redeem %s", i, tr.Description)
				return
			}
			idTokens[i] = tr.IDToken
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	users := map[string]bool{}
	for i, tok := range idTokens {
		users[[]*upstreams{a, b}[i%2].verifyIDToken(tok, broker.DevClientID).Subject] = true
	}
	if len(users) != 1 {
		t.Fatalf("concurrent first logins made %d users", len(users))
	}
	members, err := storeA.ListMembers(context.Background(), acme.ID, "", 100)
	if err != nil || len(members) != 1 || !users[members[0].UserID] || members[0].Role != storage.OrgRoleMember {
		t.Errorf("members of acme: %+v (%v)", members, err)
	}
}

// withClaim stores org's unverified claim on domain before the broker
// starts.
func withClaim(org storage.Organization, domain string) envOption {
	return func(c *broker.Config, o *broker.Options) {
		if err := o.Storage.AddDomain(context.Background(), storage.Domain{Domain: domain, OrgID: org.ID, Challenge: "c", CreatedAt: time.Now()}); err != nil {
			panic(fmt.Sprintf("add domain %s: %v", domain, err))
		}
	}
}

// orgConnector creates a stored connector of the fake Auth0 for org
// through the admin API and waits until logins can use it.
func (u *upstreams) orgConnector(t *testing.T, tok, id string, org storage.Organization) {
	t.Helper()
	body := auth0Connector(u, id)
	body["org_id"], body["name"] = org.ID, "SSO "+id
	wantStatus(t, "create "+id, u.adminCall("POST", "/connectors", tok, body, nil), http.StatusCreated)
	waitUntil(t, "connector "+id+" live", func() bool {
		// An unknown idp goes back to the client at once; a live one
		// through the upstream, which refuses whom it does not know.
		page, _ := u.idpLogin(id)
		return page.Location == nil || page.Location.Query().Get("error") != "invalid_request"
	})
}

// Home realm discovery by organisation: an address of a domain the
// organisation holds verified goes to its connector (several: a button
// each, and no other); organization= offers its connectors, going
// straight to a lone one; an unverified claim never routes.
func TestOrgs_HomeRealmDiscoveryByOrganisation(t *testing.T) {
	acme, initech := testOrg("acme"), testOrg("initech")
	u := newUpstreams(t, nil, withOrg(acme, "acme.example"), withOrg(initech), withClaim(initech, "initech.example"),
		withAdmin, withPoll, withOrgScope)
	running(t, u.env)
	tok := u.mustClientToken(adminBotID, adminBotSecret, adminAudience)
	u.orgConnector(t, tok, "acme-sso", acme)
	u.orgConnector(t, tok, "initech-sso", initech)

	// One connector: the page naming it, then the upstream, then the
	// client; the login lands in acme.
	u.auth0.SetNextUser(testenv.User{Sub: "auth0|ann", Email: "ann@acme.example", EmailVerified: true})
	b := u.browser()
	pkce := testenv.NewPKCE()
	page := b.Get(u.authorizeURL(authRequest{pkce: pkce, state: "s", nonce: "n", scope: orgScopes}))
	page = b.Submit(page, "/login", url.Values{"email": {"ann@acme.example"}})
	if page.Status != http.StatusOK || !strings.Contains(page.Body, `value="acme-sso"`) || !strings.Contains(page.Body, "Continue to SSO acme-sso") {
		t.Fatalf("acme address: want the page naming acme-sso, got %d: %.400s", page.Status, page.Body)
	}
	page = b.Submit(page, "/login/connector", nil)
	if !loggedIn(page) {
		t.Fatalf("login through acme-sso: %d %.300s", page.Status, page.Body)
	}
	tr := u.redeem(loginResult{code: page.Location.Query().Get("code"), pkce: pkce, redirectURI: devRedirect, clientID: broker.DevClientID})
	if id, slug := u.orgOf(tr.IDToken); id != acme.ID || slug != "acme" {
		t.Errorf("login through acme's connector: org_id %q org_slug %q", id, slug)
	}
	if got := u.memberships(u.verifyIDToken(tr.IDToken, broker.DevClientID).Subject); got[acme.ID] != storage.OrgRoleMember {
		t.Errorf("memberships: %v", got)
	}

	// An unverified claim routes nowhere: a code.
	b = u.browser()
	page = b.Get(u.authorizeURL(authRequest{pkce: testenv.NewPKCE(), state: "s"}))
	page = b.Submit(page, "/login", url.Values{"email": {"bob@initech.example"}})
	if page.Status != http.StatusOK || !strings.Contains(page.Body, `autocomplete="one-time-code"`) {
		t.Errorf("unverified domain: want the code page, got %d: %.300s", page.Status, page.Body)
	}

	// organization= with one connector goes straight there (and back),
	// by slug or id.
	for _, name := range []string{"acme", acme.ID} {
		u.auth0.SetNextUser(testenv.User{Sub: "auth0|ann", Email: "ann@acme.example", EmailVerified: true})
		if page, _ := u.loginIdp("", "", url.Values{"organization": {name}, "idp": nil}); !loggedIn(page) {
			t.Errorf("organization=%s with one connector: %d %v %.300s", name, page.Status, page.Location, page.Body)
		}
	}

	// Several connectors: a button each, the organisation's only.
	u.orgConnector(t, tok, "acme-sso-2", acme)
	waitUntil(t, "acme's second connector routed", func() bool {
		b = u.browser()
		page = b.Get(u.authorizeURL(authRequest{pkce: testenv.NewPKCE(), state: "s"}))
		page = b.Submit(page, "/login", url.Values{"email": {"ann@acme.example"}})
		return strings.Contains(page.Body, `value="acme-sso-2"`)
	})
	if page.Status != http.StatusOK || !strings.Contains(page.Body, `value="acme-sso"`) || strings.Contains(page.Body, `value="auth0"`) ||
		strings.Contains(page.Body, `value="initech-sso"`) {
		t.Errorf("acme address with two connectors: %d %.600s", page.Status, page.Body)
	}
	page, _ = u.loginIdp("", "", url.Values{"organization": {"acme"}, "idp": nil})
	if page.Status != http.StatusOK || !strings.Contains(page.Body, `value="acme-sso-2"`) || strings.Contains(page.Body, `value="auth0"`) {
		t.Errorf("organization=acme with two connectors: %d %.600s", page.Status, page.Body)
	}
}

// Once an organisation requires SSO, a browser session an address of its
// domain started with a one-time code no longer signs in by single
// sign-on, and a new code is refused: the offboarding hole closed.
func TestOrgs_RequireSSOEndsOtherSessionsSingleSignOn(t *testing.T) {
	globex := testOrg("globex")
	e := newEnv(t, withOrg(globex, "globex.example"), withPoll)
	running(t, e)
	b := e.browser()
	e.redeem(e.login(b, "hank@globex.example", authRequest{}))
	sso := b.Get(e.authorizeURL(authRequest{pkce: testenv.NewPKCE(), state: "s"}))
	if sso.Location == nil || sso.Location.Query().Get("code") == "" {
		t.Fatalf("single sign-on before SSO is required: %d %v", sso.Status, sso.Location)
	}

	_, err := e.store.UpdateOrganization(context.Background(), globex.ID, func(o storage.Organization) (storage.Organization, error) {
		o.RequireSSO = true
		return o, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var page *testenv.Page
	waitUntil(t, "single sign-on refused", func() bool {
		page = b.Get(e.authorizeURL(authRequest{pkce: testenv.NewPKCE(), state: "s"}))
		return page.Location == nil
	})
	page = b.Submit(page, "/login", url.Values{"email": {"hank@globex.example"}})
	if page.Status != http.StatusForbidden || !strings.Contains(page.Body, "company login") {
		t.Errorf("a code after SSO is required: %d %.300s", page.Status, page.Body)
	}
}

// An Entra ID tenant is an upstream organisation: a token of a tenant an
// organisation names lands in that organisation.
func TestOrgs_EntraTenantMapsToTheOrganisation(t *testing.T) {
	contoso := testOrg("contoso", "11111111-2222-4333-8444-555555555555")
	u := newExchange(t, withOrg(contoso), withOrgScope)
	tok := u.azure.AccessToken(testenv.User{ObjectID: "oid-1", Sub: "per-app", TenantID: contoso.UpstreamIDs[0]}, azureAPI)
	er := u.mustExchange(tok, url.Values{"connector": {"entra"}})
	if id, slug := u.orgOf(er.AccessToken); id != contoso.ID || slug != "contoso" {
		t.Errorf("Entra exchange: org_id %q org_slug %q, want %s contoso", id, slug, contoso.ID)
	}
}
