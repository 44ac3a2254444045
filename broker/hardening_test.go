package broker_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/storage"
)

func TestLimits_OTPPerEmailAcrossReplicas(t *testing.T) {
	r := newReplicas(t)
	send := func(e *env) *testenv.Page {
		b := e.browser()
		page := b.Get(e.authorizeURL(authRequest{pkce: testenv.NewPKCE(), state: "s"}))
		return b.Submit(page, "/login", url.Values{"email": {"flood@example.com"}})
	}
	for i := range 5 {
		if p := send([]*env{r.a, r.b}[i%2]); !strings.Contains(p.Body, "one-time-code") {
			t.Fatalf("send %d refused: %d", i+1, p.Status)
		}
	}
	p := send(r.b)
	if p.Status != http.StatusTooManyRequests || !strings.Contains(p.Body, "Too many codes") {
		t.Fatalf("sixth code for one address across replicas: %d", p.Status)
	}
	if ra, err := strconv.Atoi(p.Header.Get("Retry-After")); err != nil || ra < 1 || ra > 15*60 {
		t.Errorf("Retry-After %q", p.Header.Get("Retry-After"))
	}
	if r.a.mailer.Count("flood@example.com") != 5 {
		t.Errorf("%d codes mailed, want 5", r.a.mailer.Count("flood@example.com"))
	}
	// Another address is not blocked by it.
	b := r.a.browser()
	page := b.Get(r.a.authorizeURL(authRequest{pkce: testenv.NewPKCE()}))
	if p := b.Submit(page, "/login", url.Values{"email": {"other@example.com"}}); !strings.Contains(p.Body, "one-time-code") {
		t.Errorf("another address was limited: %d", p.Status)
	}
}

func TestLimits_OTPPerIPAndTrustedProxies(t *testing.T) {
	e := newEnv(t, func(c *broker.Config, o *broker.Options) {
		c.Limits.OTPPerIP = broker.Limit{Count: 2, Window: time.Minute}
		c.HTTP.TrustedProxies = []string{"127.0.0.1"}
	})
	sendFrom := func(email, forwardedFor string) int {
		b := e.browser()
		page := b.Get(e.authorizeURL(authRequest{pkce: testenv.NewPKCE()}))
		form := page.HiddenFields("/login")
		form["email"] = email
		vals := url.Values{}
		for k, v := range form {
			vals.Set(k, v)
		}
		req, _ := http.NewRequest(http.MethodPost, e.issuer+"/login", strings.NewReader(vals.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-Forwarded-For", forwardedFor)
		resp, err := b.Client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	// The peer (127.0.0.1) is a trusted proxy, so the forwarded address
	// counts. (The browser follows the redirect to the code page: 200.)
	if sendFrom("a@example.com", "203.0.113.7") != http.StatusOK || sendFrom("b@example.com", "203.0.113.7") != http.StatusOK {
		t.Fatal("first two codes from one address refused")
	}
	if got := sendFrom("c@example.com", "203.0.113.7"); got != http.StatusTooManyRequests {
		t.Fatalf("third code from one client address: %d, want 429", got)
	}
	// A spoofed left-most hop does not escape: the proxy appended the real one.
	if got := sendFrom("d@example.com", "198.51.100.1, 203.0.113.7"); got != http.StatusTooManyRequests {
		t.Errorf("spoofed X-Forwarded-For escaped the limit: %d", got)
	}
	if got := sendFrom("e@example.com", "203.0.113.8"); got != http.StatusOK {
		t.Errorf("another client address was limited: %d", got)
	}
}

func TestLimits_TokenFailuresPerClient(t *testing.T) {
	e := newEnv(t, func(c *broker.Config, o *broker.Options) {
		c.Limits.TokenFailuresPerClient = broker.Limit{Count: 3, Window: time.Minute}
	})
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}
	for range 3 {
		if r := e.token(form, backendID, "wrong"); r.Status != http.StatusUnauthorized {
			t.Fatalf("wrong secret: %d", r.Status)
		}
	}
	wantLimited(t, "fourth failure", e.token(form, backendID, "wrong"))
	// While limited even the right secret is not checked: no guessing at speed.
	if r := e.token(form, backendID, backendSecret); r.Status != http.StatusTooManyRequests {
		t.Errorf("right secret while limited: %d, want 429", r.Status)
	}
	// Other clients are unaffected.
	if r := e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {"dev"}}, "", ""); r.Status == http.StatusTooManyRequests {
		t.Error("another client was limited")
	}
	e.clock.Advance(61 * time.Second)
	if r := e.token(form, backendID, backendSecret); r.Status == http.StatusTooManyRequests || r.Error == "invalid_client" {
		t.Errorf("after the window the right secret: %d %q", r.Status, r.Error)
	}
}

// A client that just authenticated skips the failure count in storage,
// but the first failure after it ends that: the limit holds as before.
func TestLimits_TokenFailuresAfterASuccess(t *testing.T) {
	var store rateLimitCounting
	e := newEnv(t, func(c *broker.Config, o *broker.Options) {
		c.Limits.TokenFailuresPerClient = broker.Limit{Count: 3, Window: time.Minute}
		store.Storage = o.Storage
		o.Storage = &store
	})
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}
	rightSecret := func() int {
		r := e.token(form, backendID, backendSecret)
		if r.Error == "invalid_client" {
			t.Fatalf("right secret refused: %d %q", r.Status, r.Error)
		}
		return r.Status
	}
	rightSecret()
	checked := store.checks.Load()
	for range 5 {
		rightSecret()
	}
	if got := store.checks.Load() - checked; got != 0 {
		t.Errorf("a client that just authenticated had its failures looked up %d times", got)
	}
	for range 3 {
		if r := e.token(form, backendID, "wrong"); r.Status != http.StatusUnauthorized {
			t.Fatalf("wrong secret: %d", r.Status)
		}
	}
	if got := rightSecret(); got != http.StatusTooManyRequests {
		t.Errorf("right secret after the limit was reached, just after a success: %d, want 429", got)
	}
	// After the window, a success again skips the store for a second only.
	e.clock.Advance(61 * time.Second)
	rightSecret()
	e.clock.Advance(2 * time.Second)
	checked = store.checks.Load()
	rightSecret()
	if store.checks.Load() == checked {
		t.Error("a success more than a second ago still skipped the failure count")
	}
}

// rateLimitCounting counts how often the broker asks whether a key is
// rate limited.
type rateLimitCounting struct {
	storage.Storage
	checks atomic.Int64
}

func (s *rateLimitCounting) RateLimited(ctx context.Context, key string, limit int, now time.Time) (bool, time.Duration, error) {
	s.checks.Add(1)
	return s.Storage.RateLimited(ctx, key, limit, now)
}

// A request that names no client at all is invalid_client with a
// challenge (RFC 6749 section 5.2), at every endpoint that authenticates
// clients, whatever else it carries.
func TestClientAuthentication_NoneIsInvalidClient(t *testing.T) {
	e := newEnv(t)
	for path, form := range map[string]url.Values{
		"/token":      {"grant_type": {"refresh_token"}, "refresh_token": {"x"}},
		"/introspect": {"token": {"x"}},
		"/revoke":     {"token": {"x"}},
	} {
		resp := e.postForm(path, form, "", "")
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `"invalid_client"`) ||
			!strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Basic") {
			t.Errorf("%s without credentials: %d %s, WWW-Authenticate %q", path, resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"))
		}
	}
	// A public client names itself with client_id alone.
	r := e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {"dev"}}, "", "")
	if r.Status != http.StatusBadRequest || r.Error != "invalid_grant" {
		t.Errorf("public client: %d %q, want 400 invalid_grant", r.Status, r.Error)
	}
	// A form too large to read is the request's fault, whoever sent it.
	big := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {strings.Repeat("x", 100<<10)}}
	if r := e.token(big, backendID, backendSecret); r.Status != http.StatusBadRequest || r.Error != "invalid_request" {
		t.Errorf("oversized form: %d %q, want 400 invalid_request", r.Status, r.Error)
	}
}

func TestPages_SecurityHeadersOnEveryPage(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	login := b.Get(e.authorizeURL(authRequest{pkce: testenv.NewPKCE()}))
	code := b.Submit(login, "/login", url.Values{"email": {"hdr@example.com"}})
	pages := map[string]*testenv.Page{
		"login":      login,
		"code":       code,
		"error":      b.Get(e.issuer + "/login?id=nope"),
		"signed out": b.Get(e.issuer + "/end_session"),
		"bad client": b.Get(e.authorizeURL(authRequest{clientID: "nope", pkce: testenv.NewPKCE()})),
	}
	for name, p := range pages {
		h := p.Header
		csp := h.Get("Content-Security-Policy")
		if !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "unsafe-inline") || !strings.Contains(csp, "default-src 'none'") {
			t.Errorf("%s: CSP %q", name, csp)
		}
		if h.Get("X-Frame-Options") != "DENY" || h.Get("Referrer-Policy") == "" || h.Get("Cache-Control") != "no-store" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: headers %v", name, h)
		}
		// Scripts only from the broker's own /static (the CSP allows no other).
		for _, tag := range regexp.MustCompile(`<script[^>]*>`).FindAllString(p.Body, -1) {
			if !strings.Contains(tag, ` src="/static/`) {
				t.Errorf("%s: inline script on a page: %s", name, tag)
			}
		}
	}
	// The binding cookie is set by /authorize, on its redirect to the page.
	cookie := e.stepBrowser().Get(e.authorizeURL(authRequest{pkce: testenv.NewPKCE()})).Header.Get("Set-Cookie")
	if !strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "SameSite=Lax") {
		t.Errorf("cookie flags: %q", cookie)
	}
}

func TestPages_InputIsEscaped(t *testing.T) {
	e := newEnv(t)
	const xss = `"><script>alert(1)</script>`
	b := e.browser()
	p := b.Get(e.authorizeURL(authRequest{pkce: testenv.NewPKCE(), state: xss, extra: url.Values{"login_hint": {xss}}}))
	if strings.Contains(p.Body, "<script>alert") || !strings.Contains(p.Body, "&lt;script&gt;") {
		t.Errorf("login_hint not escaped on the login page")
	}
	p = b.Get(e.authorizeURL(authRequest{clientID: xss, pkce: testenv.NewPKCE(), state: xss}))
	if strings.Contains(p.Body, "<script>alert") {
		t.Error("client_id reflected unescaped on the error page")
	}
	// An error redirect carries state URL-encoded, never as markup.
	p = b.Get(e.authorizeURL(authRequest{noPKCE: true, state: xss, extra: url.Values{"error_description": {xss}}}))
	if p.Location == nil || p.Location.Query().Get("state") != xss || strings.Contains(p.Location.RawQuery, "<script>") {
		t.Errorf("state in the error redirect: %v", p.Location)
	}
}

// counter reads a Prometheus counter from /metrics: the sum of its
// samples whose labels include all of labels (one sample when they name
// every label).
func (e *env) counter(name string, labels ...string) float64 {
	e.t.Helper()
	resp, err := http.Get(e.issuer + "/metrics")
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var sum float64
	for _, line := range strings.Split(string(body), "\n") {
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(line, l)
		}
		if ok {
			v, _ := strconv.ParseFloat(line[strings.LastIndexByte(line, ' ')+1:], 64)
			sum += v
		}
	}
	return sum
}

func TestMetrics_MoveByExactlyOne(t *testing.T) {
	e := newEnv(t)
	loginsBefore := e.counter("broker_logins_total", `connector="otp"`, `outcome="success"`)
	sentBefore := e.counter("broker_otp_codes_total", `result="sent"`)
	tokenBefore := e.counter("broker_http_requests_total", `endpoint="/token"`, `code="200"`)
	e.redeem(e.login(e.browser(), "metrics@example.com", authRequest{}))
	if d := e.counter("broker_logins_total", `connector="otp"`, `outcome="success"`) - loginsBefore; d != 1 {
		t.Errorf("logins moved by %v", d)
	}
	if d := e.counter("broker_otp_codes_total", `result="sent"`) - sentBefore; d != 1 {
		t.Errorf("otp codes sent moved by %v", d)
	}
	if d := e.counter("broker_http_requests_total", `endpoint="/token"`, `code="200"`) - tokenBefore; d != 1 {
		t.Errorf("token requests moved by %v", d)
	}
	// The access-token key and an ID-token key of each algorithm a client
	// may ask for: RS256, ES256, EdDSA.
	if e.counter("broker_signing_keys_created_total") != 4 {
		t.Error("signing keys created is not 4 after start")
	}
	resp, err := http.Get(e.issuer + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Request-Id") == "" {
		t.Error("no X-Request-Id on a response")
	}
}

func TestLogs_NoSecretsAndARequestIDOnEveryRequestLine(t *testing.T) {
	var libLogs testenv.SyncBuffer
	prev := slog.Default()
	slog.SetDefault(slog.New(broker.RequestLogHandler(slog.NewTextHandler(&libLogs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	t.Cleanup(func() { slog.SetDefault(prev) })

	e := newEnv(t)
	b := e.browser()
	l := e.login(b, "Secret.Person@example.com", authRequest{})
	otpCode := e.mailer.LastCode("secret.person@example.com")
	tr := e.redeem(l)
	r2 := e.refresh("dev", tr.RefreshToken)
	e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}}, backendID, backendSecret+"-wrong")
	e.introspect(r2.AccessToken, backendID, backendSecret)

	all := e.logText() + libLogs.String()
	for what, secret := range map[string]string{
		"access token": tr.AccessToken, "id token": tr.IDToken, "refresh token": tr.RefreshToken,
		"rotated refresh token": r2.RefreshToken, "authorization code": l.code, "one-time code": "code=" + otpCode,
		"client secret": backendSecret, "PKCE verifier": l.pkce.Verifier, "full email": "secret.person@example.com",
	} {
		if secret != "" && strings.Contains(all, secret) {
			t.Errorf("the logs contain the %s", what)
		}
	}
	for _, line := range strings.Split(e.logText(), "\n") {
		if strings.Contains(line, "msg=login ") && !strings.Contains(line, "request_id=") {
			t.Errorf("a request's log line has no request_id: %s", line)
		}
	}
}

// preflight sends a CORS preflight for the token endpoint from origin and
// returns the Access-Control-Allow-Origin the broker answered.
func (e *env) preflight(origin string) string {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodOptions, e.issuer+"/token", nil)
	req.Header.Set("Origin", origin)
	req.Header.Set("Access-Control-Request-Method", "POST")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Get("Access-Control-Allow-Origin")
}

func TestCORS_OnlyRegisteredOrigins(t *testing.T) {
	e := newEnv(t, func(c *broker.Config, o *broker.Options) {
		c.Clients[0].AllowedOrigins = []string{"https://spa.example.com"}
	})
	if got := e.preflight("https://spa.example.com"); got != "https://spa.example.com" {
		t.Errorf("a configured client's origin: Access-Control-Allow-Origin %q", got)
	}
	if got := e.preflight("https://evil.example"); got != "" {
		t.Errorf("an unregistered origin was answered %q", got)
	}
	// A stored client's origin is honoured too (within the cache lifetime).
	if err := e.store.CreateClient(context.Background(), storage.Client{ID: "stored-spa", Public: true, AllowedOrigins: []string{"https://stored.example.com"}}); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute)
	if got := e.preflight("https://stored.example.com"); got != "https://stored.example.com" {
		t.Errorf("a stored client's origin: Access-Control-Allow-Origin %q", got)
	}
	if got := e.preflight("*"); got == "*" {
		t.Error("the broker answered a wildcard")
	}
}

// RFC 6749 section 3.2: a token request's parameters "MUST NOT be included
// more than once". The library would read the first of two and the broker
// would answer a grant the client may not have meant; a repeated code, grant
// type or refresh token is refused and spends nothing.
func TestToken_RepeatedParametersRefused(t *testing.T) {
	e := newEnv(t)
	l := e.login(e.browser(), "twice@example.com", authRequest{scope: "openid email offline_access"})
	form := url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {l.code, l.code},
		"redirect_uri":  {l.redirectURI},
		"client_id":     {l.clientID},
		"code_verifier": {l.pkce.Verifier},
	}
	if r := e.token(form, "", ""); r.Status != http.StatusBadRequest || r.Error != "invalid_request" || !strings.Contains(r.Description, "code") {
		t.Fatalf("code twice: %d %q %q", r.Status, r.Error, r.Description)
	}
	form["code"] = []string{l.code}
	form["grant_type"] = []string{"authorization_code", "refresh_token"}
	if r := e.token(form, "", ""); r.Status != http.StatusBadRequest || r.Error != "invalid_request" || !strings.Contains(r.Description, "grant_type") {
		t.Fatalf("grant_type twice: %d %q %q", r.Status, r.Error, r.Description)
	}
	// The code was not spent.
	tr := e.redeem(l)
	if tr.Status != http.StatusOK || tr.RefreshToken == "" {
		t.Fatalf("the code after the refusals: %d %s", tr.Status, tr.Description)
	}
	r := e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken, tr.RefreshToken}, "client_id": {l.clientID}}, "", "")
	if r.Status != http.StatusBadRequest || r.Error != "invalid_request" {
		t.Fatalf("refresh_token twice: %d %q", r.Status, r.Error)
	}
	if r := e.refresh(l.clientID, tr.RefreshToken); r.Status != http.StatusOK {
		t.Fatalf("the refresh token after the refusal: %d %s", r.Status, r.Description)
	}
}
