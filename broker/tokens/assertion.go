package tokens

// The broker as an enterprise identity provider: it verifies the ID
// tokens it issued and signs identity assertion grants (ID-JAGs,
// draft-ietf-oauth-identity-assertion-authz-grant) that another
// authorization server redeems for its own access token. Section numbers
// are the draft's.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/idbroker/broker/keys"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/upstream"
	"github.com/zitadel/oidc/v3/pkg/oidc"
)

// IdentityAssertionTTL is the lifetime of an ID-JAG. It is a grant to
// be redeemed at once, not a credential to keep: section 4.3.3's example
// gives 300 seconds.
const IdentityAssertionTTL = 5 * time.Minute

// VerifyIDToken checks an ID token the broker issued to clientID:
// signature against the published keys, typ JWT (so no access token or
// ID-JAG passes), issuer, expiry, aud naming clientID and azp, when
// present, clientID alone; and that its user exists and is enabled, and
// their tokens were not revoked since, which it returns, and that the
// session it came from is live. A refusal wraps ErrInactive, a disabled user
// storage.ErrUserDisabled; any other error is the store failing.
func (t *Issuer) VerifyIDToken(ctx context.Context, raw, clientID string) (IDClaims, storage.User, error) {
	var claims IDClaims
	// typ JWT is an ID token's: no access token or ID-JAG passes.
	if err := t.verifyOwn(raw, "JWT", &claims); err != nil {
		return claims, storage.User{}, err
	}
	switch {
	case claims.Issuer != t.issuer || claims.Subject == "" || t.now().Unix() >= claims.Expiry:
		return claims, storage.User{}, fmt.Errorf("%w: wrong issuer, no sub, or expired", ErrInactive)
	case !slices.Contains(claims.Audience, clientID) || (claims.AuthorizedParty != "" && claims.AuthorizedParty != clientID):
		// Section 4.3.2: the IdP "MUST validate that the audience of the
		// assertion ... matches the client_id of the client
		// authentication of the request".
		return claims, storage.User{}, fmt.Errorf("%w: ID token of client %q (aud %q) presented by client %q", ErrInactive, claims.AuthorizedParty, claims.Audience, clientID)
	case t.connectorGone(claims.IDP):
		return claims, storage.User{}, fmt.Errorf("%w: connector %q is no longer configured", ErrInactive, claims.IDP)
	}
	// Nothing revokes one ID token, but the user's tokens up to a moment
	// are revoked when they are disabled or signed out everywhere; an ID
	// token is held to that as an access token is.
	user, err := t.store.AccessTokenUser(ctx, storage.AccessTokenRef{UserID: claims.Subject,
		IssuedAt: time.Unix(claims.IssuedAt, 0).UTC(), ExpiresAt: time.Unix(claims.Expiry, 0).UTC()})
	switch {
	case errors.Is(err, storage.ErrUserDisabled):
		return claims, user, fmt.Errorf("user %s: %w", claims.Subject, err)
	case errors.Is(err, storage.ErrNotFound), errors.Is(err, storage.ErrRevoked):
		return claims, user, fmt.Errorf("%w: user %s: %w", ErrInactive, claims.Subject, err)
	case err != nil:
		return claims, user, err
	}
	// An assertion acts for the person where they are signed in: the ID
	// token's session must still be live, so a logout ends what its ID
	// tokens could still be traded for.
	if claims.SessionID == "" {
		return claims, user, fmt.Errorf("%w: the ID token names no session", ErrInactive)
	}
	if _, err := t.store.GetSession(ctx, claims.SessionID, t.now()); errors.Is(err, storage.ErrNotFound) {
		return claims, user, fmt.Errorf("%w: the session the ID token came from has ended", ErrInactive)
	} else if err != nil {
		return claims, user, fmt.Errorf("session of the ID token: %w", err)
	}
	return claims, user, nil
}

// IdentityAssertion is what an ID-JAG says (section 3.1): that User may
// be acted for by ClientID at the authorization server Audience, for
// Resource and Scope.
type IdentityAssertion struct {
	User     storage.User
	Audience string // the other authorization server's issuer
	ClientID string // the client there
	Resource string // "" for none
	Scope    []string
	AuthTime time.Time
	AMR      []string
	// Email puts the user's email (and whether it is verified) in the
	// grant, for the other server to find or provision the account by.
	Email bool
}

// identityAssertionClaims are an ID-JAG's claims (section 3.1).
type identityAssertionClaims struct {
	Issuer   string   `json:"iss"`
	Subject  string   `json:"sub"`
	Audience string   `json:"aud"`
	ClientID string   `json:"client_id"`
	JTI      string   `json:"jti"`
	Expiry   int64    `json:"exp"`
	IssuedAt int64    `json:"iat"`
	Resource string   `json:"resource,omitempty"`
	Scope    string   `json:"scope,omitempty"`
	AuthTime int64    `json:"auth_time,omitempty"`
	AMR      []string `json:"amr,omitempty"`
	UserClaims
}

// IssueIdentityAssertion records a in the audit log, then signs it as an
// ID-JAG with the ID-token key (the other server verifies it as it
// verifies the broker's ID tokens) and typ oauth-id-jag+jwt. A grant
// that leaves no record is not issued: a store that cannot write is a
// 503.
func (t *Issuer) IssueIdentityAssertion(ctx context.Context, a IdentityAssertion) (string, time.Duration, error) {
	now := t.now()
	claims := identityAssertionClaims{
		Issuer: t.issuer, Subject: a.User.ID, Audience: a.Audience, ClientID: a.ClientID, JTI: uuid.NewString(),
		Expiry: now.Add(IdentityAssertionTTL).Unix(), IssuedAt: now.Unix(), Resource: a.Resource,
		Scope: oidc.SpaceDelimitedArray(a.Scope).String(), AMR: a.AMR,
	}
	if a.Email {
		claims.UserClaims = claimsForScopes(a.User, []string{oidc.ScopeEmail})
	}
	if !a.AuthTime.IsZero() {
		claims.AuthTime = a.AuthTime.Unix()
	}
	err := t.store.AppendAudit(ctx, storage.AuditEvent{
		Time: now, Actor: "client:" + a.ClientID, Action: "id_jag.issued", Target: "user:" + a.User.ID,
		Details: map[string]string{"audience": a.Audience, "resource": a.Resource, "scope": claims.Scope, "jti": claims.JTI},
	})
	if err != nil {
		return "", 0, t.failures.Store(ctx, "audit identity assertion", err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", 0, fmt.Errorf("marshal identity assertion: %w", err)
	}
	token, err := t.keys.Sign(keys.UseIDToken, "", upstream.TypIdentityAssertion, payload)
	if err != nil {
		return "", 0, fmt.Errorf("sign identity assertion: %w", err)
	}
	return token, IdentityAssertionTTL, nil
}
