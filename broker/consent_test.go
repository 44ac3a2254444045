package broker_test

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/broker/registration"
	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/storage"
)

// agentID is a third-party client, stored as /register or an operator
// would store one.
const agentID = "agent-app"

// agentRedirect is agentID's redirect URI: https, which only its owner
// receives, so the person's consent to it is remembered (a loopback or
// private-use scheme redirect is asked every time).
const agentRedirect = "https://agent.example.com/cb"

// withAgent stores agentID, third-party, beside the resources of
// withResources.
func withAgent(c *broker.Config, o *broker.Options) {
	now := time.Now()
	err := o.Storage.CreateClient(context.Background(), storage.Client{
		ID: agentID, Name: "Helpful Agent", Public: true, ThirdParty: true,
		RedirectURIs: []string{agentRedirect},
		GrantTypes:   []string{broker.GrantAuthorizationCode, broker.GrantRefreshToken},
		Scopes:       []string{"files:read"},
		CreatedAt:    now, UpdatedAt: now,
	})
	if err != nil {
		panic(err)
	}
}

// agentRequest is a sign-in through agentID asking for scope.
func agentRequest(scope string, resources ...string) authRequest {
	a := authRequest{clientID: agentID, redirectURI: agentRedirect, scope: scope}
	if len(resources) > 0 {
		a.extra = url.Values{"resource": resources}
	}
	return a
}

// consentPage signs email in through a in browser b and returns the
// consent page it lands on.
func (e *env) consentPage(b *testenv.Browser, email string, a authRequest) (*testenv.Page, authRequest) {
	e.t.Helper()
	page, a := e.signIn(b, email, a)
	if page.Status != http.StatusOK || page.URL.Path != "/consent" {
		e.t.Fatalf("want the consent page, got %d at %s (redirect %v): %s", page.Status, page.URL, page.Location, page.Body)
	}
	return page, a
}

// decide submits the consent page's form with decision.
func decide(b *testenv.Browser, page *testenv.Page, decision string) *testenv.Page {
	return b.Submit(page, "/consent", url.Values{"decision": {decision}})
}

func TestConsent_ThirdPartyClientAsksOnceThenForMoreScopes(t *testing.T) {
	e := newEnv(t, withResources, withAgent)
	allowed := e.counter("broker_consent_decisions_total", `decision="allow"`)
	b := e.browser()
	page, a := e.consentPage(b, "ada@example.com", agentRequest("openid email offline_access"))
	for _, want := range []string{"Helpful Agent", agentID, "See your email address", "Stay connected while you are away", `value="allow"`, `value="deny"`} {
		if !strings.Contains(page.Body, want) {
			t.Errorf("consent page lacks %q", want)
		}
	}
	l := e.landed(decide(b, page, "allow"), a)
	if l.code == "" || l.state != a.state || l.iss != e.issuer {
		t.Fatalf("allow: code %q, state %q, iss %q", l.code, l.state, l.iss)
	}
	tr := e.redeem(l)
	if tr.AccessToken == "" || tr.RefreshToken == "" {
		t.Fatalf("redeem after consent: %d %s %s", tr.Status, tr.Error, tr.Description)
	}
	if got := e.counter("broker_consent_decisions_total", `decision="allow"`) - allowed; got != 1 {
		t.Errorf("allow decisions counted %v, want 1", got)
	}

	// Remembered: another browser signs in without being asked.
	if tr := e.redeem(e.login(e.browser(), "ada@example.com", agentRequest("openid email"))); tr.AccessToken == "" {
		t.Fatalf("second login: %d %s", tr.Status, tr.Error)
	}

	// More scopes: asked again, for all of them, and remembered so.
	page, a = e.consentPage(e.browser(), "ada@example.com", agentRequest("openid profile"))
	for _, want := range []string{"See your name", "See your email address", "Stay connected while you are away"} {
		if !strings.Contains(page.Body, want) {
			t.Errorf("consent page for more scopes lacks %q", want)
		}
	}
	b = e.browser()
	page, a = e.consentPage(b, "ada@example.com", agentRequest("openid profile"))
	if l := e.landed(decide(b, page, "allow"), a); e.redeem(l).AccessToken == "" {
		t.Fatal("redeem after the second consent failed")
	}
	sub := claimsOf(t, tr.AccessToken).Subject
	c, err := e.store.GetConsent(t.Context(), sub, agentID, "")
	if err != nil || !slices.Equal(c.Scopes, []string{"email", "offline_access", "openid", "profile"}) {
		t.Fatalf("remembered consent %+v, %v", c, err)
	}
}

func TestConsent_DenySendsAccessDeniedAndRemembersNothing(t *testing.T) {
	e := newEnv(t, withResources, withAgent)
	b := e.browser()
	page, a := e.consentPage(b, "bob@example.com", agentRequest("openid email"))
	id := page.HiddenFields("/consent")["id"]
	denied := decide(b, page, "deny")
	if denied.Location == nil {
		t.Fatalf("deny: want a redirect to the client, got %d: %s", denied.Status, denied.Body)
	}
	q := denied.Location.Query()
	if !strings.HasPrefix(denied.Location.String(), agentRedirect) || q.Get("error") != "access_denied" ||
		q.Get("state") != a.state || q.Get("iss") != e.issuer || q.Get("code") != "" {
		t.Fatalf("deny went to %s", denied.Location)
	}
	user, err := e.store.GetUserByEmail(t.Context(), "bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if list, err := e.store.ListConsents(t.Context(), user.ID); err != nil || len(list) != 0 {
		t.Fatalf("consents after deny: %v, %v", list, err)
	}
	// The denied request cannot be finished after all.
	if p := b.Get(e.issuer + "/authorize/callback?id=" + url.QueryEscape(id)); p.Location != nil || p.Status != http.StatusNotFound {
		t.Fatalf("callback of a denied request: %d, redirect %v", p.Status, p.Location)
	}
	if p := decide(b, page, "allow"); p.Location != nil || p.Status != http.StatusNotFound {
		t.Fatalf("allow after deny: %d, redirect %v", p.Status, p.Location)
	}
}

func TestConsent_PageBelongsToTheBrowserThatSignedIn(t *testing.T) {
	e := newEnv(t, withResources, withAgent)
	victim, attacker := e.browser(), e.browser()
	page, _ := e.consentPage(victim, "carol@example.com", agentRequest("openid email"))
	if p := attacker.Get(page.URL.String()); p.Status != http.StatusForbidden || strings.Contains(p.Body, `value="allow"`) {
		t.Fatalf("consent page in another browser: %d", p.Status)
	}
	// The victim's own form, posted by another browser.
	form := url.Values{"decision": {"allow"}}
	for k, v := range page.HiddenFields("/consent") {
		form.Set(k, v)
	}
	if p := attacker.Post(e.issuer+"/consent", form); p.Status != http.StatusForbidden || p.Location != nil {
		t.Fatalf("consent posted from another browser: %d, redirect %v", p.Status, p.Location)
	}
	for name, csrf := range map[string]string{"missing": "", "forged": strings.Repeat("A", 43)} {
		form.Set("csrf", csrf)
		if p := victim.Post(e.issuer+"/consent", form); p.Status != http.StatusForbidden || p.Location != nil {
			t.Fatalf("consent with %s CSRF token: %d, redirect %v", name, p.Status, p.Location)
		}
	}
	user, _ := e.store.GetUserByEmail(t.Context(), "carol@example.com")
	if list, _ := e.store.ListConsents(t.Context(), user.ID); len(list) != 0 {
		t.Fatalf("a refused form stored %v", list)
	}
}

func TestConsent_FirstPartyClientsNeverAsk(t *testing.T) {
	e := newEnv(t, withResources, withAgent)
	for _, a := range []authRequest{{}, {extra: url.Values{"prompt": {"consent"}}}, {clientID: mcpAppID, scope: "openid tools:read", extra: url.Values{"resource": {mcpA}}}} {
		if tr := e.redeem(e.login(e.browser(), "dave@example.com", a)); tr.AccessToken == "" {
			t.Fatalf("first-party login %+v: %d %s", a.extra, tr.Status, tr.Error)
		}
	}
	user, _ := e.store.GetUserByEmail(t.Context(), "dave@example.com")
	if list, _ := e.store.ListConsents(t.Context(), user.ID); len(list) != 0 {
		t.Fatalf("first-party logins stored consents %v", list)
	}
}

func TestConsent_SingleSignOnAsksTooAndPromptNoneHearsConsentRequired(t *testing.T) {
	e := newEnv(t, withResources, withAgent)
	b := e.browser()
	e.login(b, "erin@example.com", authRequest{}) // a session, through a first-party client
	a := agentRequest("openid email")
	a.pkce, a.state = testenv.NewPKCE(), "s-none"
	a.extra = url.Values{"prompt": {"none"}}
	p := b.Get(e.authorizeURL(a))
	if p.Location == nil || p.Location.Query().Get("error") != "consent_required" || p.Location.Query().Get("state") != "s-none" || p.Location.Query().Get("iss") != e.issuer {
		t.Fatalf("prompt=none without consent: %d, redirect %v", p.Status, p.Location)
	}
	a.extra, a.state = nil, "s-sso"
	page := b.Get(e.authorizeURL(a))
	if page.URL.Path != "/consent" {
		t.Fatalf("single sign-on to a third-party client: %d at %s, redirect %v", page.Status, page.URL, page.Location)
	}
	if l := e.landed(decide(b, page, "allow"), a); e.redeem(l).AccessToken == "" || l.state != "s-sso" {
		t.Fatal("allow after single sign-on gave no tokens")
	}
	// prompt=consent asks again, though remembered.
	a.extra = url.Values{"prompt": {"consent"}}
	if page := b.Get(e.authorizeURL(a)); page.URL.Path != "/consent" {
		t.Fatalf("prompt=consent: %d at %s", page.Status, page.URL)
	}
}

func TestConsent_ThirdPartyClientMayAskOnlyForResourcesThatAcceptIt(t *testing.T) {
	e := newEnv(t, withResources, withAgent)
	a := agentRequest("openid files:read", mcpA)
	a.pkce, a.state = testenv.NewPKCE(), "s"
	p := e.browser().Get(e.authorizeURL(a))
	if p.Location == nil || p.Location.Query().Get("error") != "invalid_target" || p.Location.Query().Get("iss") != e.issuer {
		t.Fatalf("third-party client asking for %s: %d, redirect %v", mcpA, p.Status, p.Location)
	}
	b := e.browser()
	page, a := e.consentPage(b, "fay@example.com", agentRequest("openid files:read", mcpB))
	if !strings.Contains(page.Body, mcpB) || !strings.Contains(page.Body, "files:read") {
		t.Fatalf("consent page does not name the resource and its scope: %s", page.Body)
	}
	l := e.landed(decide(b, page, "allow"), a)
	if tr := redeemFor(e, l, mcpB); tr.AccessToken == "" || !slices.Equal(claimsOf(t, tr.AccessToken).Audience, []string{mcpB}) {
		t.Fatalf("token for %s: %d %s", mcpB, tr.Status, tr.Error)
	}
	user, _ := e.store.GetUserByEmail(t.Context(), "fay@example.com")
	if _, err := e.store.GetConsent(t.Context(), user.ID, agentID, mcpB); err != nil {
		t.Fatalf("consent for %s: %v", mcpB, err)
	}
}

// agentTokens signs email in through agentID, consents, and redeems.
func (e *env) agentTokens(b *testenv.Browser, email string) tokenResponse {
	e.t.Helper()
	page, a := e.consentPage(b, email, agentRequest("openid email offline_access"))
	tr := e.redeem(e.landed(decide(b, page, "allow"), a))
	if tr.RefreshToken == "" {
		e.t.Fatalf("agent tokens: %d %s %s", tr.Status, tr.Error, tr.Description)
	}
	return tr
}

func TestConsent_RevokedInConnectedAppsEndsTheClientsRefreshTokens(t *testing.T) {
	e := newEnv(t, withResources, withAgent)
	b := e.browser()
	tr := e.agentTokens(b, "gus@example.com")
	first := e.redeem(e.login(e.browser(), "gus@example.com", authRequest{})) // a first-party client's family

	if p := e.browser().Get(e.issuer + "/account/apps"); p.Status != http.StatusOK || strings.Contains(p.Body, agentID) || strings.Contains(p.Body, "<form") {
		t.Fatalf("connected apps without a session: %d: %s", p.Status, p.Body)
	}
	apps := b.Get(e.issuer + "/account/apps")
	if apps.Status != http.StatusOK || !strings.Contains(apps.Body, "Helpful Agent") || !strings.Contains(apps.Body, "See your email address") {
		t.Fatalf("connected apps: %d: %s", apps.Status, apps.Body)
	}
	// Another browser, even with the form's fields, revokes nothing.
	form := url.Values{}
	for k, v := range apps.HiddenFields("/account/apps") {
		form.Set(k, v)
	}
	if p := e.browser().Post(e.issuer+"/account/apps", form); p.Status != http.StatusForbidden {
		t.Fatalf("revoke from another browser: %d", p.Status)
	}
	form.Set("csrf", strings.Repeat("A", 43))
	if p := b.Post(e.issuer+"/account/apps", form); p.Status != http.StatusForbidden {
		t.Fatalf("revoke with a forged CSRF token: %d", p.Status)
	}
	if r := e.refresh(agentID, tr.RefreshToken); r.AccessToken == "" {
		t.Fatalf("refused revocations revoked: %d %s", r.Status, r.Error)
	}

	done := b.Submit(apps, "/account/apps", nil)
	if done.Status != http.StatusOK || done.URL.Path != "/account/apps" || !strings.Contains(done.Body, "Access revoked") || strings.Contains(done.Body, "Helpful Agent") {
		t.Fatalf("after revoking: %d at %s: %s", done.Status, done.URL, done.Body)
	}
	if r := e.refresh(agentID, tr.RefreshToken); r.Error != "invalid_grant" {
		t.Fatalf("refresh after the consent was revoked: %d %q", r.Status, r.Error)
	}
	if r := e.refresh(broker.DevClientID, first.RefreshToken); r.AccessToken == "" {
		t.Fatalf("another client's refresh token was revoked too: %d %s", r.Status, r.Error)
	}
	// The client must ask again.
	e.consentPage(e.browser(), "gus@example.com", agentRequest("openid email"))
}

func TestConsent_AdminListsAndRevokesConsents(t *testing.T) {
	e := newEnv(t, withAdmin, withResources, withAgent)
	bot := e.mustClientToken(adminBotID, adminBotSecret, adminAudience)
	tr := e.agentTokens(e.browser(), "hal@example.com")
	sub := claimsOf(t, tr.AccessToken).Subject

	var list struct {
		Consents []struct {
			ClientID string   `json:"client_id"`
			Scopes   []string `json:"scopes"`
		} `json:"consents"`
	}
	wantStatus(t, "list consents", e.adminCall("GET", "/users/"+sub+"/consents", bot, nil, &list), http.StatusOK)
	if len(list.Consents) != 1 || list.Consents[0].ClientID != agentID || !slices.Contains(list.Consents[0].Scopes, "offline_access") {
		t.Fatalf("consents: %+v", list)
	}
	wantStatus(t, "list consents by email", e.adminCall("GET", "/users/hal@example.com/consents", bot, nil, nil), http.StatusOK)
	wantStatus(t, "revoke consent", e.adminCall("DELETE", "/users/"+sub+"/consents/"+agentID, bot, nil, nil), http.StatusNoContent)
	if r := e.refresh(agentID, tr.RefreshToken); r.Error != "invalid_grant" {
		t.Fatalf("refresh after an administrator revoked the consent: %d %q", r.Status, r.Error)
	}
	if got := e.auditActions("user:"+sub, adminBotID+"/"); !slices.Contains(got, "user.consent.revoke") {
		t.Errorf("audit of the revocation: %v", got)
	}
	wantStatus(t, "revoke again", e.adminCall("DELETE", "/users/"+sub+"/consents/"+agentID, bot, nil, nil), http.StatusNotFound)
	wantStatus(t, "consents of nobody", e.adminCall("GET", "/users/00000000-0000-4000-8000-000000000000/consents", bot, nil, nil), http.StatusNotFound)
}

// withBareAgent stores a third-party client that declared no scopes, as
// MCP clients register (the Go SDK sends none) or publish their metadata
// documents: they learn a resource's scopes from its metadata at run
// time.
func withBareAgent(c *broker.Config, o *broker.Options) {
	now := time.Now()
	err := o.Storage.CreateClient(context.Background(), storage.Client{
		ID: "bare-agent", Name: "Bare Agent", Public: true, ThirdParty: true,
		RedirectURIs: []string{devRedirect},
		GrantTypes:   []string{broker.GrantAuthorizationCode, broker.GrantRefreshToken},
		CreatedAt:    now, UpdatedAt: now,
	})
	if err != nil {
		panic(err)
	}
}

// A third-party client may ask for the scopes of a resource that accepts
// third parties when it names that resource: the consent page shows
// them and the person decides. Naming no resource, or another, it gets
// none of them.
func TestConsent_ThirdPartyClientAsksForTheScopesOfTheResourceItNames(t *testing.T) {
	e := newEnv(t, withResources, withBareAgent)
	b := e.browser()
	a := authRequest{clientID: "bare-agent", redirectURI: devRedirect, scope: "openid files:read tools:call",
		extra: url.Values{"resource": {mcpB}}}
	page, a := e.consentPage(b, "ida@example.com", a)
	if !strings.Contains(page.Body, "files:read") || strings.Contains(page.Body, "tools:call") {
		t.Fatalf("consent page should name files:read and not tools:call: %s", page.Body)
	}
	tr := redeemFor(e, e.landed(decide(b, page, "allow"), a), mcpB)
	if tr.AccessToken == "" {
		t.Fatalf("redeem: %d %s %s", tr.Status, tr.Error, tr.Description)
	}
	if scopes := strings.Fields(claimsOf(t, tr.AccessToken).Scope); !slices.Contains(scopes, "files:read") || slices.Contains(scopes, "tools:call") {
		t.Fatalf("access token scopes %v, want files:read and not tools:call", scopes)
	}

	// Without resource=, files:read is not the client's to ask for.
	b = e.browser()
	a = authRequest{clientID: "bare-agent", redirectURI: devRedirect, scope: "openid files:read"}
	page, _ = e.consentPage(b, "ida@example.com", a)
	if strings.Contains(page.Body, "files:read") {
		t.Fatalf("consent page names files:read although no resource was named: %s", page.Body)
	}
}

// RFC 8252 section 8.6: a public client's identity cannot be assured,
// so its earlier approval is not honoured by itself. A self-registered
// public client with a loopback redirect URI (any port matches, RFC 8252
// section 7.3) was allowed once on port 7777; any program on the machine
// could then start a login under its client id on a port of its own,
// with its own PKCE, and the browser's session and the remembered
// consent handed it the person's code without a page.
func TestConsent_APublicLoopbackClientIsAskedEveryTime(t *testing.T) {
	e := newEnv(t, withRegistration(registration.PolicyOpen))
	m := publicClient()
	m["redirect_uris"] = []string{"http://127.0.0.1/callback"}
	r := e.register(m, "")
	if r.Status != http.StatusCreated {
		t.Fatalf("register: %d %s %s", r.Status, r.Error, r.Description)
	}
	b := e.browser()
	// The person allows the real client, listening on port 7777.
	if l := e.login(b, "victim@example.com", authRequest{thirdParty: true, clientID: r.ClientID, redirectURI: "http://127.0.0.1:7777/callback"}); l.code == "" {
		t.Fatal("no code for the consented request")
	}
	// Another program on the machine, on port 9999, with its own PKCE.
	a := authRequest{clientID: r.ClientID, redirectURI: "http://127.0.0.1:9999/callback", pkce: testenv.NewPKCE(), state: "impersonator"}
	page := b.Get(e.authorizeURL(a))
	if page.Location != nil && page.Location.Query().Get("code") != "" {
		t.Fatalf("a code went to %s without the person being asked (consent page expected)", page.Location.Redacted())
	}
	if page.URL.Path != "/consent" {
		t.Fatalf("want the consent page, got %d at %s", page.Status, page.URL)
	}
}

// A consent belongs to the client it names. A second registered client
// with the same name, redirect URI and scopes (the same registrant) gets
// the consent page, not the first one's consent. The redirect is https,
// whose consents are remembered.
func TestConsent_ToOneRegisteredClientDoesNotCoverAnother(t *testing.T) {
	e := newEnv(t, withRegistration(registration.PolicyOpen))
	a, b := e.register(webClient(), ""), e.register(webClient(), "")
	if a.Status != http.StatusCreated || b.Status != http.StatusCreated {
		t.Fatalf("register: %d, %d", a.Status, b.Status)
	}
	br := e.browser()
	e.login(br, "twin@example.com", authRequest{thirdParty: true, clientID: a.ClientID, redirectURI: webRedirect, scope: "openid email"})
	page := br.Get(e.authorizeURL(authRequest{clientID: b.ClientID, redirectURI: webRedirect, scope: "openid email", pkce: testenv.NewPKCE(), state: "b"}))
	if page.URL.Path != "/consent" || (page.Location != nil && page.Location.Query().Get("code") != "") {
		t.Fatalf("client B rode on client A's consent: %d at %s, redirect %v", page.Status, page.URL, page.Location)
	}
}

// webRedirect is webClient's redirect URI: https, so the person's consent
// to it is remembered.
const webRedirect = "https://agent.example.com/cb"

// webClient is publicClient redirecting to webRedirect.
func webClient() map[string]any {
	m := publicClient()
	m["redirect_uris"] = []string{webRedirect}
	return m
}
