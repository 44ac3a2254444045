package broker_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
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
	upoidc "github.com/idbroker/broker/upstream/oidc"
)

// Rule 7, "a slow dependency costs each request at most its own timeout":
// the tests below give every upstream connector upstreamTimeout, and a
// request that waits on an upstream that hangs must be answered within it
// and slack, however many requests wait at once.
const (
	upstreamTimeout = 2 * time.Second
	slack           = time.Second
	concurrent      = 6
)

func withUpstreamTimeout(c *broker.Config, o *broker.Options) {
	for i := range c.Connectors {
		if c.Connectors[i].Type != "otp" {
			c.Connectors[i].Timeout = upstreamTimeout
		}
	}
}

// patientClient waits far longer than the broker should, so that a broker
// that queues requests behind a hung upstream is measured, not cut off.
func patientClient(jar http.CookieJar) *http.Client {
	return &http.Client{
		Jar:           jar,
		Timeout:       upstreamTimeout + 10*time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// answer is what one of several concurrent requests got.
type answer struct {
	status int
	body   string
	took   time.Duration
	err    error
}

// concurrently sends concurrent requests made by req at once.
func concurrently(client func(i int) *http.Client, req func(i int) *http.Request) []answer {
	answers := make([]answer, concurrent)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range answers {
		r := req(i)
		wg.Go(func() {
			<-start
			began := time.Now()
			resp, err := client(i).Do(r)
			if err != nil {
				answers[i] = answer{took: time.Since(began), err: err}
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			answers[i] = answer{status: resp.StatusCode, body: string(body), took: time.Since(began)}
		})
	}
	close(start)
	wg.Wait()
	return answers
}

// assertPrompt checks that every answer came within the upstream timeout
// and slack.
func assertPrompt(t *testing.T, answers []answer) {
	t.Helper()
	for i, a := range answers {
		t.Logf("request %d: %d in %s", i, a.status, a.took.Round(time.Millisecond))
		if a.err != nil {
			t.Errorf("request %d: no answer after %s: %v", i, a.took.Round(time.Millisecond), a.err)
		} else if a.took > upstreamTimeout+slack {
			t.Errorf("request %d waited %s, more than the %s timeout and %s", i, a.took.Round(time.Millisecond), upstreamTimeout, slack)
		}
	}
}

// assertUnavailablePage checks a page says the service is unavailable (and
// that retrying will work), not that the request was wrong.
func assertUnavailablePage(t *testing.T, i int, a answer) {
	t.Helper()
	if a.err != nil {
		return // assertPrompt reported it
	}
	h1 := pageHeading(a.body)
	if a.status != http.StatusServiceUnavailable || !strings.Contains(strings.ToLower(h1), "unavailable") ||
		!strings.Contains(a.body, "try again") || strings.Contains(a.body, "not valid") {
		t.Errorf("request %d: %d %q, want a 503 page saying the service is unavailable:\n%s", i, a.status, h1, a.body)
	}
}

// pageHeading is the text of a page's h1.
func pageHeading(body string) string {
	_, after, _ := strings.Cut(body, "<h1>")
	h1, _, _ := strings.Cut(after, "</h1>")
	return strings.TrimSpace(h1)
}

func TestExchange_HungUpstreamIs503WithinItsTimeout(t *testing.T) {
	// Auth0 hangs from before the broker starts: its discovery has never
	// succeeded.
	u := newUpstreams(t, func(u *upstreams) { u.auth0.Hang() }, withExchange, withUpstreamTimeout)
	// Past the backoff of the attempt made at start: the requests below
	// share a fresh one.
	u.clock.Advance(upoidc.RetryBackoff)
	subject := u.auth0.AccessToken(testenv.User{Sub: "auth0|waiting", Email: "waiting@corp.example.com"}, apiAudience)
	form := url.Values{"grant_type": {tokenExchangeGrant}, "subject_token": {subject}, "subject_token_type": {accessTokenType}, "audience": {apiAudience}}
	exchange := func(int) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, u.issuer+"/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(exchangerID, exchangerSecret)
		return req
	}
	client := patientClient(nil)
	discoveries := u.auth0.Requests("/.well-known/openid-configuration")

	answers := concurrently(func(int) *http.Client { return client }, exchange)
	assertPrompt(t, answers)
	for i, a := range answers {
		var e struct {
			Error string `json:"error"`
		}
		json.Unmarshal([]byte(a.body), &e)
		if a.err == nil && (a.status != http.StatusServiceUnavailable || e.Error != "temporarily_unavailable") {
			t.Errorf("exchange %d: %d %s, want 503 temporarily_unavailable", i, a.status, a.body)
		}
	}
	// At most: the requests may arrive as the attempt made at start ends,
	// and share it.
	if n := u.auth0.Requests("/.well-known/openid-configuration") - discoveries; n > 1 {
		t.Errorf("%d concurrent exchanges asked the hung upstream for discovery %d times, want at most once", concurrent, n)
	}

	// Within the backoff a request is refused at once, without asking.
	began := time.Now()
	assertRefused(t, u.exchange(url.Values{"subject_token": {subject}, "subject_token_type": {accessTokenType}}), http.StatusServiceUnavailable, "temporarily_unavailable")
	if took := time.Since(began); took > slack {
		t.Errorf("an exchange within the backoff took %s", took)
	}

	// Recovered, and past the backoff: exchanges work, without a restart.
	u.auth0.Recover()
	u.clock.Advance(upoidc.RetryBackoff)
	u.mustExchange(subject, nil)
}

// Keys already fetched, then the upstream hangs and rotates its keys: the
// fetch of the new keys is shared and bounded like discovery.
func TestExchange_HungKeySetIs503WithinItsTimeout(t *testing.T) {
	u := newExchange(t, withUpstreamTimeout)
	user := testenv.User{Sub: "auth0|rotated", Email: "rotated@corp.example.com"}
	u.mustExchange(u.auth0.AccessToken(user, apiAudience), nil)

	u.auth0.Hang()
	// A key the broker has not seen, after the least time between two
	// fetches: it must fetch the keys again.
	u.clock.Advance(upoidc.DefaultMinKeyRefreshInterval)
	subject := u.auth0.AccessToken(user, apiAudience, testenv.UnknownKID())
	form := url.Values{"grant_type": {tokenExchangeGrant}, "subject_token": {subject}, "subject_token_type": {accessTokenType}}
	client := patientClient(nil)
	answers := concurrently(func(int) *http.Client { return client }, func(int) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, u.issuer+"/token", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(exchangerID, exchangerSecret)
		return req
	})
	assertPrompt(t, answers)
	for i, a := range answers {
		if a.err == nil && (a.status != http.StatusServiceUnavailable || !strings.Contains(a.body, "temporarily_unavailable")) {
			t.Errorf("exchange %d: %d %s, want 503 temporarily_unavailable", i, a.status, a.body)
		}
	}
}

func TestLogin_HungUpstreamShowsUnavailablePageWithinItsTimeout(t *testing.T) {
	u := newUpstreams(t, func(u *upstreams) { u.auth0.Hang() }, withUpstreamTimeout)
	u.clock.Advance(upoidc.RetryBackoff)

	t.Run("idp parameter", func(t *testing.T) {
		client := patientClient(nil)
		answers := concurrently(func(int) *http.Client { return client }, func(int) *http.Request {
			a := authRequest{pkce: testenv.NewPKCE(), state: "st", extra: url.Values{"idp": {"auth0"}}}
			req, _ := http.NewRequest(http.MethodGet, u.authorizeURL(a), nil)
			return req
		})
		assertPrompt(t, answers)
		for i, a := range answers {
			assertUnavailablePage(t, i, a)
		}
	})

	t.Run("connector page", func(t *testing.T) {
		// Past the backoff of the attempt above: a fresh one, shared.
		u.clock.Advance(upoidc.RetryBackoff)
		// Each browser reaches the page naming the connector, then all
		// continue to it at once.
		browsers := make([]*testenv.Browser, concurrent)
		forms := make([]url.Values, concurrent)
		for i := range browsers {
			browsers[i] = u.browser()
			page := browsers[i].Get(u.authorizeURL(authRequest{pkce: testenv.NewPKCE(), state: "st"}))
			page = browsers[i].Submit(page, "/login", url.Values{"email": {"waiting@corp.example.com"}})
			forms[i] = url.Values{}
			for k, v := range page.HiddenFields("/login/connector") {
				forms[i].Set(k, v)
			}
			if forms[i].Get("connector") != "auth0" {
				t.Fatalf("no page naming the connector: %d %s", page.Status, page.Body)
			}
		}
		answers := concurrently(func(i int) *http.Client { return patientClient(browsers[i].Client.Jar) }, func(i int) *http.Request {
			req, _ := http.NewRequest(http.MethodPost, u.issuer+"/login/connector", strings.NewReader(forms[i].Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return req
		})
		assertPrompt(t, answers)
		for i, a := range answers {
			assertUnavailablePage(t, i, a)
		}
	})

	// Recovered, and past the backoff: logins work, without a restart.
	u.auth0.Recover()
	u.clock.Advance(upoidc.RetryBackoff)
	u.auth0.SetNextUser(testenv.User{Sub: "auth0|back", Email: "back@corp.example.com", EmailVerified: true})
	u.mustLoginVia("back@corp.example.com")
}

// The upstream hangs between the person signing in there and its redirect
// back: the broker's call to its token endpoint (WorkOS: authenticate) is
// bounded too.
func TestLogin_HungTokenEndpointShowsUnavailablePageWithinItsTimeout(t *testing.T) {
	u := newUpstreams(t, nil, withUpstreamTimeout)
	for _, tc := range []struct {
		connector, domain string
		fake              interface {
			SetNextUser(testenv.User)
			Hang()
			Recover()
		}
	}{
		{"auth0", "corp.example.com", u.auth0},
		{"workos", "acme.example", u.workos},
	} {
		t.Run(tc.connector, func(t *testing.T) {
			callbacks := make([]string, concurrent)
			jars := make([]http.CookieJar, concurrent)
			for i := range callbacks {
				// A browser that stops at the redirect to the upstream.
				b := testenv.NewBrowser(t, false, u.srv.Listener.Addr().String())
				page := b.Get(u.authorizeURL(authRequest{pkce: testenv.NewPKCE(), state: "st", extra: url.Values{"idp": {tc.connector}}}))
				if page.Location == nil {
					t.Fatalf("idp=%s did not redirect upstream: %d %s", tc.connector, page.Status, page.Body)
				}
				tc.fake.SetNextUser(testenv.User{Sub: "slow-" + tc.connector, Email: "slow@" + tc.domain, EmailVerified: true})
				callbacks[i], jars[i] = testenv.Authorize(t, page.Location.String()).URL.String(), b.Client.Jar
			}

			tc.fake.Hang()
			answers := concurrently(func(i int) *http.Client { return patientClient(jars[i]) }, func(i int) *http.Request {
				req, _ := http.NewRequest(http.MethodGet, callbacks[i], nil)
				return req
			})
			assertPrompt(t, answers)
			for i, a := range answers {
				assertUnavailablePage(t, i, a)
			}

			tc.fake.Recover()
			tc.fake.SetNextUser(testenv.User{Sub: "back-" + tc.connector, Email: "back@" + tc.domain, EmailVerified: true})
			u.mustLoginVia("back@" + tc.domain)
		})
	}
}

// authRequestsFail is a store that cannot record an auth request.
type authRequestsFail struct{ storage.Storage }

func (authRequestsFail) CreateAuthRequest(context.Context, storage.AuthRequest) error {
	return errors.New("dial tcp 10.0.0.5:5432: connect: connection refused")
}

// A store outage at /authorize is the service's fault, not the
// application's: the page says so, and that trying again will work.
func TestAuthorize_StoreOutageSaysUnavailableNotInvalid(t *testing.T) {
	e := newEnv(t, func(c *broker.Config, o *broker.Options) { o.Storage = authRequestsFail{memory.New()} })
	page := e.browser().Get(e.authorizeURL(authRequest{pkce: testenv.NewPKCE(), state: "st"}))
	assertUnavailablePage(t, 0, answer{status: page.Status, body: page.Body})
}

// A timeout longer than MaxUpstreamTimeout would let a request outlive
// the server's write timeout: the client would see a reset, not a 503.
func TestConfig_UpstreamTimeoutIsBounded(t *testing.T) {
	for _, tc := range []struct {
		timeout time.Duration
		ok      bool
	}{
		{0, true},
		{upstreamTimeout, true},
		{broker.MaxUpstreamTimeout, true},
		{broker.MaxUpstreamTimeout + time.Second, false},
		{-time.Second, false},
	} {
		cfg := broker.DevelopmentConfig("http://localhost:8080", ":8080")
		cfg.Connectors = append(cfg.Connectors, broker.ConnectorConfig{ID: "auth0", Type: "auth0",
			Config: &upoidc.Auth0Config{Issuer: "https://tenant.auth0.com/", ClientID: "abc"}, Timeout: tc.timeout})
		if err := cfg.Validate(); (err == nil) != tc.ok {
			t.Errorf("timeout %s: err %v, want ok %v", tc.timeout, err, tc.ok)
		}
	}
}
