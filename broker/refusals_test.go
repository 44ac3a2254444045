package broker_test

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/internal/testenv"
)

func TestAuthorize_UnknownClientGetsPageNotRedirect(t *testing.T) {
	e := newEnv(t)
	page := e.browser().Get(e.authorizeURL(authRequest{clientID: "nobody", pkce: testenv.NewPKCE()}))
	if page.Location != nil || page.Status != http.StatusBadRequest {
		t.Fatalf("unknown client: status %d, location %v; want a 400 page", page.Status, page.Location)
	}
	if !strings.Contains(page.Body, "<h1>") || !strings.Contains(page.Body, "not registered") {
		t.Errorf("page does not say what happened: %s", page.Body)
	}
}

func TestAuthorize_UnregisteredRedirectURIGetsPageNotRedirect(t *testing.T) {
	e := newEnv(t)
	for _, uri := range []string{
		"https://evil.example/cb",
		"http://127.0.0.1:6666/other", // backend's host and port, wrong path
		"http://127.0.0.1:80@evil.example/cb",
	} {
		page := e.browser().Get(e.authorizeURL(authRequest{clientID: backendID, redirectURI: uri, pkce: testenv.NewPKCE()}))
		if page.Location != nil || page.Status != http.StatusBadRequest || !strings.Contains(page.Body, "<h1>") {
			t.Errorf("redirect_uri %q: status %d, location %v; want a 400 page", uri, page.Status, page.Location)
		}
	}
	// The development client's looseness covers loopback only.
	page := e.browser().Get(e.authorizeURL(authRequest{redirectURI: "http://evil.example:5555/cb", pkce: testenv.NewPKCE()}))
	if page.Location != nil || page.Status != http.StatusBadRequest {
		t.Errorf("dev client with a non-loopback URI: status %d, location %v", page.Status, page.Location)
	}
	for _, uri := range []string{"http://localhost:1234/anything", "http://127.0.0.1:40000/x/y?z=1", "http://[::1]:9/cb"} {
		page := e.browser().Get(e.authorizeURL(authRequest{redirectURI: uri, pkce: testenv.NewPKCE()}))
		if page.Status != http.StatusOK || !strings.Contains(page.Body, `name="email"`) {
			t.Errorf("dev client with loopback %q: status %d", uri, page.Status)
		}
	}
}

func TestAuthorize_PublicClientNeedsS256PKCE(t *testing.T) {
	e := newEnv(t)
	for name, a := range map[string]authRequest{
		"no PKCE": {noPKCE: true},
		"plain":   {pkce: testenv.PKCE{Challenge: "plain-verifier-0123456789012345678901234567890"}, method: "plain"},
	} {
		a.state = "s1"
		page := e.browser().Get(e.authorizeURL(a))
		if page.Location == nil {
			t.Errorf("%s: want a redirect to the client with an error, got %d", name, page.Status)
			continue
		}
		q := page.Location.Query()
		if page.Location.Host != "127.0.0.1:5555" || q.Get("error") != "invalid_request" || q.Get("state") != "s1" || q.Get("iss") != e.issuer {
			t.Errorf("%s: redirected to %s", name, page.Location)
		}
	}
}

func TestCodeExchange_PKCEVerifierRequiredAndCodeDiesOnFailure(t *testing.T) {
	e := newEnv(t)
	for name, verifier := range map[string]string{"missing": "", "wrong": testenv.NewPKCE().Verifier} {
		l := e.login(e.browser(), "pkce-"+name+"@example.com", authRequest{})
		form := url.Values{"grant_type": {"authorization_code"}, "code": {l.code}, "redirect_uri": {l.redirectURI}, "client_id": {"dev"}}
		if verifier != "" {
			form.Set("code_verifier", verifier)
		}
		if r := e.token(form, "", ""); r.Error != "invalid_grant" {
			t.Errorf("%s verifier: %d %q, want invalid_grant", name, r.Status, r.Error)
		}
		if r := e.redeem(l); r.Error != "invalid_grant" {
			t.Errorf("%s verifier: the code still worked afterwards with the right verifier", name)
		}
	}
}

func TestCodeExchange_CodeUsedTwiceRevokesFirstTokens(t *testing.T) {
	e := newEnv(t)
	l := e.login(e.browser(), "twice@example.com", authRequest{})
	first := e.redeem(l)
	if first.Status != http.StatusOK {
		t.Fatal(first.Description)
	}
	if r := e.redeem(l); r.Status != http.StatusBadRequest || r.Error != "invalid_grant" {
		t.Fatalf("second redemption: %d %q", r.Status, r.Error)
	}
	if r := e.refresh("dev", first.RefreshToken); r.Error != "invalid_grant" {
		t.Errorf("refresh token from the first redemption still works: %d", r.Status)
	}
	if info := e.introspect(first.AccessToken, introspectorID, introspectorSecret); info["active"] != false {
		t.Errorf("access token from the first redemption introspects %v", info)
	}
	if resp := e.getJSON("/userinfo", first.AccessToken, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("userinfo with the revoked access token: %d", resp.StatusCode)
	}
}

func TestCodeExchange_WrongRedirectURIOrClientRefused(t *testing.T) {
	e := newEnv(t)
	l := e.login(e.browser(), "wrongredir@example.com", authRequest{})
	l.redirectURI = "http://127.0.0.1:5555/other"
	if r := e.redeem(l); r.Error != "invalid_grant" {
		t.Errorf("wrong redirect_uri: %q", r.Error)
	}
	l2 := e.login(e.browser(), "wrongclient@example.com", authRequest{})
	r := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {l2.code}, "redirect_uri": {l2.redirectURI}, "code_verifier": {l2.pkce.Verifier}}, backendID, backendSecret)
	if r.Error != "invalid_grant" {
		t.Errorf("code redeemed by another client: %q", r.Error)
	}
}

// startLogin goes as far as the code page for email.
func (e *env) startLogin(b *testenv.Browser, email string) *testenv.Page {
	e.t.Helper()
	page, _ := e.startLoginPKCE(b, email)
	return page
}

// startLoginPKCE is startLogin, also returning the PKCE pair the request used.
func (e *env) startLoginPKCE(b *testenv.Browser, email string) (*testenv.Page, testenv.PKCE) {
	e.t.Helper()
	pkce := testenv.NewPKCE()
	page := b.Get(e.authorizeURL(authRequest{pkce: pkce, state: "s", nonce: "n"}))
	page = b.Submit(page, "/login", url.Values{"email": {email}})
	if !strings.Contains(page.Body, "one-time-code") {
		e.t.Fatalf("no code page: %d %s", page.Status, page.Body)
	}
	return page, pkce
}

func TestOTP_WrongCodeExpiredCodeAndSixthTry(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	page := e.startLogin(b, "otp@example.com")
	good := e.mailer.LastCode("otp@example.com")
	wrong := "000000"
	if good == wrong {
		wrong = "111111"
	}
	p := b.Submit(page, "/login/code", url.Values{"code": {wrong}})
	if p.Status != http.StatusBadRequest || !strings.Contains(p.Body, "not right") || !strings.Contains(p.Body, `aria-invalid="true"`) {
		t.Fatalf("wrong code: %d %s", p.Status, p.Body)
	}
	for range 4 {
		b.Submit(page, "/login/code", url.Values{"code": {wrong}})
	}
	// Five wrong tries: even the right code is refused now.
	p = b.Submit(page, "/login/code", url.Values{"code": {good}})
	if p.Location != nil || !strings.Contains(p.Body, "Too many wrong codes") {
		t.Fatalf("sixth try with the right code: %d, location %v", p.Status, p.Location)
	}

	// A resend within the cool-down is refused, with the wait on the page.
	p = b.Submit(page, "/login/resend", nil)
	if p.Status != http.StatusTooManyRequests || !strings.Contains(p.Body, "You can request a new code in") || p.Header.Get("Retry-After") == "" || e.mailer.Count("otp@example.com") != 1 {
		t.Fatalf("resend within the cool-down: %d %s", p.Status, p.Body)
	}
	// After it, a resend replaces the dead challenge; the old code stays dead.
	e.clock.Advance(31 * time.Second)
	p = b.Submit(page, "/login/resend", nil)
	if !strings.Contains(p.Body, "We sent a new code") || e.mailer.Count("otp@example.com") != 2 {
		t.Fatalf("resend: %d %s", p.Status, p.Body)
	}
	fresh := e.mailer.LastCode("otp@example.com")
	if fresh != good {
		if p := b.Submit(page, "/login/code", url.Values{"code": {good}}); p.Location != nil {
			t.Fatal("the replaced code still works")
		}
	}

	// Past ten minutes the code has expired.
	e.clock.Advance(11 * time.Minute)
	page2 := e.startLogin(b, "late@example.com")
	code := e.mailer.LastCode("late@example.com")
	e.clock.Advance(10*time.Minute + time.Second)
	p = b.Submit(page2, "/login/code", url.Values{"code": {code}})
	if p.Location != nil || !strings.Contains(p.Body, "expired") {
		t.Fatalf("expired code: %d, location %v: %s", p.Status, p.Location, p.Body)
	}
}

func TestOTP_SameAnswerForNewAndKnownEmail(t *testing.T) {
	e := newEnv(t)
	e.redeem(e.login(e.browser(), "known@example.com", authRequest{}))
	known := e.startLogin(e.browser(), "known@example.com")
	unknown := e.startLogin(e.browser(), "unknown@example.com")
	strip := func(p *testenv.Page) string {
		body := strings.NewReplacer("known@example.com", "X", "unknown@example.com", "X").Replace(p.Body)
		for _, f := range p.HiddenFields("/login/code") {
			body = strings.ReplaceAll(body, f, "")
		}
		return body
	}
	if known.Status != unknown.Status || strip(known) != strip(unknown) {
		t.Error("the code page differs between a known and an unknown email")
	}
}

func TestLogin_MalformedEmailShownOnPage(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	page := b.Get(e.authorizeURL(authRequest{pkce: testenv.NewPKCE()}))
	for _, bad := range []string{"not-an-email", "a@b", "Alice <alice@example.com>", ""} {
		p := b.Submit(page, "/login", url.Values{"email": {bad}})
		if p.Status != http.StatusBadRequest || !strings.Contains(p.Body, "Enter an email address") || !strings.Contains(p.Body, `aria-describedby="email-error`) {
			t.Errorf("email %q: %d", bad, p.Status)
		}
	}
	if e.mailer.Count("") != 0 {
		t.Error("a code was sent for a malformed email")
	}
}

func TestLogin_CSRFTokenMissingOrWrong(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	page := b.Get(e.authorizeURL(authRequest{pkce: testenv.NewPKCE()}))
	id := page.HiddenFields("/login")["id"]
	for name, csrf := range map[string]string{"missing": "", "wrong": base64.RawURLEncoding.EncodeToString(make([]byte, 32))} {
		p := b.Post(e.issuer+"/login", url.Values{"id": {id}, "csrf": {csrf}, "email": {"csrf@example.com"}})
		if p.Status != http.StatusForbidden {
			t.Errorf("%s CSRF token: %d, want 403", name, p.Status)
		}
	}
	// A token for one auth request does not work for another.
	other := b.Get(e.authorizeURL(authRequest{pkce: testenv.NewPKCE()}))
	p := b.Post(e.issuer+"/login", url.Values{"id": {other.HiddenFields("/login")["id"]}, "csrf": {page.HiddenFields("/login")["csrf"]}, "email": {"csrf@example.com"}})
	if p.Status != http.StatusForbidden {
		t.Errorf("CSRF token of another request: %d", p.Status)
	}
	if e.mailer.Count("csrf@example.com") != 0 {
		t.Error("a code was sent without a valid CSRF token")
	}
}

func TestLogin_UnknownOrExpiredAuthRequest(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	p := b.Get(e.issuer + "/login?id=does-not-exist")
	if p.Status != http.StatusNotFound || !strings.Contains(p.Body, "expired") {
		t.Errorf("unknown auth request: %d %s", p.Status, p.Body)
	}
	page := b.Get(e.authorizeURL(authRequest{pkce: testenv.NewPKCE()}))
	e.clock.Advance(31 * time.Minute)
	p = b.Submit(page, "/login", url.Values{"email": {"slow@example.com"}})
	if p.Status != http.StatusNotFound || !strings.Contains(p.Body, "choose sign in again") {
		t.Errorf("expired auth request: %d %s", p.Status, p.Body)
	}
	if p := b.Get(e.issuer + "/authorize/callback?id=nope"); p.Status != http.StatusNotFound || p.Location != nil {
		t.Errorf("callback for an unknown request: %d, %v", p.Status, p.Location)
	}
}

func TestLogin_CallbackBeforeAuthenticationRefused(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	page := b.Get(e.authorizeURL(authRequest{pkce: testenv.NewPKCE()}))
	p := b.Get(e.issuer + "/authorize/callback?id=" + url.QueryEscape(page.HiddenFields("/login")["id"]))
	if p.Location != nil || p.Status != http.StatusBadRequest {
		t.Fatalf("callback of an unauthenticated request: %d %v", p.Status, p.Location)
	}
}

// forgeOpaqueToken encrypts a token id under the all-zero key, which is what
// the library's Crypto would use if the broker left CryptoKey unset.
func forgeOpaqueToken(t *testing.T, id string) string {
	block, err := aes.NewCipher(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	gcm, _ := cipher.NewGCM(block)
	nonce := make([]byte, gcm.NonceSize())
	return base64.RawURLEncoding.EncodeToString(gcm.Seal(nonce, nonce, []byte(id+":some-user"), nil))
}

func TestAccess_ForgedOpaqueTokenRefused(t *testing.T) {
	e := newEnv(t)
	e.redeem(e.login(e.browser(), "victim@example.com", authRequest{}))
	for _, tok := range []string{forgeOpaqueToken(t, "token-1"), "opaque-garbage", ""} {
		if tok != "" {
			if resp := e.getJSON("/userinfo", tok, nil); resp.StatusCode != http.StatusUnauthorized {
				t.Errorf("userinfo with forged %q: %d", tok, resp.StatusCode)
			}
		}
		if tok == "" {
			continue // introspection requires a token; userinfo was checked above
		}
		if info := e.introspect(tok, backendID, backendSecret); info["active"] != false {
			t.Errorf("introspection of forged %q: %v", tok, info)
		}
	}
}

func TestToken_BadClientSecretIs401WithChallenge(t *testing.T) {
	e := newEnv(t)
	for name, pass := range map[string]string{"wrong": "wrong-secret", "missing": ""} {
		resp := e.postForm("/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {backendID}}, backendID, pass)
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || !strings.Contains(string(body), `"invalid_client"`) || resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s secret: %d %s, WWW-Authenticate %q", name, resp.StatusCode, body, resp.Header.Get("WWW-Authenticate"))
		}
	}
	r := e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"x"}, "client_id": {"nobody"}}, "", "")
	if r.Status != http.StatusUnauthorized || r.Error != "invalid_client" {
		t.Errorf("unknown client: %d %q", r.Status, r.Error)
	}
}

// TestToken_OnlyPOSTAndJWTBearerOnlyForAuthenticatedClients: the
// jwt-bearer grant, answered for identity assertion grants only, needs an
// authenticated client (no client, or a public one, is invalid_client),
// and discovery lists it only where a client and a connector allow it.
func TestToken_OnlyPOSTAndJWTBearerOnlyForAuthenticatedClients(t *testing.T) {
	e := newEnv(t)
	resp, err := http.Get(e.issuer + "/token?grant_type=refresh_token&refresh_token=x&client_id=dev")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Cache-Control") != "no-store" {
		t.Errorf("GET /token: %d, Cache-Control %q", resp.StatusCode, resp.Header.Get("Cache-Control"))
	}
	r := e.token(url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {"e30.e30.sig"}}, "", "")
	if r.Status != http.StatusUnauthorized || r.Error != "invalid_client" {
		t.Errorf("jwt-bearer without a client: %d %q, want 401 invalid_client", r.Status, r.Error)
	}
	r = e.token(url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {"e30.e30.sig"}, "client_id": {"dev"}}, "", "")
	if r.Status != http.StatusUnauthorized || r.Error != "invalid_client" {
		t.Errorf("jwt-bearer by a public client: %d %q, want 401 invalid_client", r.Status, r.Error)
	}
	var disc map[string]any
	e.getJSON("/.well-known/openid-configuration", "", &disc)
	for _, g := range disc["grant_types_supported"].([]any) {
		if strings.Contains(g.(string), "jwt-bearer") {
			t.Error("discovery advertises jwt-bearer")
		}
	}
}

func TestIntrospect_RequiresConfidentialClient(t *testing.T) {
	e := newEnv(t)
	tr := e.redeem(e.login(e.browser(), "intro@example.com", authRequest{}))
	resp := e.postForm("/introspect", url.Values{"token": {tr.AccessToken}, "client_id": {"dev"}}, "", "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("introspection by a public client: %d", resp.StatusCode)
	}
	info := e.introspect(tr.AccessToken, introspectorID, introspectorSecret)
	if info["active"] != true || info["client_id"] != "dev" || info["token_type"] != "access_token" {
		t.Errorf("introspection of a live access token: %v", info)
	}
}

func TestRevoke_RefreshTokenAndAccessToken(t *testing.T) {
	e := newEnv(t)
	tr := e.redeem(e.login(e.browser(), "revoke@example.com", authRequest{}))
	resp := e.postForm("/revoke", url.Values{"token": {tr.RefreshToken}, "client_id": {"dev"}}, "", "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke refresh token: %d", resp.StatusCode)
	}
	if r := e.refresh("dev", tr.RefreshToken); r.Error != "invalid_grant" {
		t.Error("revoked refresh token still refreshes")
	}
	tr2 := e.redeem(e.login(e.browser(), "revoke2@example.com", authRequest{}))
	resp = e.postForm("/revoke", url.Values{"token": {tr2.AccessToken}, "client_id": {"dev"}, "token_type_hint": {"access_token"}}, "", "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("revoke access token: %d", resp.StatusCode)
	}
	if resp := e.getJSON("/userinfo", tr2.AccessToken, nil); resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("revoked access token at userinfo: %d", resp.StatusCode)
	}
	// Unknown tokens are answered 200 (RFC 7009 section 2.2).
	resp = e.postForm("/revoke", url.Values{"token": {"never-issued"}, "client_id": {"dev"}}, "", "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("revoke unknown token: %d", resp.StatusCode)
	}
}

func TestEndSession_RedirectsOnlyToRegisteredURI(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	ok := b.Get(e.issuer + "/end_session?client_id=" + backendID + "&post_logout_redirect_uri=" + url.QueryEscape("http://127.0.0.1:6666/bye") + "&state=st")
	if ok.Location == nil || ok.Location.Host != "127.0.0.1:6666" || ok.Location.Query().Get("state") != "st" {
		t.Fatalf("registered post_logout_redirect_uri: %d %v", ok.Status, ok.Location)
	}
	bad := b.Get(e.issuer + "/end_session?client_id=" + backendID + "&post_logout_redirect_uri=" + url.QueryEscape("https://evil.example/"))
	if bad.Location != nil || bad.Status != http.StatusBadRequest || !strings.Contains(bad.Body, "<h1>") {
		t.Fatalf("unregistered post_logout_redirect_uri: %d %v", bad.Status, bad.Location)
	}
	out := b.Get(e.issuer + "/end_session")
	if out.Status != http.StatusOK || !strings.Contains(out.Body, "signed out") {
		t.Fatalf("logout without redirect: %d %s", out.Status, out.Body)
	}
}

func TestDiscovery_AdvertisesExactlyWhatWorks(t *testing.T) {
	e := newEnv(t)
	var d map[string]any
	resp := e.getJSON("/.well-known/openid-configuration", "", &d)
	if resp.Header.Get("ETag") == "" || !strings.Contains(resp.Header.Get("Cache-Control"), "max-age") {
		t.Errorf("discovery headers: %v", resp.Header)
	}
	want := map[string]any{
		"issuer":                 e.issuer,
		"token_endpoint":         e.issuer + "/token",
		"authorization_endpoint": e.issuer + "/authorize",
		"authorization_response_iss_parameter_supported": true,
	}
	for k, v := range want {
		if d[k] != v {
			t.Errorf("%s = %v, want %v", k, d[k], v)
		}
	}
	if m := d["code_challenge_methods_supported"].([]any); len(m) != 1 || m[0] != "S256" {
		t.Errorf("code_challenge_methods_supported = %v", m)
	}
	req, _ := http.NewRequest(http.MethodGet, e.issuer+"/.well-known/jwks.json", nil)
	req.Header.Set("If-None-Match", e.getJSON("/.well-known/jwks.json", "", nil).Header.Get("ETag"))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotModified {
		t.Errorf("conditional JWKS GET: %d, want 304", resp.StatusCode)
	}
	_ = broker.DevClientID
}
