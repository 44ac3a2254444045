package broker_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/internal/testenv"
)

// Abuse limits count per party and source (docs/design.md rule 7): these tests
// put an attacker and the real party at different client addresses, the
// way a trusted proxy reports them in X-Forwarded-For.

const (
	attackerAddr = "203.0.113.66"
	ownerAddr    = "198.51.100.10"
)

// behindProxy trusts the test's loopback peer as a proxy, so the address in
// X-Forwarded-For is the client address the broker counts.
func behindProxy(c *broker.Config, o *broker.Options) {
	c.HTTP.TrustedProxies = []string{"127.0.0.1"}
}

// forwardedFor sends every request as if a trusted proxy had forwarded it
// from addr.
type forwardedFor struct {
	addr string
	next http.RoundTripper
}

func (f forwardedFor) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.Header.Set("X-Forwarded-For", f.addr)
	return f.next.RoundTrip(r)
}

// browserFrom is a browser at client address addr.
func (e *env) browserFrom(addr string) *testenv.Browser {
	b := e.browser()
	b.Client.Transport = forwardedFor{addr: addr, next: b.Client.Transport}
	return b
}

// tokenFrom posts to the token endpoint from client address addr, with
// basic authentication when user is set.
func (e *env) tokenFrom(addr string, form url.Values, user, pass string) tokenResponse {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.issuer+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	base := e.httpClient().Transport
	if base == nil {
		base = http.DefaultTransport
	}
	resp, err := (&http.Client{Transport: forwardedFor{addr: addr, next: base}}).Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.readTokenResponse(resp)
}

// assertionFrom authenticates with a client assertion from addr.
func (m *machineEnv) assertionFrom(addr, assertion string) tokenResponse {
	m.t.Helper()
	return m.tokenFrom(addr, url.Values{
		"grant_type":            {clientCredentialsGrant},
		"client_assertion_type": {assertionType},
		"client_assertion":      {assertion},
	}, "", "")
}

// wantLimited checks the answer to a source that failed too often: 429,
// Retry-After, and an error code RFC 6749 section 5.2 (or 4.1.2.1) defines.
func wantLimited(t *testing.T, what string, r tokenResponse) {
	t.Helper()
	if r.Status != http.StatusTooManyRequests || r.AccessToken != "" {
		t.Fatalf("%s: %d %q, want 429", what, r.Status, r.Error)
	}
	if r.Error != "invalid_client" && r.Error != "temporarily_unavailable" {
		t.Errorf("%s: error %q is not a code the token endpoint defines", what, r.Error)
	}
	if ra, err := strconv.Atoi(r.Header.Get("Retry-After")); err != nil || ra < 1 {
		t.Errorf("%s: Retry-After %q", what, r.Header.Get("Retry-After"))
	}
}

// wantNotLimited checks that a request was not refused by a limit, nor
// for its client authentication.
func wantNotLimited(t *testing.T, what string, r tokenResponse) {
	t.Helper()
	if r.Status == http.StatusTooManyRequests || r.Error == "invalid_client" || r.Error == "temporarily_unavailable" {
		t.Errorf("%s: %d %q (%s)", what, r.Status, r.Error, r.Description)
	}
}

func TestLimits_WrongSecretsFromOneAddressDoNotLockTheClientOut(t *testing.T) {
	e := newEnv(t, behindProxy, func(c *broker.Config, o *broker.Options) {
		c.Limits.TokenFailuresPerClient = broker.Limit{Count: 3, Window: time.Minute}
	})
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}
	for i := range 25 {
		r := e.tokenFrom(attackerAddr, form, backendID, "wrong")
		if i < 3 && r.Status != http.StatusUnauthorized {
			t.Fatalf("wrong secret %d: %d", i+1, r.Status)
		}
	}
	wantLimited(t, "the failing address", e.tokenFrom(attackerAddr, form, backendID, "wrong"))
	// Even the right secret is not checked from the failing address: no
	// guessing at speed.
	wantLimited(t, "the right secret from the failing address", e.tokenFrom(attackerAddr, form, backendID, backendSecret))
	// The real client, elsewhere, never noticed.
	for range 3 {
		wantNotLimited(t, "the real client from its own address", e.tokenFrom(ownerAddr, form, backendID, backendSecret))
	}
	// A wrong secret of its own counts for its own address only.
	if r := e.tokenFrom(ownerAddr, form, backendID, "typo"); r.Status != http.StatusUnauthorized || r.Error != "invalid_client" {
		t.Errorf("a wrong secret from the client's address: %d %q", r.Status, r.Error)
	}
	wantNotLimited(t, "the real client after a typo", e.tokenFrom(ownerAddr, form, backendID, backendSecret))
	e.clock.Advance(61 * time.Second)
	wantNotLimited(t, "the failing address after the window", e.tokenFrom(attackerAddr, form, backendID, backendSecret))
}

func TestLimits_BadAssertionsNamingAPublicClientLockNobodyOut(t *testing.T) {
	m := newMachineEnv(t, behindProxy, func(c *broker.Config, o *broker.Options) {
		c.Limits.TokenFailuresPerClient = broker.Limit{Count: 3, Window: time.Minute}
	})
	forged := newClientKey(t, "forged")
	for range 25 {
		m.assertionFrom(attackerAddr, forged.assertion(t, broker.DevClientID, m.issuer, time.Minute))
	}
	// A public client presents only its id; nobody can fail for it.
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {broker.DevClientID}}
	for _, addr := range []string{ownerAddr, attackerAddr} {
		r := m.tokenFrom(addr, refresh, "", "")
		if r.Status != http.StatusBadRequest || r.Error != "invalid_grant" {
			t.Errorf("public client from %s after forged assertions naming it: %d %q, want 400 invalid_grant", addr, r.Status, r.Error)
		}
	}
	// And a real login through it still ends in tokens.
	l := m.login(m.browserFrom(ownerAddr), "public@example.com", authRequest{})
	if tr := m.redeem(l); tr.AccessToken == "" {
		t.Errorf("redeeming a code as the public client: %d %q", tr.Status, tr.Error)
	}
}

func TestLimits_BadAssertionsAreNotChargedToTheClientTheyName(t *testing.T) {
	m := newMachineEnv(t, behindProxy, func(c *broker.Config, o *broker.Options) {
		c.Limits.TokenFailuresPerClient = broker.Limit{Count: 3, Window: time.Minute}
	})
	forged := newClientKey(t, "inline-1") // the real key id, the wrong key
	for i := range 25 {
		r := m.assertionFrom(attackerAddr, forged.assertion(t, svcJWKSID, m.issuer, time.Minute))
		if i < 3 && (r.Status != http.StatusUnauthorized || r.Error != "invalid_client") {
			t.Fatalf("forged assertion %d: %d %q", i+1, r.Status, r.Error)
		}
	}
	wantLimited(t, "the address sending forged assertions", m.assertionFrom(attackerAddr, forged.assertion(t, svcJWKSID, m.issuer, time.Minute)))
	// The client the forgeries named authenticates from its own address,
	// and so do the other clients.
	for range 3 {
		if r := m.assertionFrom(ownerAddr, m.inline.assertion(t, svcJWKSID, m.issuer, time.Minute)); r.Status != http.StatusOK {
			t.Fatalf("the real client's assertion: %d %q (%s)", r.Status, r.Error, r.Description)
		}
	}
	if r := m.tokenFrom(ownerAddr, url.Values{"grant_type": {clientCredentialsGrant}}, svcSecretID, svcSecret); r.Status != http.StatusOK {
		t.Errorf("another client: %d %q", r.Status, r.Error)
	}

	// A signed assertion that fails a later check is the client's own
	// doing, and counts for the client at that address only.
	expired := func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(time.Now().Add(-time.Hour)) }
	for range 3 {
		m.assertionFrom(ownerAddr, m.inline.assertion(t, svcJWKSID, m.issuer, time.Minute, expired))
	}
	wantLimited(t, "a client's own failures, at its address", m.assertionFrom(ownerAddr, m.inline.assertion(t, svcJWKSID, m.issuer, time.Minute)))
	if r := m.assertionFrom("198.51.100.11", m.inline.assertion(t, svcJWKSID, m.issuer, time.Minute)); r.Status != http.StatusOK {
		t.Errorf("the same client from another address: %d %q", r.Status, r.Error)
	}
}

// sendCodeFrom starts a login for email in a new browser at addr and
// posts the email form.
func (e *env) sendCodeFrom(addr, email string) (*testenv.Browser, *testenv.Page) {
	e.t.Helper()
	b := e.browserFrom(addr)
	page := b.Get(e.authorizeURL(authRequest{pkce: testenv.NewPKCE(), state: "s", nonce: "n"}))
	return b, b.Submit(page, "/login", url.Values{"email": {email}})
}

func isCodePage(p *testenv.Page) bool {
	return p.Status == http.StatusOK && strings.Contains(p.Body, `autocomplete="one-time-code"`)
}

func TestLimits_AStrangerCannotStopTheOwnersCodes(t *testing.T) {
	e := newEnv(t, behindProxy)
	const victim = "victim@example.com"
	refused := 0
	for range 25 {
		if _, p := e.sendCodeFrom(attackerAddr, victim); p.Status == http.StatusTooManyRequests {
			refused++
		}
	}
	if refused == 0 {
		t.Fatal("25 codes for one address from one client address, none refused")
	}
	sent := e.mailer.Count(victim)
	b, page := e.sendCodeFrom(ownerAddr, victim)
	if !isCodePage(page) || e.mailer.Count(victim) != sent+1 {
		t.Fatalf("the owner asked for a code after a stranger's requests: %d", page.Status)
	}
	code := e.mailer.LastCode(victim)
	if p := b.Submit(page, "/login/code", url.Values{"code": {code}}); p.Location == nil || p.Location.Query().Get("code") == "" {
		t.Fatalf("the owner's code: %d %s", p.Status, p.Body)
	}
}

func TestLimits_OTPCeilingPerAddressSparesAHeldChallenge(t *testing.T) {
	e := newEnv(t, behindProxy, func(c *broker.Config, o *broker.Options) {
		c.Limits.OTPPerEmailCeiling = broker.Limit{Count: 12, Window: 15 * time.Minute}
	})
	const victim = "held@example.com"
	b, page := e.sendCodeFrom(ownerAddr, victim)
	if !isCodePage(page) {
		t.Fatalf("the owner's first code: %d", page.Status)
	}
	code := e.mailer.LastCode(victim)
	// Strangers at many addresses flood the address up to its ceiling.
	limited := false
	for i := range 40 {
		if _, p := e.sendCodeFrom("203.0.113."+strconv.Itoa(100+i%8), victim); p.Status == http.StatusTooManyRequests {
			limited = true
		}
	}
	if !limited || e.mailer.Count(victim) > 12 {
		t.Fatalf("the ceiling per address did not hold: %d codes mailed", e.mailer.Count(victim))
	}
	// The browser holding a live challenge keeps using it.
	if p := b.Submit(page, "/login/code", url.Values{"code": {code}}); p.Location == nil || p.Location.Query().Get("code") == "" {
		t.Fatalf("the owner's held code after the flood: %d %s", p.Status, p.Body)
	}
}

func TestOTP_RepostingTheEmailFormDoesNotResetAttempts(t *testing.T) {
	e := newEnv(t)
	const email = "guess@example.com"
	b := e.browser()
	page := e.startLogin(b, email)
	wrong := func(p *testenv.Page) *testenv.Page {
		code := "000000"
		if e.mailer.LastCode(email) == code {
			code = "111111"
		}
		return b.Submit(p, "/login/code", url.Values{"code": {code}})
	}
	for range 3 {
		if p := wrong(page); !strings.Contains(p.Body, "not right") {
			t.Fatalf("wrong code: %d", p.Status)
		}
	}
	// The email form again, after the cool-down: a new code, the same count.
	e.clock.Advance(31 * time.Second)
	login := b.Get(e.issuer + "/login?id=" + url.QueryEscape(page.HiddenFields("/login/code")["id"]))
	page = b.Submit(login, "/login", url.Values{"email": {email}})
	if !isCodePage(page) || e.mailer.Count(email) != 2 {
		t.Fatalf("re-posting the email form: %d, %d codes", page.Status, e.mailer.Count(email))
	}
	for range 2 {
		wrong(page)
	}
	if p := b.Submit(page, "/login/code", url.Values{"code": {e.mailer.LastCode(email)}}); p.Location != nil || !strings.Contains(p.Body, "Too many wrong codes") {
		t.Fatalf("sixth guess, with the right code, after re-posting: %d, location %v", p.Status, p.Location)
	}
	// Nor does a new auth request for the address buy more.
	e.clock.Advance(31 * time.Second)
	b2 := e.browser()
	page2 := e.startLogin(b2, email)
	if p := b2.Submit(page2, "/login/code", url.Values{"code": {e.mailer.LastCode(email)}}); p.Location != nil || !strings.Contains(p.Body, "Too many wrong codes") {
		t.Fatalf("right code on a new auth request within the code lifetime: %d, location %v", p.Status, p.Location)
	}
	// A code lifetime later, a fresh code works.
	e.clock.Advance(10 * time.Minute)
	e.redeem(e.login(e.browser(), email, authRequest{}))
}

func TestOTP_StrangersWrongCodesDoNotSpendTheOwnersAttempts(t *testing.T) {
	e := newEnv(t, behindProxy)
	const victim = "owner@example.com"
	owner, page := e.sendCodeFrom(ownerAddr, victim)
	code := e.mailer.LastCode(victim)
	wrong := "000000"
	if code == wrong {
		wrong = "111111"
	}
	for range 3 {
		sb, sp := e.sendCodeFrom(attackerAddr, victim)
		for range 6 {
			sb.Submit(sp, "/login/code", url.Values{"code": {wrong}})
		}
	}
	if p := owner.Submit(page, "/login/code", url.Values{"code": {code}}); p.Location == nil || p.Location.Query().Get("code") == "" {
		t.Fatalf("the owner's code after a stranger's wrong guesses: %d %s", p.Status, p.Body)
	}
}

func TestOTP_ResendCoolDownAppliesToBothForms(t *testing.T) {
	e := newEnv(t)
	const email = "cool@example.com"
	b := e.browser()
	login := b.Get(e.authorizeURL(authRequest{pkce: testenv.NewPKCE()}))
	page := b.Submit(login, "/login", url.Values{"email": {email}})
	if !isCodePage(page) {
		t.Fatalf("first code: %d", page.Status)
	}
	e.clock.Advance(5 * time.Second)
	p := b.Submit(login, "/login", url.Values{"email": {email}})
	if p.Status != http.StatusTooManyRequests || p.Header.Get("Retry-After") != "25" || e.mailer.Count(email) != 1 {
		t.Fatalf("the email form re-posted within the cool-down: %d, Retry-After %q, %d codes", p.Status, p.Header.Get("Retry-After"), e.mailer.Count(email))
	}
	if !strings.Contains(p.Body, "You can request a new code in 25 s.") {
		t.Errorf("the refusal does not say when a code can be sent: %s", p.Body)
	}
	if p := b.Submit(page, "/login/resend", nil); p.Status != http.StatusTooManyRequests || e.mailer.Count(email) != 1 {
		t.Fatalf("the resend button within the cool-down: %d", p.Status)
	}
	e.clock.Advance(26 * time.Second)
	if p := b.Submit(login, "/login", url.Values{"email": {email}}); !isCodePage(p) || e.mailer.Count(email) != 2 {
		t.Fatalf("the email form after the cool-down: %d", p.Status)
	}
	// A code from the email form starts the cool-down for the button too.
	if p := b.Submit(page, "/login/resend", nil); p.Status != http.StatusTooManyRequests || e.mailer.Count(email) != 2 {
		t.Fatalf("the resend button just after the email form sent a code: %d", p.Status)
	}
	// The code the browser holds still works.
	if p := b.Submit(page, "/login/code", url.Values{"code": {e.mailer.LastCode(email)}}); p.Location == nil {
		t.Fatalf("the latest code: %d %s", p.Status, p.Body)
	}
}

var resendWaitRE = regexp.MustCompile(`id="resend-wait" data-wait="(\d+)"`)

// The code page says when the next code can be sent, whatever limit holds
// it back, not only the cool-down.
func TestPages_CodePageShowsWhenTheNextCodeCanBeSent(t *testing.T) {
	e := newEnv(t, func(c *broker.Config, o *broker.Options) {
		c.Limits.OTPPerEmail = broker.Limit{Count: 2, Window: 15 * time.Minute}
	})
	b := e.browser()
	page := e.startLogin(b, "next@example.com")
	e.clock.Advance(31 * time.Second)
	page = b.Submit(page, "/login/resend", nil)
	if !strings.Contains(page.Body, "We sent a new code") {
		t.Fatalf("resend: %d", page.Status)
	}
	m := resendWaitRE.FindStringSubmatch(page.Body)
	if m == nil || !strings.Contains(page.Body, `id="resend" disabled`) {
		t.Fatalf("no wait on the code page: %s", page.Body)
	}
	// Two codes of two: the next one waits for the limit's window, not
	// just the cool-down.
	if wait, _ := strconv.Atoi(m[1]); wait < 14*60 || wait > 15*60 {
		t.Errorf("the page says a new code in %d s; the limit allows one in about %d s", wait, 15*60-31)
	}
	e.clock.Advance(time.Minute)
	if p := b.Get(page.URL.String()); resendWaitRE.FindStringSubmatch(p.Body) == nil {
		t.Error("the code page, reloaded after the cool-down, no longer says when a code can be sent")
	}
}

// The ceiling per address must be out of one client address's reach,
// or one stranger could stop the owner's codes again.
func TestConfig_OTPCeilingIsOutOfOneAddressReach(t *testing.T) {
	for _, tc := range []struct {
		perEmail, ceiling broker.Limit
		ok                bool
	}{
		{broker.Limit{}, broker.Limit{}, true}, // the defaults
		{broker.Limit{Count: 100, Window: 15 * time.Minute}, broker.Limit{}, true},
		{broker.Limit{Count: 5, Window: 15 * time.Minute}, broker.Limit{Count: 5, Window: 15 * time.Minute}, false},
		{broker.Limit{Count: 5, Window: 15 * time.Minute}, broker.Limit{Count: 6, Window: 15 * time.Minute}, true},
		{broker.Limit{Count: 5, Window: 15 * time.Minute}, broker.Limit{Count: 20, Window: time.Hour}, false},
		{broker.Limit{Count: 5, Window: 15 * time.Minute}, broker.Limit{Count: 21, Window: time.Hour}, true},
		{broker.Limit{Count: 5, Window: 15 * time.Minute}, broker.Limit{Count: 30}, false},
	} {
		cfg := broker.DevelopmentConfig("http://localhost:8080", ":8080")
		if tc.perEmail != (broker.Limit{}) {
			cfg.Limits.OTPPerEmail = tc.perEmail
		}
		cfg.Limits.OTPPerEmailCeiling = tc.ceiling
		if err := cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("otpPerEmail %+v, otpPerEmailCeiling %+v: err %v, want ok %v", tc.perEmail, tc.ceiling, err, tc.ok)
		}
	}
}

// The pooled attempts and the cool-down hold across replicas sharing one
// Postgres: a login's forms may reach either.
func TestLimits_OTPAttemptsAndCoolDownAcrossReplicas(t *testing.T) {
	r := newReplicas(t)
	const email = "replicas-guess@example.com"
	br := testenv.NewBrowser(t, false, r.a.srv.Listener.Addr().String(), r.b.srv.Listener.Addr().String())
	page := r.a.startLogin(br, email)
	form := page.HiddenFields("/login/code")
	wrong := "000000"
	if r.a.mailer.LastCode(email) == wrong {
		wrong = "111111"
	}
	for i := range 3 {
		e := []*env{r.a, r.b}[i%2]
		if p := br.Post(e.issuer+"/login/code", url.Values{"id": {form["id"]}, "csrf": {form["csrf"]}, "code": {wrong}}); !strings.Contains(p.Body, "not right") {
			t.Fatalf("wrong code %d: %d", i+1, p.Status)
		}
	}
	// The email form again at B, at once: the cool-down A started holds.
	repost := url.Values{"id": {form["id"]}, "csrf": {form["csrf"]}, "email": {email}}
	if p := br.Post(r.b.issuer+"/login", repost); p.Status != http.StatusTooManyRequests || r.a.mailer.Count(email) != 1 {
		t.Fatalf("the email form at B within A's cool-down: %d, %d codes", p.Status, r.a.mailer.Count(email))
	}
	r.a.clock.Advance(31 * time.Second)
	r.b.clock.Advance(31 * time.Second)
	if p := br.Post(r.b.issuer+"/login", repost); !isCodePage(p) || r.a.mailer.Count(email) != 2 {
		t.Fatalf("the email form at B after the cool-down: %d", p.Status)
	}
	for range 2 {
		br.Post(r.b.issuer+"/login/code", url.Values{"id": {form["id"]}, "csrf": {form["csrf"]}, "code": {wrong}})
	}
	p := br.Post(r.a.issuer+"/login/code", url.Values{"id": {form["id"]}, "csrf": {form["csrf"]}, "code": {r.a.mailer.LastCode(email)}})
	if p.Location != nil || !strings.Contains(p.Body, "Too many wrong codes") {
		t.Fatalf("the right code after five wrong ones over two codes and two replicas: %d, location %v", p.Status, p.Location)
	}
}

// One IPv6 network (a /64) is one client address to the limits: its
// owner could otherwise send from a new address for every attempt.
func TestLimits_IPv6AddressesOfOneNetworkCountAsOne(t *testing.T) {
	e := newEnv(t, behindProxy, func(c *broker.Config, o *broker.Options) {
		c.Limits.TokenFailuresPerClient = broker.Limit{Count: 3, Window: time.Minute}
	})
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}
	for i := range 3 {
		if r := e.tokenFrom("2001:db8:1:2::"+strconv.Itoa(i+1), form, backendID, "wrong"); r.Status != http.StatusUnauthorized {
			t.Fatalf("wrong secret %d: %d", i+1, r.Status)
		}
	}
	wantLimited(t, "another address of the same /64", e.tokenFrom("2001:db8:1:2:ffff::99", form, backendID, "wrong"))
	wantNotLimited(t, "the next /64", e.tokenFrom("2001:db8:1:3::1", form, backendID, backendSecret))
}
