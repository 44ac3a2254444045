package oidc_test

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

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
			switch {
			case tt.ok && err != nil:
				t.Fatalf("refused: %v", err)
			case !tt.ok && !errors.Is(err, upstream.ErrInvalidToken):
				t.Fatalf("err = %v, want ErrInvalidToken", err)
			}
		})
	}
}

func TestVerifyToken_JSONSerializationIsRefused(t *testing.T) {
	f := testenv.NewAuth0(t, testenv.WithSigningAlgs("RS256", "ES256"))
	c := newGeneric(t, f)
	rs, es := sameClaimsTwoKeys(t, f)
	for _, raw := range []string{rs, es} {
		if _, err := c.VerifyToken(t.Context(), raw, upstream.TokenTypeAccessToken); err != nil {
			t.Fatalf("compact control token refused: %v", err)
		}
	}
	tests := []struct {
		name string
		raw  string
	}{
		{"flattened", flattenedJSON(t, rs)},
		{"general, one signature", generalJSON(t, rs)},
		{"general, two signatures", generalJSON(t, rs, es)},
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

func TestRemoteKeySet_VerifyJWSWantsOneAsymmetricSignature(t *testing.T) {
	f := testenv.NewAuth0(t)
	ks := oidc.NewRemoteKeySet(f.URL+"/.well-known/jwks.json", oidc.KeySetConfig{})
	rs, es := sameClaimsTwoKeys(t, f)
	both := []jose.SignatureAlgorithm{jose.RS256, jose.ES256}

	one, err := jose.ParseSignedJSON(generalJSON(t, rs), both)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.VerifyJWS(t.Context(), one); err != nil {
		t.Fatalf("one signature refused: %v", err)
	}
	two, err := jose.ParseSignedJSON(generalJSON(t, rs, es), both)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.VerifyJWS(t.Context(), two); !errors.Is(err, upstream.ErrInvalidToken) {
		t.Errorf("two signatures: err = %v, want ErrInvalidToken", err)
	}
	// A caller that let HMAC through its parse is still refused.
	hs, err := jose.ParseSignedCompact(f.AccessToken(alice, api, testenv.HS256WithPublicKey()), []jose.SignatureAlgorithm{jose.HS256})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.VerifyJWS(t.Context(), hs); !errors.Is(err, upstream.ErrInvalidToken) {
		t.Errorf("HS256: err = %v, want ErrInvalidToken", err)
	}
}

// BenchmarkVerifyToken is the hot path of token exchange: an ES256 access
// token from an upstream whose keys are already cached.
func BenchmarkVerifyToken(b *testing.B) {
	f := testenv.NewAuth0(b, testenv.WithSigningAlgs("ES256"))
	c := newGeneric(b, f, func(c *oidc.Config) { c.ExchangeAudiences = []string{api} })
	raw := f.AccessToken(alice, api, testenv.SignedWithEC())
	if _, err := c.VerifyToken(b.Context(), raw, upstream.TokenTypeAccessToken); err != nil {
		b.Fatal(err)
	}
	fetches := f.JWKSFetches()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.VerifyToken(b.Context(), raw, upstream.TokenTypeAccessToken); err != nil {
			b.Fatal(err)
		}
	}
	if n := f.JWKSFetches() - fetches; n != 0 {
		b.Errorf("%d JWKS fetches with the keys cached, want 0", n)
	}
}

// sameClaimsTwoKeys mints two access tokens with the same payload, one
// signed RS256 and one ES256, each by a key the fake publishes.
func sameClaimsTwoKeys(t *testing.T, f *testenv.Auth0) (rs, es string) {
	t.Helper()
	now := time.Now()
	same := []testenv.TokenOption{testenv.WithClaim("iat", now.Unix()), testenv.ExpiresAt(now.Add(time.Hour))}
	rs = f.AccessToken(alice, api, same...)
	es = f.AccessToken(alice, api, append(same, testenv.SignedWithEC())...)
	if compactParts(t, rs)[1] != compactParts(t, es)[1] {
		t.Fatal("payloads differ")
	}
	return rs, es
}

func compactParts(t *testing.T, raw string) []string {
	t.Helper()
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %q", raw)
	}
	return parts
}

// flattenedJSON re-serializes a compact JWS in the flattened JSON
// serialization (RFC 7515 section 7.2.2), signature untouched.
func flattenedJSON(t *testing.T, compact string) string {
	t.Helper()
	p := compactParts(t, compact)
	b, err := json.Marshal(map[string]string{"protected": p[0], "payload": p[1], "signature": p[2]})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// generalJSON re-serializes compact JWSs over one payload as one JWS in
// the general JSON serialization (RFC 7515 section 7.2.1), with each
// token's signature.
func generalJSON(t *testing.T, compact ...string) string {
	t.Helper()
	type signature struct {
		Protected string `json:"protected"`
		Signature string `json:"signature"`
	}
	var sigs []signature
	for _, c := range compact {
		p := compactParts(t, c)
		sigs = append(sigs, signature{p[0], p[2]})
	}
	b, err := json.Marshal(struct {
		Payload    string      `json:"payload"`
		Signatures []signature `json:"signatures"`
	}{compactParts(t, compact[0])[1], sigs})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
