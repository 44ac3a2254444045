package tokens

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/idbroker/broker/broker/answer"
	"github.com/idbroker/broker/broker/clients"
	"github.com/idbroker/broker/keys"
	"github.com/idbroker/broker/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// Grant is everything a token response is issued from, whichever grant
// produced it.
type Grant struct {
	User     storage.User
	ClientID string
	Scopes   []string
	Audience []string
	AuthTime time.Time
	AMR      []string
	IDP      string
	// Org is the broker organisation the login chose (its UUID), ""
	// for none; the tokens name it only with ScopeOrganization.
	Org       string
	Nonce     string
	GrantID   string // refresh family and code grant; revokes together
	SessionID string
	// Impersonator names whoever signed in as the user (upstream
	// impersonation), "" for the user's own login.
	Impersonator string
	// Granted is the audience the grant holds, which its refresh family
	// keeps for later requests to narrow; nil when it is Audience.
	Granted []string
	// Resource is the registered resource (RFC 8707) Audience names
	// alone, nil for none: the access token carries only the granted
	// scopes the resource defines and lives as long as the resource says.
	Resource *storage.Resource
	// NotAfter, when set, is the latest the access token may expire: a
	// token narrowed from another by token exchange never outlives it, or
	// re-exchanging before each expiry would keep a grant alive forever.
	NotAfter time.Time
}

// AccessScopes are the scope of g's access token: the granted scopes, or
// for a registered resource those of them it defines. The ID token and
// the refresh family keep all of Scopes.
func (g Grant) AccessScopes() []string {
	if g.Resource == nil {
		return g.Scopes
	}
	return slices.DeleteFunc(slices.Clone(g.Scopes), func(s string) bool { return !slices.Contains(g.Resource.Scopes, s) })
}

// granted is the audience g's refresh family keeps.
func (g Grant) granted() []string {
	if g.Granted != nil {
		return g.Granted
	}
	return g.Audience
}

// AccessTTL is the lifetime of g's access token: the resource's, when it
// sets one (never longer than ttl, Check), else ttl.
func (g Grant) AccessTTL(ttl time.Duration) time.Duration {
	if g.Resource != nil && g.Resource.AccessTokenTTL > 0 {
		return min(g.Resource.AccessTokenTTL, ttl)
	}
	return ttl
}

// act is the act claim of the grant's tokens (RFC 8693 section 4.1):
// the impersonator, when the user did not sign in themselves; nil
// otherwise.
func (g Grant) act() any {
	if g.Impersonator == "" {
		return nil
	}
	return ActClaim{Subject: g.Impersonator}
}

// AccessClaims are an RFC 9068 JWT access token's claims.
type AccessClaims struct {
	Issuer   string   `json:"iss"`
	Subject  string   `json:"sub"`
	Audience []string `json:"aud"`
	Expiry   int64    `json:"exp"`
	IssuedAt int64    `json:"iat"`
	JTI      string   `json:"jti"`
	ClientID string   `json:"client_id"`
	Scope    string   `json:"scope,omitempty"`
	AuthTime int64    `json:"auth_time,omitempty"`
	AMR      []string `json:"amr,omitempty"`
	IDP      string   `json:"idp,omitempty"`
	Org      string   `json:"org_id,omitempty"`
	OrgSlug  string   `json:"org_slug,omitempty"`
	Act      any      `json:"act,omitempty"`
}

// IDClaims are an OpenID Connect ID token's claims.
type IDClaims struct {
	Issuer          string   `json:"iss"`
	Subject         string   `json:"sub"`
	Audience        []string `json:"aud"`
	AuthorizedParty string   `json:"azp"`
	Expiry          int64    `json:"exp"`
	IssuedAt        int64    `json:"iat"`
	AuthTime        int64    `json:"auth_time,omitempty"`
	Nonce           string   `json:"nonce,omitempty"`
	AMR             []string `json:"amr,omitempty"`
	IDP             string   `json:"idp,omitempty"`
	Org             string   `json:"org_id,omitempty"`
	OrgSlug         string   `json:"org_slug,omitempty"`
	AccessTokenHash string   `json:"at_hash,omitempty"`
	// Act names an impersonator (RFC 8693 section 4.1), as in the access
	// token: a relying party must not take the session for the user's.
	Act any `json:"act,omitempty"`
	// SessionID is the broker session the login belongs to: what a
	// back-channel logout token names (Back-Channel Logout 1.0 section 2.1).
	SessionID string `json:"sid,omitempty"`
	UserClaims
}

// UserClaims are the claims about the user that scopes release.
type UserClaims struct {
	Email         string `json:"email,omitempty"`
	EmailVerified *bool  `json:"email_verified,omitempty"`
	Name          string `json:"name,omitempty"`
}

func claimsForScopes(u storage.User, scopes []string) UserClaims {
	var c UserClaims
	if slices.Contains(scopes, oidc.ScopeEmail) && u.Email != "" {
		c.Email = u.Email
		v := u.EmailVerified
		c.EmailVerified = &v
	}
	if slices.Contains(scopes, oidc.ScopeProfile) {
		// Relying parties take name for the display name and some
		// require it (Dex's oidc connector by default); a user no
		// upstream named (a one-time code's) is shown by email, as
		// Auth0 does.
		c.Name = cmp.Or(u.Name, u.Email)
	}
	return c
}

// IssueAccessToken signs an access token for g. Nothing is stored: the
// token carries what introspection and revocation need to answer for it
// (AccessClaims.ref).
func (t *Issuer) IssueAccessToken(g Grant, act any) (token string, expiresIn time.Duration, err error) {
	now := t.now()
	ttl := g.AccessTTL(t.cfg.AccessTokenTTL)
	exp := now.Add(ttl)
	// exp is kept in whole seconds: a NotAfter of the same second is no
	// earlier.
	if !g.NotAfter.IsZero() && g.NotAfter.Unix() < exp.Unix() {
		exp, ttl = g.NotAfter, max(g.NotAfter.Sub(now), 0)
	}
	scopes := g.AccessScopes()
	claims := AccessClaims{
		Issuer:   t.issuer,
		Subject:  g.User.ID,
		Audience: g.Audience,
		Expiry:   exp.Unix(),
		IssuedAt: now.Unix(),
		JTI:      newJTI(g.GrantID),
		ClientID: g.ClientID,
		Scope:    oidc.SpaceDelimitedArray(scopes).String(),
		AMR:      g.AMR,
		IDP:      g.IDP,
		Act:      act,
	}
	claims.Org, claims.OrgSlug = t.orgClaims(g.Org, scopes)
	if !g.AuthTime.IsZero() {
		claims.AuthTime = g.AuthTime.Unix()
	}
	if token, err = t.signAccessToken(claims); err != nil {
		return "", 0, err
	}
	return token, ttl, nil
}

// newJTI returns a unique jti that names the token's Grant, if it has one,
// as "<Grant id>.<random>": the broker keeps no record of access tokens,
// so a token must say which grant's revocation revokes it. Downstream
// services see what RFC 9068 promises, a unique identifier.
func newJTI(grantID string) string {
	if grantID == "" {
		return uuid.NewString()
	}
	return grantID + "." + uuid.NewString()
}

// ref is what storage needs to tell whether the token was revoked.
func (c AccessClaims) Ref() storage.AccessTokenRef {
	var grantID string
	if i := strings.LastIndexByte(c.JTI, '.'); i > 0 {
		grantID = c.JTI[:i]
	}
	return storage.AccessTokenRef{
		ID:        c.JTI,
		GrantID:   grantID,
		UserID:    c.Subject,
		IssuedAt:  time.Unix(c.IssuedAt, 0).UTC(),
		ExpiresAt: time.Unix(c.Expiry, 0).UTC(),
	}
}

// signAccessToken signs an access token with claims.
func (t *Issuer) signAccessToken(claims AccessClaims) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("marshal access token: %w", err)
	}
	// RFC 9068 section 2.1: typ "at+jwt", so an access token can never be
	// mistaken for an ID token.
	token, err := t.keys.Sign(keys.UseAccessToken, "", "at+jwt", payload)
	if err != nil {
		return "", fmt.Errorf("sign access token: %w", err)
	}
	return token, nil
}

// issueIDToken signs an ID token for g, bound to accessToken by at_hash,
// with alg, the client's ID-token algorithm ("" for the configured
// default). The client is the one the request authenticated, never
// looked up again: a metadata document that changed or failed since
// would otherwise fail a request whose code is already spent.
func (t *Issuer) issueIDToken(g Grant, alg, accessToken string) (string, error) {
	now := t.now()
	// The key that signs decides the at_hash hash (SHA-512 for EdDSA), so
	// take the signer first: during an algorithm change the configured
	// algorithm may still be pre-published and not yet signing.
	signer, err := t.keys.Signer(keys.UseIDToken, alg)
	if err != nil {
		return "", fmt.Errorf("id token signer: %w", err)
	}
	atHash, err := oidc.ClaimHash(accessToken, jose.SignatureAlgorithm(signer.Algorithm()))
	if err != nil {
		return "", fmt.Errorf("at_hash: %w", err)
	}
	claims := IDClaims{
		Issuer:          t.issuer,
		Subject:         g.User.ID,
		Audience:        []string{g.ClientID},
		AuthorizedParty: g.ClientID,
		Expiry:          now.Add(t.cfg.IDTokenTTL).Unix(),
		IssuedAt:        now.Unix(),
		Nonce:           g.Nonce,
		AMR:             g.AMR,
		IDP:             g.IDP,
		AccessTokenHash: atHash,
		Act:             g.act(),
		SessionID:       g.SessionID,
		UserClaims:      claimsForScopes(g.User, g.Scopes),
	}
	claims.Org, claims.OrgSlug = t.orgClaims(g.Org, g.Scopes)
	if !g.AuthTime.IsZero() {
		claims.AuthTime = g.AuthTime.Unix()
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("marshal id token: %w", err)
	}
	token, err := signer.Sign("JWT", payload)
	if err != nil {
		return "", fmt.Errorf("sign id token: %w", err)
	}
	return token, nil
}

// tokenResponse issues the access token, the ID token when openid was
// granted, and passes through the refresh token.
func (t *Issuer) tokenResponse(client *clients.Client, g Grant, refreshToken string) (*oidc.AccessTokenResponse, error) {
	at, ttl, err := t.IssueAccessToken(g, g.act())
	if err != nil {
		return nil, err
	}
	resp := &oidc.AccessTokenResponse{
		AccessToken:  at,
		TokenType:    oidc.BearerToken,
		ExpiresIn:    uint64(ttl / time.Second),
		RefreshToken: refreshToken,
		Scope:        g.AccessScopes(),
	}
	if slices.Contains(g.Scopes, oidc.ScopeOpenID) {
		if resp.IDToken, err = t.issueIDToken(g, client.IDTokenAlg(), at); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// newRefreshFamily starts a refresh family for g and returns its first
// token. Each login starts its own family, so a second device never logs
// out the first. A Grant revoked already (its code was replayed while this
// redemption was slow), or whose session ended or user's tokens were
// revoked meanwhile (a logout, a disabling), gets no family: invalid_grant.
func (t *Issuer) newRefreshFamily(ctx context.Context, g Grant, upstreamRefresh []byte) (string, error) {
	now := t.now()
	token := keys.RandomID()
	err := t.store.CreateRefreshFamily(ctx, storage.RefreshFamily{
		ID:                   g.GrantID,
		ClientID:             g.ClientID,
		UserID:               g.User.ID,
		Scopes:               g.Scopes,
		Audience:             g.granted(),
		AuthTime:             g.AuthTime,
		AMR:                  g.AMR,
		IDP:                  g.IDP,
		Org:                  g.Org,
		SessionID:            g.SessionID,
		UpstreamRefreshToken: upstreamRefresh,
		UpstreamCheckedAt:    now,
		Impersonator:         g.Impersonator,
		CreatedAt:            now,
		LastUsedAt:           now,
		ExpiresAt:            now.Add(t.cfg.RefreshTokenTTL),
		IdleTimeout:          t.cfg.RefreshIdleTTL,
	}, t.refreshHash(token))
	if errors.Is(err, storage.ErrRevoked) {
		return "", answer.InvalidGrant(ctx, t.log, "the Grant was revoked (its code used again, its session ended or its user's tokens revoked); sign in again",
			"client_id", g.ClientID, "sid", g.SessionID)
	}
	if err != nil {
		return "", t.failures.Store(ctx, "create refresh family", err)
	}
	return token, nil
}

func (t *Issuer) refreshHash(token string) []byte { return keys.TokenHash("refresh token", token) }

// refreshSuccessor derives the token that replaces token. Deriving it (an
// HMAC under a key from the root secret) rather than drawing it at random
// lets a client that lost the response retry with the old token and be
// given the very same successor, while storage holds only hashes.
func (t *Issuer) refreshSuccessor(token string) string {
	return base64.RawURLEncoding.EncodeToString(t.refreshKey.Sum(token))
}

// CodeHash is what storage keeps of an authorization code.
func CodeHash(code string) []byte { return keys.TokenHash("authorization code", code) }
