package tokens

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"slices"

	"github.com/google/uuid"
	"github.com/idbroker/broker/broker/answer"
	"github.com/idbroker/broker/broker/clients"
	"github.com/idbroker/broker/storage"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// CodeExchange redeems an authorization code (RFC 6749 section 4.1.3).
// The code is consumed before anything else is checked, so a code that
// fails any check is dead; a code presented twice revokes what its first
// use issued (RFC 6749 section 4.1.2).
func (t *Issuer) CodeExchange(ctx context.Context, r *op.ClientRequest[oidc.AccessTokenRequest]) (*op.Response, error) {
	client := r.Client.(*clients.Client)
	grantID := uuid.NewString()
	code, err := t.store.RedeemAuthCode(ctx, CodeHash(r.Data.Code), grantID, t.now())
	switch {
	case errors.Is(err, storage.ErrCodeRedeemed):
		if err := t.RevokeGrant(ctx, code.GrantID); err != nil {
			return nil, t.failures.Store(ctx, "revoke replayed code's grant", err)
		}
		return nil, answer.InvalidGrant(ctx, t.log, "authorization code already used; tokens issued for it are revoked", "client_id", client.GetID())
	case errors.Is(err, storage.ErrNotFound), errors.Is(err, storage.ErrExpired):
		return nil, answer.InvalidGrant(ctx, t.log, "authorization code is invalid or expired", "client_id", client.GetID())
	case err != nil:
		return nil, t.failures.Store(ctx, "redeem code", err)
	}
	if code.ClientID != client.GetID() {
		return nil, answer.InvalidGrant(ctx, t.log, "authorization code was issued to another client", "client_id", client.GetID())
	}
	if code.RedirectURI != r.Data.RedirectURI {
		return nil, answer.InvalidGrant(ctx, t.log, "redirect_uri does not match the authorization request", "client_id", client.GetID())
	}
	if err := checkPKCE(code.CodeChallenge, r.Data.CodeVerifier); err != nil {
		return nil, answer.InvalidGrant(ctx, t.log, err.Error(), "client_id", client.GetID())
	}
	family := slices.Contains(code.Scopes, oidc.ScopeOfflineAccess) && client.AllowsGrant(clients.GrantRefreshToken)
	user, err := t.codeUser(ctx, code, !family)
	if err != nil {
		return nil, err
	}
	// RFC 8707 section 2.2: resource at the token endpoint picks among
	// what the authorization granted.
	requested, err := requestTargets(r.Form)
	if err != nil {
		return nil, err
	}
	audience, res, err := t.ChooseTarget(ctx, client, requested, code.Audience)
	if err != nil {
		return nil, err
	}
	g := Grant{
		User:         user,
		ClientID:     client.GetID(),
		Scopes:       UserScopes(client, user, code.Scopes),
		Audience:     audience,
		Granted:      code.Audience,
		Resource:     res,
		AuthTime:     code.AuthTime,
		AMR:          code.AMR,
		IDP:          code.IDP,
		Org:          code.Org,
		Nonce:        code.Nonce,
		GrantID:      grantID,
		SessionID:    code.SessionID,
		Impersonator: code.Impersonator,
	}
	var refresh string
	if family {
		if refresh, err = t.newRefreshFamily(ctx, g, code.UpstreamRefreshToken); err != nil {
			return nil, err
		}
	}
	resp, err := t.tokenResponse(client, g, refresh)
	if err != nil {
		return nil, err
	}
	t.noteClientUse(ctx, client)
	return op.NewResponse(resp), nil
}

// codeUser is the user of code, who must still be enabled, whose tokens
// must not have been revoked since they signed in (a disable, even one
// undone since, or a sign-out everywhere), and, with checkSession, whose
// sign-in session must still be live. A code that creates a refresh
// family needs no session check here: the family's creation refuses an
// ended session atomically (storage.Tokens.CreateRefreshFamily). One
// without offline_access creates none: redeemed after its logout, or
// after a disable and an enable, it used to get working tokens.
func (t *Issuer) codeUser(ctx context.Context, code storage.AuthCode, checkSession bool) (storage.User, error) {
	user, err := t.store.AccessTokenUser(ctx, storage.AccessTokenRef{UserID: code.UserID, IssuedAt: code.AuthTime, ExpiresAt: code.ExpiresAt})
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return storage.User{}, answer.InvalidGrant(ctx, t.log, "the user no longer exists", "user_id", code.UserID)
	case errors.Is(err, storage.ErrUserDisabled):
		return storage.User{}, answer.InvalidGrant(ctx, t.log, "the user is disabled", "user_id", code.UserID)
	case errors.Is(err, storage.ErrRevoked):
		return storage.User{}, answer.InvalidGrant(ctx, t.log, "the user's tokens were revoked after this sign-in", "user_id", code.UserID)
	case err != nil:
		return storage.User{}, t.failures.Store(ctx, "get user", err)
	}
	if !checkSession || code.SessionID == "" {
		return user, nil
	}
	if _, err := t.store.GetSession(ctx, code.SessionID, t.now()); errors.Is(err, storage.ErrNotFound) {
		return storage.User{}, answer.InvalidGrant(ctx, t.log, "the sign-in session of this code has ended", "user_id", code.UserID)
	} else if err != nil {
		return storage.User{}, t.failures.Store(ctx, "get session", err)
	}
	return user, nil
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

// CheckCodeChallenge checks that challenge can be an S256 code challenge
// (RFC 7636 section 4.2): BASE64URL-ENCODE(SHA256(verifier)), that is 43
// characters of base64url, unpadded, that decode to exactly 32 bytes. A
// challenge no verifier can match would only make the login a dead end.
func CheckCodeChallenge(challenge string) error {
	// The decoder skips CR and LF, so the decoded length is checked too.
	b, err := base64.RawURLEncoding.Strict().DecodeString(challenge)
	if err != nil || len(challenge) != base64.RawURLEncoding.EncodedLen(sha256.Size) || len(b) != sha256.Size {
		return errors.New("code_challenge must be the unpadded base64url encoding of a SHA-256 hash, 43 characters (RFC 7636 section 4.2)")
	}
	return nil
}

// RevokeGrant revokes the refresh family of a Grant and every access
// token issued under it.
func (t *Issuer) RevokeGrant(ctx context.Context, grantID string) error {
	if grantID == "" {
		return nil
	}
	// Kept past the expiry of every access token the Grant can have
	// issued, allowing for a clock that was behind when they were.
	until := t.now().Add(t.cfg.AccessTokenTTL + t.cfg.ClockSkew)
	return t.store.RevokeGrant(ctx, grantID, until)
}

// RefreshToken rotates a refresh token (RFC 6749 section 6; rotation per
// RFC 9700 section 4.14.2). Presenting a rotated token again revokes the
// whole family, except a retry within a short window before the successor
// was used, which gets the same successor.
func (t *Issuer) RefreshToken(ctx context.Context, r *op.ClientRequest[oidc.RefreshTokenRequest]) (*op.Response, error) {
	client := r.Client.(*clients.Client)
	hash := t.refreshHash(r.Data.RefreshToken)
	// Check the owner before rotating, so another client's stolen token
	// cannot be used to revoke or advance the family.
	fam, user, err := t.store.GetRefreshGrant(ctx, hash)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, answer.InvalidGrant(ctx, t.log, "refresh token is invalid", "client_id", client.GetID())
	}
	if err != nil {
		return nil, t.failures.Store(ctx, "get refresh family", err)
	}
	if fam.ClientID != client.GetID() {
		return nil, answer.InvalidGrant(ctx, t.log, "refresh token was issued to another client", "client_id", client.GetID())
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
	scopes = UserScopes(client, user, scopes)
	// A refresh may narrow the audience to one granted resource, never
	// widen it (RFC 8707 section 2.2).
	requested, err := requestTargets(r.Form)
	if err != nil {
		return nil, err
	}
	audience, res, err := t.ChooseTarget(ctx, client, requested, fam.Audience)
	if err != nil {
		return nil, err
	}
	if err := t.recheck(ctx, fam); err != nil {
		return nil, err
	}
	if user.Disabled {
		if err := t.RevokeGrant(ctx, fam.ID); err != nil {
			return nil, t.failures.Store(ctx, "revoke family of a disabled user", err)
		}
		return nil, answer.InvalidGrant(ctx, t.log, "the user is disabled", "user_id", fam.UserID)
	}
	// An organisation that requires its own identity provider ends what
	// another way in gave its addresses before it did (a one-time code's
	// login), as single sign-on does: a removed employee must not keep
	// refreshing what a code once gave them.
	if org, required := t.identities.SSORequired(user.Email, storage.Organization{ID: fam.Org}); required {
		if err := t.RevokeGrant(ctx, fam.ID); err != nil {
			return nil, t.failures.Store(ctx, "revoke family of a login the organisation no longer allows", err)
		}
		return nil, answer.InvalidGrant(ctx, t.log, "this address must sign in through its organisation's own identity provider",
			"user_id", fam.UserID, "org_id", org.ID)
	}
	// The tokens are issued before the rotation is recorded. Should
	// anything fail before the rotation, nothing has changed and the
	// client simply retries with the same token; rotating first would
	// leave it holding a token whose successor it never received, and a
	// retry after the retry window would then look like reuse and cost
	// the whole family. Tokens issued for a rotation that then fails are
	// never delivered, and die with the family when the token was dead.
	successor := t.refreshSuccessor(r.Data.RefreshToken)
	resp, err := t.tokenResponse(client, Grant{
		User:         user,
		ClientID:     client.GetID(),
		Scopes:       scopes,
		Audience:     audience,
		Granted:      fam.Audience,
		Resource:     res,
		AuthTime:     fam.AuthTime,
		AMR:          fam.AMR,
		IDP:          fam.IDP,
		Org:          fam.Org,
		GrantID:      fam.ID,
		SessionID:    fam.SessionID,
		Impersonator: fam.Impersonator,
	}, successor)
	if err != nil {
		return nil, err
	}
	_, err = t.store.RotateRefreshToken(ctx, storage.RotateRequest{
		TokenHash:     hash,
		SuccessorHash: t.refreshHash(successor),
		RetryWindow:   t.cfg.RefreshRetryWindow,
		Now:           t.now(),
	})
	switch {
	case errors.Is(err, storage.ErrRefreshReused):
		// The store revoked the family and its access tokens, including
		// the one just issued.
		t.log.WarnContext(ctx, "refresh token reused; family revoked", "client_id", client.GetID(), "family", fam.ID)
		return nil, oidc.ErrInvalidGrant().WithDescription("refresh token was already used; sign in again")
	case errors.Is(err, storage.ErrRevoked), errors.Is(err, storage.ErrNotFound):
		if err := t.RevokeGrant(ctx, fam.ID); err != nil {
			return nil, t.failures.Store(ctx, "revoke tokens of a dead family", err)
		}
		return nil, answer.InvalidGrant(ctx, t.log, "refresh token is revoked or expired", "client_id", client.GetID())
	case err != nil:
		return nil, t.failures.Store(ctx, "rotate refresh token", err)
	}
	t.noteClientUse(ctx, client)
	return op.NewResponse(resp), nil
}

// DeviceToken refuses the device Grant, which the broker does not offer.
func (t *Issuer) DeviceToken(context.Context, *op.ClientRequest[oidc.DeviceAccessTokenRequest]) (*op.Response, error) {
	return nil, oidc.ErrUnsupportedGrantType().WithDescription("the device_code Grant is not supported")
}
