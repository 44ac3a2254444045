// Package examples_test runs the downstream verification examples of
// examples/python and examples/node against a real broker: tokens from a
// real login (authorization code + PKCE through the one-time-code
// connector, driven over HTTP like a browser) and from client_credentials,
// checked by each example's own checker in a subprocess.
//
// Without Python's jwt and fastapi modules, or without examples/node's
// node_modules, the test skips, except under CI=true, where it fails.
package examples_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/storage/memory"
	"github.com/idbroker/broker/upstream"
)

const (
	ordersAPI     = "https://orders.example.com"  // the audience the examples' API accepts
	billingAPI    = "https://billing.example.com" // another service's audience
	webClient     = "web"
	webRedirect   = "http://127.0.0.1/callback"
	jobClient     = "reporting-job"
	jobSecret     = "reporting-job-secret-0123456789abcdefghijklmnop"
	userEmail     = "ada@example.com"
	uuidPattern   = `^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`
	checkerBudget = time.Minute
)

// The configuration a deployment would write: a public web client whose
// tokens are for the orders API, and a machine client that may ask for
// either API.
const config = `
issuer: ${ISSUER}
storage: { type: memory }
connectors:
  - { id: otp, type: otp }
clients:
  - { id: web, public: true, redirectURIs: ["http://127.0.0.1/callback"], audiences: ["https://orders.example.com"] }
  - { id: reporting-job, secret: "${JOB_SECRET}", grantTypes: [client_credentials],
      audiences: ["https://orders.example.com", "https://billing.example.com"], scopes: [orders.read, invoices.read] }
`

// mailbox is the otp mailer: it keeps the codes a person would read.
type mailbox struct {
	mu    sync.Mutex
	codes map[string]string
}

func (m *mailbox) SendCode(_ context.Context, msg upstream.CodeMessage) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.codes[msg.To] = msg.Code
	return nil
}

func (m *mailbox) code(to string) string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.codes[to]
}

// A case is one request to an example's API.
type checkCase struct {
	Name     string `json:"name"`
	Audience string `json:"audience"` // the audience the API is configured with
	Path     string `json:"path"`
	Token    string `json:"token,omitempty"`
}

type checkResult struct {
	Name            string         `json:"name"`
	Status          int            `json:"status"`
	WWWAuthenticate string         `json:"www_authenticate"`
	Body            map[string]any `json:"body"`
}

func TestExamplesVerifyBrokerTokens(t *testing.T) {
	python := pythonInterpreter()
	node, nodeErr := nodeExample()
	if python == "" || nodeErr != "" {
		missing := []string{}
		if python == "" {
			missing = append(missing, "a python3 that imports jwt, fastapi and httpx (apt-get install python3-jwt python3-fastapi python3-httpx)")
		}
		if nodeErr != "" {
			missing = append(missing, nodeErr)
		}
		if os.Getenv("CI") == "true" {
			t.Fatalf("under CI=true the examples must run; missing: %s", strings.Join(missing, "; "))
		}
		t.Skipf("missing: %s", strings.Join(missing, "; "))
	}

	issuer, mail := startBroker(t)
	if got := discoveryJWKSURI(t, issuer); got != issuer+"/.well-known/jwks.json" {
		t.Fatalf("the examples fetch keys from %s/.well-known/jwks.json, discovery says %s", issuer, got)
	}

	tokens := login(t, issuer, mail, userEmail)
	userID := unverifiedClaims(t, tokens.IDToken)["sub"].(string)
	if !regexp.MustCompile(uuidPattern).MatchString(userID) {
		t.Fatalf("login sub %q is not a UUID", userID)
	}
	ordersJob := clientCredentials(t, issuer, ordersAPI, "orders.read")
	jobUser := unverifiedClaims(t, ordersJob)["sub"].(string)
	billingJob := clientCredentials(t, issuer, billingAPI, "invoices.read")

	cases := []checkCase{
		{Name: "login access token", Audience: ordersAPI, Path: "/me", Token: tokens.AccessToken},
		{Name: "login access token lacks orders.read", Audience: ordersAPI, Path: "/orders", Token: tokens.AccessToken},
		{Name: "machine token with orders.read", Audience: ordersAPI, Path: "/orders", Token: ordersJob},
		{Name: "token for another audience", Audience: ordersAPI, Path: "/me", Token: billingJob},
		{Name: "ID token", Audience: ordersAPI, Path: "/me", Token: tokens.IDToken},
		// The ID token's audience is the client: an API configured with
		// that audience refuses it for its typ alone.
		{Name: "ID token at its own audience", Audience: webClient, Path: "/me", Token: tokens.IDToken},
		{Name: "alg none", Audience: ordersAPI, Path: "/me", Token: forge(t, tokens.AccessToken, "none", nil)},
		{Name: "HS256 keyed with the JWKS", Audience: ordersAPI, Path: "/me", Token: forge(t, tokens.AccessToken, "HS256", fetch(t, issuer+"/.well-known/jwks.json"))},
		{Name: "tampered payload", Audience: ordersAPI, Path: "/me", Token: tamper(t, tokens.AccessToken)},
		{Name: "no token", Audience: ordersAPI, Path: "/me"},
	}
	want := map[string]func(t *testing.T, r checkResult){
		"login access token": func(t *testing.T, r checkResult) {
			accepted(t, r, userID)
			if r.Body["client_id"] != webClient {
				t.Errorf("client_id = %v, want %s", r.Body["client_id"], webClient)
			}
		},
		"login access token lacks orders.read": func(t *testing.T, r checkResult) {
			refused(t, r, http.StatusForbidden, `Bearer error="insufficient_scope", scope="orders.read"`)
		},
		"machine token with orders.read": func(t *testing.T, r checkResult) { accepted(t, r, jobUser) },
		"token for another audience":     invalidToken,
		"ID token":                       invalidToken,
		"ID token at its own audience":   invalidToken,
		"alg none":                       invalidToken,
		"HS256 keyed with the JWKS":      invalidToken,
		"tampered payload":               invalidToken,
		"no token": func(t *testing.T, r checkResult) {
			refused(t, r, http.StatusUnauthorized, "Bearer")
		},
	}

	examples := []struct {
		name string
		cmd  []string
	}{
		{"python", []string{python, "check.py"}},
		{"node", []string{node, "check.js"}},
	}
	for _, ex := range examples {
		t.Run(ex.name, func(t *testing.T) {
			t.Parallel()
			results := runChecker(t, ex.name, ex.cmd, issuer, cases)
			if len(results) != len(cases) {
				t.Fatalf("%d results for %d cases: %+v", len(results), len(cases), results)
			}
			for i, r := range results {
				if r.Name != cases[i].Name {
					t.Fatalf("result %d is %q, want %q", i, r.Name, cases[i].Name)
				}
				t.Run(r.Name, func(t *testing.T) { want[r.Name](t, r) })
			}
		})
	}
}

func accepted(t *testing.T, r checkResult, sub string) {
	t.Helper()
	if r.Status != http.StatusOK {
		t.Fatalf("status %d (%s, %v), want 200", r.Status, r.WWWAuthenticate, r.Body)
	}
	if r.Body["sub"] != sub {
		t.Errorf("sub = %v, want %s", r.Body["sub"], sub)
	}
}

func invalidToken(t *testing.T, r checkResult) {
	refused(t, r, http.StatusUnauthorized, `Bearer error="invalid_token"`)
}

func refused(t *testing.T, r checkResult, status int, challenge string) {
	t.Helper()
	if r.Status != status || r.WWWAuthenticate != challenge {
		t.Errorf("got %d with WWW-Authenticate %q (%v), want %d with %q", r.Status, r.WWWAuthenticate, r.Body, status, challenge)
	}
}

// runChecker runs an example's checker in its folder with the cases on
// stdin and decodes the results from stdout.
func runChecker(t *testing.T, dir string, cmdline []string, issuer string, cases []checkCase) []checkResult {
	ctx, cancel := context.WithTimeout(context.Background(), checkerBudget)
	defer cancel()
	in, err := json.Marshal(map[string]any{"issuer": issuer, "cases": cases})
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.CommandContext(ctx, cmdline[0], cmdline[1:]...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PYTHONDONTWRITEBYTECODE=1") // nothing written into the source tree
	cmd.Stdin = bytes.NewReader(in)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v\nstderr:\n%s", strings.Join(cmdline, " "), err, stderr.String())
	}
	t.Logf("%s ran %d cases in %s", strings.Join(cmdline, " "), len(cases), time.Since(start).Round(time.Millisecond))
	var out struct{ Results []checkResult }
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		t.Fatalf("checker output is not JSON: %v\nstdout:\n%s\nstderr:\n%s", err, stdout.String(), stderr.String())
	}
	return out.Results
}

// pythonInterpreter finds a Python that imports what the example needs:
// BROKER_EXAMPLES_PYTHON, else Debian's /usr/bin/python3 (where apt-get
// installs python3-jwt and python3-fastapi), else python3 on PATH.
func pythonInterpreter() string {
	candidates := []string{os.Getenv("BROKER_EXAMPLES_PYTHON"), "/usr/bin/python3"}
	if p, err := exec.LookPath("python3"); err == nil {
		candidates = append(candidates, p)
	}
	for _, p := range candidates {
		if p == "" {
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err := exec.CommandContext(ctx, p, "-c", "import jwt, fastapi, httpx, cryptography").Run()
		cancel()
		if err == nil {
			return p
		}
	}
	return ""
}

// nodeExample returns node's path, or what is missing.
func nodeExample() (node, missing string) {
	node, err := exec.LookPath("node")
	if err != nil {
		return "", "node"
	}
	for _, m := range []string{"jose", "express"} {
		if _, err := os.Stat(filepath.Join("node", "node_modules", m, "package.json")); err != nil {
			return "", "examples/node/node_modules (cd examples/node && npm ci)"
		}
	}
	return node, ""
}

// startBroker serves a broker configured as a deployment would be, with
// the mailbox as its one-time-code mailer.
func startBroker(t *testing.T) (issuer string, mail *mailbox) {
	srv := httptest.NewUnstartedServer(nil)
	issuer = "http://" + srv.Listener.Addr().String()
	env := map[string]string{"ISSUER": issuer, "JOB_SECRET": jobSecret}
	cfg, err := broker.ParseConfig([]byte(config), func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	mail = &mailbox{codes: map[string]string{}}
	var logs testenv.SyncBuffer
	b, err := broker.New(context.Background(), cfg, broker.Options{
		Storage: memory.New(),
		Secret:  broker.NewEphemeralRootSecret(),
		Mailer:  mail,
		Logger:  slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = b.Handler()
	srv.Start()
	t.Cleanup(srv.Close)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("broker log:\n%s", logs.String())
		}
	})
	return issuer, mail
}

type tokenResponse struct {
	AccessToken string `json:"access_token"`
	IDToken     string `json:"id_token"`
	Scope       string `json:"scope"`
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

var (
	formRE   = regexp.MustCompile(`(?s)<form[^>]*action="([^"]*)"[^>]*>(.*?)</form>`)
	hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]+)" value="([^"]*)">`)
)

// login signs email in as a browser would: /authorize, the email form
// (with its CSRF token), the code page with the mailed code, the redirect
// back to the client with a code, which the client redeems with its PKCE
// verifier at /token.
func login(t *testing.T, issuer string, mail *mailbox, email string) tokenResponse {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	brokerHost := strings.TrimPrefix(issuer, "http://")
	browser := &http.Client{
		Jar: jar,
		// Follow the broker's own redirects; stop at the client's.
		CheckRedirect: func(req *http.Request, _ []*http.Request) error {
			if req.URL.Host != brokerHost {
				return http.ErrUseLastResponse
			}
			return nil
		},
	}
	verifier := randomString(32)
	challenge := sha256.Sum256([]byte(verifier))
	state := randomString(16)
	page, body := visit(t, browser, http.MethodGet, issuer+"/authorize?"+url.Values{
		"client_id":             {webClient},
		"redirect_uri":          {webRedirect},
		"response_type":         {"code"},
		"scope":                 {"openid email"},
		"state":                 {state},
		"nonce":                 {randomString(16)},
		"code_challenge":        {base64.RawURLEncoding.EncodeToString(challenge[:])},
		"code_challenge_method": {"S256"},
	}.Encode(), nil)
	if page.StatusCode != http.StatusOK {
		t.Fatalf("/authorize: %d: %s", page.StatusCode, body)
	}
	form := hiddenFields(t, body, "/login")
	form.Set("email", email)
	page, body = visit(t, browser, http.MethodPost, issuer+"/login", form)
	if page.StatusCode != http.StatusOK {
		t.Fatalf("/login: %d: %s", page.StatusCode, body)
	}
	form = hiddenFields(t, body, "/login/code")
	form.Set("code", mail.code(email))
	page, body = visit(t, browser, http.MethodPost, issuer+"/login/code", form)
	back, err := page.Location()
	if err != nil || !strings.HasPrefix(back.String(), webRedirect+"?") {
		t.Fatalf("/login/code: want a redirect to %s, got %d to %v: %s", webRedirect, page.StatusCode, back, body)
	}
	if q := back.Query(); q.Get("state") != state || q.Get("iss") != issuer || q.Get("code") == "" {
		t.Fatalf("redirect back to the client: %s", back)
	}
	tr := postToken(t, issuer, url.Values{
		"grant_type":    {"authorization_code"},
		"client_id":     {webClient},
		"redirect_uri":  {webRedirect},
		"code":          {back.Query().Get("code")},
		"code_verifier": {verifier},
	}, "", "")
	if tr.AccessToken == "" || tr.IDToken == "" {
		t.Fatalf("code redemption: %+v", tr)
	}
	return tr
}

func visit(t *testing.T, c *http.Client, method, target string, form url.Values) (*http.Response, string) {
	t.Helper()
	var req *http.Request
	var err error
	if form != nil {
		req, err = http.NewRequest(method, target, strings.NewReader(form.Encode()))
		if err == nil {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
	} else {
		req, err = http.NewRequest(method, target, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(body)
}

// hiddenFields returns the hidden inputs (the auth request and the CSRF
// token) of the page's form that posts to action.
func hiddenFields(t *testing.T, page, action string) url.Values {
	t.Helper()
	for _, f := range formRE.FindAllStringSubmatch(page, -1) {
		if html.UnescapeString(f[1]) != action {
			continue
		}
		fields := url.Values{}
		for _, h := range hiddenRE.FindAllStringSubmatch(f[2], -1) {
			fields.Set(h[1], html.UnescapeString(h[2]))
		}
		return fields
	}
	t.Fatalf("no form posting to %s in:\n%s", action, page)
	return nil
}

// clientCredentials gets the machine client's token for audience.
func clientCredentials(t *testing.T, issuer, audience, scope string) string {
	t.Helper()
	tr := postToken(t, issuer, url.Values{
		"grant_type": {"client_credentials"},
		"audience":   {audience},
		"scope":      {scope},
	}, jobClient, jobSecret)
	if tr.AccessToken == "" {
		t.Fatalf("client_credentials for %s: %+v", audience, tr)
	}
	if got := unverifiedClaims(t, tr.AccessToken)["aud"]; !audienceIs(got, audience) {
		t.Fatalf("client_credentials for %s gave aud %v", audience, got)
	}
	return tr.AccessToken
}

func audienceIs(aud any, want string) bool {
	switch a := aud.(type) {
	case string:
		return a == want
	case []any:
		return len(a) == 1 && a[0] == want
	}
	return false
}

func postToken(t *testing.T, issuer string, form url.Values, user, pass string) tokenResponse {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, issuer+"/token", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var tr tokenResponse
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil {
		t.Fatalf("/token answered %d, not JSON: %v", resp.StatusCode, err)
	}
	return tr
}

func discoveryJWKSURI(t *testing.T, issuer string) string {
	t.Helper()
	var d struct {
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal(fetch(t, issuer+"/.well-known/openid-configuration"), &d); err != nil {
		t.Fatal(err)
	}
	return d.JWKSURI
}

func fetch(t *testing.T, target string) []byte {
	t.Helper()
	resp, err := http.Get(target)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", target, resp.StatusCode, err)
	}
	return b
}

// unverifiedClaims reads a JWT's payload: the test trusts the broker that
// just issued it.
func unverifiedClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %q", token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	return claims
}

// forge re-signs a genuine token's header and claims with alg: "none"
// (no signature) or HS256 keyed with secret, such as the public key set,
// the confusion an HMAC-accepting verifier falls for.
func forge(t *testing.T, token, alg string, secret []byte) string {
	t.Helper()
	header, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(header, &h); err != nil {
		t.Fatal(err)
	}
	h["alg"] = alg
	header, err = json.Marshal(h)
	if err != nil {
		t.Fatal(err)
	}
	input := base64.RawURLEncoding.EncodeToString(header) + "." + strings.Split(token, ".")[1]
	if alg == "none" {
		return input + "."
	}
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(input))
	return input + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// tamper changes the claims of a genuine token and keeps its signature.
func tamper(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	claims := unverifiedClaims(t, token)
	claims["scope"] = "openid orders.read"
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + parts[2]
}

func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
