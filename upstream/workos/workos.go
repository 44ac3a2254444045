// Package workos is the broker's connector for WorkOS User Management
// (AuthKit), which is not an OpenID Connect provider: logins go through
// its authorize endpoint and POST /user_management/authenticate, and its
// access tokens are JWTs verified against the client's JWKS at
// /sso/jwks/<client_id> with the rate-limited key set of upstream/jwks.
//
// The subject is the WorkOS user id. The package imports no other package
// of the project but upstream and upstream/jwks: never another connector.
package workos

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	gooidc "github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/idbroker/broker/upstream"
	"github.com/idbroker/broker/upstream/jwks"
)

// DefaultBaseURL is WorkOS's API.
const DefaultBaseURL = "https://api.workos.com"

// Config configures a WorkOS connector.
type Config struct {
	ID       string `yaml:"-" json:"-"`
	ClientID string `yaml:"clientID" json:"clientID"`
	APIKey   string `yaml:"apiKey" json:"apiKey"` // sent as client_secret
	// BaseURL is DefaultBaseURL when empty.
	BaseURL string `yaml:"baseURL" json:"baseURL"`
	// AccessTokenIssuer is the iss every access token must carry; it
	// varies between WorkOS setups (custom auth domains).
	// BaseURL/user_management/<ClientID> when empty.
	AccessTokenIssuer string `yaml:"accessTokenIssuer" json:"accessTokenIssuer"`
	TrustEmail        bool   `yaml:"trustEmail" json:"trustEmail"`
	// Organization, when set, is requested at login and the
	// organization_id of every login must equal it.
	Organization string `yaml:"organization" json:"organization"`
	// AllowImpersonation accepts a login by a WorkOS dashboard member
	// impersonating the user (the answer names an impersonator, its
	// access token carries act); the identity then says who
	// (upstream.Identity.Impersonation). Refused with upstream.ErrDenied
	// when false.
	AllowImpersonation bool `yaml:"allowImpersonation" json:"allowImpersonation"`
	// HTTPClient makes every call; a client with a 10 s timeout when nil.
	HTTPClient *http.Client `yaml:"-" json:"-"`
	// Timeout bounds one fetch of the keys, which every call waiting for
	// it shares (jwks.RemoteKeySet); jwks.DefaultTimeout when zero. The
	// other calls to WorkOS are bounded by the caller's context and
	// HTTPClient.
	Timeout time.Duration `yaml:"-" json:"-"`
	// Clock is time.Now when nil.
	Clock func() time.Time `yaml:"-" json:"-"`
	// MaxClockSkew is the leeway on expiry: one minute when zero.
	MaxClockSkew time.Duration `yaml:"-" json:"-"`
	// MinKeyRefreshInterval as in jwks.KeySetConfig.
	MinKeyRefreshInterval time.Duration `yaml:"-" json:"-"`
}

// Connector is a WorkOS User Management upstream. It implements
// upstream.CallbackConnector, upstream.TokenVerifier and
// upstream.Refresher, and is safe for concurrent use.
type Connector struct {
	cfg      Config
	client   *http.Client
	keys     *jwks.RemoteKeySet
	verifier *gooidc.IDTokenVerifier
}

var (
	_ upstream.CallbackConnector = (*Connector)(nil)
	_ upstream.TokenVerifier     = (*Connector)(nil)
	_ upstream.Refresher         = (*Connector)(nil)
)

// New returns a WorkOS connector. It makes no call to WorkOS.
func New(cfg Config) (*Connector, error) {
	switch {
	case cfg.ID == "":
		return nil, errors.New("workos: connector has no id")
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("workos: connector %q: timeout %s is negative", cfg.ID, cfg.Timeout)
	}
	if err := cfg.Validate(cfg.ID); err != nil {
		return nil, err
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	cfg.BaseURL = strings.TrimSuffix(cfg.BaseURL, "/")
	if cfg.AccessTokenIssuer == "" {
		cfg.AccessTokenIssuer = cfg.BaseURL + "/user_management/" + cfg.ClientID
	}
	if cfg.MaxClockSkew == 0 {
		cfg.MaxClockSkew = upstream.DefaultMaxClockSkew
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: upstream.DefaultHTTPTimeout}
	}
	if cfg.Clock == nil {
		cfg.Clock = time.Now
	}
	keys := jwks.NewRemoteKeySet(cfg.BaseURL+"/sso/jwks/"+url.PathEscape(cfg.ClientID), jwks.KeySetConfig{
		HTTPClient:         cfg.HTTPClient,
		MinRefreshInterval: cfg.MinKeyRefreshInterval,
		Timeout:            cfg.Timeout,
		Clock:              cfg.Clock,
	})
	return &Connector{
		cfg:    cfg,
		client: cfg.HTTPClient,
		keys:   keys,
		verifier: gooidc.NewVerifier(cfg.AccessTokenIssuer, keys, &gooidc.Config{
			// WorkOS access tokens carry no aud: the key set, which is
			// the client's own, ties them to the client.
			SkipClientIDCheck:    true,
			SupportedSigningAlgs: []string{gooidc.RS256},
			// go-oidc checks exp with no leeway: a clock set back by the
			// skew gives it a bounded one.
			Now: func() time.Time { return cfg.Clock().Add(-cfg.MaxClockSkew) },
		}),
	}, nil
}

// ID implements upstream.Connector.
func (c *Connector) ID() string { return c.cfg.ID }

// TrustEmail implements upstream.Connector.
func (c *Connector) TrustEmail() bool { return c.cfg.TrustEmail }

// Issuers implements upstream.TokenVerifier.
func (c *Connector) Issuers() []string { return []string{c.cfg.AccessTokenIssuer} }

// LoginURL implements upstream.CallbackConnector: AuthKit's authorize
// endpoint with the state and the S256 challenge of s.CodeVerifier.
// WorkOS has no nonce; the access token is checked against the user
// instead.
func (c *Connector) LoginURL(ctx context.Context, s upstream.LoginState) (string, error) {
	if s.State == "" || s.CodeVerifier == "" || s.CallbackURL == "" {
		return "", fmt.Errorf("workos: connector %q: login state needs a callback URL, state and code verifier", c.cfg.ID)
	}
	q := url.Values{
		"client_id":             {c.cfg.ClientID},
		"redirect_uri":          {s.CallbackURL},
		"response_type":         {"code"},
		"state":                 {s.State},
		"provider":              {"authkit"},
		"code_challenge":        {oauth2.S256ChallengeFromVerifier(s.CodeVerifier)},
		"code_challenge_method": {"S256"},
	}
	if s.LoginHint != "" {
		q.Set("login_hint", s.LoginHint)
	}
	if c.cfg.Organization != "" {
		q.Set("organization_id", c.cfg.Organization)
	}
	return c.cfg.BaseURL + "/user_management/authorize?" + q.Encode(), nil
}

// HandleCallback implements upstream.CallbackConnector: it checks the
// state, redeems the code with the PKCE verifier, and verifies the access
// token that comes with the user (signature, RS256, issuer, expiry, and
// sub equal to the user's id).
func (c *Connector) HandleCallback(ctx context.Context, s upstream.LoginState, r *http.Request) (upstream.Identity, error) {
	q := r.URL.Query()
	if got := q.Get("state"); s.State == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.State)) != 1 {
		return upstream.Identity{}, fmt.Errorf("workos: callback state %q does not match the login's: %w", got, upstream.ErrInvalidToken)
	}
	if e := q.Get("error"); e != "" {
		return upstream.Identity{}, fmt.Errorf("workos: answered %q (%q): %w", e, q.Get("error_description"), upstream.ErrDenied)
	}
	code := q.Get("code")
	if code == "" {
		return upstream.Identity{}, fmt.Errorf("workos: callback has no code: %w", upstream.ErrInvalidToken)
	}
	return c.authenticate(ctx, map[string]string{
		"grant_type":    "authorization_code",
		"code":          code,
		"code_verifier": s.CodeVerifier,
	}, upstream.ErrInvalidToken)
}

// Refresh implements upstream.Refresher. WorkOS refresh tokens are
// single-use: the identity carries the new one, which the caller must
// keep. A refused refresh token is upstream.ErrDenied.
func (c *Connector) Refresh(ctx context.Context, refreshToken string) (upstream.Identity, error) {
	return c.authenticate(ctx, map[string]string{
		"grant_type":    "refresh_token",
		"refresh_token": refreshToken,
	}, upstream.ErrDenied)
}

// VerifyToken implements upstream.TokenVerifier for WorkOS access tokens
// (access or JWT token type; WorkOS issues no ID tokens): signature by the
// client's keys with RS256, issuer, expiry, and the organisation when one
// is configured. The identity has the user id and organisation only: an
// access token carries no email.
func (c *Connector) VerifyToken(ctx context.Context, rawToken, tokenType string) (upstream.Identity, error) {
	switch tokenType {
	case upstream.TokenTypeAccessToken, upstream.TokenTypeJWT:
	default:
		return upstream.Identity{}, fmt.Errorf("workos: token type %q not accepted: %w", tokenType, upstream.ErrInvalidToken)
	}
	claims, err := c.verifyAccessToken(ctx, rawToken)
	if err != nil {
		return upstream.Identity{}, err
	}
	sub, _ := claims["sub"].(string)
	org, _ := claims["org_id"].(string)
	if err := c.checkOrganization(org); err != nil {
		return upstream.Identity{}, err
	}
	return upstream.Identity{ConnectorID: c.cfg.ID, Subject: sub, Organization: org, Claims: claims}, nil
}

func (c *Connector) verifyAccessToken(ctx context.Context, raw string) (map[string]any, error) {
	tok, err := c.keys.Verify(ctx, c.verifier, raw)
	if err != nil {
		return nil, fmt.Errorf("workos: %w", err)
	}
	var claims map[string]any
	if err := tok.Claims(&claims); err != nil {
		return nil, fmt.Errorf("workos: access token claims: %w: %w", err, upstream.ErrInvalidToken)
	}
	if tok.Subject == "" {
		return nil, fmt.Errorf("workos: access token has no sub: %w", upstream.ErrInvalidToken)
	}
	return claims, nil
}

func (c *Connector) checkOrganization(org string) error {
	if c.cfg.Organization != "" && org != c.cfg.Organization {
		return fmt.Errorf("workos: organization %q, want %q: %w", org, c.cfg.Organization, upstream.ErrInvalidToken)
	}
	return nil
}

// authentication is the answer of /user_management/authenticate.
type authentication struct {
	User struct {
		ID            string `json:"id"`
		Email         string `json:"email"`
		EmailVerified bool   `json:"email_verified"`
		FirstName     string `json:"first_name"`
		LastName      string `json:"last_name"`
	} `json:"user"`
	OrganizationID string `json:"organization_id"`
	AccessToken    string `json:"access_token"`
	RefreshToken   string `json:"refresh_token"`
	// Impersonator is set when a dashboard member signed in as the user.
	Impersonator *struct {
		Email  string `json:"email"`
		Reason string `json:"reason"`
	} `json:"impersonator"`
}

// authenticate posts a grant to /user_management/authenticate and turns
// the answer into an identity. invalidGrant is what a refused grant means
// to the caller.
func (c *Connector) authenticate(ctx context.Context, grant map[string]string, invalidGrant error) (upstream.Identity, error) {
	grant["client_id"] = c.cfg.ClientID
	grant["client_secret"] = c.cfg.APIKey
	var a authentication
	if err := c.post(ctx, "/user_management/authenticate", grant, &a, invalidGrant); err != nil {
		return upstream.Identity{}, err
	}
	if a.User.ID == "" {
		return upstream.Identity{}, fmt.Errorf("workos: authentication has no user id: %w", upstream.ErrInvalidToken)
	}
	claims, err := c.verifyAccessToken(ctx, a.AccessToken)
	if err != nil {
		return upstream.Identity{}, err
	}
	if sub := claims["sub"]; sub != a.User.ID {
		return upstream.Identity{}, fmt.Errorf("workos: access token sub %q is not user %q: %w", sub, a.User.ID, upstream.ErrInvalidToken)
	}
	if err := c.checkOrganization(a.OrganizationID); err != nil {
		return upstream.Identity{}, err
	}
	imp, err := c.impersonation(a, claims)
	if err != nil {
		return upstream.Identity{}, err
	}
	// An address that does not normalise is no address, and not verified.
	email, _ := upstream.NormalizeEmail(a.User.Email)
	return upstream.Identity{
		ConnectorID:   c.cfg.ID,
		Subject:       a.User.ID,
		Email:         email,
		EmailVerified: email != "" && a.User.EmailVerified,
		Name:          strings.TrimSpace(a.User.FirstName + " " + a.User.LastName),
		Organization:  a.OrganizationID,
		Claims:        claims,
		RefreshToken:  a.RefreshToken,
		Impersonation: imp,
	}, nil
}

// impersonationActorPrefix starts the act subject naming a WorkOS
// impersonator: never a platform UUID, so no one mistakes it for a user.
const impersonationActorPrefix = "workos-impersonator:"

// impersonation reads who impersonates the user, if anyone: WorkOS names
// the impersonator in the answer and puts act in the access token. Either
// one is impersonation; both must name the same person. It is
// upstream.ErrDenied unless Config.AllowImpersonation.
func (c *Connector) impersonation(a authentication, claims map[string]any) (*upstream.Impersonation, error) {
	var fromToken string
	if act, ok := claims["act"]; ok {
		m, _ := act.(map[string]any)
		fromToken, _ = m["sub"].(string)
		if fromToken == "" {
			return nil, fmt.Errorf("workos: access token act %v names no sub: %w", act, upstream.ErrInvalidToken)
		}
	}
	if a.Impersonator == nil && fromToken == "" {
		return nil, nil
	}
	imp := upstream.Impersonation{Email: fromToken}
	if a.Impersonator != nil {
		imp.Email, imp.Reason = a.Impersonator.Email, a.Impersonator.Reason
	}
	named := imp.Email
	imp.Email, _ = upstream.NormalizeEmail(imp.Email)
	switch {
	case imp.Email == "":
		return nil, fmt.Errorf("workos: impersonator without an email (named %q): %w", named, upstream.ErrInvalidToken)
	case fromToken != "" && !strings.EqualFold(fromToken, imp.Email):
		return nil, fmt.Errorf("workos: impersonator %q, but the access token's act names %q: %w", imp.Email, fromToken, upstream.ErrInvalidToken)
	case !c.cfg.AllowImpersonation:
		return nil, fmt.Errorf("workos: user %q impersonated by %q, and connector %q does not allow impersonation: %w",
			a.User.ID, imp.Email, c.cfg.ID, upstream.ErrDenied)
	}
	imp.Actor = impersonationActorPrefix + imp.Email
	return &imp, nil
}

// post sends body as JSON and decodes the answer into v. Unreachable, 429
// and 5xx are upstream.ErrUnavailable; invalid_grant wraps invalidGrant;
// any other refusal (a bad API key) is the broker's configuration and
// wraps no sentinel.
func (c *Connector) post(ctx context.Context, path string, body, v any, invalidGrant error) error {
	b, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("workos: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.cfg.BaseURL+path, bytes.NewReader(b))
	if err != nil {
		return fmt.Errorf("workos: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := c.client.Do(req)
	if err != nil {
		return fmt.Errorf("workos: POST %s: %w: %w", path, err, upstream.ErrUnavailable)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("workos: POST %s: reading: %w: %w", path, err, upstream.ErrUnavailable)
	}
	switch {
	case resp.StatusCode == http.StatusOK:
		if err := json.Unmarshal(data, v); err != nil {
			return fmt.Errorf("workos: POST %s: decoding: %w: %w", path, err, upstream.ErrUnavailable)
		}
		return nil
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500:
		return fmt.Errorf("workos: POST %s: %s: %w", path, resp.Status, upstream.ErrUnavailable)
	}
	var e struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	json.Unmarshal(data, &e)
	if e.Error == "invalid_grant" {
		return fmt.Errorf("workos: POST %s: %s %q (%q): %w", path, resp.Status, e.Error, e.Description, invalidGrant)
	}
	return fmt.Errorf("workos: POST %s: %s %q (%q)", path, resp.Status, e.Error, e.Description)
}
