// Package legacy is the broker's connector for a platform's own session
// service: the opaque session tokens its frontends already hold are
// verified by calling the service's validation endpoint (like
// platform-api's POST /public/auth/validate), whose JSON answer names the
// user by the platform UUID. That lets a platform move behind the broker
// one backend at a time, exchanging old tokens for broker tokens without
// any user changing id.
//
// The package owns the call to the validation endpoint, the mapping of its
// answer to an upstream.Identity (whose UserID is the platform UUID) and a
// short, bounded cache of successful answers keyed by the SHA-256 of the
// token. It never keeps, logs or returns the token itself, and imports no
// package of the project but upstream.
package legacy

import (
	"bytes"
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/idbroker/broker/upstream"
)

// Defaults of Config.
const (
	DefaultMethod    = http.MethodPost
	DefaultTokenIn   = "header:X-User-Token"
	DefaultTimeout   = 5 * time.Second
	DefaultCacheTTL  = 30 * time.Second
	DefaultCacheSize = 10000
)

// MaxAnswerSize is the most of a validation answer that is read; a longer
// answer is refused.
const MaxAnswerSize = 64 << 10

// maxTokenSize bounds what is sent upstream: session tokens are short,
// and anything larger is not one.
const maxTokenSize = 8 << 10

// Config configures a legacy connector.
type Config struct {
	ID string `yaml:"-" json:"-"`
	// ValidateURL is the legacy service's validation endpoint, e.g.
	// https://platform-api/public/auth/validate (http or https).
	ValidateURL string `yaml:"validateURL" json:"validateURL"`
	// Method is GET or POST; DefaultMethod when empty.
	Method string `yaml:"method" json:"method"`
	// TokenIn says where the token goes: "header:<Name>" (DefaultTokenIn
	// when empty), "bearer" (Authorization: Bearer), "body:<field>" (a
	// JSON object) or "form:<field>" (a form; body and form need POST).
	// Never the query string, which ends up in access logs.
	TokenIn string `yaml:"tokenIn" json:"tokenIn"`
	// Fields name the answer's fields.
	Fields Fields `yaml:"fields" json:"fields"`
	// Timeout bounds one call to the legacy service; DefaultTimeout when
	// zero.
	Timeout time.Duration `yaml:"-" json:"-"`
	// ClientID and ClientSecret, when set, are sent as HTTP Basic
	// authentication with every call (so they cannot be combined with
	// a token in the Authorization header).
	ClientID     string `yaml:"clientID" json:"clientID"`
	ClientSecret string `yaml:"clientSecret" json:"clientSecret"`
	TrustEmail   bool   `yaml:"trustEmail" json:"trustEmail"`
	// CacheTTL is how long a successful answer is reused:
	// DefaultCacheTTL when zero, no caching when negative. A session
	// ended at the legacy service stays accepted here for up to
	// CacheTTL.
	CacheTTL time.Duration `yaml:"cacheTTL" json:"cacheTTL"`
	// CacheSize is the most answers kept; DefaultCacheSize when zero.
	CacheSize int `yaml:"cacheSize" json:"cacheSize"`
	// HTTPClient makes every call; http.DefaultTransport when nil. The
	// connector uses a copy that follows no redirect (a redirect would
	// carry the token to wherever it points) and keeps no cookies
	// (they would mix sessions of different users).
	HTTPClient *http.Client `yaml:"-" json:"-"`
	// Clock is time.Now when nil; it dates cache entries.
	Clock func() time.Time `yaml:"-" json:"-"`
}

// Fields are the names of the answer's fields. A name with dots is a path
// into nested objects ("user.id"); a field name that itself contains a
// dot cannot be named.
type Fields struct {
	UserID string `yaml:"userId" json:"userId"` // "userId" when empty; must be a UUID
	Email  string `yaml:"email" json:"email"`   // "email" when empty
	Name   string `yaml:"name" json:"name"`     // "name" when empty
	// EmailVerified is a boolean field saying the email is verified.
	// When empty no email from this service is verified.
	EmailVerified string `yaml:"emailVerified" json:"emailVerified"`
}

// Connector is a legacy session service upstream. It implements
// upstream.OpaqueTokenVerifier and is safe for concurrent use.
type Connector struct {
	cfg    Config
	url    *url.URL
	place  placement
	client *http.Client
	cache  *cache
}

var _ upstream.OpaqueTokenVerifier = (*Connector)(nil)

// placement is a parsed Config.TokenIn.
type placement struct {
	kind string // "header", "bearer", "body" or "form"
	name string // header name or field name
}

// New returns a legacy connector. It makes no call to the legacy service.
func New(cfg Config) (*Connector, error) {
	if cfg.ID == "" {
		return nil, errors.New("legacy: connector has no id")
	}
	u, err := url.Parse(cfg.ValidateURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("legacy: connector %q: validate URL %q is not an absolute http(s) URL", cfg.ID, redact(cfg.ValidateURL))
	}
	cfg.Method = strings.ToUpper(cfg.Method)
	switch cfg.Method {
	case "":
		cfg.Method = DefaultMethod
	case http.MethodGet, http.MethodPost:
	default:
		return nil, fmt.Errorf("legacy: connector %q: method %q is not GET or POST", cfg.ID, cfg.Method)
	}
	if cfg.TokenIn == "" {
		cfg.TokenIn = DefaultTokenIn
	}
	place, err := parsePlacement(cfg.TokenIn)
	if err != nil {
		return nil, fmt.Errorf("legacy: connector %q: %w", cfg.ID, err)
	}
	if (place.kind == "body" || place.kind == "form") && cfg.Method != http.MethodPost {
		return nil, fmt.Errorf("legacy: connector %q: token in %q needs method POST, not %q", cfg.ID, cfg.TokenIn, cfg.Method)
	}
	if cfg.ClientSecret != "" && cfg.ClientID == "" {
		return nil, fmt.Errorf("legacy: connector %q has a client secret but no client id", cfg.ID)
	}
	if cfg.ClientID != "" && (place.kind == "bearer" || place.kind == "header" && place.name == "Authorization") {
		return nil, fmt.Errorf("legacy: connector %q: token in %q and client credentials would both need the Authorization header", cfg.ID, cfg.TokenIn)
	}
	cfg.Fields.UserID = cmp.Or(cfg.Fields.UserID, "userId")
	cfg.Fields.Email = cmp.Or(cfg.Fields.Email, "email")
	cfg.Fields.Name = cmp.Or(cfg.Fields.Name, "name")
	for _, path := range []string{cfg.Fields.UserID, cfg.Fields.Email, cfg.Fields.Name, cfg.Fields.EmailVerified} {
		if path != "" && !validPath(path) {
			return nil, fmt.Errorf("legacy: connector %q: field %q has an empty name between dots", cfg.ID, path)
		}
	}
	switch {
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("legacy: connector %q: timeout %s is negative", cfg.ID, cfg.Timeout)
	case cfg.Timeout == 0:
		cfg.Timeout = DefaultTimeout
	}
	if cfg.CacheTTL == 0 {
		cfg.CacheTTL = DefaultCacheTTL
	}
	switch {
	case cfg.CacheSize < 0:
		return nil, fmt.Errorf("legacy: connector %q: cache size %d is negative", cfg.ID, cfg.CacheSize)
	case cfg.CacheSize == 0:
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	var client http.Client
	if cfg.HTTPClient != nil {
		client = *cfg.HTTPClient
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	client.Jar = nil
	return &Connector{
		cfg:    cfg,
		url:    u,
		place:  place,
		client: &client,
		cache:  newCache(cfg.CacheTTL, cfg.CacheSize, cfg.Clock),
	}, nil
}

func parsePlacement(tokenIn string) (placement, error) {
	if tokenIn == "bearer" {
		return placement{kind: "bearer"}, nil
	}
	kind, name, _ := strings.Cut(tokenIn, ":")
	switch kind {
	case "header":
		if !validHeaderName(name) {
			return placement{}, fmt.Errorf("token in %q: %q is not a header name", tokenIn, name)
		}
		return placement{kind: kind, name: http.CanonicalHeaderKey(name)}, nil
	case "body", "form":
		if name == "" {
			return placement{}, fmt.Errorf("token in %q names no field", tokenIn)
		}
		return placement{kind: kind, name: name}, nil
	}
	return placement{}, fmt.Errorf("token in %q is not header:<name>, bearer, body:<field> or form:<field>", tokenIn)
}

// validHeaderName reports whether s is an RFC 9110 field name (a token).
func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		ok := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
		if !ok {
			return false
		}
	}
	return true
}

func validPath(path string) bool {
	for part := range strings.SplitSeq(path, ".") {
		if part == "" {
			return false
		}
	}
	return true
}

// redact hides a password in a URL that is about to be quoted.
func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		return u.Redacted()
	}
	return raw
}

// ID implements upstream.Connector.
func (c *Connector) ID() string { return c.cfg.ID }

// TrustEmail implements upstream.Connector.
func (c *Connector) TrustEmail() bool { return c.cfg.TrustEmail }

// Issuers implements upstream.TokenVerifier. Legacy tokens are opaque and
// name no issuer, so it is empty: a client names the connector.
func (c *Connector) Issuers() []string { return nil }

// VerifiesOpaqueTokens implements upstream.OpaqueTokenVerifier: session
// tokens are opaque.
func (c *Connector) VerifiesOpaqueTokens() {}

// VerifyToken implements upstream.TokenVerifier for legacy session tokens,
// which are accepted only as the access_token type. It asks the legacy
// service (or the cache) who the token belongs to. The identity's Subject
// and UserID are both the answer's userId in canonical lower-case UUID
// form; Claims are the answer's top-level fields.
//
// A 401 or 403 from the service, and a 200 without a usable identity (not
// a JSON object, no userId, a userId that is not a UUID), are
// upstream.ErrInvalidToken: the broker does not guess an identity. Any
// other status, a timeout or an unreachable service is
// upstream.ErrUnavailable. Only successes are cached: a refused token is
// asked about again every time (concurrent asks share one call).
// VerifyToken does not learn of a session ended at the service while its
// answer is cached.
func (c *Connector) VerifyToken(ctx context.Context, rawToken, tokenType string) (upstream.Identity, error) {
	if tokenType != upstream.TokenTypeAccessToken {
		return upstream.Identity{}, fmt.Errorf("legacy: connector %q: token type %q not accepted: %w", c.cfg.ID, tokenType, upstream.ErrInvalidToken)
	}
	if err := checkToken(rawToken); err != nil {
		return upstream.Identity{}, fmt.Errorf("legacy: connector %q: %w: %w", c.cfg.ID, err, upstream.ErrInvalidToken)
	}
	key := sha256.Sum256([]byte(rawToken))
	return c.cache.do(ctx, key, func(ctx context.Context) (upstream.Identity, error) {
		return c.validate(ctx, rawToken)
	})
}

// checkToken refuses what cannot be a session token before it is sent
// anywhere; its errors never quote the token.
func checkToken(raw string) error {
	switch {
	case raw == "":
		return errors.New("empty token")
	case len(raw) > maxTokenSize:
		return fmt.Errorf("token is longer than %d bytes", maxTokenSize)
	}
	for i := 0; i < len(raw); i++ {
		// Visible ASCII only: the token may go in a header, where a
		// control character would be refused by net/http (and misread
		// as the service being down) or split the request.
		if raw[i] < 0x21 || raw[i] > 0x7e {
			return fmt.Errorf("token has a byte outside visible ASCII at offset %d", i)
		}
	}
	return nil
}

// validate asks the legacy service about rawToken.
func (c *Connector) validate(ctx context.Context, rawToken string) (upstream.Identity, error) {
	ctx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := c.newRequest(ctx, rawToken)
	if err != nil {
		return upstream.Identity{}, fmt.Errorf("legacy: connector %q: %w", c.cfg.ID, err)
	}
	where := c.cfg.Method + " " + c.url.Redacted()
	resp, err := c.client.Do(req)
	if err != nil {
		return upstream.Identity{}, fmt.Errorf("legacy: connector %q: %s: %w: %w", c.cfg.ID, where, err, upstream.ErrUnavailable)
	}
	defer func() {
		// Draining a little lets the connection be reused.
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		resp.Body.Close()
	}()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized, http.StatusForbidden:
		// The body is not quoted: a service may echo the token in it.
		return upstream.Identity{}, fmt.Errorf("legacy: connector %q: %s answered %q: %w", c.cfg.ID, where, resp.Status, upstream.ErrInvalidToken)
	default:
		// Nothing is decided from an answer the contract does not
		// define: a redirect or 404 is more likely a misconfigured
		// URL than a refused token.
		return upstream.Identity{}, fmt.Errorf("legacy: connector %q: %s answered %q (only 200, 401 and 403 are understood): %w", c.cfg.ID, where, resp.Status, upstream.ErrUnavailable)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, MaxAnswerSize+1))
	if err != nil {
		return upstream.Identity{}, fmt.Errorf("legacy: connector %q: %s: reading the answer: %w: %w", c.cfg.ID, where, err, upstream.ErrUnavailable)
	}
	if len(data) > MaxAnswerSize {
		return upstream.Identity{}, fmt.Errorf("legacy: connector %q: %s: answer is longer than %d bytes: %w", c.cfg.ID, where, MaxAnswerSize, upstream.ErrInvalidToken)
	}
	id, err := c.identity(data)
	if err != nil {
		return upstream.Identity{}, fmt.Errorf("legacy: connector %q: %s: %w: %w", c.cfg.ID, where, err, upstream.ErrInvalidToken)
	}
	return id, nil
}

// newRequest builds the validation request with the token where the
// configuration puts it.
func (c *Connector) newRequest(ctx context.Context, rawToken string) (*http.Request, error) {
	var body io.Reader
	var contentType string
	switch c.place.kind {
	case "body":
		b, err := json.Marshal(map[string]string{c.place.name: rawToken})
		if err != nil {
			return nil, err
		}
		body, contentType = bytes.NewReader(b), "application/json"
	case "form":
		body, contentType = strings.NewReader(url.Values{c.place.name: {rawToken}}.Encode()), "application/x-www-form-urlencoded"
	}
	req, err := http.NewRequestWithContext(ctx, c.cfg.Method, c.url.String(), body)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	switch c.place.kind {
	case "header":
		req.Header.Set(c.place.name, rawToken)
	case "bearer":
		req.Header.Set("Authorization", "Bearer "+rawToken)
	}
	if c.cfg.ClientID != "" {
		req.SetBasicAuth(c.cfg.ClientID, c.cfg.ClientSecret)
	}
	return req, nil
}
