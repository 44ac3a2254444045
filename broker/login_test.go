package broker_test

import (
	"context"
	"crypto/tls"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/storage/memory"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/google/uuid"
	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/internal/testenv"
)

type idClaims struct {
	Subject       string   `json:"sub"`
	Email         string   `json:"email"`
	EmailVerified bool     `json:"email_verified"`
	Nonce         string   `json:"nonce"`
	AMR           []string `json:"amr"`
	IDP           string   `json:"idp"`
	SessionID     string   `json:"sid"`
}

// verifyIDToken checks an ID token the way a relying party would: go-oidc
// against the broker's own discovery and JWKS.
func (e *env) verifyIDToken(raw, clientID string) idClaims {
	e.t.Helper()
	ctx := oidc.ClientContext(context.Background(), e.httpClient())
	p, err := oidc.NewProvider(ctx, e.issuer)
	if err != nil {
		e.t.Fatalf("discovery: %v", err)
	}
	tok, err := p.Verifier(&oidc.Config{ClientID: clientID}).Verify(ctx, raw)
	if err != nil {
		e.t.Fatalf("ID token does not verify: %v", err)
	}
	var c idClaims
	if err := tok.Claims(&c); err != nil {
		e.t.Fatal(err)
	}
	return c
}

func TestLogin_FullCodeFlowWithOTP(t *testing.T) {
	e := newEnv(t)
	l := e.login(e.browser(), "Alice@Example.com ", authRequest{state: "xyz", nonce: "n-1"})
	if l.state != "xyz" || l.iss != e.issuer || l.code == "" {
		t.Fatalf("client got state %q iss %q code %q", l.state, l.iss, l.code)
	}
	tr := e.redeem(l)
	if tr.Status != http.StatusOK {
		t.Fatalf("token: %d %s %s", tr.Status, tr.Error, tr.Description)
	}
	if cc := tr.Header.Get("Cache-Control"); cc != "no-store" {
		t.Errorf("token response Cache-Control = %q, want no-store", cc)
	}
	if tr.TokenType != "Bearer" || tr.RefreshToken == "" || tr.ExpiresIn <= 0 {
		t.Errorf("token response %+v", tr)
	}
	c := e.verifyIDToken(tr.IDToken, broker.DevClientID)
	if _, err := uuid.Parse(c.Subject); err != nil {
		t.Fatalf("sub %q is not a UUID", c.Subject)
	}
	if c.Email != "alice@example.com" || !c.EmailVerified || c.Nonce != "n-1" || c.IDP != "otp" || len(c.AMR) != 1 || c.AMR[0] != "otp" {
		t.Errorf("ID token claims %+v", c)
	}

	var info map[string]any
	if resp := e.getJSON("/userinfo", tr.AccessToken, &info); resp.StatusCode != http.StatusOK {
		t.Fatalf("userinfo: %d", resp.StatusCode)
	}
	if info["sub"] != c.Subject || info["email"] != "alice@example.com" {
		t.Errorf("userinfo %v", info)
	}

	// The same email again is the same person; another email another one.
	again := e.verifyIDToken(e.redeem(e.login(e.browser(), "alice@example.com", authRequest{})).IDToken, broker.DevClientID)
	if again.Subject != c.Subject {
		t.Errorf("second login sub %q, want %q", again.Subject, c.Subject)
	}
	bob := e.verifyIDToken(e.redeem(e.login(e.browser(), "bob@example.com", authRequest{})).IDToken, broker.DevClientID)
	if bob.Subject == c.Subject {
		t.Error("a different email got the same sub")
	}
}

func TestLogin_AccessTokenIsRFC9068JWT(t *testing.T) {
	e := newEnv(t)
	tr := e.redeem(e.login(e.browser(), "carol@example.com", authRequest{}))
	payload, header, err := e.broker.SigningKeys().Verify(tr.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if header.ExtraHeaders["typ"] != "at+jwt" {
		t.Errorf("typ = %v, want at+jwt", header.ExtraHeaders["typ"])
	}
	for _, claim := range []string{`"client_id":"dev"`, `"scope":"openid email profile offline_access"`, `"jti":`, `"aud":["dev"]`} {
		if !strings.Contains(string(payload), claim) {
			t.Errorf("access token lacks %s: %s", claim, payload)
		}
	}
	// The access token is not an ID token: go-oidc (which requires the
	// client as audience and an ID token's typ-agnostic claims) must not
	// accept it for another client.
	ctx := context.Background()
	p, _ := oidc.NewProvider(ctx, e.issuer)
	if _, err := p.Verifier(&oidc.Config{ClientID: "someone-else"}).Verify(ctx, tr.AccessToken); err == nil {
		t.Error("access token verified as an ID token for another audience")
	}
}

func TestLogin_OverTLSUsesSecureCookies(t *testing.T) {
	e := startEnv(t, true)
	b := e.browser()
	// The binding cookie (which CSRF tokens derive from) is set by
	// /authorize, on its redirect to the page.
	cookie := e.stepBrowser().Get(e.authorizeURL(authRequest{pkce: testenv.NewPKCE()})).Header.Get("Set-Cookie")
	if !strings.Contains(cookie, "__Host-broker_browser=") || !strings.Contains(cookie, "Secure") ||
		!strings.Contains(cookie, "HttpOnly") || !strings.Contains(cookie, "SameSite=Lax") {
		t.Fatalf("binding cookie %q: want __Host- prefix, Secure, HttpOnly, SameSite=Lax", cookie)
	}
	page := b.Get(e.authorizeURL(authRequest{pkce: testenv.NewPKCE()}))
	tr := e.redeem(e.login(b, "tls@example.com", authRequest{}))
	if tr.Status != http.StatusOK {
		t.Fatalf("token over TLS: %d %s", tr.Status, tr.Description)
	}
	c := e.verifyIDToken(tr.IDToken, broker.DevClientID)
	if !strings.HasPrefix(e.issuer, "https://") || c.Subject == "" {
		t.Fatal("TLS flow did not complete")
	}

	// A browser that only speaks plain HTTP to the same origin never has
	// the Secure cookie, so its form posts fail the CSRF check.
	plain := testenv.NewBrowser(t, true, e.srv.Listener.Addr().String())
	plain.Client.Transport.(*http.Transport).TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	page = plain.Get(e.authorizeURL(authRequest{pkce: testenv.NewPKCE()}))
	form := page.HiddenFields("/login")
	resp := e.postForm("/login", url.Values{"id": {form["id"]}, "csrf": {form["csrf"]}, "email": {"x@example.com"}}, "", "")
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("form post without the cookie: %d, want 403", resp.StatusCode)
	}
}

func TestRefresh_RotatesAndReuseRevokesFamily(t *testing.T) {
	e := newEnv(t)
	first := e.redeem(e.login(e.browser(), "dave@example.com", authRequest{}))
	second := e.refresh("dev", first.RefreshToken)
	if second.Status != http.StatusOK || second.RefreshToken == "" || second.RefreshToken == first.RefreshToken {
		t.Fatalf("refresh: %d %s, new token %v", second.Status, second.Description, second.RefreshToken != first.RefreshToken)
	}
	if second.Header.Get("Cache-Control") != "no-store" {
		t.Error("refresh response is cacheable")
	}
	third := e.refresh("dev", second.RefreshToken)
	if third.Status != http.StatusOK {
		t.Fatalf("second refresh: %d %s", third.Status, third.Description)
	}
	// Replaying the first token (its successor already used) kills the family.
	e.clock.Advance(3 * time.Second)
	if r := e.refresh("dev", first.RefreshToken); r.Status != http.StatusBadRequest || r.Error != "invalid_grant" {
		t.Fatalf("reuse: %d %q, want 400 invalid_grant", r.Status, r.Error)
	}
	if r := e.refresh("dev", third.RefreshToken); r.Error != "invalid_grant" {
		t.Fatalf("newest token after reuse: %q, want invalid_grant (family revoked)", r.Error)
	}
	if info := e.introspect(third.AccessToken, introspectorID, introspectorSecret); info["active"] != false {
		t.Errorf("access token of a revoked family introspects %v", info)
	}
}

func TestRefresh_RetryWithinWindowGetsSameSuccessor(t *testing.T) {
	e := newEnv(t)
	first := e.redeem(e.login(e.browser(), "erin@example.com", authRequest{}))
	a := e.refresh("dev", first.RefreshToken)
	b := e.refresh("dev", first.RefreshToken) // the response to a was "lost"
	if a.Status != http.StatusOK || b.Status != http.StatusOK {
		t.Fatalf("refresh then retry: %d, %d (%s)", a.Status, b.Status, b.Description)
	}
	if a.RefreshToken != b.RefreshToken {
		t.Fatal("retry within the window got a different successor")
	}
	if r := e.refresh("dev", b.RefreshToken); r.Status != http.StatusOK {
		t.Fatalf("successor after retry: %d %s", r.Status, r.Description)
	}
}

func TestRefresh_EachLoginHasItsOwnFamily(t *testing.T) {
	e := newEnv(t)
	phone := e.redeem(e.login(e.browser(), "frank@example.com", authRequest{}))
	laptop := e.redeem(e.login(e.browser(), "frank@example.com", authRequest{}))
	if r := e.refresh("dev", laptop.RefreshToken); r.Status != http.StatusOK {
		t.Fatal(r.Description)
	}
	if r := e.refresh("dev", phone.RefreshToken); r.Status != http.StatusOK {
		t.Fatalf("the first device was logged out by the second: %s", r.Description)
	}
}

func TestRefresh_OtherClientsTokenRefused(t *testing.T) {
	e := newEnv(t)
	tr := e.redeem(e.login(e.browser(), "gina@example.com", authRequest{}))
	r := e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tr.RefreshToken}}, backendID, backendSecret)
	if r.Error != "invalid_grant" {
		t.Fatalf("another client's refresh token: %q", r.Error)
	}
	if r := e.refresh("dev", tr.RefreshToken); r.Status != http.StatusOK {
		t.Fatalf("owner's token was harmed by the attempt: %s", r.Description)
	}
}

func TestIDToken_ClientRegisteredAlgorithmWins(t *testing.T) {
	e := newEnv(t, func(c *broker.Config, o *broker.Options) {
		c.Clients = append(c.Clients, broker.ClientConfig{
			ID: "es-app", Public: true, RedirectURIs: []string{"http://127.0.0.1:7777/cb"},
			IDTokenSignedResponseAlg: "ES256", GrantTypes: []string{broker.GrantAuthorizationCode},
		})
	})
	tr := e.redeem(e.login(e.browser(), "alg@example.com", authRequest{clientID: "es-app", redirectURI: "http://127.0.0.1:7777/cb"}))
	_, header, err := e.broker.SigningKeys().Verify(tr.IDToken)
	if err != nil {
		t.Fatal(err)
	}
	if header.Algorithm != "ES256" {
		t.Errorf("ID token for a client that registered ES256 is %s", header.Algorithm)
	}
	// It verifies as a relying party would: discovery lists the algorithm.
	ctx := context.Background()
	p, err := oidc.NewProvider(ctx, e.issuer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Verifier(&oidc.Config{ClientID: "es-app"}).Verify(ctx, tr.IDToken); err != nil {
		t.Errorf("go-oidc refuses the ES256 ID token: %v", err)
	}
	// Other clients keep the default.
	dev := e.redeem(e.login(e.browser(), "alg@example.com", authRequest{}))
	if _, h, _ := e.broker.SigningKeys().Verify(dev.IDToken); h.Algorithm != "RS256" {
		t.Errorf("default client's ID token is %s, want RS256", h.Algorithm)
	}
}

// flakyTokens is a store that cannot rotate refresh tokens while down is
// set: the request reaches it after the tokens were issued.
type flakyTokens struct {
	storage.Storage
	down atomic.Bool
}

func (f *flakyTokens) RotateRefreshToken(ctx context.Context, req storage.RotateRequest) (storage.RefreshFamily, error) {
	if f.down.Load() {
		return storage.RefreshFamily{}, errors.New("read tcp 10.0.0.5:5432: i/o timeout")
	}
	return f.Storage.RotateRefreshToken(ctx, req)
}

// A store failure in the middle of a refresh must not cost the family,
// even when the client retries well after the retry window.
func TestRefresh_StoreFailureDoesNotCostTheFamily(t *testing.T) {
	store := &flakyTokens{Storage: memory.New()}
	e := newEnv(t, func(c *broker.Config, o *broker.Options) { o.Storage = store })
	tr := e.redeem(e.login(e.browser(), "blip@example.com", authRequest{}))
	store.down.Store(true)
	if r := e.refresh("dev", tr.RefreshToken); r.Status != http.StatusServiceUnavailable || r.Error != "temporarily_unavailable" {
		t.Fatalf("refresh while the store fails: %d %q", r.Status, r.Error)
	}
	store.down.Store(false)
	e.clock.Advance(time.Minute) // far past the 2 s retry window
	r := e.refresh("dev", tr.RefreshToken)
	if r.Status != http.StatusOK {
		t.Fatalf("retry after the store came back: %d %q %s", r.Status, r.Error, r.Description)
	}
	if next := e.refresh("dev", r.RefreshToken); next.Status != http.StatusOK {
		t.Fatalf("the family did not survive: %d %q", next.Status, next.Error)
	}
}
