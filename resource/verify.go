package resource

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	"github.com/google/uuid"
)

// Defaults and bounds of Config.
const (
	DefaultClockSkew          = time.Minute
	MaxClockSkew              = 5 * time.Minute
	DefaultRefreshInterval    = 5 * time.Minute
	DefaultMinRefreshInterval = 30 * time.Second
)

// ErrExpired is wrapped by the error Verify returns for a token whose exp
// has passed (beyond the clock skew), so that a caller can tell the
// client to get a new one.
var ErrExpired = errors.New("resource: token expired")

// ErrKeysUnavailable is wrapped by the error Verify returns when the
// broker's key set could not be fetched and none is cached: the token
// was not judged, and the right answer is 503, not 401.
var ErrKeysUnavailable = errors.New("resource: key set unavailable")

// Config configures a Verifier.
type Config struct {
	// Issuer is the broker's issuer URL, exactly as its tokens' iss and
	// its discovery document name it. Required.
	Issuer string
	// Audience is this service's identifier: a token is accepted only
	// when its aud contains it. Required.
	Audience string
	// JWKSURL is where the broker's key set is fetched. Empty: it is
	// discovered from Issuer + "/.well-known/openid-configuration", whose
	// issuer must equal Issuer.
	JWKSURL string
	// ClockSkew is how far this machine's clock may be from the
	// broker's when exp, nbf and iat are compared. Default
	// DefaultClockSkew; at most MaxClockSkew.
	ClockSkew time.Duration
	// RefreshInterval is how long a fetched key set is trusted before it
	// is fetched again, so that a key the broker removed stops verifying.
	// Default DefaultRefreshInterval.
	RefreshInterval time.Duration
	// MinRefreshInterval is the least time between two fetches of the key
	// set: a token naming a key the set lacks makes a fetch at most this
	// often, so forged kids cannot make this service hammer the broker.
	// Default DefaultMinRefreshInterval.
	MinRefreshInterval time.Duration
	// HTTPClient fetches discovery and the key set. Default: a client
	// with a 10 s timeout.
	HTTPClient *http.Client
	// Clock is the current time. Default time.Now.
	Clock func() time.Time
}

// A Verifier verifies the broker's access tokens for one audience. It is
// safe for concurrent use; build one per process and share it, since it
// holds the cached key set.
type Verifier struct {
	issuer   string
	audience string
	skew     time.Duration
	now      func() time.Time
	keys     *keySet
}

// NewVerifier returns a Verifier for cfg. Unless cfg.JWKSURL is set it
// fetches the broker's discovery document first, and fails when the
// broker cannot be reached or names another issuer.
func NewVerifier(ctx context.Context, cfg Config) (*Verifier, error) {
	if err := checkURL(cfg.Issuer); err != nil {
		return nil, fmt.Errorf("resource: issuer %q: %w", cfg.Issuer, err)
	}
	if cfg.Audience == "" {
		return nil, errors.New("resource: an audience is required")
	}
	if cfg.ClockSkew == 0 {
		cfg.ClockSkew = DefaultClockSkew
	}
	if cfg.ClockSkew < 0 || cfg.ClockSkew > MaxClockSkew {
		return nil, fmt.Errorf("resource: clock skew %v is not between 0 and %v", cfg.ClockSkew, MaxClockSkew)
	}
	if cfg.RefreshInterval == 0 {
		cfg.RefreshInterval = DefaultRefreshInterval
	}
	if cfg.MinRefreshInterval == 0 {
		cfg.MinRefreshInterval = DefaultMinRefreshInterval
	}
	if cfg.RefreshInterval < 0 || cfg.MinRefreshInterval < 0 {
		return nil, errors.New("resource: negative refresh interval")
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	if cfg.JWKSURL == "" {
		u, err := discoverKeySet(ctx, cfg.HTTPClient, cfg.Issuer)
		if err != nil {
			return nil, err
		}
		cfg.JWKSURL = u
	} else if err := checkURL(cfg.JWKSURL); err != nil {
		return nil, fmt.Errorf("resource: JWKS URL %q: %w", cfg.JWKSURL, err)
	}
	return &Verifier{
		issuer:   cfg.Issuer,
		audience: cfg.Audience,
		skew:     cfg.ClockSkew,
		now:      cfg.Clock,
		keys: &keySet{
			url:    cfg.JWKSURL,
			client: cfg.HTTPClient,
			now:    cfg.Clock,
			maxAge: cfg.RefreshInterval,
			minGap: cfg.MinRefreshInterval,
		},
	}, nil
}

// Audience is the audience the Verifier accepts.
func (v *Verifier) Audience() string { return v.audience }

// signatureAlgorithms are the algorithms a token may name at all: the
// asymmetric ones. "none" and HMAC fail parsing, before any key is looked
// at; each key then narrows this to its own (keyAccepts).
var signatureAlgorithms = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA,
}

// accessClaims are the claims of an RFC 9068 access token that Verify
// reads besides the registered ones.
type accessClaims struct {
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
	Email    string `json:"email"`
	OrgID    string `json:"org_id"`
	Act      *Actor `json:"act"`
}

// Verify checks raw, a broker access token, and returns what it says.
// It checks, in this order: a JWS compact serialization with one
// signature; an asymmetric alg (never "none", never HMAC); typ "at+jwt" or
// "application/at+jwt", compared case-insensitively (RFC 9068 section 4),
// so an ID token is never taken for an access token; a kid naming a key
// of the broker's key set whose alg (or, for a key without one, whose
// type) matches the token's; the signature; iss equal to the configured
// issuer; aud containing the configured audience; exp present and not
// past, nbf and iat not in the future, each with the clock skew; sub a
// UUID; client_id, iat and jti present.
//
// Verify does not check scopes (Token.HasScopes and Middleware.Scopes
// do), revocation (the broker's tokens are short-lived; use its
// introspection endpoint where a revoked token must stop at once),
// whether an act actor may act for the subject, auth_time or amr, or
// org_id against anything. A token signed by a key the broker has removed
// still verifies until the key set is next fetched (RefreshInterval), or
// for as long as the broker cannot be reached after that.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Token, error) {
	tok, err := jwt.ParseSigned(raw, signatureAlgorithms)
	if err != nil {
		return nil, fmt.Errorf("resource: malformed token: %w", err)
	}
	if len(tok.Headers) != 1 {
		return nil, fmt.Errorf("resource: token has %d signatures, want 1", len(tok.Headers))
	}
	h := tok.Headers[0]
	typ, _ := h.ExtraHeaders[jose.HeaderType].(string)
	if !strings.EqualFold(typ, "at+jwt") && !strings.EqualFold(typ, "application/at+jwt") {
		return nil, fmt.Errorf("resource: token typ %q is not at+jwt: not an access token", typ)
	}
	if h.KeyID == "" {
		return nil, errors.New("resource: token names no kid")
	}
	keys, err := v.keys.lookup(ctx, h.KeyID)
	if err != nil {
		return nil, err
	}
	var (
		std     jwt.Claims
		claims  accessClaims
		payload json.RawMessage
		found   bool
	)
	for _, k := range keys {
		if !keyAccepts(k, h.Algorithm) {
			continue
		}
		found = true
		if err = tok.Claims(k.Key, &std, &claims, &payload); err == nil {
			break
		}
	}
	switch {
	case !found:
		return nil, fmt.Errorf("resource: no key %q for algorithm %q in the broker's key set", h.KeyID, h.Algorithm)
	case err != nil:
		return nil, fmt.Errorf("resource: signature by key %q: %w", h.KeyID, err)
	}
	now := v.now()
	if std.Expiry == nil || std.IssuedAt == nil || std.ID == "" || claims.ClientID == "" {
		return nil, errors.New("resource: token lacks exp, iat, jti or client_id")
	}
	err = std.ValidateWithLeeway(jwt.Expected{Issuer: v.issuer, AnyAudience: jwt.Audience{v.audience}, Time: now}, v.skew)
	switch {
	case errors.Is(err, jwt.ErrExpired):
		return nil, fmt.Errorf("%w at %s", ErrExpired, std.Expiry.Time().UTC().Format(time.RFC3339))
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return nil, fmt.Errorf("resource: token issuer %q is not %q", std.Issuer, v.issuer)
	case errors.Is(err, jwt.ErrInvalidAudience):
		return nil, fmt.Errorf("resource: token audience %q does not contain %q", []string(std.Audience), v.audience)
	case err != nil:
		return nil, fmt.Errorf("resource: token claims: %w", err)
	}
	sub, err := uuid.Parse(std.Subject)
	if err != nil || len(std.Subject) != len(uuid.Nil.String()) {
		return nil, fmt.Errorf("resource: token sub %q is not a UUID", std.Subject)
	}
	return &Token{
		Subject:  sub.String(),
		Email:    claims.Email,
		Scopes:   strings.Fields(claims.Scope),
		Actor:    claims.Act,
		OrgID:    claims.OrgID,
		ClientID: claims.ClientID,
		Audience: slices.Clone(std.Audience),
		Expiry:   std.Expiry.Time(),
		IssuedAt: std.IssuedAt.Time(),
		ID:       std.ID,
		Raw:      raw,
		claims:   payload,
	}, nil
}

// keyAccepts reports whether k may verify a signature by alg: its own alg
// when it names one, else an algorithm of its key type, and in both cases
// one that fits the key (an RSA key of at least 2048 bits, an EC key on
// the curve alg names, an Ed25519 key).
func keyAccepts(k jose.JSONWebKey, alg string) bool {
	if k.Algorithm != "" && k.Algorithm != alg {
		return false
	}
	switch key := k.Key.(type) {
	case *rsa.PublicKey:
		return key.N.BitLen() >= 2048 && slices.Contains([]string{"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"}, alg)
	case *ecdsa.PublicKey:
		switch key.Curve {
		case elliptic.P256():
			return alg == "ES256"
		case elliptic.P384():
			return alg == "ES384"
		case elliptic.P521():
			return alg == "ES512"
		}
	case ed25519.PublicKey:
		return alg == "EdDSA"
	}
	return false
}

// checkURL reports why s is not an absolute http(s) URL.
func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return err
	}
	if (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Fragment != "" {
		return errors.New("not an absolute http(s) URL")
	}
	return nil
}
