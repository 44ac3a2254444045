package broker

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/uuid"
	"github.com/idbroker/broker/keys"
	"github.com/idbroker/broker/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// grant is everything a token response is issued from, whichever grant
// produced it.
type grant struct {
	user      storage.User
	clientID  string
	scopes    []string
	audience  []string
	authTime  time.Time
	amr       []string
	idp       string
	org       string
	nonce     string
	grantID   string // refresh family and code grant; revokes together
	sessionID string
	// impersonator names whoever signed in as the user (upstream
	// impersonation), "" for the user's own login.
	impersonator string
}

// act is the act claim of the grant's tokens (RFC 8693 section 4.1):
// the impersonator, when the user did not sign in themselves; nil
// otherwise.
func (g grant) act() any {
	if g.impersonator == "" {
		return nil
	}
	return actClaim{Subject: g.impersonator}
}

// accessTokenClaims are an RFC 9068 JWT access token's claims.
type accessTokenClaims struct {
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
	Act      any      `json:"act,omitempty"`
}

// idTokenClaims are an OpenID Connect ID token's claims.
type idTokenClaims struct {
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
	AccessTokenHash string   `json:"at_hash,omitempty"`
	// Act names an impersonator (RFC 8693 section 4.1), as in the access
	// token: a relying party must not take the session for the user's.
	Act any `json:"act,omitempty"`
	// SessionID is the broker session the login belongs to: what a
	// back-channel logout token names (Back-Channel Logout 1.0 section 2.1).
	SessionID string `json:"sid,omitempty"`
	userClaims
}

// userClaims are the claims about the user that scopes release.
type userClaims struct {
	Email         string `json:"email,omitempty"`
	EmailVerified *bool  `json:"email_verified,omitempty"`
	Name          string `json:"name,omitempty"`
}

func claimsForScopes(u storage.User, scopes []string) userClaims {
	var c userClaims
	if slices.Contains(scopes, oidc.ScopeEmail) && u.Email != "" {
		c.Email = u.Email
		v := u.EmailVerified
		c.EmailVerified = &v
	}
	if slices.Contains(scopes, oidc.ScopeProfile) {
		c.Name = u.Name
	}
	return c
}

// issueAccessToken signs an access token for g. Nothing is stored: the
// token carries what introspection and revocation need to answer for it
// (accessTokenClaims.ref).
func (b *Broker) issueAccessToken(g grant, act any) (token string, expiresIn time.Duration, err error) {
	now := b.now()
	exp := now.Add(b.cfg.Tokens.AccessTokenTTL)
	claims := accessTokenClaims{
		Issuer:   b.issuer,
		Subject:  g.user.ID,
		Audience: g.audience,
		Expiry:   exp.Unix(),
		IssuedAt: now.Unix(),
		JTI:      newJTI(g.grantID),
		ClientID: g.clientID,
		Scope:    oidc.SpaceDelimitedArray(g.scopes).String(),
		AMR:      g.amr,
		IDP:      g.idp,
		Org:      g.org,
		Act:      act,
	}
	if !g.authTime.IsZero() {
		claims.AuthTime = g.authTime.Unix()
	}
	if token, err = b.signAccessToken(claims); err != nil {
		return "", 0, err
	}
	return token, b.cfg.Tokens.AccessTokenTTL, nil
}

// newJTI returns a unique jti that names the token's grant, if it has one,
// as "<grant id>.<random>": the broker keeps no record of access tokens,
// so a token must say which grant's revocation revokes it. Downstream
// services see what RFC 9068 promises, a unique identifier.
func newJTI(grantID string) string {
	if grantID == "" {
		return uuid.NewString()
	}
	return grantID + "." + uuid.NewString()
}

// ref is what storage needs to tell whether the token was revoked.
func (c accessTokenClaims) ref() storage.AccessTokenRef {
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
func (b *Broker) signAccessToken(claims accessTokenClaims) (string, error) {
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", fmt.Errorf("marshal access token: %w", err)
	}
	// RFC 9068 section 2.1: typ "at+jwt", so an access token can never be
	// mistaken for an ID token.
	token, err := b.keys.Sign(keys.UseAccessToken, "", "at+jwt", payload)
	if err != nil {
		return "", fmt.Errorf("sign access token: %w", err)
	}
	return token, nil
}

// issueIDToken signs an ID token for g, bound to accessToken by at_hash.
func (b *Broker) issueIDToken(ctx context.Context, g grant, accessToken string) (string, error) {
	now := b.now()
	// The key that signs decides the at_hash hash (SHA-512 for EdDSA), so
	// take the signer first: during an algorithm change the configured
	// algorithm may still be pre-published and not yet signing.
	c, err := b.clients.Get(ctx, g.clientID)
	if err != nil {
		return "", fmt.Errorf("id token: %w", err)
	}
	// c.idTokenAlg is "" for the configured default.
	signer, err := b.keys.Signer(keys.UseIDToken, c.IDTokenAlg())
	if err != nil {
		return "", fmt.Errorf("id token signer: %w", err)
	}
	atHash, err := oidc.ClaimHash(accessToken, jose.SignatureAlgorithm(signer.Algorithm()))
	if err != nil {
		return "", fmt.Errorf("at_hash: %w", err)
	}
	claims := idTokenClaims{
		Issuer:          b.issuer,
		Subject:         g.user.ID,
		Audience:        []string{g.clientID},
		AuthorizedParty: g.clientID,
		Expiry:          now.Add(b.cfg.Tokens.IDTokenTTL).Unix(),
		IssuedAt:        now.Unix(),
		Nonce:           g.nonce,
		AMR:             g.amr,
		IDP:             g.idp,
		Org:             g.org,
		AccessTokenHash: atHash,
		Act:             g.act(),
		SessionID:       g.sessionID,
		userClaims:      claimsForScopes(g.user, g.scopes),
	}
	if !g.authTime.IsZero() {
		claims.AuthTime = g.authTime.Unix()
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
func (b *Broker) tokenResponse(ctx context.Context, g grant, refreshToken string) (*oidc.AccessTokenResponse, error) {
	at, ttl, err := b.issueAccessToken(g, g.act())
	if err != nil {
		return nil, err
	}
	resp := &oidc.AccessTokenResponse{
		AccessToken:  at,
		TokenType:    oidc.BearerToken,
		ExpiresIn:    uint64(ttl / time.Second),
		RefreshToken: refreshToken,
		Scope:        g.scopes,
	}
	if slices.Contains(g.scopes, oidc.ScopeOpenID) {
		if resp.IDToken, err = b.issueIDToken(ctx, g, at); err != nil {
			return nil, err
		}
	}
	return resp, nil
}

// newRefreshFamily starts a refresh family for g and returns its first
// token. Each login starts its own family, so a second device never logs
// out the first. A grant revoked already (its code was replayed while this
// redemption was slow), or whose session ended or user's tokens were
// revoked meanwhile (a logout, a disabling), gets no family: invalid_grant.
func (b *Broker) newRefreshFamily(ctx context.Context, g grant, upstreamRefresh []byte) (string, error) {
	now := b.now()
	token := randomID()
	err := b.store.CreateRefreshFamily(ctx, storage.RefreshFamily{
		ID:                   g.grantID,
		ClientID:             g.clientID,
		UserID:               g.user.ID,
		Scopes:               g.scopes,
		Audience:             g.audience,
		AuthTime:             g.authTime,
		AMR:                  g.amr,
		IDP:                  g.idp,
		Org:                  g.org,
		SessionID:            g.sessionID,
		UpstreamRefreshToken: upstreamRefresh,
		UpstreamCheckedAt:    now,
		Impersonator:         g.impersonator,
		CreatedAt:            now,
		LastUsedAt:           now,
		ExpiresAt:            now.Add(b.cfg.Tokens.RefreshTokenTTL),
		IdleTimeout:          b.cfg.Tokens.RefreshIdleTTL,
	}, b.refreshHash(token))
	if errors.Is(err, storage.ErrRevoked) {
		return "", b.invalidGrant(ctx, "the grant was revoked (its code used again, its session ended or its user's tokens revoked); sign in again",
			"client_id", g.clientID, "sid", g.sessionID)
	}
	if err != nil {
		return "", b.failures.Store(ctx, "create refresh family", err)
	}
	return token, nil
}

func (b *Broker) refreshHash(token string) []byte { return keys.TokenHash("refresh token", token) }

// refreshSuccessor derives the token that replaces token. Deriving it (an
// HMAC under a key from the root secret) rather than drawing it at random
// lets a client that lost the response retry with the old token and be
// given the very same successor, while storage holds only hashes.
func (b *Broker) refreshSuccessor(token string) string {
	return base64.RawURLEncoding.EncodeToString(b.refreshKey.sum(token))
}
