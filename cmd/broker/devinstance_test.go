package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/upstream/registry"
)

func postForm(t *testing.T, rawURL string, form url.Values, user, pass string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, rawURL, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatalf("POST %s: %d, %v", rawURL, resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST %s: %d %v", rawURL, resp.StatusCode, out)
	}
	return out
}

// jwtClaims reads a JWT's payload without verifying it (the broker's own
// tests verify its tokens; here only what they say matters).
func jwtClaims(t *testing.T, raw string) map[string]any {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWT: %q", raw)
	}
	data, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	if err := json.Unmarshal(data, &c); err != nil {
		t.Fatal(err)
	}
	return c
}

// The development instance trusts its own development upstream: a token
// minted there for an email exchanges, as dev-service, for a broker
// token whose sub is a UUID, the same one a browser login through the
// upstream's button gets.
func TestDevInstance_TokenExchangeAndLoginThroughTheDevUpstream(t *testing.T) {
	addr := freeAddr(t)
	logs, _ := serveInBackground(t, addr, map[string]string{"BROKER_ADDR": addr})
	base := "http://" + addr

	minted := postForm(t, base+"/dev/upstream/token", url.Values{"email": {"ada@example.com"}}, "", "")
	exchange := func() string {
		out := postForm(t, base+"/token", url.Values{
			"grant_type":         {"urn:ietf:params:oauth:grant-type:token-exchange"},
			"subject_token":      {minted["id_token"].(string)},
			"subject_token_type": {"urn:ietf:params:oauth:token-type:id_token"},
			"audience":           {devServiceAudience},
		}, devServiceID, devServiceSecret)
		c := jwtClaims(t, out["access_token"].(string))
		if c["client_id"] != devServiceID || c["idp"] != devUpstreamID || !slices.Contains(anyStrings(c["aud"]), devServiceAudience) {
			t.Errorf("exchanged token claims: %v", c)
		}
		return c["sub"].(string)
	}
	sub := exchange()
	if _, err := uuid.Parse(sub); err != nil {
		t.Fatalf("sub %q is not a UUID", sub)
	}
	if again := exchange(); again != sub {
		t.Errorf("second exchange: sub %q, first %q", again, sub)
	}

	// The browser login, through the connector's button (idp=).
	jar, _ := cookiejar.New(nil)
	var landed *url.URL
	browser := &http.Client{Jar: jar, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		if req.URL.Host == "127.0.0.1:3000" {
			landed = req.URL
			return http.ErrUseLastResponse
		}
		return nil
	}}
	pkce := testenv.NewPKCE()
	authorize := base + "/authorize?" + url.Values{
		"client_id": {"dev"}, "response_type": {"code"}, "scope": {"openid email"},
		"redirect_uri": {"http://127.0.0.1:3000/callback"}, "state": {"xyz"}, "idp": {devUpstreamID},
		"code_challenge": {pkce.Challenge}, "code_challenge_method": {"S256"},
	}.Encode()
	resp, err := browser.Get(authorize)
	if err != nil {
		t.Fatal(err)
	}
	page := new(bytes.Buffer)
	page.ReadFrom(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Request.URL.Path != devUpstreamPath+"/authorize" {
		t.Fatalf("authorize with idp=%s: %d at %s", devUpstreamID, resp.StatusCode, resp.Request.URL)
	}
	form := url.Values{"email": {"Ada@Example.com"}}
	for _, m := range regexp.MustCompile(`name="(redirect_uri|state|nonce)" value="([^"]*)"`).FindAllStringSubmatch(page.String(), -1) {
		form.Set(m[1], htmlUnescape(m[2]))
	}
	resp, err = browser.PostForm(resp.Request.URL.String(), form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if landed == nil || landed.Query().Get("code") == "" {
		t.Fatalf("login did not come back to the client: %d at %s\n%s", resp.StatusCode, resp.Request.URL, logs)
	}
	tokens := postForm(t, base+"/token", url.Values{
		"grant_type": {"authorization_code"}, "client_id": {"dev"}, "code": {landed.Query().Get("code")},
		"redirect_uri": {"http://127.0.0.1:3000/callback"}, "code_verifier": {pkce.Verifier},
	}, "", "")
	if got := jwtClaims(t, tokens["id_token"].(string))["sub"]; got != sub {
		t.Errorf("login through the dev upstream: sub %v, exchange gave %q", got, sub)
	}

	if want := "callback_url=" + base + "/callback/" + devUpstreamID; !strings.Contains(logs.String(), want) {
		t.Errorf("serve's log lacks %q:\n%s", want, logs)
	}
}

func anyStrings(v any) []string {
	switch v := v.(type) {
	case string:
		return []string{v}
	case []any:
		var out []string
		for _, s := range v {
			out = append(out, s.(string))
		}
		return out
	}
	return nil
}

func htmlUnescape(s string) string {
	return strings.NewReplacer("&amp;", "&", "&#43;", "+", "&#34;", `"`, "&#39;", "'", "&lt;", "<", "&gt;", ">").Replace(s)
}

// With --config there is no development upstream and no dev-service.
func TestServe_ConfiguredInstanceHasNoDevUpstream(t *testing.T) {
	addr := freeAddr(t)
	path := filepath.Join(t.TempDir(), "broker.yaml")
	os.WriteFile(path, []byte("issuer: http://"+addr+"\nconnectors: [{ id: otp, type: otp }]\n"), 0o600)
	serveInBackground(t, addr, map[string]string{"BROKER_ADDR": addr}, "--config", path)
	resp, err := http.Get("http://" + addr + devUpstreamPath + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("%s with --config: %d, want 404", devUpstreamPath, resp.StatusCode)
	}
}

func TestConnectorsList_ShowsEachConnectorWithItsCallbackURL(t *testing.T) {
	path := filepath.Join(t.TempDir(), "broker.yaml")
	os.WriteFile(path, []byte(`issuer: https://auth.example.com/
connectors:
  - { id: auth0, type: auth0, name: Acme, issuer: https://tenant.auth0.com/, clientID: abc, domains: [example.com, example.org] }
  - { id: entra, type: azuread, tenant: organizations, clientID: def }
  - { id: otp, type: otp }
  - { id: platform, type: legacy, validateURL: https://platform.internal/validate }
`), 0o600)
	var out, errs bytes.Buffer
	if err := run(context.Background(), []string{"connectors", "list", "--config", path}, &out, &errs, envFrom(nil)); err != nil {
		t.Fatalf("connectors list: %v\n%s", err, errs.String())
	}
	want := [][]string{
		{"ID", "TYPE", "NAME", "DOMAINS", "CALLBACK", "URL"},
		{"auth0", "auth0", "Acme", "example.com,example.org", "https://auth.example.com/callback/auth0"},
		{"entra", "azuread", "entra", "-", "https://auth.example.com/callback/entra"},
		{"otp", "otp", "otp", "-", "-"},
		{"platform", "legacy", "platform", "-", "-"},
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != len(want) {
		t.Fatalf("connectors list:\n%s", out.String())
	}
	for i, l := range lines {
		if got := strings.Fields(l); !slices.Equal(got, want[i]) {
			t.Errorf("line %d: %q, want %q", i, got, want[i])
		}
	}
	// Without --config: the development instance's.
	out.Reset()
	if err := run(context.Background(), []string{"connectors", "list"}, &out, &errs, envFrom(nil)); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "http://127.0.0.1:8080/callback/dev-upstream") {
		t.Errorf("development instance's connectors:\n%s", out.String())
	}
}

// Every connector type is known to have, or not have, a callback.
func TestCallbackTypes_CoverEveryConnectorType(t *testing.T) {
	for _, typ := range registry.Types() {
		if _, ok := callbackTypes[typ]; !ok {
			t.Errorf("connector type %q: callbackTypes does not say whether it has a callback", typ)
		}
	}
}
