package broker_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/internal/testenv"
)

// sessionClaims are the ID-token claims single sign-on is about.
type sessionClaims struct {
	Subject  string   `json:"sub"`
	SID      string   `json:"sid"`
	AuthTime int64    `json:"auth_time"`
	AMR      []string `json:"amr"`
}

func (e *env) sessionClaims(idToken, clientID string) sessionClaims {
	e.t.Helper()
	e.verifyIDToken(idToken, clientID)
	payload, _, err := e.broker.SigningKeys().Verify(idToken)
	if err != nil {
		e.t.Fatal(err)
	}
	var c sessionClaims
	if err := json.Unmarshal(payload, &c); err != nil {
		e.t.Fatal(err)
	}
	return c
}

// authorizeAs loads /authorize for the backend client in browser b with
// extra parameters and returns where the browser ended and the PKCE pair.
func (e *env) authorizeBackend(b *testenv.Browser, extra url.Values) (*testenv.Page, testenv.PKCE) {
	e.t.Helper()
	pkce := testenv.NewPKCE()
	return b.Get(e.authorizeURL(authRequest{clientID: backendID, redirectURI: backendRedirect, pkce: pkce, state: "st-backend", nonce: "n-backend", extra: extra})), pkce
}

// redeemBackend redeems a code the backend client got at its redirect URI.
func (e *env) redeemBackend(page *testenv.Page, pkce testenv.PKCE) tokenResponse {
	e.t.Helper()
	if page.Location == nil || page.Location.Query().Get("code") == "" {
		e.t.Fatalf("want a code at the backend's redirect URI, got %d at %s (location %v): %.300s", page.Status, page.URL, page.Location, page.Body)
	}
	tr := e.token(url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {page.Location.Query().Get("code")},
		"redirect_uri":  {backendRedirect},
		"code_verifier": {pkce.Verifier},
	}, backendID, backendSecret)
	if tr.Status != http.StatusOK {
		e.t.Fatalf("backend token: %d %s %s", tr.Status, tr.Error, tr.Description)
	}
	return tr
}

// isLoginPage reports whether the browser was shown the email page.
func isLoginPage(p *testenv.Page) bool {
	return p.Status == http.StatusOK && p.Location == nil && strings.Contains(p.Body, `name="email"`)
}

// clientError returns the error the client got at its redirect URI, or "".
func clientError(p *testenv.Page) string {
	if p.Location == nil {
		return ""
	}
	return p.Location.Query().Get("error")
}

// isLogoutConfirmation reports whether the browser was asked to confirm a
// logout.
func isLogoutConfirmation(p *testenv.Page) bool {
	return p.Status == http.StatusOK && p.Location == nil && strings.Contains(p.Body, `action="/end_session/confirm"`)
}

// logOut signs browser b out as a person does: it loads an end_session
// URL and confirms when asked.
func logOut(t *testing.T, b *testenv.Browser, endSessionURL string) *testenv.Page {
	t.Helper()
	p := b.Get(endSessionURL)
	if !isLogoutConfirmation(p) {
		t.Fatalf("logout without an id_token_hint: want the confirmation page, got %d (location %v): %.300s", p.Status, p.Location, p.Body)
	}
	return b.Submit(p, "/end_session/confirm", nil)
}

func TestSession_SecondClientSignsInWithoutLoginPage(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	first := e.redeem(e.login(b, "sso@example.com", authRequest{}))
	c1 := e.sessionClaims(first.IDToken, broker.DevClientID)
	codes := e.mailer.Count("sso@example.com")

	page, pkce := e.authorizeBackend(b, nil)
	if page.Location == nil || !strings.HasPrefix(page.Location.String(), backendRedirect) {
		t.Fatalf("second client: want a redirect to its URI without a page, got %d: %.300s", page.Status, page.Body)
	}
	q := page.Location.Query()
	if q.Get("state") != "st-backend" || q.Get("iss") != e.issuer {
		t.Errorf("second client got state %q iss %q", q.Get("state"), q.Get("iss"))
	}
	c2 := e.sessionClaims(e.redeemBackend(page, pkce).IDToken, backendID)
	if c2.Subject != c1.Subject || c2.SID == "" || c2.SID != c1.SID {
		t.Errorf("second client: sub %q sid %q, want the first's %q %q", c2.Subject, c2.SID, c1.Subject, c1.SID)
	}
	if c2.AuthTime != c1.AuthTime || len(c2.AMR) != 1 || c2.AMR[0] != "otp" {
		t.Errorf("second client: auth_time %d amr %v, want the session's %d [otp]", c2.AuthTime, c2.AMR, c1.AuthTime)
	}
	if n := e.mailer.Count("sso@example.com"); n != codes {
		t.Errorf("single sign-on sent %d more codes", n-codes)
	}
	// The sid is not the cookie: a client that knows it holds nothing
	// that signs a browser in.
	for _, c := range b.Client.Jar.Cookies(mustURL(t, e.issuer)) {
		if c.Value == c1.SID {
			t.Fatal("the session cookie's value is the sid clients see")
		}
	}
	var disc map[string]any
	e.getJSON("/.well-known/openid-configuration", "", &disc)
	if disc["backchannel_logout_supported"] != true || disc["backchannel_logout_session_supported"] != true {
		t.Errorf("discovery lacks back-channel logout support: %v %v", disc["backchannel_logout_supported"], disc["backchannel_logout_session_supported"])
	}
}

func TestSession_PromptLoginAndMaxAgeZeroAskAgain(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	e.redeem(e.login(b, "again@example.com", authRequest{}))
	for _, extra := range []url.Values{{"prompt": {"login"}}, {"max_age": {"0"}}} {
		if page, _ := e.authorizeBackend(b, extra); !isLoginPage(page) {
			t.Errorf("%v: want the login page, got %d (location %v)", extra, page.Status, page.Location)
		}
	}
	// A recent enough login satisfies max_age.
	page, pkce := e.authorizeBackend(b, url.Values{"max_age": {"3600"}})
	e.redeemBackend(page, pkce)

	// Signing in again continues the same session: one logout ends both.
	first := e.sessionClaims(e.redeem(e.login(b, "again@example.com", authRequest{extra: url.Values{"prompt": {"login"}}})).IDToken, broker.DevClientID)
	page, pkce = e.authorizeBackend(b, nil)
	if second := e.sessionClaims(e.redeemBackend(page, pkce).IDToken, backendID); second.SID != first.SID {
		t.Errorf("re-authentication started session %q beside %q", second.SID, first.SID)
	}
}

func TestSession_PromptNoneNeverShowsAPage(t *testing.T) {
	e := newEnv(t)
	// No cookie: login_required at the client's redirect URI.
	page, _ := e.authorizeBackend(e.browser(), url.Values{"prompt": {"none"}})
	if clientError(page) != "login_required" || !strings.HasPrefix(page.Location.String(), backendRedirect) ||
		page.Location.Query().Get("state") != "st-backend" || page.Location.Query().Get("iss") != e.issuer {
		t.Fatalf("prompt=none without a session: %d location %v", page.Status, page.Location)
	}
	// With a session: a code, silently.
	b := e.browser()
	e.redeem(e.login(b, "silent@example.com", authRequest{}))
	page, pkce := e.authorizeBackend(b, url.Values{"prompt": {"none"}})
	e.redeemBackend(page, pkce)
	// With a session that cannot answer (max_age=0): login_required too.
	if page, _ := e.authorizeBackend(b, url.Values{"prompt": {"none"}, "max_age": {"0"}}); clientError(page) != "login_required" {
		t.Errorf("prompt=none max_age=0: %d location %v", page.Status, page.Location)
	}
}

func TestSession_ExpiresIdleAndAbsolute(t *testing.T) {
	e := newEnv(t, func(c *broker.Config, o *broker.Options) {
		c.Sessions = broker.SessionsConfig{IdleTTL: time.Hour, AbsoluteTTL: 3 * time.Hour}
	})
	b := e.browser()
	e.redeem(e.login(b, "idle@example.com", authRequest{}))
	e.clock.Advance(61 * time.Minute)
	if page, _ := e.authorizeBackend(b, nil); !isLoginPage(page) {
		t.Fatalf("idle session: want the login page, got %d (location %v)", page.Status, page.Location)
	}

	b = e.browser()
	e.redeem(e.login(b, "busy@example.com", authRequest{}))
	for range 3 { // used every 50 minutes: never idle, but 150 minutes old
		e.clock.Advance(50 * time.Minute)
		page, pkce := e.authorizeBackend(b, nil)
		e.redeemBackend(page, pkce)
	}
	e.clock.Advance(35 * time.Minute)
	if page, _ := e.authorizeBackend(b, nil); !isLoginPage(page) {
		t.Fatalf("session past its absolute lifetime: want the login page, got %d (location %v)", page.Status, page.Location)
	}
}

func TestSession_RevokedOrDisabledIsNotHonoured(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	b := e.browser()
	c := e.sessionClaims(e.redeem(e.login(b, "revoked@example.com", authRequest{})).IDToken, broker.DevClientID)
	if _, err := e.store.EndSession(ctx, c.SID); err != nil {
		t.Fatal(err)
	}
	if page, _ := e.authorizeBackend(b, nil); !isLoginPage(page) {
		t.Fatalf("revoked session's cookie: want the login page, got %d (location %v)", page.Status, page.Location)
	}
	if page, _ := e.authorizeBackend(b, url.Values{"prompt": {"none"}}); clientError(page) != "login_required" {
		t.Fatalf("revoked session with prompt=none: %d (location %v)", page.Status, page.Location)
	}

	b = e.browser()
	c = e.sessionClaims(e.redeem(e.login(b, "disabled@example.com", authRequest{})).IDToken, broker.DevClientID)
	if err := e.store.SetUserDisabled(ctx, c.Subject, true); err != nil {
		t.Fatal(err)
	}
	if page, _ := e.authorizeBackend(b, url.Values{"prompt": {"none"}}); clientError(page) != "login_required" {
		t.Fatalf("disabled user's session: %d (location %v)", page.Status, page.Location)
	}
}

func TestSession_HintsNamingSomeoneElseStartAFreshLogin(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	alice := e.redeem(e.login(b, "alice@example.com", authRequest{}))
	aliceSub := e.sessionClaims(alice.IDToken, broker.DevClientID).Subject
	bob := e.redeem(e.login(e.browser(), "bob@example.com", authRequest{}))

	page, _ := e.authorizeBackend(b, url.Values{"login_hint": {"bob@example.com"}})
	if !isLoginPage(page) || !strings.Contains(page.Body, "bob@example.com") {
		t.Fatalf("login_hint for another person: want the login page for them, got %d (location %v)", page.Status, page.Location)
	}
	for _, hint := range []string{" Alice@Example.com", aliceSub} {
		page, pkce := e.authorizeBackend(b, url.Values{"login_hint": {hint}})
		e.redeemBackend(page, pkce)
	}

	if page, _ := e.authorizeBackend(b, url.Values{"prompt": {"none"}, "id_token_hint": {bob.IDToken}}); clientError(page) != "login_required" {
		t.Fatalf("prompt=none with another user's id_token_hint: %d (location %v)", page.Status, page.Location)
	}
	if page, _ := e.authorizeBackend(b, url.Values{"id_token_hint": {bob.IDToken}}); !isLoginPage(page) {
		t.Fatalf("another user's id_token_hint: want the login page, got %d (location %v)", page.Status, page.Location)
	}
	page, pkce := e.authorizeBackend(b, url.Values{"prompt": {"none"}, "id_token_hint": {alice.IDToken}})
	e.redeemBackend(page, pkce)
	// An access token is not an ID token hint.
	if page, _ := e.authorizeBackend(b, url.Values{"id_token_hint": {alice.AccessToken}}); clientError(page) != "invalid_request" {
		t.Fatalf("access token as id_token_hint: %d (location %v)", page.Status, page.Location)
	}
}

func TestLogout_EndsSessionAndRedirectsOnlyWhereRegistered(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	dev := e.redeem(e.login(b, "leaving@example.com", authRequest{}))
	sid := e.sessionClaims(dev.IDToken, broker.DevClientID).SID
	page, pkce := e.authorizeBackend(b, nil)
	backend := e.redeemBackend(page, pkce)

	// An unregistered post_logout_redirect_uri: a page, not followed,
	// and nothing ended.
	evil := e.issuer + "/end_session?" + url.Values{"client_id": {backendID}, "post_logout_redirect_uri": {"https://evil.example/"}, "state": {"x"}}.Encode()
	if p := b.Get(evil); p.Location != nil || p.Status != http.StatusBadRequest || !strings.Contains(p.Body, "not registered") {
		t.Fatalf("unregistered post_logout_redirect_uri: %d location %v", p.Status, p.Location)
	}
	if r := e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {backend.RefreshToken}}, backendID, backendSecret); r.Status != http.StatusOK {
		t.Fatalf("a refused logout ended the session: %s", r.Description)
	}

	logout := e.issuer + "/end_session?" + url.Values{"id_token_hint": {dev.IDToken}, "client_id": {broker.DevClientID}}.Encode()
	p := b.Get(logout)
	if p.Status != http.StatusOK || !strings.Contains(p.URL.Path, "/end_session/done") {
		t.Fatalf("logout without a redirect URI: want the signed-out page, got %d at %s", p.Status, p.URL)
	}
	if _, err := e.store.GetSession(context.Background(), sid, e.clock.Now()); err == nil {
		t.Fatal("the session survived logout")
	}
	if r := e.refresh(broker.DevClientID, dev.RefreshToken); r.Error != "invalid_grant" {
		t.Errorf("first client's refresh token after logout: %d %q", r.Status, r.Error)
	}
	if info := e.introspect(backend.AccessToken, backendID, backendSecret); info["active"] != false {
		t.Errorf("access token issued under the ended session introspects %v", info)
	}
	if page, _ := e.authorizeBackend(b, nil); !isLoginPage(page) {
		t.Fatalf("after logout: want the login page, got %d (location %v)", page.Status, page.Location)
	}

	// The registered URI gets state back.
	e.redeem(e.login(b, "leaving@example.com", authRequest{}))
	p = logOut(t, b, e.issuer+"/end_session?"+url.Values{"client_id": {backendID}, "post_logout_redirect_uri": {"http://127.0.0.1:6666/bye"}, "state": {"st-bye"}}.Encode())
	if p.Location == nil || p.Location.Host != "127.0.0.1:6666" || p.Location.Path != "/bye" || p.Location.Query().Get("state") != "st-bye" {
		t.Fatalf("registered post_logout_redirect_uri: %d location %v", p.Status, p.Location)
	}
	if page, _ := e.authorizeBackend(b, url.Values{"prompt": {"none"}}); clientError(page) != "login_required" {
		t.Fatalf("after the second logout: %d (location %v)", page.Status, page.Location)
	}
}

func TestLogout_OffersToSignOutUpstreamToo(t *testing.T) {
	u := newUpstreams(t, nil)
	u.auth0.SetNextUser(testenv.User{Sub: "auth0|up", Email: "up@corp.example.com", EmailVerified: true})
	b := u.browser()
	page := b.Get(u.authorizeURL(authRequest{pkce: testenv.NewPKCE(), state: "s", nonce: "n", extra: url.Values{"idp": {"auth0"}}}))
	if page.Location == nil || page.Location.Query().Get("code") == "" {
		t.Fatalf("login via auth0: %d %.300s", page.Status, page.Body)
	}
	p := logOut(t, b, u.issuer+"/end_session")
	want := u.auth0.URL + "/oidc/logout?"
	if p.Status != http.StatusOK || !strings.Contains(p.Body, want) || !strings.Contains(p.Body, "client_id="+u.auth0.ClientID) {
		t.Fatalf("signed-out page after an Auth0 session: want a link to %s, got %d: %s", want, p.Status, p.Body)
	}
	// An OTP session has no upstream to sign out of.
	b = u.browser()
	u.login(b, "local@example.com", authRequest{})
	if p := logOut(t, b, u.issuer+"/end_session"); strings.Contains(p.Body, "/oidc/logout") {
		t.Error("signed-out page of an OTP session links to an upstream")
	}
}

// logoutReceiver is a client's back-channel logout endpoint.
type logoutReceiver struct {
	mu       sync.Mutex
	failures int // answer 500 this many times first
	attempts int
	tokens   []string
}

// backendHearsLogouts serves a logoutReceiver for the test and returns
// it with the option that registers it as backendID's back-channel
// logout URI.
func backendHearsLogouts(t *testing.T) (*logoutReceiver, envOption) {
	rcv := &logoutReceiver{}
	rp := httptest.NewServer(rcv)
	t.Cleanup(rp.Close)
	return rcv, func(c *broker.Config, o *broker.Options) {
		for i := range c.Clients {
			if c.Clients[i].ID == backendID {
				c.Clients[i].BackchannelLogoutURI = rp.URL + "/backchannel"
			}
		}
	}
}

func (l *logoutReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.attempts++
	if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/x-www-form-urlencoded" {
		http.Error(w, "want a form POST", http.StatusBadRequest)
		return
	}
	if l.failures > 0 {
		l.failures--
		http.Error(w, "not now", http.StatusInternalServerError)
		return
	}
	l.tokens = append(l.tokens, r.PostFormValue("logout_token"))
}

// waitForTokenNumber returns logout token number n (from 0) delivered,
// within a deadline.
func (l *logoutReceiver) waitForTokenNumber(t *testing.T, n int) string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		l.mu.Lock()
		if len(l.tokens) > n {
			defer l.mu.Unlock()
			return l.tokens[n]
		}
		l.mu.Unlock()
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("logout token %d was not delivered", n)
	return ""
}

// waitForToken returns the first logout token delivered, within a
// deadline, and how many attempts it took.
func (l *logoutReceiver) waitForToken(t *testing.T) (string, int) {
	t.Helper()
	raw := l.waitForTokenNumber(t, 0)
	l.mu.Lock()
	defer l.mu.Unlock()
	return raw, l.attempts
}

func TestBackchannelLogout_SignedTokenRetriedAfter500(t *testing.T) {
	rcv := &logoutReceiver{failures: 1}
	rp := httptest.NewServer(rcv)
	t.Cleanup(rp.Close)
	e := newEnv(t, func(c *broker.Config, o *broker.Options) {
		for i := range c.Clients {
			if c.Clients[i].ID == backendID {
				c.Clients[i].BackchannelLogoutURI = rp.URL + "/backchannel"
			}
		}
	})
	b := e.browser()
	e.redeem(e.login(b, "bc@example.com", authRequest{}))
	page, pkce := e.authorizeBackend(b, nil)
	idc := e.sessionClaims(e.redeemBackend(page, pkce).IDToken, backendID)

	if p := logOut(t, b, e.issuer+"/end_session"); p.Status != http.StatusOK {
		t.Fatalf("logout: %d", p.Status)
	}
	raw, attempts := rcv.waitForToken(t)
	if attempts != 2 {
		t.Errorf("delivered at attempt %d, want 2 (one 500 first)", attempts)
	}
	// It verifies against the broker's published keys, for the client.
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, e.issuer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := provider.Verifier(&oidc.Config{ClientID: backendID}).Verify(ctx, raw); err != nil {
		t.Fatalf("logout token does not verify against the JWKS: %v", err)
	}
	payload, header, err := e.broker.SigningKeys().Verify(raw)
	if err != nil {
		t.Fatal(err)
	}
	if header.ExtraHeaders["typ"] != "logout+jwt" {
		t.Errorf("typ %v, want logout+jwt", header.ExtraHeaders["typ"])
	}
	var c struct {
		Issuer   string                    `json:"iss"`
		Subject  string                    `json:"sub"`
		Audience []string                  `json:"aud"`
		IssuedAt int64                     `json:"iat"`
		Expiry   int64                     `json:"exp"`
		JTI      string                    `json:"jti"`
		SID      string                    `json:"sid"`
		Nonce    *string                   `json:"nonce"`
		Events   map[string]map[string]any `json:"events"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		t.Fatal(err)
	}
	_, hasEvent := c.Events["http://schemas.openid.net/event/backchannel-logout"]
	if c.Issuer != e.issuer || c.Subject != idc.Subject || len(c.Audience) != 1 || c.Audience[0] != backendID ||
		c.SID != idc.SID || c.JTI == "" || c.IssuedAt == 0 || c.Expiry <= c.IssuedAt || c.Nonce != nil || !hasEvent {
		t.Errorf("logout token claims %s", payload)
	}
	// The ID token would not pass as a logout token: no events, typ JWT.
	if _, h, _ := e.broker.SigningKeys().Verify(raw); h.ExtraHeaders["typ"] == "JWT" {
		t.Error("logout token has an ID token's typ")
	}
}

func TestSession_HonouredAtTheOtherReplica(t *testing.T) {
	r := newReplicas(t)
	br := testenv.NewBrowser(t, false, r.a.srv.Listener.Addr().String(), r.b.srv.Listener.Addr().String())
	first := r.a.sessionClaims(r.a.redeem(r.a.login(br, "replica@example.com", authRequest{})).IDToken, broker.DevClientID)

	page, pkce := r.b.authorizeBackend(br, nil)
	second := r.a.sessionClaims(r.b.redeemBackend(page, pkce).IDToken, backendID)
	if second.Subject != first.Subject || second.SID != first.SID {
		t.Fatalf("replica B: sub %q sid %q, want A's %q %q", second.Subject, second.SID, first.Subject, first.SID)
	}
	// Logout at B ends the session at A too.
	if p := logOut(t, br, r.b.issuer+"/end_session"); p.Status != http.StatusOK {
		t.Fatalf("logout at B: %d", p.Status)
	}
	if page, _ := r.a.authorizeBackend(br, url.Values{"prompt": {"none"}}); clientError(page) != "login_required" {
		t.Fatalf("A after logout at B: %d (location %v)", page.Status, page.Location)
	}
}

// cookieRecorder records every Set-Cookie a browser receives.
type cookieRecorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	set  []string
}

func (c *cookieRecorder) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(r)
	if err == nil {
		c.mu.Lock()
		c.set = append(c.set, resp.Header.Values("Set-Cookie")...)
		c.mu.Unlock()
	}
	return resp, err
}

func (c *cookieRecorder) find(prefix string) []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, s := range c.set {
		if strings.HasPrefix(s, prefix) {
			out = append(out, s)
		}
	}
	return out
}

func TestSession_CookieOverTLSIsHostSecureHttpOnlyLax(t *testing.T) {
	e := startEnv(t, true)
	b := e.browser()
	rec := &cookieRecorder{next: b.Client.Transport}
	b.Client.Transport = rec
	e.redeem(e.login(b, "secure@example.com", authRequest{}))
	set := rec.find("__Host-broker_session=")
	if len(set) != 1 {
		t.Fatalf("session cookies set: %q", rec.set)
	}
	for _, attr := range []string{"Path=/", "HttpOnly", "Secure", "SameSite=Lax"} {
		if !strings.Contains(set[0], attr) {
			t.Errorf("session cookie %q lacks %s", set[0], attr)
		}
	}
	if strings.Contains(set[0], "Domain=") {
		t.Errorf("session cookie %q names a domain", set[0])
	}
	page, pkce := e.authorizeBackend(b, nil)
	e.redeemBackend(page, pkce)

	logOut(t, b, e.issuer+"/end_session")
	if set := rec.find("__Host-broker_session="); len(set) != 2 || !strings.Contains(set[1], "Max-Age=0") {
		t.Errorf("logout did not clear the cookie: %q", set)
	}
}

func mustURL(t *testing.T, raw string) *url.URL {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestBackchannelLogout_RetriesAreBoundedAndStopWithRun(t *testing.T) {
	rcv := &logoutReceiver{failures: 1000}
	rp := httptest.NewServer(rcv)
	t.Cleanup(rp.Close)
	e := newEnv(t, func(c *broker.Config, o *broker.Options) {
		c.Clients[0].BackchannelLogoutURI = rp.URL + "/backchannel" // the dev client
	})
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan struct{})
	go func() {
		defer close(ran)
		e.broker.Run(ctx)
	}()
	b := e.browser()
	e.redeem(e.login(b, "down@example.com", authRequest{}))
	p := b.Get(e.issuer + "/end_session")
	start := time.Now()
	b.Submit(p, "/end_session/confirm", nil)
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("logout waited %s for a failing client", d)
	}
	cancel()
	select {
	case <-ran:
	case <-time.After(3 * time.Second):
		t.Fatal("Run did not return: a back-channel delivery outlived it")
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if rcv.attempts < 1 || rcv.attempts > 4 {
		t.Errorf("%d delivery attempts, want between 1 and 4", rcv.attempts)
	}
}

func TestLogout_WithoutHintAsksAndEndsOnlyOnTheConfirmedForm(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	dev := e.redeem(e.login(b, "asked@example.com", authRequest{}))
	sid := e.sessionClaims(dev.IDToken, broker.DevClientID).SID
	sessionLives := func(when string) {
		t.Helper()
		if _, err := e.store.GetSession(context.Background(), sid, e.clock.Now()); err != nil {
			t.Fatalf("%s: the session ended (%v)", when, err)
		}
	}

	// What an <img src> on another site does: it only gets the page.
	logout := e.issuer + "/end_session?" + url.Values{"client_id": {backendID}, "post_logout_redirect_uri": {"http://127.0.0.1:6666/bye"}, "state": {"st-bye"}}.Encode()
	page := b.Get(logout)
	if !isLogoutConfirmation(page) || !strings.Contains(page.Body, "<button type=\"submit\">Sign out</button>") {
		t.Fatalf("logout without a hint: want the confirmation page, got %d (location %v): %.300s", page.Status, page.Location, page.Body)
	}
	sessionLives("after the confirmation page")

	// A valid id_token_hint of someone else asks too.
	other := e.redeem(e.login(e.browser(), "other@example.com", authRequest{}))
	if p := b.Get(e.issuer + "/end_session?" + url.Values{"id_token_hint": {other.IDToken}}.Encode()); !isLogoutConfirmation(p) {
		t.Fatalf("logout with another user's id_token_hint: want the confirmation page, got %d (location %v)", p.Status, p.Location)
	}
	sessionLives("after another user's hint")

	// A cross-site form post has no token, or a wrong one (another
	// browser's page, or one made for another session).
	fields := page.HiddenFields("/end_session/confirm")
	if fields["csrf"] == "" || fields["post_logout_redirect_uri"] != "http://127.0.0.1:6666/bye" || fields["state"] != "st-bye" {
		t.Fatalf("confirmation form fields %v", fields)
	}
	elsewhere := e.browser()
	e.login(elsewhere, "asked@example.com", authRequest{})
	foreign := elsewhere.Get(logout).HiddenFields("/end_session/confirm")["csrf"]
	for name, token := range map[string]string{"none": "", "wrong": "AAAA" + fields["csrf"][4:], "another session's": foreign} {
		form := url.Values{"client_id": {backendID}, "post_logout_redirect_uri": {"http://127.0.0.1:6666/bye"}, "state": {"st-bye"}}
		if token != "" {
			form.Set("csrf", token)
		}
		if p := b.Post(e.issuer+"/end_session/confirm", form); p.Status != http.StatusForbidden || p.Location != nil {
			t.Fatalf("confirmation with %s token: %d (location %v), want 403", name, p.Status, p.Location)
		}
		sessionLives("after a confirmation with " + name + " token")
	}
	if r := e.refresh(broker.DevClientID, dev.RefreshToken); r.Status != http.StatusOK {
		t.Fatalf("refresh after refused logouts: %s", r.Description)
	}

	// The person's own click ends it and goes where the client registered.
	p := b.Submit(page, "/end_session/confirm", nil)
	if p.Location == nil || p.Location.Host != "127.0.0.1:6666" || p.Location.Path != "/bye" || p.Location.Query().Get("state") != "st-bye" {
		t.Fatalf("confirmed logout: %d location %v", p.Status, p.Location)
	}
	if _, err := e.store.GetSession(context.Background(), sid, e.clock.Now()); err == nil {
		t.Fatal("the session survived the confirmed logout")
	}
	if r := e.refresh(broker.DevClientID, dev.RefreshToken); r.Error != "invalid_grant" {
		t.Errorf("refresh after the confirmed logout: %d %q", r.Status, r.Error)
	}
	// The form again, with no session left: nothing to confirm.
	if p := b.Submit(page, "/end_session/confirm", nil); p.Location == nil || p.Location.Path != "/bye" {
		t.Errorf("confirmation after the session ended: %d location %v", p.Status, p.Location)
	}
}

// orgClaim returns the org_id of a token the broker signed.
func (e *env) orgClaim(token string) string {
	e.t.Helper()
	payload, _, err := e.broker.SigningKeys().Verify(token)
	if err != nil {
		e.t.Fatal(err)
	}
	var c struct {
		Org string `json:"org_id"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		e.t.Fatal(err)
	}
	return c.Org
}

func TestSession_SingleSignOnKeepsOrgAndIsRecheckedUpstream(t *testing.T) {
	// The upstream's org_acme is the broker organisation acme: org_id is
	// acme's UUID, for clients that ask for the organization scope.
	acme := testOrg("acme", "org_acme")
	u := newUpstreams(t, nil, withOrg(acme), withOrgScope)
	u.auth0.SetNextUser(testenv.User{Sub: "auth0|org", Email: "org@corp.example.com", EmailVerified: true, OrgID: "org_acme"})
	b := u.browser()
	pkce := testenv.NewPKCE()
	page := b.Get(u.authorizeURL(authRequest{pkce: pkce, state: "s", nonce: "n", scope: orgScopes, extra: url.Values{"idp": {"auth0"}}}))
	if page.Location == nil || page.Location.Query().Get("code") == "" {
		t.Fatalf("login via auth0: %d %.300s", page.Status, page.Body)
	}
	first := u.redeem(loginResult{code: page.Location.Query().Get("code"), pkce: pkce, redirectURI: devRedirect, clientID: broker.DevClientID})
	if got := u.orgClaim(first.IDToken); got != acme.ID {
		t.Fatalf("first login's org_id %q, want %s", got, acme.ID)
	}

	page, pkce = u.authorizeBackend(b, url.Values{"scope": {orgScopes}})
	sso := u.redeemBackend(page, pkce)
	if got, at := u.orgClaim(sso.IDToken), u.orgClaim(sso.AccessToken); got != acme.ID || at != acme.ID {
		t.Errorf("single sign-on tokens: org_id %q (ID token) %q (access token), want %s", got, at, acme.ID)
	}
	if r := u.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {sso.RefreshToken}}, backendID, backendSecret); r.Status != http.StatusOK {
		t.Fatalf("refresh of the single sign-on family within the recheck interval: %s", r.Description)
	}

	u.auth0.Block("auth0|org")
	u.clock.Advance(61 * time.Minute)
	if r := u.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {sso.RefreshToken}}, backendID, backendSecret); r.Error != "invalid_grant" {
		t.Fatalf("refresh of the single sign-on family after the user was blocked upstream: %d %q", r.Status, r.Error)
	}
	sessions, err := u.store.ListSessions(context.Background(), u.verifyIDToken(first.IDToken, broker.DevClientID).Subject, u.clock.Now())
	if err != nil || len(sessions) != 0 {
		t.Errorf("the blocked user still has %d browser sessions (%v)", len(sessions), err)
	}
}

// With single-use upstream refresh tokens (WorkOS), the first family's
// re-check rotates the token the session and the single sign-on family
// also hold; their copies follow, so the later re-check still passes.
func TestSession_RotatedUpstreamTokenReachesSingleSignOnFamilies(t *testing.T) {
	// The fake's upstream ID tokens live five minutes of the broker's clock.
	u := newUpstreams(t, nil, func(c *broker.Config, o *broker.Options) {
		for i := range c.Connectors {
			if c.Connectors[i].ID == "workos" {
				c.Connectors[i].RecheckInterval = time.Minute
			}
		}
	})
	u.workos.SetNextUser(testenv.User{Sub: "user_rot", Email: "rot@acme.example", EmailVerified: true})
	b := u.browser()
	pkce := testenv.NewPKCE()
	page := b.Get(u.authorizeURL(authRequest{pkce: pkce, state: "s", nonce: "n", extra: url.Values{"idp": {"workos"}}}))
	if page.Location == nil || page.Location.Query().Get("code") == "" {
		t.Fatalf("login via workos: %d %.300s", page.Status, page.Body)
	}
	first := u.redeem(loginResult{code: page.Location.Query().Get("code"), pkce: pkce, redirectURI: devRedirect, clientID: broker.DevClientID})
	page, pkce = u.authorizeBackend(b, nil)
	sso := u.redeemBackend(page, pkce)

	u.clock.Advance(2 * time.Minute)
	if r := u.refresh(broker.DevClientID, first.RefreshToken); r.Status != http.StatusOK {
		t.Fatalf("first family's re-check: %d %s", r.Status, r.Description)
	}
	if r := u.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {sso.RefreshToken}}, backendID, backendSecret); r.Status != http.StatusOK {
		t.Fatalf("single sign-on family's re-check after the upstream token rotated: %d %q %s", r.Status, r.Error, r.Description)
	}
	// And a client signing in from the session now gets the fresh token too.
	page, pkce = u.authorizeBackend(b, url.Values{"state": {"again"}})
	later := u.redeemBackend(page, pkce)
	u.clock.Advance(2 * time.Minute)
	if r := u.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {later.RefreshToken}}, backendID, backendSecret); r.Status != http.StatusOK {
		t.Fatalf("re-check of a family made from the session after the rotation: %d %q %s", r.Status, r.Error, r.Description)
	}
}
