package broker_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/storage/memory"
)

// Clients every test broker has.
const (
	devRedirect     = "http://127.0.0.1:5555/cb"
	backendID       = "backend"
	backendSecret   = "backend-secret-0123456789abcdefghijklmnopqrstuv"
	backendRedirect = "http://127.0.0.1:6666/callback"
	// The introspector may introspect every client's tokens.
	introspectorID     = "introspector"
	introspectorSecret = "introspector-secret-0123456789abcdefghijklmnop"
)

// clock is real time plus an offset a test can move forward.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// env is a broker served over HTTP with a test mailer.
type env struct {
	t      testing.TB
	srv    *httptest.Server
	broker *broker.Broker
	store  storage.Storage
	mailer *testenv.Mailer
	clock  *clock
	issuer string
	logs   *testenv.SyncBuffer
}

type envOption func(*broker.Config, *broker.Options)

// newEnv starts a broker on the memory store (or the given one).
func newEnv(t testing.TB, opts ...envOption) *env {
	return startEnv(t, false, opts...)
}

func startEnv(t testing.TB, tls bool, opts ...envOption) *env {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	scheme := "http://"
	if tls {
		scheme = "https://"
	}
	issuer := scheme + srv.Listener.Addr().String()
	cfg := broker.DevelopmentConfig(issuer, srv.Listener.Addr().String())
	cfg.Clients = append(cfg.Clients, broker.ClientConfig{
		ID:                     backendID,
		Secret:                 backendSecret,
		RedirectURIs:           []string{backendRedirect},
		PostLogoutRedirectURIs: []string{"http://127.0.0.1:6666/bye"},
		GrantTypes:             []string{broker.GrantAuthorizationCode, broker.GrantRefreshToken},
		Audiences:              []string{"https://api.example.com"},
	}, broker.ClientConfig{
		ID:           introspectorID,
		Secret:       introspectorSecret,
		Introspector: true,
	})
	e := &env{t: t, srv: srv, mailer: &testenv.Mailer{}, clock: &clock{}, issuer: issuer, logs: &testenv.SyncBuffer{}}
	o := broker.Options{
		Storage: memory.New(),
		Secret:  broker.NewEphemeralRootSecret(),
		Mailer:  e.mailer,
		Logger:  slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Clock:   e.clock.Now,
	}
	for _, opt := range opts {
		opt(&cfg, &o)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	b, err := broker.New(context.Background(), cfg, o)
	if err != nil {
		t.Fatal(err)
	}
	e.broker, e.store = b, o.Storage
	srv.Config.Handler = b.Handler()
	if tls {
		srv.StartTLS()
	} else {
		srv.Start()
	}
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("broker log:\n%s", e.logText())
		}
	})
	return e
}

// logText returns everything logged so far.
func (e *env) logText() string {
	return e.logs.String()
}

func (e *env) browser() *testenv.Browser {
	return testenv.NewBrowser(e.t, strings.HasPrefix(e.issuer, "https://"), e.srv.Listener.Addr().String())
}

// authRequest describes an /authorize call.
type authRequest struct {
	clientID    string
	redirectURI string
	scope       string
	state       string
	nonce       string
	pkce        testenv.PKCE
	noPKCE      bool
	method      string // code_challenge_method; default S256
	extra       url.Values
	// thirdParty says the client is third-party: login expects the
	// consent page after the code, and allows.
	thirdParty bool
}

func (e *env) authorizeURL(a authRequest) string {
	if a.clientID == "" {
		a.clientID = broker.DevClientID
	}
	if a.redirectURI == "" {
		a.redirectURI = devRedirect
	}
	if a.scope == "" {
		a.scope = "openid email profile offline_access"
	}
	q := url.Values{
		"client_id":     {a.clientID},
		"redirect_uri":  {a.redirectURI},
		"response_type": {"code"},
		"scope":         {a.scope},
		"state":         {a.state},
		"nonce":         {a.nonce},
	}
	if !a.noPKCE {
		q.Set("code_challenge", a.pkce.Challenge)
		method := a.method
		if method == "" {
			method = "S256"
		}
		q.Set("code_challenge_method", method)
	}
	for k, v := range a.extra {
		q[k] = v
	}
	return e.issuer + "/authorize?" + q.Encode()
}

// loginResult is where the browser landed at the client.
type loginResult struct {
	code, state, iss string
	pkce             testenv.PKCE
	redirectURI      string
	clientID         string
}

// login runs authorize → email → code → callback in browser b and returns
// what the client receives.
func (e *env) login(b *testenv.Browser, email string, a authRequest) loginResult {
	e.t.Helper()
	page, a := e.signIn(b, email, a)
	if a.thirdParty {
		if page.Status != http.StatusOK || page.URL.Path != "/consent" {
			e.t.Fatalf("want the consent page, got %d at %s (redirect %v): %s", page.Status, page.URL, page.Location, page.Body)
		}
		page = b.Submit(page, "/consent", url.Values{"decision": {"allow"}})
	}
	return e.landed(page, a)
}

// signIn runs authorize → email → code in browser b and returns where
// the browser landed after the code, and the request with its defaults
// filled in.
func (e *env) signIn(b *testenv.Browser, email string, a authRequest) (*testenv.Page, authRequest) {
	e.t.Helper()
	if a.pkce == (testenv.PKCE{}) && !a.noPKCE {
		a.pkce = testenv.NewPKCE()
	}
	if a.state == "" {
		a.state = "state-" + email
	}
	if a.nonce == "" {
		a.nonce = "nonce-" + email
	}
	page := b.Get(e.authorizeURL(a))
	if page.Status != http.StatusOK || !strings.Contains(page.Body, `name="email"`) {
		e.t.Fatalf("authorize: want the email page, got %d at %s: %s", page.Status, page.URL, page.Body)
	}
	page = b.Submit(page, "/login", url.Values{"email": {email}})
	if page.Status != http.StatusOK || !strings.Contains(page.Body, `autocomplete="one-time-code"`) {
		e.t.Fatalf("email: want the code page, got %d: %s", page.Status, page.Body)
	}
	code := e.mailer.LastCode(strings.ToLower(strings.TrimSpace(email)))
	if code == "" {
		e.t.Fatalf("no code mailed to %s", email)
	}
	return b.Submit(page, "/login/code", url.Values{"code": {code}}), a
}

// landed is what the client receives from a sign-in of a that ended on
// page: the redirect to it, with a code.
func (e *env) landed(page *testenv.Page, a authRequest) loginResult {
	e.t.Helper()
	if page.Location == nil {
		e.t.Fatalf("code: want a redirect to the client, got %d: %s", page.Status, page.Body)
	}
	q := page.Location.Query()
	if q.Get("error") != "" {
		e.t.Fatalf("client got error %q: %s", q.Get("error"), q.Get("error_description"))
	}
	redirect := a.redirectURI
	if redirect == "" {
		redirect = devRedirect
	}
	clientID := a.clientID
	if clientID == "" {
		clientID = broker.DevClientID
	}
	return loginResult{code: q.Get("code"), state: q.Get("state"), iss: q.Get("iss"), pkce: a.pkce, redirectURI: redirect, clientID: clientID}
}

// tokenResponse is a token endpoint answer, success or error.
type tokenResponse struct {
	Status       int
	Header       http.Header
	AccessToken  string `json:"access_token"`
	IDToken      string `json:"id_token"`
	RefreshToken string `json:"refresh_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	Scope        string `json:"scope"`
	// IssuedTokenType is set by token exchange (RFC 8693 section 2.2.1).
	IssuedTokenType string `json:"issued_token_type"`
	Error           string `json:"error"`
	Description     string `json:"error_description"`
}

// postForm posts to a broker endpoint, with basic auth when user is set.
func (e *env) postForm(path string, form url.Values, user, pass string) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.issuer+path, strings.NewReader(form.Encode()))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	resp, err := e.httpClient().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	return resp
}

func (e *env) httpClient() *http.Client {
	if strings.HasPrefix(e.issuer, "https://") {
		return e.srv.Client()
	}
	return http.DefaultClient
}

func (e *env) token(form url.Values, user, pass string) tokenResponse {
	e.t.Helper()
	return e.readTokenResponse(e.postForm("/token", form, user, pass))
}

// readTokenResponse reads and closes a token endpoint answer.
func (e *env) readTokenResponse(resp *http.Response) tokenResponse {
	e.t.Helper()
	defer resp.Body.Close()
	var tr tokenResponse
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
		e.t.Fatalf("token response not JSON (status %d): %v", resp.StatusCode, err)
	}
	tr.Status, tr.Header = resp.StatusCode, resp.Header
	return tr
}

// redeem exchanges a login's code for tokens as its (public) client.
func (e *env) redeem(l loginResult) tokenResponse {
	e.t.Helper()
	return e.token(url.Values{
		"grant_type":    {"authorization_code"},
		"code":          {l.code},
		"redirect_uri":  {l.redirectURI},
		"client_id":     {l.clientID},
		"code_verifier": {l.pkce.Verifier},
	}, "", "")
}

func (e *env) refresh(clientID, token string) tokenResponse {
	e.t.Helper()
	return e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {token}, "client_id": {clientID}}, "", "")
}

// getJSON GETs path with an optional bearer token and decodes the answer.
func (e *env) getJSON(path, bearer string, into any) *http.Response {
	e.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.issuer+path, nil)
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := e.httpClient().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	if into != nil {
		json.NewDecoder(resp.Body).Decode(into)
	}
	return resp
}

func (e *env) introspect(token, user, pass string) map[string]any {
	e.t.Helper()
	resp := e.postForm("/introspect", url.Values{"token": {token}}, user, pass)
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		e.t.Fatalf("introspect: status %d", resp.StatusCode)
	}
	var m map[string]any
	json.NewDecoder(resp.Body).Decode(&m)
	return m
}
