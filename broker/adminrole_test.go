package broker_test

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/broker/admin"
	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/storage"
)

const (
	// consoleID is an interactive client allowed the admin scope and the
	// admin audience: the console administrators sign in to. Anyone can
	// sign in through it; only a user holding the admin role gets admin.
	consoleID       = "admin-console"
	consoleRedirect = "http://127.0.0.1:7777/cb"
	// adminExchangerID may exchange tokens for the admin audience and
	// ask for the admin scope.
	adminExchangerID     = "admin-exchanger"
	adminExchangerSecret = "admin-exchanger-secret-0123456789abcdefghijk"
)

func withAdminConsole(c *broker.Config, o *broker.Options) {
	c.Clients = append(c.Clients, broker.ClientConfig{ID: consoleID, Public: true, RedirectURIs: []string{consoleRedirect},
		GrantTypes: []string{broker.GrantAuthorizationCode, broker.GrantRefreshToken},
		Audiences:  []string{adminAudience}, Scopes: []string{broker.AdminScope}})
}

func withAdminExchanger(c *broker.Config, o *broker.Options) {
	c.Clients = append(c.Clients, broker.ClientConfig{ID: adminExchangerID, Secret: adminExchangerSecret,
		GrantTypes: []string{broker.GrantTokenExchange},
		Audiences:  []string{adminAudience}, Scopes: []string{broker.AdminScope}})
}

// consoleLogin signs email in through the console, asking for admin.
func (e *env) consoleLogin(email string) tokenResponse {
	e.t.Helper()
	tr := e.redeem(e.login(e.browser(), email, authRequest{clientID: consoleID, redirectURI: consoleRedirect,
		scope: "openid email offline_access " + broker.AdminScope}))
	if tr.AccessToken == "" {
		e.t.Fatalf("console login of %s: %d %s %s", email, tr.Status, tr.Error, tr.Description)
	}
	return tr
}

// adminSignIn signs email in through the console, has the admin bot
// (token bot) grant them the admin role, and signs them in again: it
// returns their user id and the tokens of the second sign-in.
func (e *env) adminSignIn(bot, email string) (string, tokenResponse) {
	e.t.Helper()
	sub := claimsOf(e.t, e.consoleLogin(email).AccessToken).Subject
	wantStatus(e.t, "grant the admin role", e.adminCall("POST", "/users/"+sub+"/roles/admin", bot, nil, nil), http.StatusNoContent)
	return sub, e.consoleLogin(email)
}

// grantsAdmin reports whether a token response or its access token
// carries the admin scope.
func grantsAdmin(t testing.TB, tr tokenResponse) bool {
	t.Helper()
	has := func(scope string) bool { return slices.Contains(strings.Fields(scope), broker.AdminScope) }
	return has(tr.Scope) || (tr.AccessToken != "" && has(claimsOf(t, tr.AccessToken).Scope))
}

// auditActions returns the actions of the audit events on target whose
// actor starts with actorPrefix.
func (e *env) auditActions(target, actorPrefix string) []string {
	e.t.Helper()
	events, err := e.store.ListAudit(e.t.Context(), 1000)
	if err != nil {
		e.t.Fatal(err)
	}
	var actions []string
	for _, ev := range events {
		if ev.Target == target && strings.HasPrefix(ev.Actor, actorPrefix) {
			actions = append(actions, ev.Action)
		}
	}
	return actions
}

// Issue 18, item 7: signing in through a client allowed admin made anyone
// an administrator, able to mint a machine client with admin rights for
// good. A person without the admin role gets a token without admin, at
// login and at refresh, and the admin API refuses them.
func TestAdminScope_PlainUserThroughAnAdminClientGetsNoAdmin(t *testing.T) {
	e := newEnv(t, withAdmin, withAdminConsole)
	tr := e.consoleLogin("pat@example.org")
	if grantsAdmin(t, tr) {
		t.Errorf("a user without the admin role got admin: scope %q, token scope %q", tr.Scope, claimsOf(t, tr.AccessToken).Scope)
	}
	resp := e.adminCall("GET", "/users", tr.AccessToken, nil, nil)
	wantStatus(t, "list users", resp, http.StatusForbidden)
	if !strings.Contains(resp.Header.Get("WWW-Authenticate"), "insufficient_scope") {
		t.Errorf("WWW-Authenticate = %q", resp.Header.Get("WWW-Authenticate"))
	}
	backdoor := admin.ClientSpec{ID: "backdoor", GrantTypes: []string{clientCredentialsGrant},
		Audiences: []string{adminAudience}, Scopes: []string{broker.AdminScope}}
	wantStatus(t, "create a client", e.adminCall("POST", "/clients", tr.AccessToken, backdoor, nil), http.StatusForbidden)
	if _, err := e.store.GetClient(t.Context(), "backdoor"); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("a client was created: %v", err)
	}

	// A refresh cannot widen to admin, asked for or not.
	for _, scope := range []string{"", "openid " + broker.AdminScope} {
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}, "client_id": {consoleID}}
		if scope != "" {
			form.Set("scope", scope)
		}
		rr := e.token(form, "", "")
		if grantsAdmin(t, rr) {
			t.Errorf("refresh with scope %q gave admin: %q", scope, rr.Scope)
		}
		if rr.RefreshToken != "" {
			tr.RefreshToken = rr.RefreshToken
		}
	}
}

// A user granted the admin role signs in through the console and gets
// admin; with it they administer, and every change names them.
func TestAdminScope_UserHoldingTheRoleGetsIt(t *testing.T) {
	eachStore(t, func(t *testing.T, store storage.Storage) {
		e := newEnv(t, withAdmin, withAdminConsole, withStore(store))
		bot := e.mustClientToken(adminBotID, adminBotSecret, adminAudience)
		sub, tr := e.adminSignIn(bot, "ada@example.org")
		var shown admin.UserInfo
		wantStatus(t, "show", e.adminCall("GET", "/users/"+sub, bot, nil, &shown), http.StatusOK)
		if !slices.Contains(shown.Roles, broker.RoleAdmin) {
			t.Errorf("shown roles %v, want %s", shown.Roles, broker.RoleAdmin)
		}
		if !grantsAdmin(t, tr) {
			t.Fatalf("an admin signing in through the console: scope %q", tr.Scope)
		}
		spec := admin.ClientSpec{ID: "reports", GrantTypes: []string{clientCredentialsGrant}, Audiences: []string{svcAudience}}
		wantStatus(t, "create a client", e.adminCall("POST", "/clients", tr.AccessToken, spec, nil), http.StatusCreated)

		if got := e.auditActions("user:"+sub, adminBotID+"/"); !slices.Contains(got, "user.grant-admin") {
			t.Errorf("audit of the grant: %v", got)
		}
		if got := e.auditActions("client:reports", consoleID+"/"+sub); !slices.Contains(got, "client.create") {
			t.Errorf("audit of the admin's change: %v", got)
		}
	})
}

// Revoking the role takes effect at the admin API on the next request,
// not when the tokens issued while it was held expire; refreshing drops
// admin too.
func TestAdminScope_RevokingTheRoleRefusesAtOnce(t *testing.T) {
	eachStore(t, func(t *testing.T, store storage.Storage) {
		e := newEnv(t, withAdmin, withAdminConsole, withStore(store))
		bot := e.mustClientToken(adminBotID, adminBotSecret, adminAudience)
		sub, tr := e.adminSignIn(bot, "lin@example.org")
		wantStatus(t, "as admin", e.adminCall("GET", "/users", tr.AccessToken, nil, nil), http.StatusOK)

		wantStatus(t, "revoke", e.adminCall("DELETE", "/users/"+sub+"/roles/admin", bot, nil, nil), http.StatusNoContent)
		wantStatus(t, "after the revocation", e.adminCall("GET", "/users", tr.AccessToken, nil, nil), http.StatusForbidden)
		rr := e.refresh(consoleID, tr.RefreshToken)
		if rr.AccessToken == "" || grantsAdmin(t, rr) {
			t.Errorf("refresh after the revocation: %d %s, scope %q", rr.Status, rr.Error, rr.Scope)
		}
		if got := e.auditActions("user:"+sub, adminBotID+"/"); !slices.Contains(got, "user.revoke-admin") {
			t.Errorf("audit of the revocation: %v", got)
		}
		// Revoking what is not held, or granting to nobody, says so.
		wantStatus(t, "revoke again", e.adminCall("DELETE", "/users/"+sub+"/roles/admin", bot, nil, nil), http.StatusNoContent)
		wantStatus(t, "unknown user", e.adminCall("POST", "/users/7d3f2c1a-0000-4f70-8a9b-0c1d2e3f4a5b/roles/admin", bot, nil, nil), http.StatusNotFound)
		wantStatus(t, "unknown role", e.adminCall("POST", "/users/"+sub+"/roles/owner", bot, nil, nil), http.StatusNotFound)
	})
}

// A machine client configured with admin gets it by client_credentials,
// as before; its rights are its configuration's, so its service user
// cannot be given the role as well.
func TestAdminScope_MachineClientGrantedAdminKeepsIt(t *testing.T) {
	e := newEnv(t, withAdmin)
	tr := e.token(url.Values{"grant_type": {clientCredentialsGrant}, "audience": {adminAudience}}, adminBotID, adminBotSecret)
	if !grantsAdmin(t, tr) {
		t.Fatalf("admin bot: %d %s, scope %q", tr.Status, tr.Error, tr.Scope)
	}
	wantStatus(t, "as the bot", e.adminCall("GET", "/clients", tr.AccessToken, nil, nil), http.StatusOK)
	service := claimsOf(t, tr.AccessToken).Subject
	wantStatus(t, "grant to a service user", e.adminCall("POST", "/users/"+service+"/roles/admin", tr.AccessToken, nil, nil), http.StatusBadRequest)
}

// Token exchange never mints admin for a user without the role, from an
// upstream token or from a broker token issued while the role was held.
func TestAdminScope_ExchangeNeverMintsAdminForANonAdmin(t *testing.T) {
	u := newExchange(t, withAdmin, withAdminExchanger)
	bot := u.mustClientToken(adminBotID, adminBotSecret, adminAudience)
	person := testenv.User{Sub: "auth0|exchange-admin", Email: "ex@corp.example.com", EmailVerified: true}
	exchange := func(subject, scope string) tokenResponse {
		t.Helper()
		form := url.Values{"subject_token": {subject}, "subject_token_type": {accessTokenType}, "audience": {adminAudience}}
		if scope != "" {
			form.Set("scope", scope)
		}
		er := u.exchangeAs(adminExchangerID, adminExchangerSecret, form)
		if er.Status != http.StatusOK && er.Error != "invalid_scope" {
			t.Fatalf("exchange: %d %s %s", er.Status, er.Error, er.Description)
		}
		return er
	}
	for _, scope := range []string{"", broker.AdminScope} {
		er := exchange(u.auth0.AccessToken(person, apiAudience), scope)
		if grantsAdmin(t, er) {
			t.Errorf("upstream token of a non-admin, scope %q asked: admin granted", scope)
		}
		if er.AccessToken != "" {
			wantStatus(t, "exchanged token", u.adminCall("GET", "/users", er.AccessToken, nil, nil), http.StatusForbidden)
		}
	}

	sub := claimsOf(t, exchange(u.auth0.AccessToken(person, apiAudience), "").AccessToken).Subject
	wantStatus(t, "grant", u.adminCall("POST", "/users/"+sub+"/roles/admin", bot, nil, nil), http.StatusNoContent)
	held := exchange(u.auth0.AccessToken(person, apiAudience), "")
	if !grantsAdmin(t, held) {
		t.Fatalf("upstream token of an admin: scope %q", held.Scope)
	}
	wantStatus(t, "as admin", u.adminCall("GET", "/users", held.AccessToken, nil, nil), http.StatusOK)

	wantStatus(t, "revoke", u.adminCall("DELETE", "/users/"+sub+"/roles/admin", bot, nil, nil), http.StatusNoContent)
	for _, scope := range []string{"", broker.AdminScope} {
		if er := exchange(held.AccessToken, scope); grantsAdmin(t, er) {
			t.Errorf("broker token issued while the role was held, scope %q asked: admin granted after the revocation", scope)
		}
	}
}
