package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
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

// TestBrowser_LoginPages runs e2e/login.spec.mjs in headless Chromium:
// client → broker → email → code from the mailbox → client with tokens;
// the same through the fake Auth0 chosen by email domain (with the
// interstitial); the resend cool-down, errors, German, dark mode, a phone
// screen; consent to a third-party client and the connected apps page; an
// axe-core check of every page; screenshots of each.
//
// It needs Chromium and `npm ci` in e2e/. Without them it skips, except
// under CI=true, where it fails.
func TestBrowser_LoginPages(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	chromium, node := findChromium(), lookPath("node")
	deps := filepath.Join(root, "e2e", "node_modules", "playwright-core")
	_, depsErr := os.Stat(deps)
	if chromium == "" || node == "" || depsErr != nil {
		msg := fmt.Sprintf("browser test needs Chromium (found %q), node (found %q) and `npm ci` in e2e/ (%v)", chromium, node, depsErr)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}

	auth0 := testenv.NewAuth0(t)
	auth0.AddUser(testenv.User{Sub: "auth0|e2e-sso", Email: "sam@corp.example.com", EmailVerified: true, Name: "Sam Corp"})

	mailer := &testenv.Mailer{}
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	issuer := "http://" + lis.Addr().String()
	cfg := broker.DevelopmentConfig(issuer, lis.Addr().String())
	cfg.Branding = broker.BrandingConfig{ProductName: "Acme Cloud", PrimaryColor: "#5b3fd1", SupportURL: "https://support.example.com/"}
	cfg.Connectors = append(cfg.Connectors, broker.ConnectorConfig{
		ID: "auth0", Type: "auth0", Name: "Corp SSO", Domains: []string{"corp.example.com"}, RecheckInterval: time.Hour,
		Config: &upoidc.Auth0Config{Issuer: auth0.Issuer, ClientID: auth0.ClientID,
			ClientSecret: auth0.ClientSecret, TrustEmail: true, Scopes: []string{"openid", "email", "profile"}},
	})
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	logs := &testenv.SyncBuffer{}
	store := memory.New()
	b, err := broker.New(context.Background(), cfg, broker.Options{
		Storage: store,
		Secret:  broker.NewEphemeralRootSecret(),
		Mailer:  mailer,
		Logger:  slog.New(slog.NewTextHandler(logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := &httptest.Server{Listener: lis, Config: &http.Server{Handler: b.Handler()}}
	srv.Start()
	t.Cleanup(srv.Close)

	client := newClientApp(t, issuer, mailer)
	// A third-party client of the test client's address, for the consent
	// pages: stored, as /register would store it.
	now := time.Now()
	err = store.CreateClient(context.Background(), storage.Client{
		ID: thirdPartyClientID, Name: "Helpful Agent", Public: true, ThirdParty: true,
		RedirectURIs: []string{client.URL + "/callback"},
		GrantTypes:   []string{broker.GrantAuthorizationCode, broker.GrantRefreshToken},
		CreatedAt:    now, UpdatedAt: now,
	})
	if err != nil {
		t.Fatal(err)
	}

	shots := os.Getenv("BROKER_E2E_SCREENSHOTS")
	if shots == "" {
		shots = filepath.Join(root, "e2e", "screenshots")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, "--test", "--test-reporter=spec", "login.spec.mjs")
	cmd.Dir = filepath.Join(root, "e2e")
	cmd.Env = append(os.Environ(),
		"CHROMIUM="+chromium,
		"BROKER_URL="+issuer,
		"CLIENT_URL="+client.URL,
		"SCREENSHOT_DIR="+shots,
	)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	t.Logf("browser run (%v):\n%s", time.Since(start).Round(time.Millisecond), out)
	t.Logf("screenshots in %s", shots)
	if err != nil {
		t.Logf("broker log:\n%s", logs.String())
		t.Fatalf("browser test failed: %v", err)
	}
}

// findChromium returns the browser to drive: $CHROMIUM, or Debian's.
func findChromium() string {
	if p := os.Getenv("CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p := lookPath(name); p != "" {
			return p
		}
	}
	return ""
}

func lookPath(name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		return ""
	}
	return p
}

// thirdPartyClientID is the third-party client the test client signs in
// as with /start?client=third-party.
const thirdPartyClientID = "agent"

// clientApp is a small relying party: /start sends the browser to the
// broker with PKCE (as the first-party development client, or with
// ?client=third-party as thirdPartyClientID), /callback redeems the code
// and shows what came back, /mailbox?to=EMAIL is the test inbox (the
// newest code sent there).
type clientApp struct {
	*httptest.Server
	issuer string
	mailer *testenv.Mailer

	mu      sync.Mutex // guards pending
	pending map[string]pendingLogin
}

// pendingLogin is a sign-in the client started: its client id and PKCE.
type pendingLogin struct {
	clientID string
	pkce     testenv.PKCE
}

func newClientApp(t *testing.T, issuer string, mailer *testenv.Mailer) *clientApp {
	c := &clientApp{issuer: issuer, mailer: mailer, pending: map[string]pendingLogin{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", c.home)
	mux.HandleFunc("GET /start", c.start)
	mux.HandleFunc("GET /callback", c.callback)
	mux.HandleFunc("GET /mailbox", func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, mailer.LastCode(r.URL.Query().Get("to")))
	})
	c.Server = httptest.NewUnstartedServer(mux)
	c.Start()
	t.Cleanup(c.Close)
	return c
}

var clientPage = template.Must(template.New("client").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Test client</title></head>
<body><main>
<h1>{{.Title}}</h1>
{{with .Error}}<p id="error">{{.}}</p>{{end}}
{{with .Claims}}<dl id="claims">{{range $k, $v := .}}<dt>{{$k}}</dt><dd data-claim="{{$k}}">{{$v}}</dd>{{end}}</dl>{{end}}
{{with .AccessToken}}<p>Access token: <code id="access-token">{{.}}</code></p>{{end}}
{{with .RefreshToken}}<p>Refresh token: <code id="refresh-token">{{.}}</code></p>{{end}}
<p><a id="start" href="/start">Sign in</a> · <a id="start-de" href="/start?ui_locales=de">Anmelden (ui_locales=de)</a></p>
</main></body></html>`))

type clientView struct {
	Title, Error              string
	Claims                    map[string]any
	AccessToken, RefreshToken string
}

func (c *clientApp) home(w http.ResponseWriter, r *http.Request) {
	clientPage.Execute(w, clientView{Title: "Test client"})
}

func (c *clientApp) start(w http.ResponseWriter, r *http.Request) {
	pkce := testenv.NewPKCE()
	state := testenv.NewPKCE().Verifier[:16]
	clientID := broker.DevClientID
	if r.URL.Query().Get("client") == "third-party" {
		clientID = thirdPartyClientID
	}
	c.mu.Lock()
	c.pending[state] = pendingLogin{clientID: clientID, pkce: pkce}
	c.mu.Unlock()
	q := url.Values{
		"client_id":             {clientID},
		"redirect_uri":          {c.URL + "/callback"},
		"response_type":         {"code"},
		"scope":                 {"openid email profile offline_access"},
		"state":                 {state},
		"nonce":                 {"n-" + state},
		"code_challenge":        {pkce.Challenge},
		"code_challenge_method": {"S256"},
	}
	if l := r.URL.Query().Get("ui_locales"); l != "" {
		q.Set("ui_locales", l)
	}
	http.Redirect(w, r, c.issuer+"/authorize?"+q.Encode(), http.StatusFound)
}

func (c *clientApp) callback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c.mu.Lock()
	login, ok := c.pending[q.Get("state")]
	delete(c.pending, q.Get("state"))
	c.mu.Unlock()
	fail := func(msg string) {
		w.WriteHeader(http.StatusBadRequest)
		clientPage.Execute(w, clientView{Title: "Sign-in failed", Error: msg})
	}
	switch {
	case q.Get("error") != "":
		fail(q.Get("error") + ": " + q.Get("error_description"))
		return
	case !ok:
		fail("unknown state")
		return
	case q.Get("iss") != c.issuer:
		fail("wrong iss " + q.Get("iss"))
		return
	}
	resp, err := http.PostForm(c.issuer+"/token", url.Values{
		"grant_type":    {"authorization_code"},
		"client_id":     {login.clientID},
		"redirect_uri":  {c.URL + "/callback"},
		"code":          {q.Get("code")},
		"code_verifier": {login.pkce.Verifier},
	})
	if err != nil {
		fail(err.Error())
		return
	}
	defer resp.Body.Close()
	var tr struct {
		AccessToken  string `json:"access_token"`
		IDToken      string `json:"id_token"`
		RefreshToken string `json:"refresh_token"`
		Error        string `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&tr); err != nil || tr.Error != "" || tr.IDToken == "" {
		fail(fmt.Sprintf("token endpoint: %d %s %v", resp.StatusCode, tr.Error, err))
		return
	}
	// The broker's ID token is verified by the broker tests; here the
	// claims are only shown.
	claims := map[string]any{}
	if parts := strings.Split(tr.IDToken, "."); len(parts) == 3 {
		raw, _ := base64.RawURLEncoding.DecodeString(parts[1])
		json.Unmarshal(raw, &claims)
	}
	clientPage.Execute(w, clientView{Title: "Signed in", Claims: claims, AccessToken: tr.AccessToken, RefreshToken: tr.RefreshToken})
}
