package resource_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/resource"
	"github.com/idbroker/broker/storage/memory"
)

// The resource server under test and the clients of the test broker.
const (
	apiAudience   = "https://api.example.com"
	otherAudience = "https://reports.example.com"
	apiMetadata   = "https://api.example.com/.well-known/oauth-protected-resource"

	machineID = "billing-job" // client_credentials only
	backendID = "backend"     // logs people in, and acts for them
	secret    = "resource-test-secret-0123456789abcdefghijklmn"
	redirect  = "http://127.0.0.1:6666/callback"
)

// testBroker is a real broker on the memory store, served over HTTP.
type testBroker struct {
	t      *testing.T
	issuer string
	broker *broker.Broker
	mailer *testenv.Mailer
}

func newTestBroker(t *testing.T) *testBroker {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	issuer := "http://" + srv.Listener.Addr().String()
	cfg := broker.DevelopmentConfig(issuer, srv.Listener.Addr().String())
	cfg.Clients = append(cfg.Clients,
		broker.ClientConfig{ID: machineID, Secret: secret, GrantTypes: []string{broker.GrantClientCredentials},
			Audiences: []string{apiAudience, otherAudience}, Scopes: []string{"invoices.read", "invoices.write"}},
		broker.ClientConfig{ID: backendID, Secret: secret, RedirectURIs: []string{redirect},
			GrantTypes: []string{broker.GrantAuthorizationCode, broker.GrantTokenExchange, broker.GrantClientCredentials},
			Audiences:  []string{apiAudience}, Actors: []string{"client:" + backendID}},
	)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	tb := &testBroker{t: t, issuer: issuer, mailer: &testenv.Mailer{}}
	b, err := broker.New(context.Background(), cfg, broker.Options{
		Storage: memory.New(),
		Secret:  broker.NewEphemeralRootSecret(),
		Mailer:  tb.mailer,
		Logger:  slog.New(slog.DiscardHandler),
	})
	if err != nil {
		t.Fatal(err)
	}
	tb.broker = b
	srv.Config.Handler = b.Handler()
	srv.Start()
	t.Cleanup(srv.Close)
	return tb
}

// token posts form to the token endpoint as client and returns the
// answer's field, failing the test on any error.
func (b *testBroker) token(client string, form url.Values, field string) string {
	b.t.Helper()
	return b.tokens(client, form, field)[0]
}

// tokens posts form to the token endpoint as client and returns the
// answer's fields, failing the test on any error or missing field.
func (b *testBroker) tokens(client string, form url.Values, fields ...string) []string {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, b.issuer+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(client, secret)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	var answer map[string]any
	json.NewDecoder(resp.Body).Decode(&answer)
	var out []string
	for _, f := range fields {
		tok, _ := answer[f].(string)
		if resp.StatusCode != http.StatusOK || tok == "" {
			b.t.Fatalf("token endpoint (%s): %d %v, want %s", form.Get("grant_type"), resp.StatusCode, answer, f)
		}
		out = append(out, tok)
	}
	return out
}

// machineToken is a client_credentials access token of client.
func (b *testBroker) machineToken(client, audience, scope string) string {
	b.t.Helper()
	form := url.Values{"grant_type": {"client_credentials"}, "audience": {audience}}
	if scope != "" {
		form.Set("scope", scope)
	}
	return b.token(client, form, "access_token")
}

// login signs email in through the one-time-code connector for the
// backend client and returns its access token and ID token.
func (b *testBroker) login(email string) (accessToken, idToken string) {
	b.t.Helper()
	host := strings.TrimPrefix(b.issuer, "http://")
	browser := testenv.NewBrowser(b.t, false, host)
	pkce := testenv.NewPKCE()
	page := browser.Get(b.issuer + "/authorize?" + url.Values{
		"client_id": {backendID}, "redirect_uri": {redirect}, "response_type": {"code"},
		"scope": {"openid email"}, "state": {"s"}, "nonce": {"n"},
		"code_challenge": {pkce.Challenge}, "code_challenge_method": {"S256"},
	}.Encode())
	page = browser.Submit(page, "/login", url.Values{"email": {email}})
	page = browser.Submit(page, "/login/code", url.Values{"code": {b.mailer.LastCode(email)}})
	if page.Location == nil || page.Location.Query().Get("code") == "" {
		b.t.Fatalf("login: want a redirect with a code, got %d: %s", page.Status, page.Body)
	}
	got := b.tokens(backendID, url.Values{"grant_type": {"authorization_code"}, "code": {page.Location.Query().Get("code")},
		"redirect_uri": {redirect}, "code_verifier": {pkce.Verifier}}, "access_token", "id_token")
	return got[0], got[1]
}

// delegate exchanges subject for a token the backend's own service user
// acts on (RFC 8693 act).
func (b *testBroker) delegate(subject string) string {
	b.t.Helper()
	const accessTokenType = "urn:ietf:params:oauth:token-type:access_token"
	return b.token(backendID, url.Values{
		"grant_type":    {"urn:ietf:params:oauth:grant-type:token-exchange"},
		"subject_token": {subject}, "subject_token_type": {accessTokenType},
		"actor_token": {b.machineToken(backendID, apiAudience, "")}, "actor_token_type": {accessTokenType},
		"audience": {apiAudience},
	}, "access_token")
}

// api is a resource server guarding /invoices (any scope) and
// /invoices/write (scope invoices.write) with one Verifier. Its handlers
// answer with the Token they found in the context.
type api struct {
	url      string
	jwksHits *atomic.Int64       // key set fetches the Verifier made
	log      *testenv.SyncBuffer // the causes of refusals
}

func newAPI(t *testing.T, cfg resource.Config) *api {
	t.Helper()
	hits := &atomic.Int64{}
	cfg.HTTPClient = &http.Client{Transport: countingTransport{hits}}
	v, err := resource.NewVerifier(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := resource.FromContext(r.Context())
		if !ok {
			http.Error(w, "no token in the context", http.StatusInternalServerError)
			return
		}
		json.NewEncoder(w).Encode(tok)
	})
	metadata, err := resource.NewMetadataHandler(resource.Metadata{Resource: apiAudience,
		AuthorizationServers: []string{cfg.Issuer}, ScopesSupported: []string{"invoices.read", "invoices.write"}, ResourceName: "Invoices"})
	if err != nil {
		t.Fatal(err)
	}
	log := &testenv.SyncBuffer{}
	logger := slog.New(slog.NewTextHandler(log, nil))
	mux := http.NewServeMux()
	// The realm defaults to the audience on /invoices; /invoices/write names it.
	mux.Handle("/invoices", (&resource.Middleware{Verifier: v, ResourceMetadata: apiMetadata, Logger: logger}).Wrap(echo))
	mux.Handle("/invoices/write", (&resource.Middleware{Verifier: v, ResourceMetadata: apiMetadata, Realm: apiAudience, Logger: logger,
		Scopes: []string{"invoices.write"}}).Wrap(echo))
	mux.Handle("/.well-known/oauth-protected-resource", metadata)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return &api{url: srv.URL, jwksHits: hits, log: log}
}

// countingTransport counts the key set fetches that pass through it.
type countingTransport struct{ hits *atomic.Int64 }

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if strings.Contains(r.URL.Path, "jwks") {
		c.hits.Add(1)
	}
	return http.DefaultTransport.RoundTrip(r)
}

// answer is what the API said.
type answer struct {
	status    int
	challenge string
	token     resource.Token
	body      string
}

// call GETs path of the API with the given Authorization headers.
func (a *api) call(t *testing.T, path string, authorization ...string) answer {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, a.url+path, nil)
	for _, h := range authorization {
		req.Header.Add("Authorization", h)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	got := answer{status: resp.StatusCode, challenge: resp.Header.Get("WWW-Authenticate"), body: string(body)}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(body, &got.token); err != nil {
			t.Fatalf("API answer: %v", err)
		}
	}
	return got
}

// Challenges the API sends (RFC 6750 section 3, RFC 9728 section 5.1).
const (
	bareChallenge          = `Bearer realm="` + apiAudience + `", resource_metadata="` + apiMetadata + `"`
	invalidChallenge       = `Bearer realm="` + apiAudience + `", error="invalid_token", error_description="The access token is not valid", resource_metadata="` + apiMetadata + `"`
	expiredChallenge       = `Bearer realm="` + apiAudience + `", error="invalid_token", error_description="The access token expired", resource_metadata="` + apiMetadata + `"`
	bareScopedChallenge    = `Bearer realm="` + apiAudience + `", scope="invoices.write", resource_metadata="` + apiMetadata + `"`
	invalidScopedChallenge = `Bearer realm="` + apiAudience + `", error="invalid_token", error_description="The access token is not valid", scope="invoices.write", resource_metadata="` + apiMetadata + `"`
	scopeChallenge         = `Bearer realm="` + apiAudience + `", error="insufficient_scope", error_description="The access token lacks a scope this resource requires", scope="invoices.write", resource_metadata="` + apiMetadata + `"`
)

func invalidRequestChallenge(description string) string {
	return `Bearer realm="` + apiAudience + `", error="invalid_request", error_description="` + description + `", resource_metadata="` + apiMetadata + `"`
}

// jwtPart decodes part i (0 header, 1 claims) of a compact JWT.
func jwtPart(t *testing.T, raw string, i int) map[string]any {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(raw, ".")[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}
