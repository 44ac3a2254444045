package oidc_test

import (
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/upstream"
	"github.com/idbroker/broker/upstream/oidc"
)

func TestVerifyToken_NotBeforeAndIssuedAtLeeway(t *testing.T) {
	f := testenv.NewAuth0(t)
	now := time.Now()
	in := func(d time.Duration) int64 { return now.Add(d).Unix() }
	tests := []struct {
		name string
		skew time.Duration
		opt  testenv.TokenOption
		ok   bool
	}{
		{"nbf 30s ahead, skew 1m", time.Minute, testenv.WithClaim("nbf", in(30*time.Second)), true},
		// go-oidc, at login, would allow 5m-1m: exchange is tighter.
		{"nbf 2m ahead, skew 1m", time.Minute, testenv.WithClaim("nbf", in(2*time.Minute)), false},
		{"nbf 1m ahead, skew 4m", 4 * time.Minute, testenv.WithClaim("nbf", in(time.Minute)), true},
		// Within the skew, but beyond the 5m-4m go-oidc allows.
		{"nbf 2m ahead, skew 4m", 4 * time.Minute, testenv.WithClaim("nbf", in(2*time.Minute)), false},
		{"nbf 30s ahead, skew 5m", 5 * time.Minute, testenv.WithClaim("nbf", in(30*time.Second)), false},
		{"nbf 30s past, skew 5m", 5 * time.Minute, testenv.WithClaim("nbf", in(-30*time.Second)), true},
		{"iat 30s ahead, skew 1m", time.Minute, testenv.WithClaim("iat", in(30*time.Second)), true},
		{"iat 2m ahead, skew 1m", time.Minute, testenv.WithClaim("iat", in(2*time.Minute)), false},
		{"exp 4m past, skew 5m", 5 * time.Minute, testenv.ExpiresAt(now.Add(-4 * time.Minute)), true},
		{"exp 6m past, skew 5m", 5 * time.Minute, testenv.ExpiresAt(now.Add(-6 * time.Minute)), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := newGeneric(t, f, func(c *oidc.Config) {
				c.MaxClockSkew = tt.skew
				c.Clock = func() time.Time { return now }
			})
			_, err := c.VerifyToken(t.Context(), f.AccessToken(alice, api, tt.opt), upstream.TokenTypeAccessToken)
			wantAccepted(t, err, tt.ok)
		})
	}
}

func TestVerifyToken_JSONSerializationIsRefused(t *testing.T) {
	f := testenv.NewAuth0(t, testenv.WithSigningAlgs("RS256", "ES256"))
	c := newGeneric(t, f)
	rs, es := f.SameClaimsTwoKeys(t, alice, api)
	for _, raw := range []string{rs, es} {
		if _, err := c.VerifyToken(t.Context(), raw, upstream.TokenTypeAccessToken); err != nil {
			t.Fatalf("compact control token refused: %v", err)
		}
	}
	tests := []struct {
		name string
		raw  string
	}{
		{"flattened", testenv.FlattenedJSON(t, rs)},
		{"general, one signature", testenv.GeneralJSON(t, rs)},
		{"general, two signatures", testenv.GeneralJSON(t, rs, es)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.VerifyToken(t.Context(), tt.raw, upstream.TokenTypeAccessToken)
			if !errors.Is(err, upstream.ErrInvalidToken) {
				t.Fatalf("err = %v, want ErrInvalidToken", err)
			}
		})
	}
}

func TestVerifyToken_UnknownKIDFetchesTheKeysOnceThenIsRefused(t *testing.T) {
	f := testenv.NewAuth0(t)
	c := newGeneric(t, f, func(c *oidc.Config) { c.MinKeyRefreshInterval = time.Hour })

	for i := range 3 {
		_, err := c.VerifyToken(t.Context(), f.AccessToken(alice, api, testenv.UnknownKID()), upstream.TokenTypeAccessToken)
		if !errors.Is(err, upstream.ErrInvalidToken) {
			t.Fatalf("unknown kid %d: err = %v, want ErrInvalidToken", i+1, err)
		}
		if n := f.JWKSFetches(); n != 1 {
			t.Fatalf("after %d unknown kids: %d JWKS fetches, want 1", i+1, n)
		}
	}
}

func TestVerifyToken_KeysUnreachableIsUnavailableNotInvalid(t *testing.T) {
	f := testenv.NewAuth0(t)
	now := time.Now()
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	c := newGeneric(t, f, func(c *oidc.Config) { c.Clock = clock; c.MinKeyRefreshInterval = 30 * time.Second })
	if err := c.Ready(t.Context()); err != nil {
		t.Fatal(err)
	}

	f.FailWith(http.StatusServiceUnavailable)
	if _, err := c.VerifyToken(t.Context(), f.AccessToken(alice, api), upstream.TokenTypeAccessToken); !errors.Is(err, upstream.ErrUnavailable) || errors.Is(err, upstream.ErrInvalidToken) {
		t.Fatalf("JWKS down: err = %v, want ErrUnavailable only", err)
	}
	f.Recover()
	mu.Lock()
	now = now.Add(31 * time.Second)
	mu.Unlock()
	if _, err := c.VerifyToken(t.Context(), f.AccessToken(alice, api), upstream.TokenTypeAccessToken); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

// BenchmarkVerifyToken is the hot path of token exchange: an ES256 access
// token from an upstream whose keys are already cached, presented again
// (remembered: its signature is not checked twice) or new each time.
func BenchmarkVerifyToken(b *testing.B) {
	f := testenv.NewAuth0(b, testenv.WithSigningAlgs("ES256"))
	c := newGeneric(b, f, func(c *oidc.Config) { c.ExchangeAudiences = []string{api} })
	raw := f.AccessToken(alice, api, testenv.SignedWithEC())
	if _, err := c.VerifyToken(b.Context(), raw, upstream.TokenTypeAccessToken); err != nil {
		b.Fatal(err)
	}
	fetches := f.JWKSFetches()
	b.Run("remembered", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.VerifyToken(b.Context(), raw, upstream.TokenTypeAccessToken); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("new", func(b *testing.B) {
		tokens := make([]string, b.N)
		for i := range tokens {
			tokens[i] = f.AccessToken(alice, api, testenv.SignedWithEC())
		}
		b.ReportAllocs()
		b.ResetTimer()
		for _, raw := range tokens {
			if _, err := c.VerifyToken(b.Context(), raw, upstream.TokenTypeAccessToken); err != nil {
				b.Fatal(err)
			}
		}
	})
	if n := f.JWKSFetches() - fetches; n != 0 {
		b.Errorf("%d JWKS fetches with the keys cached, want 0", n)
	}
}

// A registered claim of the wrong JSON type is refused as an invalid token,
// whichever claim it is; a null one counts as absent.
func TestVerifyToken_RegisteredClaimsOfTheWrongTypeAreRefused(t *testing.T) {
	f := testenv.NewAuth0(t)
	c := newGeneric(t, f)
	now := time.Now()
	for _, tt := range []struct {
		name string
		opt  testenv.TokenOption
		ok   bool
	}{
		{"exp a string", testenv.WithClaim("exp", "9999999999"), false},
		{"exp null", testenv.WithClaim("exp", nil), false},
		{"exp fractional", testenv.WithClaim("exp", float64(now.Add(time.Hour).Unix())+0.5), true},
		{"nbf a string", testenv.WithClaim("nbf", "0"), false},
		{"nbf null", testenv.WithClaim("nbf", nil), true},
		{"iat a bool", testenv.WithClaim("iat", true), false},
		{"iss a number", testenv.WithClaim("iss", 1), false},
		{"sub an object", testenv.WithClaim("sub", map[string]any{"id": "x"}), false},
		{"aud a number", testenv.WithClaim("aud", 1), false},
		{"aud with a number", testenv.WithClaim("aud", []any{api, 1}), false},
		{"aud a list", testenv.WithClaim("aud", []any{"https://other.example.com", api}), true},
		{"jti a number", testenv.WithClaim("jti", 7), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.VerifyToken(t.Context(), f.AccessToken(alice, api, tt.opt), upstream.TokenTypeAccessToken)
			wantAccepted(t, err, tt.ok)
		})
	}
}

// wantAccepted fails t unless err is nil when ok, and an invalid token
// when not.
func wantAccepted(t *testing.T, err error, ok bool) {
	t.Helper()
	switch {
	case ok && err != nil:
		t.Fatalf("refused: %v", err)
	case !ok && !errors.Is(err, upstream.ErrInvalidToken):
		t.Fatalf("err = %v, want ErrInvalidToken", err)
	}
}
