package broker_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"testing"
	"time"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/storage"
)

// A code of a login whose session has since ended (the person signed out
// before the client redeemed it) gets invalid_grant (README "Sessions and
// logout"). The session used to be checked only when a refresh family was
// created, so a code asked without offline_access (the most common
// web-app login) was redeemed after the logout, and its access token
// introspected active.
func TestSessions_ACodeRedeemedAfterItsLogoutGetsNothing(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	l := e.login(b, "late@example.com", authRequest{scope: "openid email"})

	// The person signs out before the client's redemption arrives.
	if p := logOut(t, b, e.issuer+"/end_session"); p.Status != http.StatusOK {
		t.Fatalf("logout: %d at %s", p.Status, p.URL)
	}
	tr := e.redeem(l)
	if tr.Status == http.StatusOK {
		info := e.introspect(tr.AccessToken, introspectorID, introspectorSecret)
		t.Errorf("code of an ended session redeemed: 200, access token introspects active=%v; want invalid_grant", info["active"])
		return
	}
	if tr.Error != "invalid_grant" {
		t.Errorf("code of an ended session: %d %q, want invalid_grant", tr.Status, tr.Error)
	}
}

// The same through single sign-on in a shared browser: the first person's
// third-party consent page is still open when they sign out; the next
// person at the browser presses Allow. No code and no remembered consent
// come of a session that has ended (both used to).
func TestSessions_AConsentPageLeftOpenAfterLogoutAllowsNothing(t *testing.T) {
	e := newEnv(t, withResources, withAgent)
	b := e.browser()
	e.redeem(e.login(b, "kiosk@example.com", authRequest{}))

	// Single sign-on to the third-party client: the consent page.
	a := agentRequest("openid email")
	a.pkce, a.state, a.nonce = testenv.NewPKCE(), "st-agent", "n-agent"
	page := b.Get(e.authorizeURL(a))
	if page.Status != http.StatusOK || page.URL.Path != "/consent" {
		t.Fatalf("want the consent page from single sign-on, got %d at %s", page.Status, page.URL)
	}
	// The person signs out (another tab) and walks away.
	if p := logOut(t, b, e.issuer+"/end_session"); p.Status != http.StatusOK {
		t.Fatalf("logout: %d at %s", p.Status, p.URL)
	}
	// Someone else presses Allow on the page left open.
	p := decide(b, page, "allow")
	if p.Location != nil && p.Location.Query().Get("code") != "" {
		tr := e.redeem(e.landed(p, a))
		t.Errorf("consent page of an ended session issued a code (redemption %d %q)", tr.Status, tr.Error)
	}
	ctx := context.Background()
	u, err := e.store.GetUserByEmail(ctx, "kiosk@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.GetConsent(ctx, u.ID, agentID, ""); err == nil {
		t.Errorf("a consent was remembered for the signed-out person by whoever pressed Allow after the logout")
	}
}

// A code issued before an administrator disabled its user, redeemed once
// they are enabled again (within the code's minute), gets invalid_grant:
// what disabling revoked stays revoked (admin.EnableUser). With
// offline_access the refresh family was refused; without it nothing
// compared the code's login with the user's revocation.
func TestSessions_ACodeIssuedBeforeADisableGetsNothingAfterTheEnable(t *testing.T) {
	e := newEnv(t, withAdmin)
	const email = "flipped@example.com"
	l := e.login(e.browser(), email, authRequest{scope: "openid email"})
	tok := e.mustClientToken(adminBotID, adminBotSecret, adminAudience)
	wantStatus(t, "disable", e.adminCall("POST", "/users/"+email+"/disable", tok, nil, nil), http.StatusNoContent)
	wantStatus(t, "enable", e.adminCall("POST", "/users/"+email+"/enable", tok, nil, nil), http.StatusNoContent)
	e.clock.Advance(2 * time.Second) // the redemption comes a moment later, well within the code's minute
	tr := e.redeem(l)
	if tr.Status == http.StatusOK {
		info := e.introspect(tr.AccessToken, introspectorID, introspectorSecret)
		t.Errorf("code issued before the disable redeemed after the enable: 200, access token active=%v; want invalid_grant", info["active"])
	}
}

// Shared browser: Ada is signed in; Bob, at the same browser, signs in as
// himself (prompt=login), then signs out. Bob's sign-in ends Ada's
// session, with its refresh tokens. It used to live on in storage where
// no logout from this browser could end it (the cookie named only Bob's),
// and no back-channel logout was ever sent for it.
func TestSessions_AnotherPersonSigningInEndsTheBrowsersSession(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	ada := e.redeem(e.login(b, "ada@example.com", authRequest{}))
	adaSID := e.sessionClaims(ada.IDToken, broker.DevClientID).SID

	bob := e.redeem(e.login(b, "bob@example.com", authRequest{extra: url.Values{"prompt": {"login"}}}))
	if bobSID := e.sessionClaims(bob.IDToken, broker.DevClientID).SID; bobSID == adaSID {
		t.Fatal("Bob's login continued Ada's session")
	}
	if p := logOut(t, b, e.issuer+"/end_session"); p.Status != http.StatusOK {
		t.Fatalf("logout: %d at %s", p.Status, p.URL)
	}
	if _, err := e.store.GetSession(context.Background(), adaSID, e.clock.Now()); err == nil {
		t.Error("Ada's session is still live after Bob replaced it and signed out of the browser")
	}
	if r := e.refresh(broker.DevClientID, ada.RefreshToken); r.Status == http.StatusOK {
		t.Error("Ada's refresh token still works after the shared browser was signed out")
	}
}

// A third-party client with a back-channel logout URI that the person
// never allowed probes with prompt=none: it gets consent_required and is
// not one of the session's clients, which only a code makes it. It used
// to be recorded at /authorize, so at logout the broker posted it a
// logout token naming the person's sub and sid (design rule 6, consent).
func TestSessions_AClientNeverAllowedGetsNoLogoutToken(t *testing.T) {
	rcv := &logoutReceiver{}
	rp := httptest.NewServer(rcv)
	t.Cleanup(rp.Close)
	e := newEnv(t, withResources, func(c *broker.Config, o *broker.Options) {
		now := time.Now()
		err := o.Storage.CreateClient(context.Background(), storage.Client{
			ID: agentID, Name: "Curious Agent", Public: true, ThirdParty: true,
			RedirectURIs:         []string{agentRedirect},
			GrantTypes:           []string{broker.GrantAuthorizationCode, broker.GrantRefreshToken},
			BackchannelLogoutURI: rp.URL + "/bc",
			CreatedAt:            now, UpdatedAt: now,
		})
		if err != nil {
			t.Fatal(err)
		}
	})
	b := e.browser()
	e.redeem(e.login(b, "private@example.com", authRequest{}))

	a := agentRequest("openid")
	a.pkce, a.state = testenv.NewPKCE(), "probe"
	a.extra = url.Values{"prompt": {"none"}}
	if p := b.Get(e.authorizeURL(a)); clientError(p) != "consent_required" {
		t.Fatalf("probe: want consent_required at the client, got %d (location %v)", p.Status, p.Location)
	}
	if p := logOut(t, b, e.issuer+"/end_session"); p.Status != http.StatusOK {
		t.Fatalf("logout: %d", p.Status)
	}
	time.Sleep(1500 * time.Millisecond)
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.tokens) > 0 {
		payload, _, _ := e.broker.SigningKeys().Verify(rcv.tokens[0])
		t.Errorf("a client the person never allowed was sent a logout token: %s", payload)
	}
}

// The upstream re-check refuses the user (blocked at Auth0): the broker
// ends the browser session and, as /end_session and the admin API's
// disable do, tells its clients over the back channel (Back-Channel
// Logout 1.0 section 2). It used to tell none, so a client relying on
// back-channel logout kept the blocked person signed in.
func TestSessions_AnUpstreamRefusalTellsTheSessionsClients(t *testing.T) {
	rcv, hearsLogouts := backendHearsLogouts(t)
	u := newUpstreams(t, nil, hearsLogouts)
	u.auth0.SetNextUser(testenv.User{Sub: "auth0|blocked", Email: "blocked@corp.example.com", EmailVerified: true})
	b := u.browser()
	page, pkce := u.authorizeBackend(b, url.Values{"idp": {"auth0"}})
	tr := u.redeemBackend(page, pkce)

	u.auth0.Block("auth0|blocked")
	u.clock.Advance(61 * time.Minute)
	r := u.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}}, backendID, backendSecret)
	if r.Error != "invalid_grant" {
		t.Fatalf("refresh after the upstream block: %d %q", r.Status, r.Error)
	}
	sub := u.verifyIDToken(tr.IDToken, backendID).Subject
	if s, _ := u.store.ListSessions(context.Background(), sub, u.clock.Now()); len(s) != 0 {
		t.Fatalf("session not ended: %d live", len(s))
	}
	time.Sleep(1500 * time.Millisecond)
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.tokens) == 0 {
		t.Error("the session ended on the upstream's refusal, but its client got no back-channel logout token")
	}
}

// The email form posted again within the resend cool-down is refused
// (429) but still re-points the auth request at the new address; the code
// mailed for the first address does not then sign in as the second: the
// one-time code's hash binds the address (otpCodeHash).
func TestOTP_ACodeForOneAddressDoesNotSignInAnother(t *testing.T) {
	e := newEnv(t)
	e.redeem(e.login(e.browser(), "victim@example.com", authRequest{})) // the victim has an account

	b := e.browser()
	page := b.Get(e.authorizeURL(authRequest{pkce: testenv.NewPKCE(), state: "s", nonce: "n"}))
	codePage := b.Submit(page, "/login", url.Values{"email": {"attacker@example.com"}})
	mine := e.mailer.LastCode("attacker@example.com")
	if codePage.Status != http.StatusOK || mine == "" {
		t.Fatalf("attacker's code page: %d", codePage.Status)
	}
	if p := b.Submit(page, "/login", url.Values{"email": {"victim@example.com"}}); p.Status != http.StatusTooManyRequests {
		t.Fatalf("second address within the cool-down: %d, want 429", p.Status)
	}
	p := b.Submit(codePage, "/login/code", url.Values{"code": {mine}})
	if p.Location != nil && p.Location.Query().Get("code") != "" {
		t.Fatalf("the attacker's code signed in after the request was re-pointed at the victim's address")
	}
	if p.Status != http.StatusBadRequest {
		t.Errorf("attacker's code against the victim's address: %d, want 400 (wrong code)", p.Status)
	}
}
