package broker_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/storage"
)

// docs/design.md rule 6: a login belongs to the browser that started
// /authorize. These tests play an attacker and a victim, each in a
// browser of their own (their own cookie jar).

// refusalsMetric counts steps refused for coming from another browser.
const refusalsMetric = "broker_login_binding_refusals_total"

// stepBrowser is a browser that follows no redirect, so a test sees each
// address the broker sends it to (and can hand it to someone else).
func (e *env) stepBrowser() *testenv.Browser {
	return testenv.NewBrowser(e.t, strings.HasPrefix(e.issuer, "https://"))
}

// follow loads the redirect p stopped at, in browser b.
func follow(t *testing.T, b *testenv.Browser, p *testenv.Page) *testenv.Page {
	t.Helper()
	if p.Location == nil {
		t.Fatalf("want a redirect, got %d at %s: %.300s", p.Status, p.URL, p.Body)
	}
	return b.Get(p.Location.String())
}

// isBindingRefusal reports whether p is the page for a step of a sign-in
// started in another browser: 403, no redirect, nothing issued.
func isBindingRefusal(p *testenv.Page) bool {
	return p.Status == http.StatusForbidden && p.Location == nil &&
		strings.Contains(p.Body, "started in another browser") && !strings.Contains(p.Body, `name="email"`)
}

// loginUntilCallback signs email in with a one-time code in b (a
// stepBrowser) and stops at the redirect to /authorize/callback, which it
// returns: the moment the code is about to be issued.
func (e *env) loginUntilCallback(t *testing.T, b *testenv.Browser, email string, pkce testenv.PKCE) *url.URL {
	t.Helper()
	page := follow(t, b, b.Get(e.authorizeURL(authRequest{pkce: pkce, state: "st", nonce: "nn"})))
	page = follow(t, b, b.Submit(page, "/login", url.Values{"email": {email}}))
	page = b.Submit(page, "/login/code", url.Values{"code": {e.mailer.LastCode(email)}})
	if page.Location == nil || page.Location.Path != "/authorize/callback" {
		t.Fatalf("code: want a redirect to /authorize/callback, got %d %v: %.300s", page.Status, page.Location, page.Body)
	}
	return page.Location
}

// hasCookie reports whether browser b holds a cookie of the broker named
// name (with or without the __Host- prefix).
func (e *env) hasCookie(b *testenv.Browser, name string) bool {
	issuer, _ := url.Parse(e.issuer)
	for _, c := range b.Client.Jar.Cookies(issuer) {
		if c.Name == name || c.Name == "__Host-"+name {
			return true
		}
	}
	return false
}

// Code theft: the attacker starts a sign-in and sends the victim the
// link; the victim signs in on the attacker's request, and the attacker,
// polling /authorize/callback from his own browser, collects the code and
// redeems it with his own verifier.
func TestBinding_CodeTheftRefused(t *testing.T) {
	eachStore(t, func(t *testing.T, s storage.Storage) {
		e := newEnv(t, withStore(s))
		attacker, victim := e.stepBrowser(), e.stepBrowser()
		pkce := testenv.NewPKCE()
		start := attacker.Get(e.authorizeURL(authRequest{pkce: pkce, state: "st", nonce: "nn"}))
		if start.Location == nil || start.Location.Path != "/login" {
			t.Fatalf("authorize: want a redirect to the login page, got %d %v", start.Status, start.Location)
		}
		id := start.Location.Query().Get("id")

		page := victim.Get(start.Location.String())
		if !isBindingRefusal(page) {
			t.Errorf("the victim's browser was shown the attacker's sign-in: %d %.300s", page.Status, page.Body)
			if page.Status == http.StatusOK {
				page = follow(t, victim, victim.Submit(page, "/login", url.Values{"email": {"victim@example.com"}}))
				victim.Submit(page, "/login/code", url.Values{"code": {e.mailer.LastCode("victim@example.com")}})
			}
		}
		// The attacker polls for the code from his own browser.
		poll := attacker.Get(e.issuer + "/authorize/callback?id=" + url.QueryEscape(id))
		if poll.Location != nil && poll.Location.Query().Get("code") != "" {
			tr := e.redeem(loginResult{code: poll.Location.Query().Get("code"), pkce: pkce, redirectURI: devRedirect, clientID: broker.DevClientID})
			t.Fatalf("the attacker collected the victim's code (token status %d, ID token for %q)", tr.Status, emailOf(e, tr, broker.DevClientID))
		}
	})
}

// emailOf returns the email in a token response's ID token for clientID,
// or "".
func emailOf(e *env, tr tokenResponse, clientID string) string {
	if tr.IDToken == "" {
		return ""
	}
	return e.verifyIDToken(tr.IDToken, clientID).Email
}

// Login CSRF: the attacker finishes a sign-in of his own and has the
// victim's browser open its /authorize/callback, so the victim's
// application receives a code for the attacker's account. The same
// through single sign-on: a request the attacker's session completed.
func TestBinding_LoginCSRFRefused(t *testing.T) {
	eachStore(t, func(t *testing.T, s storage.Storage) {
		e := newEnv(t, withStore(s))
		attacker, victim := e.stepBrowser(), e.browser()
		callback := e.loginUntilCallback(t, attacker, "attacker@example.com", testenv.NewPKCE())

		page := victim.Get(callback.String())
		if !isBindingRefusal(page) {
			t.Errorf("the victim's browser finished the attacker's sign-in: %d %v", page.Status, page.Location)
		}
		if page.Location != nil && page.Location.Query().Get("code") != "" {
			t.Error("the victim's application got a code for the attacker's account")
		}
		// The attacker's own browser still finishes its sign-in.
		if own := attacker.Get(callback.String()); own.Location == nil || own.Location.Query().Get("code") == "" {
			t.Errorf("the browser that started the sign-in could not finish it: %d %.300s", own.Status, own.Body)
		}

		// Single sign-on: /authorize completes the request from the
		// attacker's session and redirects to its callback.
		sso := attacker.Get(e.authorizeURL(authRequest{pkce: testenv.NewPKCE(), state: "st2", nonce: "nn2"}))
		if sso.Location == nil || sso.Location.Path != "/authorize/callback" {
			t.Fatalf("single sign-on: want a redirect to /authorize/callback, got %d %v", sso.Status, sso.Location)
		}
		page = victim.Get(sso.Location.String())
		if !isBindingRefusal(page) {
			t.Errorf("the victim's browser finished the attacker's single sign-on: %d %v", page.Status, page.Location)
		}
	})
}

// Session planting: the victim's browser opens the attacker's upstream
// callback (code and state the upstream gave the attacker) and would get
// the attacker's single-sign-on session, so every later sign-in in that
// browser lands in the attacker's account.
func TestBinding_SessionPlantingRefused(t *testing.T) {
	eachStore(t, func(t *testing.T, s storage.Storage) {
		u := newUpstreams(t, nil, withStore(s))
		u.auth0.SetNextUser(testenv.User{Sub: "auth0|mallory", Email: "mallory@corp.example.com", EmailVerified: true})
		attacker := u.stepBrowser()
		toUpstream := attacker.Get(u.authorizeURL(authRequest{pkce: testenv.NewPKCE(), state: "st", nonce: "nn", extra: url.Values{"idp": {"auth0"}}}))
		back := follow(t, attacker, toUpstream) // the fake Auth0 signs Mallory in
		if back.Location == nil || !strings.HasPrefix(back.Location.Path, "/callback/auth0") || back.Location.Query().Get("code") == "" {
			t.Fatalf("upstream: want a redirect to the broker's callback with a code, got %d %v", back.Status, back.Location)
		}
		before := u.rows()

		victim := u.browser()
		page := victim.Get(back.Location.String())
		if !isBindingRefusal(page) {
			t.Errorf("the victim's browser finished the attacker's upstream sign-in: %d %v %.300s", page.Status, page.Location, page.Body)
		}
		if u.hasCookie(victim, "broker_session") {
			t.Error("the victim's browser got a single-sign-on session from the attacker's callback")
		}
		u.assertNothingWritten(before)
		// The victim's next sign-in anywhere asks who they are.
		if next, _ := u.authorizeBackend(victim, nil); !isLoginPage(next) {
			t.Errorf("the victim's next sign-in did not show the login page: %d %v", next.Status, next.Location)
		}
		// The attacker's own browser finishes its sign-in.
		if own := follow(t, attacker, attacker.Get(back.Location.String())); own.Location == nil || own.Location.Query().Get("code") == "" {
			t.Errorf("the browser that started the upstream sign-in could not finish it: %d %.300s", own.Status, own.Body)
		}
	})
}

// Every step after /authorize refuses a browser without the binding: one
// with no cookie at all and one with a binding of its own. The one-time
// code tried is the right one, and still signs no one in; each refusal
// is counted once, under its step.
func TestBinding_EveryStepRefusesAnotherBrowser(t *testing.T) {
	u := newUpstreams(t, nil, func(c *broker.Config, o *broker.Options) {
		c.Limits.OTPPerIP = broker.Limit{Count: 1 << 20, Window: time.Minute}
	})
	u.auth0.AddUser(testenv.User{Sub: "auth0|step", Email: "step@corp.example.com", EmailVerified: true})
	atLogin := func(t *testing.T, owner *testenv.Browser) *testenv.Page {
		return follow(t, owner, owner.Get(u.authorizeURL(authRequest{pkce: testenv.NewPKCE(), state: "st", nonce: "nn"})))
	}
	emails := 0
	atCode := func(t *testing.T, owner *testenv.Browser) (*testenv.Page, string) {
		emails++
		email := "step" + strconv.Itoa(emails) + "@example.com"
		return follow(t, owner, owner.Submit(atLogin(t, owner), "/login", url.Values{"email": {email}})), email
	}
	// post has other post the form of p that posts to form, to action.
	post := func(other *testenv.Browser, p *testenv.Page, form, action string, values url.Values) *testenv.Page {
		fields := url.Values{}
		for k, v := range p.HiddenFields(form) {
			fields.Set(k, v)
		}
		for k, v := range values {
			fields[k] = v
		}
		return other.Post(u.issuer+action, fields)
	}
	// Each step's setup takes a sign-in in owner up to the point where
	// the step is next, and returns the step for another browser to try.
	type attempt func(other *testenv.Browser) *testenv.Page
	for _, step := range []struct {
		name, label string
		setup       func(t *testing.T, owner *testenv.Browser) attempt
	}{
		{"GET /login", "/login", func(t *testing.T, owner *testenv.Browser) attempt {
			p := atLogin(t, owner)
			return func(other *testenv.Browser) *testenv.Page { return other.Get(p.URL.String()) }
		}},
		{"POST /login", "/login", func(t *testing.T, owner *testenv.Browser) attempt {
			p := atLogin(t, owner)
			return func(other *testenv.Browser) *testenv.Page {
				return post(other, p, "/login", "/login", url.Values{"email": {"other@example.com"}})
			}
		}},
		{"POST /login/connector", "/login/connector", func(t *testing.T, owner *testenv.Browser) attempt {
			p := atLogin(t, owner)
			return func(other *testenv.Browser) *testenv.Page {
				return post(other, p, "/login", "/login/connector", url.Values{"connector": {"auth0"}})
			}
		}},
		{"GET /login/code", "/login/code", func(t *testing.T, owner *testenv.Browser) attempt {
			p, _ := atCode(t, owner)
			return func(other *testenv.Browser) *testenv.Page { return other.Get(p.URL.String()) }
		}},
		{"POST /login/code", "/login/code", func(t *testing.T, owner *testenv.Browser) attempt {
			p, email := atCode(t, owner)
			return func(other *testenv.Browser) *testenv.Page {
				return post(other, p, "/login/code", "/login/code", url.Values{"code": {u.mailer.LastCode(email)}})
			}
		}},
		{"POST /login/resend", "/login/resend", func(t *testing.T, owner *testenv.Browser) attempt {
			p, email := atCode(t, owner)
			u.clock.Advance(time.Minute) // past the resend cool-down
			return func(other *testenv.Browser) *testenv.Page {
				sent := u.mailer.Count(email)
				page := post(other, p, "/login/resend", "/login/resend", nil)
				if u.mailer.Count(email) != sent {
					t.Error("a code was resent for another browser")
				}
				return page
			}
		}},
		{"GET /callback/auth0", "/callback/{connector}", func(t *testing.T, owner *testenv.Browser) attempt {
			a := authRequest{pkce: testenv.NewPKCE(), extra: url.Values{"idp": {"auth0"}, "login_hint": {"step@corp.example.com"}}}
			back := follow(t, owner, owner.Get(u.authorizeURL(a)))
			return func(other *testenv.Browser) *testenv.Page { return other.Get(back.Location.String()) }
		}},
		{"GET /authorize/callback", "/authorize/callback", func(t *testing.T, owner *testenv.Browser) attempt {
			emails++
			callback := u.loginUntilCallback(t, owner, "step"+strconv.Itoa(emails)+"@example.com", testenv.NewPKCE())
			return func(other *testenv.Browser) *testenv.Page { return other.Get(callback.String()) }
		}},
	} {
		for _, who := range []struct {
			name string
			make func() *testenv.Browser
		}{
			{"no cookie", u.stepBrowser},
			{"its own binding", func() *testenv.Browser {
				b := u.stepBrowser()
				b.Get(u.authorizeURL(authRequest{pkce: testenv.NewPKCE()}))
				return b
			}},
		} {
			t.Run(step.name+"/"+who.name, func(t *testing.T) {
				try := step.setup(t, u.stepBrowser())
				other := who.make()
				before, rows, codes := u.counter(refusalsMetric, `step="`+step.label+`"`), u.rows(), u.mailer.Count("other@example.com")
				p := try(other)
				if !isBindingRefusal(p) {
					t.Errorf("want the refusal page, got %d %v: %.300s", p.Status, p.Location, p.Body)
				}
				if d := u.counter(refusalsMetric, `step="`+step.label+`"`) - before; d != 1 {
					t.Errorf("%s moved by %v under step %q, want 1", refusalsMetric, d, step.label)
				}
				if u.hasCookie(other, "broker_session") {
					t.Error("the other browser got a session")
				}
				if u.mailer.Count("other@example.com") != codes {
					t.Error("a code was mailed for the other browser")
				}
				u.assertNothingWritten(rows)
			})
		}
	}
}

// The refusal is a page a person can act on, in their language, with
// 403; it is counted once and logged.
func TestBinding_RefusalPageAndMetric(t *testing.T) {
	e := newEnv(t)
	callback := e.loginUntilCallback(t, e.stepBrowser(), "owner@example.com", testenv.NewPKCE())
	before := e.counter(refusalsMetric)
	victim := e.browser()
	p := victim.Get(callback.String())
	if !isBindingRefusal(p) || !strings.Contains(p.Body, "start again") {
		t.Fatalf("want 403 and the page saying the sign-in was started in another browser, got %d: %.500s", p.Status, p.Body)
	}
	if d := e.counter(refusalsMetric) - before; d != 1 {
		t.Errorf("%s moved by %v, want 1", refusalsMetric, d)
	}
	if got := e.counter(refusalsMetric, `step="/authorize/callback"`, `reason="no cookie"`); got != 1 {
		t.Errorf("%s{step=/authorize/callback, reason=no cookie} = %v, want 1", refusalsMetric, got)
	}
	if !strings.Contains(e.logText(), "sign-in refused") || !strings.Contains(e.logText(), "another browser") {
		t.Errorf("the refusal was not logged:\n%s", e.logText())
	}

	req, _ := http.NewRequest(http.MethodGet, callback.String(), nil)
	req.Header.Set("Accept-Language", "de-DE,de;q=0.9")
	resp, err := victim.Client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body strings.Builder
	if _, err := io.Copy(&body, resp.Body); err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body.String(), "in einem anderen Browser") {
		t.Errorf("German refusal: %d %.500s", resp.StatusCode, body.String())
	}
}

// Two tabs of one browser signing in at once both finish: the binding is
// the browser's, not the tab's, so the second /authorize keeps it.
func TestBinding_TwoTabsInOneBrowserBothFinish(t *testing.T) {
	e := newEnv(t)
	b := e.stepBrowser()
	first, second := testenv.NewPKCE(), testenv.NewPKCE()
	tab1 := follow(t, b, b.Get(e.authorizeURL(authRequest{pkce: first, state: "one", nonce: "n1"})))
	tab2 := follow(t, b, b.Get(e.authorizeURL(authRequest{pkce: second, state: "two", nonce: "n2"})))
	finish := func(tab *testenv.Page, email string, pkce testenv.PKCE) {
		t.Helper()
		p := follow(t, b, b.Submit(tab, "/login", url.Values{"email": {email}}))
		p = follow(t, b, b.Submit(p, "/login/code", url.Values{"code": {e.mailer.LastCode(email)}}))
		if p.Location == nil || p.Location.Query().Get("code") == "" {
			t.Fatalf("tab of %s did not reach the client: %d %.300s", email, p.Status, p.Body)
		}
		l := loginResult{code: p.Location.Query().Get("code"), pkce: pkce, redirectURI: devRedirect, clientID: broker.DevClientID}
		if got := emailOf(e, e.redeem(l), broker.DevClientID); got != email {
			t.Errorf("tab of %s got a token for %q", email, got)
		}
	}
	finish(tab2, "two@example.com", second)
	finish(tab1, "one@example.com", first)
}

// Single sign-on from an existing session carries the binding: /authorize
// sets it on its redirect when the browser has none (the binding cookie
// lasts as long as the browser runs, the session cookie longer).
func TestBinding_SingleSignOnStillWorks(t *testing.T) {
	eachStore(t, func(t *testing.T, s storage.Storage) {
		e := newEnv(t, withStore(s))
		b := e.browser()
		e.redeem(e.login(b, "sso-bound@example.com", authRequest{}))
		page, pkce := e.authorizeBackend(b, nil)
		if got := emailOf(e, e.redeemBackend(page, pkce), backendID); got != "sso-bound@example.com" {
			t.Errorf("single sign-on: token for %q", got)
		}

		// The browser restarts: the binding cookie is gone, the session stays.
		issuer := mustURL(t, e.issuer)
		for _, c := range b.Client.Jar.Cookies(issuer) {
			if strings.HasSuffix(c.Name, "broker_browser") {
				b.Client.Jar.SetCookies(issuer, []*http.Cookie{{Name: c.Name, Value: "", Path: "/", MaxAge: -1}})
			}
		}
		if e.hasCookie(b, "broker_browser") || !e.hasCookie(b, "broker_session") {
			t.Fatal("test setup: want the session cookie without the binding cookie")
		}
		page, pkce = e.authorizeBackend(b, nil)
		if got := emailOf(e, e.redeemBackend(page, pkce), backendID); got != "sso-bound@example.com" {
			t.Errorf("single sign-on after a browser restart: token for %q", got)
		}
		if !e.hasCookie(b, "broker_browser") {
			t.Error("/authorize did not give the browser a binding cookie")
		}
	})
}

// The binding cookie: one per browser, reused while well-formed, replaced
// when not; HttpOnly, SameSite=Lax, for the whole origin, gone when the
// browser closes; __Host- and Secure over https.
func TestBinding_CookieIsPerBrowserAndReplacedWhenMalformed(t *testing.T) {
	for _, tls := range []bool{false, true} {
		e := startEnv(t, tls)
		b := e.stepBrowser()
		first := b.Get(e.authorizeURL(authRequest{pkce: testenv.NewPKCE()}))
		set := first.Header.Get("Set-Cookie")
		name := "broker_browser="
		if tls {
			name = "__Host-broker_browser="
			if !strings.Contains(set, "Secure") {
				t.Errorf("over https the binding cookie %q is not Secure", set)
			}
		}
		if !strings.HasPrefix(set, name) || !strings.Contains(set, "HttpOnly") || !strings.Contains(set, "SameSite=Lax") ||
			!strings.Contains(set, "Path=/") || strings.Contains(set, "Max-Age") || strings.Contains(set, "Domain") {
			t.Errorf("binding cookie %q: want %s…, HttpOnly, SameSite=Lax, Path=/, no Max-Age or Domain", set, name)
		}
		if again := b.Get(e.authorizeURL(authRequest{pkce: testenv.NewPKCE()})); again.Header.Get("Set-Cookie") != "" {
			t.Errorf("a second /authorize replaced the browser's binding: %q", again.Header.Get("Set-Cookie"))
		}
		for _, bad := range []string{"short", strings.Repeat("A", 42) + "!", strings.Repeat("A", 44)} {
			req, _ := http.NewRequest(http.MethodGet, e.authorizeURL(authRequest{pkce: testenv.NewPKCE()}), nil)
			req.Header.Set("Cookie", strings.TrimSuffix(name, "=")+"="+bad)
			resp, err := e.stepBrowserNoJar().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if c := resp.Header.Get("Set-Cookie"); !strings.HasPrefix(c, name) || strings.HasPrefix(c, name+bad+";") {
				t.Errorf("malformed binding %q: /authorize answered Set-Cookie %q, want a fresh one", bad, c)
			}
		}
	}
}

// stepBrowserNoJar is an HTTP client that keeps no cookies and follows no
// redirect, for requests that carry a hand-made Cookie header.
func (e *env) stepBrowserNoJar() *http.Client {
	c := *e.stepBrowser().Client
	c.Jar = nil
	return &c
}

// An auth request stored without a binding (by a broker release before
// it, during a rolling upgrade) is refused like one of another browser:
// a login in flight across the upgrade starts again, nothing is guessed.
func TestBinding_UnboundRequestRefused(t *testing.T) {
	e := newEnv(t)
	b := e.stepBrowser()
	b.Get(e.authorizeURL(authRequest{pkce: testenv.NewPKCE()})) // the browser has a binding
	now := e.clock.Now()
	ar := storage.AuthRequest{ID: "unbound-request-0123456789", ClientID: broker.DevClientID, RedirectURI: devRedirect,
		Scopes: []string{"openid"}, ResponseType: "code", CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute)}
	if err := e.store.CreateAuthRequest(context.Background(), ar); err != nil {
		t.Fatal(err)
	}
	if p := b.Get(e.issuer + "/login?id=" + ar.ID); !isBindingRefusal(p) {
		t.Errorf("unbound request: %d %.300s", p.Status, p.Body)
	}
	if got := e.counter(refusalsMetric, `reason="unbound"`); got != 1 {
		t.Errorf("%s{reason=unbound} = %v, want 1", refusalsMetric, got)
	}
}
