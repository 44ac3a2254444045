package broker

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"slices"

	"github.com/google/uuid"
	"github.com/idbroker/broker/broker/clients"
	"github.com/idbroker/broker/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// VerifyClient authenticates the client of a token, introspection or
// revocation request. Public clients present only their id; confidential
// clients their secret (client_secret_basic or client_secret_post) or a
// signed assertion (private_key_jwt, authenticateAssertion). A failure is
// 401 invalid_client; so is a public client asking for one of the
// authenticatedGrants, refused here before the library's grant check
// could call it unauthorized_client. An address that failed too often for
// a client is refused with 429 (clientAuthLimited).
func (b *Broker) VerifyClient(ctx context.Context, r *op.Request[op.ClientCredentials]) (op.Client, error) {
	client, err := b.authenticateClient(ctx, r.Data)
	if err != nil {
		return nil, err
	}
	if grant := oidc.GrantType(r.Form.Get("grant_type")); client.Public() && slices.Contains(authenticatedGrants, grant) {
		b.log.InfoContext(ctx, "client authentication failed", "client_id", client.GetID(), "reason", "public client", "grant_type", grant)
		return nil, invalidClient("this grant needs client authentication, and a public client has none")
	}
	return client, nil
}

// authenticatedGrants are the grants only an authenticated client may
// use. RFC 6749 section 5.2 answers "no client authentication included"
// with invalid_client, and keeps unauthorized_client for "the
// authenticated client" that may not use a grant: a public client that
// presents its client_id has authenticated nothing, so it is the former,
// whatever grants it is configured with. Token exchange: RFC 8693 section
// 2.1 leaves "whether or not to allow unauthenticated or unidentified
// clients" to the deployment, and here none may. Client credentials: RFC
// 6749 section 4.4, "MUST only be used by confidential clients".
var authenticatedGrants = []oidc.GrantType{oidc.GrantTypeTokenExchange, oidc.GrantTypeClientCredentials}

func (b *Broker) authenticateClient(ctx context.Context, cc *op.ClientCredentials) (*clients.Client, error) {
	if cc.ClientAssertion != "" {
		return b.authenticateAssertion(ctx, cc)
	}
	key := limitKey(requestSource(ctx), cc.ClientID)
	client, err := b.clients.Get(ctx, cc.ClientID)
	if errors.Is(err, clients.ErrUnknownClient) {
		// Refused as a wrong secret is, limit included, so that the
		// answers do not tell which client ids exist.
		if err := b.clientAuthLimited(ctx, clientFailures, key); err != nil {
			return nil, err
		}
		b.log.InfoContext(ctx, "client authentication failed", "client_id", cc.ClientID, "reason", "unknown client")
		b.countClientAuthFailure(ctx, clientFailures, key)
		return nil, invalidClient("client authentication failed")
	}
	if err != nil {
		return nil, b.failures.Store(ctx, "get client", err)
	}
	if client.Public() {
		// A public client proves nothing, so there is nothing to guess:
		// it is never limited, and nobody's failure is charged to it.
		if cc.ClientSecret != "" {
			return nil, invalidClient("a public client has no secret")
		}
		return client, nil
	}
	now := b.now()
	if !b.recentClientAuth.Fresh(key, now) {
		if err := b.clientAuthLimited(ctx, clientFailures, key); err != nil {
			return nil, err
		}
	}
	if cc.ClientSecret == "" || !client.CheckSecret(cc.ClientSecret, now) {
		b.log.InfoContext(ctx, "client authentication failed", "client_id", cc.ClientID, "reason", "missing or wrong secret")
		b.countClientAuthFailure(ctx, clientFailures, key)
		return nil, invalidClient("client authentication failed")
	}
	b.recentClientAuth.Succeeded(key, now)
	return client, nil
}

// CodeExchange redeems an authorization code (RFC 6749 section 4.1.3).
// The code is consumed before anything else is checked, so a code that
// fails any check is dead; a code presented twice revokes what its first
// use issued (RFC 6749 section 4.1.2).
func (b *Broker) CodeExchange(ctx context.Context, r *op.ClientRequest[oidc.AccessTokenRequest]) (*op.Response, error) {
	client := r.Client.(*clients.Client)
	grantID := uuid.NewString()
	code, err := b.store.RedeemAuthCode(ctx, b.codeHash(r.Data.Code), grantID, b.now())
	switch {
	case errors.Is(err, storage.ErrCodeRedeemed):
		if err := b.revokeGrant(ctx, code.GrantID); err != nil {
			return nil, b.failures.Store(ctx, "revoke replayed code's grant", err)
		}
		return nil, b.invalidGrant(ctx, "authorization code already used; tokens issued for it are revoked", "client_id", client.GetID())
	case isNotFound(err), errors.Is(err, storage.ErrExpired):
		return nil, b.invalidGrant(ctx, "authorization code is invalid or expired", "client_id", client.GetID())
	case err != nil:
		return nil, b.failures.Store(ctx, "redeem code", err)
	}
	if code.ClientID != client.GetID() {
		return nil, b.invalidGrant(ctx, "authorization code was issued to another client", "client_id", client.GetID())
	}
	if code.RedirectURI != r.Data.RedirectURI {
		return nil, b.invalidGrant(ctx, "redirect_uri does not match the authorization request", "client_id", client.GetID())
	}
	if err := checkPKCE(code.CodeChallenge, r.Data.CodeVerifier); err != nil {
		return nil, b.invalidGrant(ctx, err.Error(), "client_id", client.GetID())
	}
	user, err := b.activeUser(ctx, code.UserID)
	if err != nil {
		return nil, err
	}
	g := grant{
		user:         user,
		clientID:     client.GetID(),
		scopes:       userScopes(client, user, code.Scopes),
		audience:     code.Audience,
		authTime:     code.AuthTime,
		amr:          code.AMR,
		idp:          code.IDP,
		org:          code.Org,
		nonce:        code.Nonce,
		grantID:      grantID,
		sessionID:    code.SessionID,
		impersonator: code.Impersonator,
	}
	var refresh string
	if slices.Contains(code.Scopes, oidc.ScopeOfflineAccess) && client.AllowsGrant(GrantRefreshToken) {
		if refresh, err = b.newRefreshFamily(ctx, g, code.UpstreamRefreshToken); err != nil {
			return nil, err
		}
	}
	resp, err := b.tokenResponse(ctx, g, refresh)
	if err != nil {
		return nil, err
	}
	return op.NewResponse(resp), nil
}

// checkPKCE verifies an RFC 7636 S256 verifier against the stored
// challenge. A code issued with a challenge demands a verifier; a verifier
// for a code issued without one is refused too, so an attacker cannot
// downgrade a PKCE flow. A verifier that is not one by section 4.1 is
// refused before it is compared: a short one would be a guessable secret,
// whatever challenge a client was persuaded to send.
func checkPKCE(challenge, verifier string) error {
	switch {
	case challenge == "" && verifier == "":
		return nil
	case challenge == "":
		return errors.New("code_verifier given, but the authorization request had no code_challenge")
	case verifier == "":
		return errors.New("code_verifier is required")
	case !isCodeVerifier(verifier):
		return errors.New("code_verifier must be 43 to 128 characters of A-Z, a-z, 0-9, \"-\", \".\", \"_\" and \"~\" (RFC 7636 section 4.1)")
	}
	sum := sha256.Sum256([]byte(verifier))
	if subtle.ConstantTimeCompare([]byte(base64.RawURLEncoding.EncodeToString(sum[:])), []byte(challenge)) != 1 {
		return errors.New("code_verifier does not match the code_challenge")
	}
	return nil
}

// isCodeVerifier reports whether v is a code verifier as RFC 7636
// section 4.1 defines it: code-verifier = 43*128unreserved, where
// unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~".
func isCodeVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		if !isUnreserved(v[i]) {
			return false
		}
	}
	return true
}

func isUnreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~'
}

// checkCodeChallenge checks that challenge can be an S256 code challenge
// (RFC 7636 section 4.2): BASE64URL-ENCODE(SHA256(verifier)), that is 43
// characters of base64url, unpadded, that decode to exactly 32 bytes. A
// challenge no verifier can match would only make the login a dead end.
func checkCodeChallenge(challenge string) error {
	// The decoder skips CR and LF, so the decoded length is checked too.
	b, err := base64.RawURLEncoding.Strict().DecodeString(challenge)
	if err != nil || len(challenge) != base64.RawURLEncoding.EncodedLen(sha256.Size) || len(b) != sha256.Size {
		return errors.New("code_challenge must be the unpadded base64url encoding of a SHA-256 hash, 43 characters (RFC 7636 section 4.2)")
	}
	return nil
}

// revokeGrant revokes the refresh family of a grant and every access
// token issued under it.
func (b *Broker) revokeGrant(ctx context.Context, grantID string) error {
	if grantID == "" {
		return nil
	}
	// Kept past the expiry of every access token the grant can have
	// issued, allowing for a clock that was behind when they were.
	until := b.now().Add(b.cfg.Tokens.AccessTokenTTL + b.cfg.Tokens.ClockSkew)
	return b.store.RevokeGrant(ctx, grantID, until)
}

// activeUser loads a user who may still be issued tokens.
func (b *Broker) activeUser(ctx context.Context, id string) (storage.User, error) {
	user, err := b.store.GetUser(ctx, id)
	if isNotFound(err) {
		return storage.User{}, b.invalidGrant(ctx, "the user no longer exists", "user_id", id)
	}
	if err != nil {
		return storage.User{}, b.failures.Store(ctx, "get user", err)
	}
	if user.Disabled {
		return storage.User{}, b.invalidGrant(ctx, "the user is disabled", "user_id", id)
	}
	return user, nil
}

// RefreshToken rotates a refresh token (RFC 6749 section 6; rotation per
// RFC 9700 section 4.14.2). Presenting a rotated token again revokes the
// whole family, except a retry within a short window before the successor
// was used, which gets the same successor.
func (b *Broker) RefreshToken(ctx context.Context, r *op.ClientRequest[oidc.RefreshTokenRequest]) (*op.Response, error) {
	client := r.Client.(*clients.Client)
	hash := b.refreshHash(r.Data.RefreshToken)
	// Check the owner before rotating, so another client's stolen token
	// cannot be used to revoke or advance the family.
	fam, user, err := b.store.GetRefreshGrant(ctx, hash)
	if isNotFound(err) {
		return nil, b.invalidGrant(ctx, "refresh token is invalid", "client_id", client.GetID())
	}
	if err != nil {
		return nil, b.failures.Store(ctx, "get refresh family", err)
	}
	if fam.ClientID != client.GetID() {
		return nil, b.invalidGrant(ctx, "refresh token was issued to another client", "client_id", client.GetID())
	}
	scopes := fam.Scopes
	if len(r.Data.Scopes) > 0 {
		for _, s := range r.Data.Scopes {
			if !slices.Contains(fam.Scopes, s) {
				return nil, oidc.ErrInvalidScope().WithDescription("scope %q was not granted; a refresh can only narrow scope", s)
			}
		}
		scopes = r.Data.Scopes
	}
	// The family keeps what was granted at login; whether admin still
	// may be is the user's role now.
	scopes = userScopes(client, user, scopes)
	if err := b.recheckUpstream(ctx, fam); err != nil {
		return nil, err
	}
	if user.Disabled {
		if err := b.revokeGrant(ctx, fam.ID); err != nil {
			return nil, b.failures.Store(ctx, "revoke family of a disabled user", err)
		}
		return nil, b.invalidGrant(ctx, "the user is disabled", "user_id", fam.UserID)
	}
	// The tokens are issued before the rotation is recorded. Should
	// anything fail before the rotation, nothing has changed and the
	// client simply retries with the same token; rotating first would
	// leave it holding a token whose successor it never received, and a
	// retry after the retry window would then look like reuse and cost
	// the whole family. Tokens issued for a rotation that then fails are
	// never delivered, and die with the family when the token was dead.
	successor := b.refreshSuccessor(r.Data.RefreshToken)
	resp, err := b.tokenResponse(ctx, grant{
		user:         user,
		clientID:     client.GetID(),
		scopes:       scopes,
		audience:     fam.Audience,
		authTime:     fam.AuthTime,
		amr:          fam.AMR,
		idp:          fam.IDP,
		org:          fam.Org,
		grantID:      fam.ID,
		sessionID:    fam.SessionID,
		impersonator: fam.Impersonator,
	}, successor)
	if err != nil {
		return nil, err
	}
	_, err = b.store.RotateRefreshToken(ctx, storage.RotateRequest{
		TokenHash:     hash,
		SuccessorHash: b.refreshHash(successor),
		RetryWindow:   b.cfg.Tokens.RefreshRetryWindow,
		Now:           b.now(),
	})
	switch {
	case errors.Is(err, storage.ErrRefreshReused):
		// The store revoked the family and its access tokens, including
		// the one just issued.
		b.log.WarnContext(ctx, "refresh token reused; family revoked", "client_id", client.GetID(), "family", fam.ID)
		return nil, oidc.ErrInvalidGrant().WithDescription("refresh token was already used; sign in again")
	case errors.Is(err, storage.ErrRevoked), isNotFound(err):
		if err := b.revokeGrant(ctx, fam.ID); err != nil {
			return nil, b.failures.Store(ctx, "revoke tokens of a dead family", err)
		}
		return nil, b.invalidGrant(ctx, "refresh token is revoked or expired", "client_id", client.GetID())
	case err != nil:
		return nil, b.failures.Store(ctx, "rotate refresh token", err)
	}
	return op.NewResponse(resp), nil
}

// JWTProfile refuses the jwt-bearer grant: the library would accept it
// without client authentication.
func (b *Broker) JWTProfile(context.Context, *op.Request[oidc.JWTProfileGrantRequest]) (*op.Response, error) {
	return nil, oidc.ErrUnsupportedGrantType().WithDescription("the jwt-bearer grant is not supported")
}

// DeviceToken refuses the device grant, which the broker does not offer.
func (b *Broker) DeviceToken(context.Context, *op.ClientRequest[oidc.DeviceAccessTokenRequest]) (*op.Response, error) {
	return nil, oidc.ErrUnsupportedGrantType().WithDescription("the device_code grant is not supported")
}
