package broker_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/internal/testenv"
	upoidc "github.com/idbroker/broker/upstream/oidc"
	"github.com/idbroker/broker/upstream/workos"
)

// upstreams is a broker with a fake Auth0, Entra ID and WorkOS behind it.
type upstreams struct {
	*env
	auth0  *testenv.Auth0
	azure  *testenv.AzureAD
	workos *testenv.WorkOS
}

// newUpstreams starts the fakes, lets prepare (if any) act on them before
// the broker exists, and starts the broker.
func newUpstreams(t *testing.T, prepare func(*upstreams), opts ...envOption) *upstreams {
	u := &upstreams{auth0: testenv.NewAuth0(t), azure: testenv.NewAzureAD(t), workos: testenv.NewWorkOS(t)}
	if prepare != nil {
		prepare(u)
	}
	return newUpstreamsOf(t, u, opts...)
}

// newUpstreamsOf starts another broker in front of other's fakes (a
// second replica, given the same store and root secret in opts).
func newUpstreamsOf(t *testing.T, other *upstreams, opts ...envOption) *upstreams {
	u := &upstreams{auth0: other.auth0, azure: other.azure, workos: other.workos}
	withConnectors := func(c *broker.Config, o *broker.Options) {
		c.Connectors = append(c.Connectors,
			broker.ConnectorConfig{ID: "auth0", Type: "auth0", Name: "Auth0", Domains: []string{"corp.example.com"},
				Config: &upoidc.Auth0Config{Issuer: u.auth0.Issuer,
					ClientID: u.auth0.ClientID, ClientSecret: u.auth0.ClientSecret, TrustEmail: true,
					Scopes: []string{"openid", "email", "profile", "offline_access"}}},
			broker.ConnectorConfig{ID: "entra", Type: "azuread", Name: "Microsoft", Domains: []string{"contoso.example"},
				Config: &upoidc.AzureConfig{Tenant: "organizations",
					AuthorityURL: u.azure.URL, ClientID: u.azure.ClientID, ClientSecret: u.azure.ClientSecret,
					TrustEmail: true}},
			broker.ConnectorConfig{ID: "workos", Type: "workos", Name: "WorkOS", Domains: []string{"acme.example"},
				Config: &workos.Config{ClientID: u.workos.ClientID,
					APIKey: u.workos.APIKey, BaseURL: u.workos.URL, AccessTokenIssuer: u.workos.AccessTokenIssuer,
					TrustEmail: true}},
		)
		for i := range c.Connectors {
			if c.Connectors[i].RecheckInterval == 0 {
				c.Connectors[i].RecheckInterval = time.Hour
			}
		}
	}
	u.env = newEnv(t, append([]envOption{withConnectors}, opts...)...)
	return u
}

func (u *upstreams) browser() *testenv.Browser {
	host := func(raw string) string { p, _ := url.Parse(raw); return p.Host }
	return testenv.NewBrowser(u.t, false, u.srv.Listener.Addr().String(), host(u.auth0.URL), host(u.azure.URL), host(u.workos.URL))
}

// loginVia enters email on the login page and expects home realm discovery
// to name the connector on a page whose button carries the browser through
// the upstream and back to the client.
func (u *upstreams) loginVia(email string) (loginResult, *testenv.Page) {
	u.t.Helper()
	b := u.browser()
	a := authRequest{pkce: testenv.NewPKCE(), state: "st", nonce: "nn"}
	page := b.Get(u.authorizeURL(a))
	page = b.Submit(page, "/login", url.Values{"email": {email}})
	if page.Status != http.StatusOK || !strings.Contains(page.Body, `action="/login/connector"`) || !strings.Contains(page.Body, "Continue to ") {
		u.t.Fatalf("email %s: want the page naming the connector, got %d: %s", email, page.Status, page.Body)
	}
	page = b.Submit(page, "/login/connector", nil)
	if page.Location == nil {
		return loginResult{}, page
	}
	q := page.Location.Query()
	return loginResult{code: q.Get("code"), state: q.Get("state"), iss: q.Get("iss"), pkce: a.pkce, redirectURI: devRedirect, clientID: broker.DevClientID}, page
}

func (u *upstreams) mustLoginVia(email string) (tokenResponse, idClaims) {
	u.t.Helper()
	l, page := u.loginVia(email)
	if l.code == "" {
		u.t.Fatalf("login via upstream for %s did not reach the client: %d %s", email, page.Status, page.Body)
	}
	tr := u.redeem(l)
	if tr.Status != http.StatusOK {
		u.t.Fatalf("token: %d %s", tr.Status, tr.Description)
	}
	return tr, u.verifyIDToken(tr.IDToken, broker.DevClientID)
}

func TestLogin_FirstTimeSSOUserGetsAToken(t *testing.T) {
	u := newUpstreams(t, nil)
	u.auth0.SetNextUser(testenv.User{Sub: "waad|abc123", Email: "new@corp.example.com", EmailVerified: true, Name: "New Person"})
	_, c := u.mustLoginVia("new@corp.example.com")
	if _, err := uuid.Parse(c.Subject); err != nil || c.Subject == "waad|abc123" {
		t.Fatalf("sub %q: want a platform UUID, never the upstream sub", c.Subject)
	}
	if c.IDP != "auth0" || len(c.AMR) != 1 || c.AMR[0] != "fed" || c.Email != "new@corp.example.com" {
		t.Errorf("claims %+v", c)
	}
}

// The incidents: an OTP user signing in through Auth0 keeps the UUID; an
// Azure email without a verified domain does not take the account over.
func TestLogin_LinkingRules(t *testing.T) {
	u := newUpstreams(t, nil)
	// An existing OTP user.
	otpSub := u.verifyIDToken(u.redeem(u.login(u.browser(), "pat@example.org", authRequest{})).IDToken, broker.DevClientID).Subject

	// Auth0 (trusted) with the same verified email: the same person.
	u.auth0.SetNextUser(testenv.User{Sub: "auth0|pat", Email: "pat@example.org", EmailVerified: true})
	_, c := u.mustLoginViaButton("auth0")
	if c.Subject != otpSub {
		t.Errorf("Auth0 login with the same verified email got sub %q, want the OTP user's %q", c.Subject, otpSub)
	}

	// Auth0 with the email unverified: a user of its own.
	u.auth0.SetNextUser(testenv.User{Sub: "auth0|mallory", Email: "pat@example.org", EmailVerified: false})
	_, c = u.mustLoginViaButton("auth0")
	if c.Subject == otpSub {
		t.Error("an unverified upstream email took over the account")
	}

	// Entra claiming the email without a verified domain (nOAuth): its own user.
	u.azure.SetNextUser(testenv.User{ObjectID: "oid-1", Sub: "per-app-sub", Email: "pat@example.org"})
	_, c = u.mustLoginViaButton("entra")
	if c.Subject == otpSub {
		t.Fatal("an Azure email without xms_edov took over the account")
	}
	entraSub := c.Subject
	// The same Entra identity again is that same separate user.
	u.azure.SetNextUser(testenv.User{ObjectID: "oid-1", Sub: "another-per-app-sub", Email: "pat@example.org"})
	if _, c = u.mustLoginViaButton("entra"); c.Subject != entraSub {
		t.Errorf("Entra identity keyed on tid+oid: got %q then %q", entraSub, c.Subject)
	}

	// With xms_edov the domain is verified, and a trusted connector links.
	u.azure.SetNextUser(testenv.User{ObjectID: "oid-2", Sub: "sub-2", Email: "pat@example.org", EmailDomainVerified: true})
	if _, c = u.mustLoginViaButton("entra"); c.Subject != otpSub {
		t.Errorf("Entra with xms_edov: sub %q, want %q", c.Subject, otpSub)
	}
}

// mustLoginViaButton logs in by pressing the connector's button.
func (u *upstreams) mustLoginViaButton(connector string) (tokenResponse, idClaims) {
	u.t.Helper()
	b := u.browser()
	a := authRequest{pkce: testenv.NewPKCE(), state: "st", nonce: "nn"}
	page := b.Get(u.authorizeURL(a))
	if !strings.Contains(page.Body, `value="`+connector+`"`) {
		u.t.Fatalf("login page offers no %s button", connector)
	}
	form := url.Values{"id": {page.HiddenFields("/login")["id"]}, "csrf": {page.HiddenFields("/login")["csrf"]}, "connector": {connector}}
	page = b.Post(u.issuer+"/login/connector", form)
	if page.Location == nil {
		u.t.Fatalf("login via %s: %d %s", connector, page.Status, page.Body)
	}
	q := page.Location.Query()
	tr := u.redeem(loginResult{code: q.Get("code"), pkce: a.pkce, redirectURI: devRedirect, clientID: broker.DevClientID})
	if tr.Status != http.StatusOK {
		u.t.Fatalf("token after %s login: %s", connector, tr.Description)
	}
	return tr, u.verifyIDToken(tr.IDToken, broker.DevClientID)
}

func TestLogin_IdpParameterSkipsThePage(t *testing.T) {
	u := newUpstreams(t, nil)
	u.workos.SetNextUser(testenv.User{Sub: "user_01", Email: "w@acme.example", EmailVerified: true, OrgID: "org_9"})
	b := u.browser()
	a := authRequest{pkce: testenv.NewPKCE(), state: "st", nonce: "nn", extra: url.Values{"idp": {"workos"}}}
	page := b.Get(u.authorizeURL(a))
	if page.Location == nil || page.Location.Host != "127.0.0.1:5555" {
		t.Fatalf("idp=workos did not go straight through: %d %s", page.Status, page.Body)
	}
	tr := u.redeem(loginResult{code: page.Location.Query().Get("code"), pkce: a.pkce, redirectURI: devRedirect, clientID: broker.DevClientID})
	payload, _, err := u.broker.SigningKeys().Verify(tr.IDToken)
	if err != nil {
		t.Fatal(err)
	}
	// WorkOS's own organisation id never passes through: org_id names a
	// broker organisation, and none maps org_9 (orgs_test.go).
	if strings.Contains(string(payload), `"org_id"`) || !strings.Contains(string(payload), `"idp":"workos"`) {
		t.Errorf("WorkOS login ID token has an org_id or lacks idp: %s", payload)
	}
	bad := b.Get(u.authorizeURL(authRequest{pkce: testenv.NewPKCE(), state: "x", extra: url.Values{"idp": {"nope"}}}))
	if bad.Location == nil || bad.Location.Query().Get("error") != "invalid_request" {
		t.Errorf("unknown idp: %d %v", bad.Status, bad.Location)
	}
}

// rows counts the users and identities in the store.
func (e *env) rows() int {
	e.t.Helper()
	ctx := context.Background()
	users, err := e.store.ListUsers(ctx, "", 100000)
	if err != nil {
		e.t.Fatal(err)
	}
	n := len(users)
	for _, u := range users {
		ids, err := e.store.ListIdentities(ctx, u.ID)
		if err != nil {
			e.t.Fatal(err)
		}
		n += len(ids)
	}
	return n
}

// assertNothingWritten checks that no user or identity appeared since the
// store held before rows.
func (u *upstreams) assertNothingWritten(before int) {
	u.t.Helper()
	if after := u.rows(); after != before {
		u.t.Errorf("a failed login wrote %d user or identity rows", after-before)
	}
}

func TestLogin_UpstreamFailuresShowAPageAndWriteNothing(t *testing.T) {
	u := newUpstreams(t, nil)
	user := testenv.User{Sub: "auth0|fail", Email: "fail@corp.example.com", EmailVerified: true}
	for _, tc := range []struct {
		name   string
		setup  func()
		status int
	}{
		{"user cancelled", func() { u.auth0.DenyNextLogin() }, http.StatusForbidden},
		{"bad signature", func() { u.auth0.SpoilNextIDToken(testenv.SignedByOtherKey()) }, http.StatusBadRequest},
		{"expired", func() { u.auth0.SpoilNextIDToken(testenv.Expired()) }, http.StatusBadRequest},
		{"wrong audience", func() { u.auth0.SpoilNextIDToken(testenv.WithClaim("aud", "someone-else")) }, http.StatusBadRequest},
		{"wrong nonce", func() { u.auth0.SpoilNextIDToken(testenv.WithClaim("nonce", "other")) }, http.StatusBadRequest},
		{"HS256 with public key", func() { u.auth0.SpoilNextIDToken(testenv.HS256WithPublicKey()) }, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u.auth0.Recover()
			u.auth0.SetNextUser(user)
			before := u.rows()
			tc.setup()
			l, page := u.loginVia(user.Email)
			if l.code != "" || page.Status != tc.status || !strings.Contains(page.Body, "<h1>") {
				t.Fatalf("got code %v, status %d, want a %d page: %s", l.code != "", page.Status, tc.status, page.Body)
			}
			u.assertNothingWritten(before)
		})
	}
	u.auth0.Recover()

	// A callback whose state matches no request.
	b := u.browser()
	page := b.Get(u.issuer + "/callback/auth0?code=x&state=forged")
	if page.Status != http.StatusBadRequest || page.Location != nil {
		t.Errorf("forged state: %d %v", page.Status, page.Location)
	}
}

// An upstream that is down or hangs when the broker first needs it (its
// discovery, on the broker's back channel) gets a page within the client
// timeout, and nothing is written.
func TestLogin_UpstreamDownOrSlowShowsPage(t *testing.T) {
	for name, breakIt := range map[string]func(*testenv.Auth0){
		"down": func(f *testenv.Auth0) { f.FailWith(http.StatusInternalServerError) },
		"slow": func(f *testenv.Auth0) { f.Hang() },
	} {
		t.Run(name, func(t *testing.T) {
			u := newUpstreams(t, func(u *upstreams) { breakIt(u.auth0) }, func(c *broker.Config, o *broker.Options) {
				o.HTTPClient = &http.Client{Timeout: 300 * time.Millisecond}
			})
			start := time.Now()
			before := u.rows()
			l, page := u.loginVia("down@corp.example.com")
			if l.code != "" || page.Status != http.StatusServiceUnavailable || !strings.Contains(page.Body, "could not be reached") {
				t.Fatalf("status %d: %s", page.Status, page.Body)
			}
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("the broker waited %v for a broken upstream", d)
			}
			u.auth0.Recover()
			u.assertNothingWritten(before)
		})
	}
}

func TestRefresh_UpstreamRefusalRevokesFamily(t *testing.T) {
	u := newUpstreams(t, nil)
	u.auth0.SetNextUser(testenv.User{Sub: "auth0|leaver", Email: "leaver@corp.example.com", EmailVerified: true})
	tr, _ := u.mustLoginVia("leaver@corp.example.com")
	if r := u.refresh("dev", tr.RefreshToken); r.Status != http.StatusOK {
		t.Fatalf("refresh within the recheck interval: %s", r.Description)
	} else {
		tr = r
	}
	u.auth0.Block("auth0|leaver")
	u.clock.Advance(61 * time.Minute)
	r := u.refresh("dev", tr.RefreshToken)
	if r.Error != "invalid_grant" {
		t.Fatalf("refresh after the user was blocked upstream: %d %q", r.Status, r.Error)
	}
	if info := u.introspect(tr.AccessToken, introspectorID, introspectorSecret); info["active"] != false {
		t.Error("access token of the revoked family is still active")
	}
	sessions, err := u.store.ListSessions(context.Background(), u.verifyIDToken(tr.IDToken, broker.DevClientID).Subject, u.clock.Now())
	if err != nil || len(sessions) != 0 {
		t.Errorf("the blocked user still has %d browser sessions (%v)", len(sessions), err)
	}
}

// Rule 5, the other order: an untrusted upstream that says an address is
// verified must not plant it, or the real owner's later trusted login
// (here a one-time code) would land in the untrusted account.
func TestLogin_UntrustedVerifiedEmailIsNotPlanted(t *testing.T) {
	u := newUpstreams(t, nil, func(c *broker.Config, o *broker.Options) {
		for i := range c.Connectors {
			if c.Connectors[i].ID == "auth0" {
				c.Connectors[i].Config.(*upoidc.Auth0Config).TrustEmail = false
			}
		}
	})
	u.auth0.SetNextUser(testenv.User{Sub: "auth0|mallory", Email: "victim@example.org", EmailVerified: true})
	_, planted := u.mustLoginViaButton("auth0")
	if planted.EmailVerified {
		t.Error("an untrusted upstream's email is marked verified in the broker's token")
	}
	owner := u.verifyIDToken(u.redeem(u.login(u.browser(), "victim@example.org", authRequest{})).IDToken, broker.DevClientID)
	if owner.Subject == planted.Subject {
		t.Fatal("the owner's one-time-code login landed in the account an untrusted upstream created")
	}
}

// /readyz says not ready until every upstream's discovery is done, and
// stays ready once it is (the document is cached) even if the upstream
// goes down later.
func TestReadyz_WaitsForUpstreamDiscovery(t *testing.T) {
	u := newUpstreams(t, func(u *upstreams) { u.auth0.FailWith(http.StatusInternalServerError) })
	ready := func() int {
		resp, err := http.Get(u.issuer + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := ready(); got != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with an undiscovered upstream: %d", got)
	}
	// Recovered: ready once the backoff after the failed attempt is past.
	u.auth0.Recover()
	u.clock.Advance(upoidc.RetryBackoff)
	if got := ready(); got != http.StatusOK {
		t.Fatalf("/readyz after discovery: %d", got)
	}
	u.auth0.FailWith(http.StatusInternalServerError)
	if got := ready(); got != http.StatusOK {
		t.Errorf("/readyz with a cached discovery and the upstream down: %d", got)
	}
}

// An upstream's error_description (attacker-controlled: anyone can craft
// the callback URL) is never reflected into the page.
func TestLogin_UpstreamErrorDescriptionIsNotReflected(t *testing.T) {
	u := newUpstreams(t, nil)
	// A browser that stops at the redirect to the upstream, to learn the
	// state of a real, pending upstream login.
	b := testenv.NewBrowser(t, false, u.srv.Listener.Addr().String())
	page := b.Get(u.authorizeURL(authRequest{pkce: testenv.NewPKCE(), extra: url.Values{"idp": {"auth0"}}}))
	if page.Location == nil || page.Location.Query().Get("state") == "" {
		t.Fatalf("idp=auth0 did not redirect upstream: %d", page.Status)
	}
	state := page.Location.Query().Get("state")
	const xss = `<script>alert(1)</script>`
	for _, st := range []string{state, "forged"} {
		p := b.Get(u.issuer + "/callback/auth0?" + url.Values{"error": {"access_denied"}, "error_description": {xss}, "state": {st}}.Encode())
		if strings.Contains(p.Body, "<script>alert") || p.Status < 400 || !strings.Contains(p.Body, "<h1>") {
			t.Errorf("state %q: status %d, reflected: %v", st, p.Status, strings.Contains(p.Body, "<script>alert"))
		}
	}
}
