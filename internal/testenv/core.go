package testenv

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"testing"
	"time"
)

// User is a person a fake upstream knows. Fields a given fake has no use
// for are ignored.
type User struct {
	Sub           string // Auth0 sub, Entra per-application sub, WorkOS user id
	Email         string
	EmailVerified bool // Auth0 email_verified, WorkOS email_verified; Entra never sends it
	Name          string
	OrgID         string // Auth0 org_id, WorkOS organization_id

	// Entra ID only.
	TenantID            string // tid; the fake's TenantA when empty
	ObjectID            string // oid
	EmailDomainVerified bool   // sent as xms_edov: true when set
	PreferredUsername   string

	// WorkOS only: a dashboard member signing in as the user
	// (impersonation), and the reason they gave.
	Impersonator        string
	ImpersonationReason string
}

// Option configures a fake.
type Option func(*options)

type options struct {
	clientID, clientSecret string
	algs                   []string
}

// WithClient sets the client id and secret (for WorkOS: the API key) the
// fake expects.
func WithClient(id, secret string) Option {
	return func(o *options) { o.clientID, o.clientSecret = id, secret }
}

// WithSigningAlgs sets the algorithms discovery publishes in
// id_token_signing_alg_values_supported (default RS256). Tokens are still
// signed RS256 unless a TokenOption says otherwise.
func WithSigningAlgs(algs ...string) Option {
	return func(o *options) { o.algs = algs }
}

func newOptions(id, secret string, opts []Option) options {
	o := options{clientID: id, clientSecret: secret, algs: []string{"RS256"}}
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// grant is what a code or refresh token stands for.
type grant struct {
	user        User
	redirectURI string
	challenge   string
	nonce       string
	scope       string
	audience    string
}

// core is what every fake shares: its keys, the users it signs in, the
// codes and refresh tokens it issued, and its failure knobs.
type core struct {
	t    testing.TB
	opts options
	stop chan struct{} // closed at cleanup to release hung handlers

	mu          sync.Mutex // guards the fields below
	keys        *keyring   // replaced by RotateKeys
	next        *User
	byHint      map[string]User
	denyNext    bool
	codes       map[string]grant
	refresh     map[string]grant
	access      map[string]User
	blocked     map[string]bool
	failStatus  int
	hang        bool
	delay       time.Duration
	requests    map[string]int // by path, counted as they arrive
	jwksFetches int
	spoil       []TokenOption // applied to the next ID token the token endpoint issues
}

func newCore(t testing.TB, opts options) *core {
	t.Helper()
	return &core{
		t:        t,
		keys:     newKeyring(t),
		opts:     opts,
		stop:     make(chan struct{}),
		byHint:   map[string]User{},
		codes:    map[string]grant{},
		refresh:  map[string]grant{},
		access:   map[string]User{},
		blocked:  map[string]bool{},
		requests: map[string]int{},
	}
}

// keyring returns the keys the fake signs with and publishes.
func (c *core) keyring() *keyring {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.keys
}

// RotateKeys replaces the fake's keys with new ones under new key ids and
// withdraws the old ones from its JWKS, as an upstream does after a key
// is compromised: tokens signed before no longer verify once a verifier
// fetches the keys again.
func (c *core) RotateKeys() {
	keys := newKeyring(c.t)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.keys = keys
}

// SpoilNextIDToken makes the next ID token the token endpoint issues differ
// from a good one as opts say (expired, signed by another key, ...), so a
// test can drive a whole login that fails verification in one property.
func (c *core) SpoilNextIDToken(opts ...TokenOption) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.spoil = opts
}

// takeSpoil returns and clears the options SpoilNextIDToken set.
func (c *core) takeSpoil() []TokenOption {
	c.mu.Lock()
	defer c.mu.Unlock()
	opts := c.spoil
	c.spoil = nil
	return opts
}

// SetNextUser makes the next login (without a known login_hint) sign in u.
func (c *core) SetNextUser(u User) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.next = &u
}

// AddUser makes a login with login_hint equal to u.Email sign in u.
func (c *core) AddUser(u User) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.byHint[u.Email] = u
}

// DenyNextLogin makes the next login end with error=access_denied, as when
// the user cancels.
func (c *core) DenyNextLogin() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.denyNext = true
}

// Block makes the upstream refuse refresh for the user with this subject
// (for WorkOS, user id), as when the user is blocked or deleted there.
func (c *core) Block(sub string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.blocked[sub] = true
}

// FailWith makes every endpoint answer with status until Recover.
func (c *core) FailWith(status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failStatus, c.hang, c.delay = status, false, 0
}

// Hang makes every endpoint hang until the client gives up (or the test
// ends), until Recover.
func (c *core) Hang() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failStatus, c.hang, c.delay = 0, true, 0
}

// Delay makes every endpoint answer only after d, as a slow upstream
// does, until Recover. A request that arrived before Recover still waits.
func (c *core) Delay(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failStatus, c.hang, c.delay = 0, false, d
}

// Recover ends FailWith, Hang and Delay.
func (c *core) Recover() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.failStatus, c.hang, c.delay = 0, false, 0
}

// Requests is how many requests for path have arrived, answered or not.
func (c *core) Requests(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests[path]
}

// JWKSFetches is how many times the JWKS has been served.
func (c *core) JWKSFetches() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.jwksFetches
}

// start serves h behind the failure knobs and stops the server when the
// test ends.
func (c *core) start(h http.Handler) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c.mu.Lock()
		c.requests[r.URL.Path]++
		status, hang, delay := c.failStatus, c.hang, c.delay
		c.mu.Unlock()
		switch {
		case delay > 0:
			t := time.NewTimer(delay)
			defer t.Stop()
			select {
			case <-t.C:
			case <-r.Context().Done():
				return
			case <-c.stop:
				return
			}
		case hang:
			select {
			case <-r.Context().Done():
			case <-c.stop:
			}
			return
		case status != 0:
			http.Error(w, http.StatusText(status), status)
			return
		}
		h.ServeHTTP(w, r)
	}))
	// Cleanups run last-in first-out: release hung handlers before the
	// server waits for them.
	c.t.Cleanup(srv.Close)
	c.t.Cleanup(func() { close(c.stop) })
	return srv.URL
}

func (c *core) serveJWKS(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.jwksFetches++
	c.mu.Unlock()
	writeJSON(w, http.StatusOK, c.keyring().jwks())
}

// authorize approves a login: it picks the user, records a code and
// redirects back with it. redirect_uri is taken as given; the fakes do
// not model client registration.
func (c *core) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	redirect, err := url.Parse(q.Get("redirect_uri"))
	if err != nil || redirect.Scheme == "" {
		http.Error(w, "testenv: bad redirect_uri", http.StatusBadRequest)
		return
	}
	back := redirect.Query()
	back.Set("state", q.Get("state"))
	if q.Get("client_id") != c.opts.clientID {
		back.Set("error", "unauthorized_client")
	} else if q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" {
		back.Set("error", "invalid_request")
		back.Set("error_description", "PKCE S256 required")
	} else if u, ok := c.pickUser(q.Get("login_hint")); !ok {
		back.Set("error", "access_denied")
		back.Set("error_description", "the user refused")
	} else {
		code := randomString(16)
		c.mu.Lock()
		c.codes[code] = grant{
			user:        u,
			redirectURI: q.Get("redirect_uri"),
			challenge:   q.Get("code_challenge"),
			nonce:       q.Get("nonce"),
			scope:       q.Get("scope"),
			audience:    q.Get("audience"),
		}
		c.mu.Unlock()
		back.Set("code", code)
	}
	redirect.RawQuery = back.Encode()
	http.Redirect(w, r, redirect.String(), http.StatusFound)
}

func (c *core) pickUser(hint string) (User, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.denyNext {
		c.denyNext = false
		return User{}, false
	}
	if u, ok := c.byHint[hint]; ok && hint != "" {
		return u, true
	}
	if c.next == nil {
		return User{}, false
	}
	u := *c.next
	c.next = nil
	return u, true
}

// redeemCode spends a code, checking the redirect URI (when given) and the
// PKCE verifier against the challenge.
func (c *core) redeemCode(code, verifier, redirectURI string) (grant, bool) {
	c.mu.Lock()
	g, ok := c.codes[code]
	delete(c.codes, code)
	c.mu.Unlock()
	if !ok || (redirectURI != "" && redirectURI != g.redirectURI) {
		return grant{}, false
	}
	sum := sha256.Sum256([]byte(verifier))
	challenge := base64.RawURLEncoding.EncodeToString(sum[:])
	return g, subtle.ConstantTimeCompare([]byte(challenge), []byte(g.challenge)) == 1
}

// issueRefresh records a new refresh token for g.
func (c *core) issueRefresh(g grant) string {
	rt := randomString(24)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.refresh[rt] = g
	return rt
}

// redeemRefresh looks up a refresh token; singleUse spends it. It fails
// for unknown tokens and blocked users.
func (c *core) redeemRefresh(rt string, singleUse bool) (grant, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g, ok := c.refresh[rt]
	if singleUse {
		delete(c.refresh, rt)
	}
	if !ok || c.blocked[g.user.Sub] {
		return grant{}, false
	}
	return g, true
}

// rememberAccessToken lets at be used at the userinfo endpoint.
func (c *core) rememberAccessToken(at string, u User) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.access[at] = u
}

func (c *core) userForAccessToken(r *http.Request) (User, bool) {
	const prefix = "Bearer "
	h := r.Header.Get("Authorization")
	if len(h) <= len(prefix) || h[:len(prefix)] != prefix {
		return User{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	u, ok := c.access[h[len(prefix):]]
	return u, ok
}

// clientAuthenticated checks client_secret_basic or client_secret_post.
func (c *core) clientAuthenticated(r *http.Request) bool {
	id, secret, ok := r.BasicAuth()
	if ok {
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = r.PostForm.Get("client_id"), r.PostForm.Get("client_secret")
	}
	return id == c.opts.clientID && subtle.ConstantTimeCompare([]byte(secret), []byte(c.opts.clientSecret)) == 1
}

// mint signs a token for a test helper, failing the test on error.
func (c *core) mint(claims map[string]any, opts ...TokenOption) string {
	c.t.Helper()
	raw, err := c.keyring().sign(claims, opts...)
	if err != nil {
		c.t.Fatal(err)
	}
	return raw
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func oauthError(w http.ResponseWriter, status int, code, description string) {
	writeJSON(w, status, map[string]string{"error": code, "error_description": description})
}

// Authorize plays the browser: it follows loginURL to a fake's authorize
// endpoint and returns the redirect back to the broker as the request the
// broker's callback handler would receive.
func Authorize(t testing.TB, loginURL string) *http.Request {
	t.Helper()
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(loginURL)
	if err != nil {
		t.Fatalf("testenv: following login URL: %v", err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusFound || loc == "" {
		t.Fatalf("testenv: authorize answered %s, want a redirect", resp.Status)
	}
	return httptest.NewRequest(http.MethodGet, loc, nil)
}
