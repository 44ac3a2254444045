package testenv

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// TokenLifetime is how long minted tokens are valid.
const TokenLifetime = time.Hour

// keyring is a fake's signing keys. Only rsa and ec are published in its
// JWKS; other stands in for an attacker's key.
type keyring struct {
	rsa    *rsa.PrivateKey
	rsaKID string
	ec     *ecdsa.PrivateKey
	ecKID  string
	other  *rsa.PrivateKey
}

func newKeyring(t testing.TB) *keyring {
	t.Helper()
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &keyring{rsa: rsaKey, rsaKID: "rsa-" + randomString(4), ec: ecKey, ecKID: "ec-" + randomString(4), other: other}
}

// jwks is the published key set.
func (k *keyring) jwks() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{
		{Key: k.rsa.Public(), KeyID: k.rsaKID, Algorithm: string(jose.RS256), Use: "sig"},
		{Key: k.ec.Public(), KeyID: k.ecKID, Algorithm: string(jose.ES256), Use: "sig"},
	}}
}

// TokenOption changes one property of a minted token.
type TokenOption func(*mint)

// mint is a token about to be signed.
type mint struct {
	claims map[string]any
	kid    string
	key    signingKey
	typ    string // the header's typ; JWT unless WithType says otherwise
}

// signingKey is which key (and so which algorithm) signs a token.
type signingKey int

const (
	keyRSA       signingKey = iota // the published RSA key, RS256
	keyEC                          // the published ECDSA key, ES256
	keyOther                       // an unpublished RSA key, RS256
	keyPublicPEM                   // HS256 keyed with the RSA public key
	keyNone                        // unsigned, "alg": "none"
)

// WithClaim sets (or replaces) one claim, e.g. "aud", "iss" or "nonce".
func WithClaim(name string, value any) TokenOption {
	return func(m *mint) { m.claims[name] = value }
}

// WithType sets the header's typ, e.g. oauth-id-jag+jwt.
func WithType(typ string) TokenOption {
	return func(m *mint) { m.typ = typ }
}

// WithoutClaim removes one claim.
func WithoutClaim(name string) TokenOption {
	return func(m *mint) { delete(m.claims, name) }
}

// Expired makes the token expire an hour ago, far beyond any clock skew.
func Expired() TokenOption {
	return func(m *mint) {
		now := time.Now()
		m.claims["iat"] = now.Add(-2 * time.Hour).Unix()
		m.claims["exp"] = now.Add(-time.Hour).Unix()
	}
}

// ExpiresAt sets the expiry.
func ExpiresAt(exp time.Time) TokenOption {
	return func(m *mint) { m.claims["exp"] = exp.Unix() }
}

// UnknownKID signs with the published key but names a key id the JWKS
// does not hold, a fresh one per token.
func UnknownKID() TokenOption {
	return func(m *mint) { m.kid = "unknown-" + randomString(8) }
}

// SignedByOtherKey signs with a key that is not published, under the
// published key's id.
func SignedByOtherKey() TokenOption {
	return func(m *mint) { m.key = keyOther }
}

// SignedWithEC signs with the published ECDSA key (ES256), for checking
// that a verifier pinned to RS256 refuses it.
func SignedWithEC() TokenOption {
	return func(m *mint) { m.key = keyEC }
}

// HS256WithPublicKey signs with HMAC-SHA256 using the published RSA public
// key (PEM) as the secret: the classic algorithm-confusion forgery.
func HS256WithPublicKey() TokenOption {
	return func(m *mint) { m.key = keyPublicPEM }
}

// AlgNone produces an unsigned token with "alg": "none".
func AlgNone() TokenOption {
	return func(m *mint) { m.key = keyNone }
}

// sign mints a token with claims, changed by opts.
func (k *keyring) sign(claims map[string]any, opts ...TokenOption) (string, error) {
	m := &mint{claims: maps.Clone(claims), kid: k.rsaKID, key: keyRSA, typ: "JWT"}
	for _, opt := range opts {
		opt(m)
	}
	var key jose.SigningKey
	switch m.key {
	case keyRSA:
		key = jose.SigningKey{Algorithm: jose.RS256, Key: k.rsa}
	case keyEC:
		key = jose.SigningKey{Algorithm: jose.ES256, Key: k.ec}
		if m.kid == k.rsaKID {
			m.kid = k.ecKID
		}
	case keyOther:
		key = jose.SigningKey{Algorithm: jose.RS256, Key: k.other}
	case keyPublicPEM:
		der, err := x509.MarshalPKIXPublicKey(k.rsa.Public())
		if err != nil {
			return "", err
		}
		key = jose.SigningKey{Algorithm: jose.HS256, Key: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})}
	case keyNone:
		return unsigned(m)
	}
	opt := (&jose.SignerOptions{}).WithType(jose.ContentType(m.typ)).WithHeader(jose.HeaderKey("kid"), m.kid)
	signer, err := jose.NewSigner(key, opt)
	if err != nil {
		return "", err
	}
	return jwt.Signed(signer).Claims(m.claims).Serialize()
}

// unsigned builds an "alg": "none" token by hand: go-jose rightly refuses
// to produce one.
func unsigned(m *mint) (string, error) {
	header, err := json.Marshal(map[string]string{"alg": "none", "typ": "JWT", "kid": m.kid})
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(m.claims)
	if err != nil {
		return "", err
	}
	enc := base64.RawURLEncoding
	return enc.EncodeToString(header) + "." + enc.EncodeToString(payload) + ".", nil
}

// baseClaims are the registered claims every minted token starts with.
func baseClaims(iss, sub string, aud any) map[string]any {
	now := time.Now()
	return map[string]any{
		"iss": iss,
		"sub": sub,
		"aud": aud,
		"iat": now.Unix(),
		"exp": now.Add(TokenLifetime).Unix(),
	}
}

func randomString(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return strings.TrimRight(base64.RawURLEncoding.EncodeToString(b), "=")
}
