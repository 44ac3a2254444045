package oidc_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"golang.org/x/oauth2"

	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/upstream"
	"github.com/idbroker/broker/upstream/oidc"
)

const callbackURL = "https://broker.example/callback/test"

var alice = testenv.User{Sub: "auth0|alice", Email: "  Alice@Example.COM ", EmailVerified: true, Name: "Alice Liddell"}

func newLoginState() upstream.LoginState {
	return upstream.LoginState{
		CallbackURL:  callbackURL,
		State:        oauth2.GenerateVerifier(),
		Nonce:        oauth2.GenerateVerifier(),
		CodeVerifier: oauth2.GenerateVerifier(),
	}
}

// login runs a whole browser login: LoginURL, the fake's authorize
// endpoint, and HandleCallback with the request it redirects back with.
func login(t *testing.T, c upstream.CallbackConnector, s upstream.LoginState) (upstream.Identity, error) {
	t.Helper()
	loginURL, err := c.LoginURL(t.Context(), s)
	if err != nil {
		t.Fatalf("LoginURL: %v", err)
	}
	return c.HandleCallback(t.Context(), s, testenv.Authorize(t, loginURL))
}

func newGeneric(t testing.TB, f *testenv.Auth0, change ...func(*oidc.Config)) *oidc.Connector {
	t.Helper()
	cfg := oidc.Config{
		ID:                "generic",
		Issuer:            f.Issuer,
		ClientID:          f.ClientID,
		ClientSecret:      f.ClientSecret,
		ExchangeAudiences: []string{"https://api.example.com"},
		HTTPClient:        &http.Client{Timeout: 2 * time.Second},
	}
	for _, ch := range change {
		ch(&cfg)
	}
	c, err := oidc.New(t.Context(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestLogin_ReturnsIdentityFromVerifiedIDToken(t *testing.T) {
	f := testenv.NewAuth0(t)
	c := newGeneric(t, f, func(c *oidc.Config) { c.Scopes = []string{"openid", "email", "offline_access"} })
	f.SetNextUser(alice)

	id, err := login(t, c, newLoginState())
	if err != nil {
		t.Fatal(err)
	}
	if id.ConnectorID != "generic" || id.Subject != alice.Sub || id.Email != "alice@example.com" || !id.EmailVerified || id.Name != alice.Name {
		t.Errorf("identity = %+v", id)
	}
	if id.RefreshToken == "" {
		t.Error("no refresh token kept though offline_access was granted")
	}
}

func TestLogin_UnverifiedEmailIsNotVerified(t *testing.T) {
	f := testenv.NewAuth0(t)
	c := newGeneric(t, f)
	u := alice
	u.EmailVerified = false
	f.SetNextUser(u)

	id, err := login(t, c, newLoginState())
	if err != nil {
		t.Fatal(err)
	}
	if id.EmailVerified {
		t.Error("email verified, want not")
	}
}

// A callback that does not match the login that started it, in state,
// nonce or PKCE verifier, is refused.
func TestLogin_CallbackOfAnotherLoginIsRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		change func(s *upstream.LoginState)
	}{
		{"state", func(s *upstream.LoginState) { s.State = "another-login" }},
		{"nonce", func(s *upstream.LoginState) { s.Nonce = "another-nonce" }},
		{"PKCE verifier", func(s *upstream.LoginState) { s.CodeVerifier = oauth2.GenerateVerifier() }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := testenv.NewAuth0(t)
			c := newGeneric(t, f)
			f.SetNextUser(alice)
			s := newLoginState()
			loginURL, err := c.LoginURL(t.Context(), s)
			if err != nil {
				t.Fatal(err)
			}
			callback := testenv.Authorize(t, loginURL)

			tc.change(&s)
			_, err = c.HandleCallback(t.Context(), s, callback)
			if !errors.Is(err, upstream.ErrInvalidToken) {
				t.Fatalf("err = %v, want ErrInvalidToken", err)
			}
		})
	}
}

func TestLogin_UpstreamErrorIsDenied(t *testing.T) {
	f := testenv.NewAuth0(t)
	c := newGeneric(t, f)
	f.DenyNextLogin()

	_, err := login(t, c, newLoginState())
	if !errors.Is(err, upstream.ErrDenied) {
		t.Fatalf("err = %v, want ErrDenied", err)
	}
}

func TestLogin_LoginHintPicksTheUser(t *testing.T) {
	f := testenv.NewAuth0(t)
	c := newGeneric(t, f)
	bob := testenv.User{Sub: "auth0|bob", Email: "bob@example.com", EmailVerified: true}
	f.AddUser(bob)
	s := newLoginState()
	s.LoginHint = bob.Email

	id, err := login(t, c, s)
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != bob.Sub {
		t.Errorf("subject = %q, want %q", id.Subject, bob.Sub)
	}
}

func TestLogin_UserinfoCompletesTheIDToken(t *testing.T) {
	f := testenv.NewAuth0(t)
	c := newGeneric(t, f, func(c *oidc.Config) {
		c.UseUserinfo = true
		c.Claims.Name = "nickname"
	})
	f.SetNextUser(alice)

	id, err := login(t, c, newLoginState())
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != alice.Sub || id.Email != "alice@example.com" {
		t.Errorf("identity = %+v", id)
	}
}

func TestVerifyToken_EachBadTokenDiffersFromAPassingControl(t *testing.T) {
	f := testenv.NewAuth0(t)
	c := newGeneric(t, f)
	const api = "https://api.example.com"

	if _, err := c.VerifyToken(t.Context(), f.AccessToken(alice, api), upstream.TokenTypeAccessToken); err != nil {
		t.Fatalf("control token refused: %v", err)
	}
	tests := []struct {
		name string
		opt  testenv.TokenOption
	}{
		{"signed by another key", testenv.SignedByOtherKey()},
		{"alg none", testenv.AlgNone()},
		{"HS256 keyed with the public key", testenv.HS256WithPublicKey()},
		{"ES256 though discovery pins RS256", testenv.SignedWithEC()},
		{"wrong issuer", testenv.WithClaim("iss", "https://evil.example.com/")},
		{"wrong audience", testenv.WithClaim("aud", "https://other-api.example.com")},
		{"expired", testenv.Expired()},
		{"no exp", testenv.WithoutClaim("exp")},
		{"not valid for another 10 minutes", testenv.WithClaim("nbf", time.Now().Add(10*time.Minute).Unix())},
		{"issued 10 minutes from now", testenv.WithClaim("iat", time.Now().Add(10*time.Minute).Unix())},
		{"unknown kid", testenv.UnknownKID()},
		{"no sub", testenv.WithoutClaim("sub")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := f.AccessToken(alice, api, tt.opt)
			_, err := c.VerifyToken(t.Context(), raw, upstream.TokenTypeAccessToken)
			if !errors.Is(err, upstream.ErrInvalidToken) {
				t.Fatalf("err = %v, want ErrInvalidToken", err)
			}
			t.Log(err)
			// The same token parsed by a caller that admits more
			// algorithms than the upstream uses, HMAC included.
			jws, err := jose.ParseSignedCompact(raw, append(slices.Clone(everyAsymmetricAlg), jose.HS256))
			if err != nil {
				return // no caller gets so far as to ask
			}
			if _, err := c.VerifyParsedToken(t.Context(), raw, jws, upstream.TokenTypeAccessToken); !errors.Is(err, upstream.ErrInvalidToken) {
				t.Fatalf("parsed: err = %v, want ErrInvalidToken", err)
			}
		})
	}
	control := f.AccessToken(alice, api)
	jws, err := jose.ParseSignedCompact(control, everyAsymmetricAlg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.VerifyParsedToken(t.Context(), control, jws, upstream.TokenTypeAccessToken); err != nil {
		t.Fatalf("control token, parsed, refused: %v", err)
	}
}

// everyAsymmetricAlg is what the broker admits when it parses a token to
// read its issuer.
var everyAsymmetricAlg = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

func TestVerifyToken_ExpiryLeewayIsBounded(t *testing.T) {
	f := testenv.NewAuth0(t)
	c := newGeneric(t, f, func(c *oidc.Config) { c.MaxClockSkew = time.Minute })
	const api = "https://api.example.com"

	within := f.AccessToken(alice, api, testenv.ExpiresAt(time.Now().Add(-30*time.Second)))
	if _, err := c.VerifyToken(t.Context(), within, upstream.TokenTypeAccessToken); err != nil {
		t.Errorf("token expired 30s ago, within 1m skew: %v", err)
	}
	beyond := f.AccessToken(alice, api, testenv.ExpiresAt(time.Now().Add(-2*time.Minute)))
	if _, err := c.VerifyToken(t.Context(), beyond, upstream.TokenTypeAccessToken); !errors.Is(err, upstream.ErrInvalidToken) {
		t.Errorf("token expired 2m ago: err = %v, want ErrInvalidToken", err)
	}
}

func TestVerifyToken_WithoutExchangeAudiencesEveryTokenIsRefused(t *testing.T) {
	f := testenv.NewAuth0(t)
	c := newGeneric(t, f, func(c *oidc.Config) { c.ExchangeAudiences = nil })

	_, err := c.VerifyToken(t.Context(), f.IDToken(alice), upstream.TokenTypeIDToken)
	if !errors.Is(err, upstream.ErrInvalidToken) {
		t.Fatalf("err = %v, want ErrInvalidToken", err)
	}
}

func TestVerifyToken_IDTokenForAnExchangeAudienceIsAccepted(t *testing.T) {
	f := testenv.NewAuth0(t)
	c := newGeneric(t, f, func(c *oidc.Config) { c.ExchangeAudiences = []string{f.ClientID} })

	id, err := c.VerifyToken(t.Context(), f.IDToken(alice), upstream.TokenTypeIDToken)
	if err != nil {
		t.Fatal(err)
	}
	if id.Subject != alice.Sub || !id.EmailVerified {
		t.Errorf("identity = %+v", id)
	}
}

func TestVerifyToken_HMACPublishedByDiscoveryIsStillRefused(t *testing.T) {
	f := testenv.NewAuth0(t, testenv.WithSigningAlgs("RS256", "HS256"))
	c := newGeneric(t, f)

	_, err := c.VerifyToken(t.Context(), f.AccessToken(alice, "https://api.example.com", testenv.HS256WithPublicKey()), upstream.TokenTypeAccessToken)
	if !errors.Is(err, upstream.ErrInvalidToken) {
		t.Fatalf("err = %v, want ErrInvalidToken", err)
	}
}

func TestNew_UpstreamDownAtStartIsDiscoveredLater(t *testing.T) {
	f := testenv.NewAuth0(t)
	f.FailWith(http.StatusInternalServerError)
	clock := testenv.NewClock()
	c := newGeneric(t, f, func(c *oidc.Config) { c.Clock = clock.Now })

	if _, err := c.LoginURL(t.Context(), newLoginState()); !errors.Is(err, upstream.ErrUnavailable) {
		t.Fatalf("while down: err = %v, want ErrUnavailable", err)
	}
	f.Recover()
	clock.Advance(oidc.RetryBackoff)
	f.SetNextUser(alice)
	if _, err := login(t, c, newLoginState()); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

func TestNew_HangingUpstreamDoesNotHoldUpStart(t *testing.T) {
	f := testenv.NewAuth0(t)
	f.Hang()
	start := time.Now()
	c := newGeneric(t, f, func(c *oidc.Config) { c.HTTPClient = &http.Client{Timeout: 200 * time.Millisecond} })
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("New took %s", d)
	}
	if _, err := c.VerifyToken(t.Context(), f.IDToken(alice), upstream.TokenTypeIDToken); !errors.Is(err, upstream.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

func TestLogin_SlowTokenEndpointIsUnavailableWithinTheTimeout(t *testing.T) {
	f := testenv.NewAuth0(t)
	c := newGeneric(t, f, func(c *oidc.Config) { c.HTTPClient = &http.Client{Timeout: 200 * time.Millisecond} })
	f.SetNextUser(alice)
	s := newLoginState()
	loginURL, err := c.LoginURL(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	callback := testenv.Authorize(t, loginURL)

	f.Hang()
	start := time.Now()
	_, err = c.HandleCallback(t.Context(), s, callback)
	if !errors.Is(err, upstream.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %s, want about the 200ms timeout", d)
	}
}

func TestLogin_TokenEndpointServerErrorIsUnavailable(t *testing.T) {
	f := testenv.NewAuth0(t)
	c := newGeneric(t, f)
	f.SetNextUser(alice)
	s := newLoginState()
	loginURL, err := c.LoginURL(t.Context(), s)
	if err != nil {
		t.Fatal(err)
	}
	callback := testenv.Authorize(t, loginURL)

	f.FailWith(http.StatusBadGateway)
	if _, err := c.HandleCallback(t.Context(), s, callback); !errors.Is(err, upstream.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

func TestRemoteKeySet_FloodOfUnknownKIDsFetchesKeysAtMostOnce(t *testing.T) {
	f := testenv.NewAuth0(t)
	c := newGeneric(t, f, func(c *oidc.Config) { c.MinKeyRefreshInterval = time.Hour })
	const api = "https://api.example.com"
	if _, err := c.VerifyToken(t.Context(), f.AccessToken(alice, api), upstream.TokenTypeAccessToken); err != nil {
		t.Fatal(err)
	}
	before := f.JWKSFetches()

	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			_, err := c.VerifyToken(context.Background(), f.AccessToken(alice, api, testenv.UnknownKID()), upstream.TokenTypeAccessToken)
			if !errors.Is(err, upstream.ErrInvalidToken) {
				t.Errorf("err = %v, want ErrInvalidToken", err)
			}
		})
	}
	wg.Wait()
	if n := f.JWKSFetches() - before; n > 1 {
		t.Errorf("%d JWKS fetches for 100 unknown kids, want at most 1", n)
	}
}

func TestRemoteKeySet_UnknownKIDRefetchesAfterTheInterval(t *testing.T) {
	f := testenv.NewAuth0(t)
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	c := newGeneric(t, f, func(c *oidc.Config) { c.Clock = clock; c.MinKeyRefreshInterval = 30 * time.Second })
	const api = "https://api.example.com"
	unknown := func() {
		c.VerifyToken(t.Context(), f.AccessToken(alice, api, testenv.UnknownKID()), upstream.TokenTypeAccessToken)
	}
	unknown()
	unknown()
	before := f.JWKSFetches()
	mu.Lock()
	now = now.Add(31 * time.Second)
	mu.Unlock()
	unknown()
	unknown()
	if n := f.JWKSFetches() - before; n != 1 {
		t.Errorf("%d fetches after the interval passed, want 1", n)
	}
}

func TestRefresh_ReturnsTheIdentityAndABlockedUserIsDenied(t *testing.T) {
	f := testenv.NewAuth0(t)
	c := newGeneric(t, f, func(c *oidc.Config) { c.Scopes = []string{"openid", "email", "offline_access"} })
	f.SetNextUser(alice)
	id, err := login(t, c, newLoginState())
	if err != nil {
		t.Fatal(err)
	}

	again, err := c.Refresh(t.Context(), id.RefreshToken)
	if err != nil {
		t.Fatal(err)
	}
	if again.Subject != alice.Sub || again.RefreshToken == "" {
		t.Errorf("refreshed identity = %+v", again)
	}

	f.Block(alice.Sub)
	if _, err := c.Refresh(t.Context(), id.RefreshToken); !errors.Is(err, upstream.ErrDenied) {
		t.Fatalf("blocked user: err = %v, want ErrDenied", err)
	}
}

func TestRefresh_UpstreamDownIsUnavailableNotDenied(t *testing.T) {
	f := testenv.NewAuth0(t)
	c := newGeneric(t, f, func(c *oidc.Config) { c.Scopes = []string{"openid", "offline_access"} })
	f.SetNextUser(alice)
	id, err := login(t, c, newLoginState())
	if err != nil {
		t.Fatal(err)
	}

	f.FailWith(http.StatusServiceUnavailable)
	if _, err := c.Refresh(t.Context(), id.RefreshToken); !errors.Is(err, upstream.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
}

// An upstream address that upstream.NormalizeEmail refuses is no address,
// and so never verified: it cannot link to an account.
func TestLogin_EmailThatDoesNotNormaliseIsDropped(t *testing.T) {
	for _, bad := range []string{"Alice <alice@example.com>", "alice@localhost", "a b@example.com", "alice"} {
		f := testenv.NewAuth0(t)
		c := newGeneric(t, f)
		u := alice
		u.Email = bad
		f.SetNextUser(u)

		id, err := login(t, c, newLoginState())
		if err != nil {
			t.Fatal(err)
		}
		if id.Email != "" || id.EmailVerified {
			t.Errorf("email %q: identity email = %q verified %v, want none", bad, id.Email, id.EmailVerified)
		}
	}
}
