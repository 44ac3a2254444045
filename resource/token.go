package resource

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Token is a verified broker access token: the platform user it speaks
// for and what it allows.
type Token struct {
	// Subject is the platform user's UUID, in canonical lowercase form.
	// For a client_credentials token it is the client's service user.
	Subject string
	// Email is the token's email claim when it has one. The broker's
	// access tokens carry none today: a service that needs the address
	// asks the broker's userinfo endpoint, or keeps it by Subject.
	Email string
	// Scopes are the token's scope claim, split on spaces.
	Scopes []string
	// Actor is the RFC 8693 act claim: who acts for Subject (a delegated
	// token exchange, or an impersonated login). Nil when Subject acts
	// for itself. Verify reports it and does not judge it.
	Actor *Actor
	// OrgID is the token's org_id, when the login named an organisation.
	OrgID string
	// ClientID is the client the token was issued to.
	ClientID string
	// Audience is the token's aud; it contains the Verifier's audience.
	Audience []string
	// Expiry and IssuedAt are the token's exp and iat.
	Expiry   time.Time
	IssuedAt time.Time
	// ID is the token's jti.
	ID string
	// Raw is the token as presented, for passing on (a token exchange,
	// a call to introspection). Never log it.
	Raw string

	claims json.RawMessage
}

// Actor is an RFC 8693 section 4.1 act claim. A chain of delegation
// nests: Actor.Actor is the one before, the least recent deepest.
type Actor struct {
	// Subject is the actor: a platform user's UUID, or for an
	// impersonated login the broker's "workos-impersonator:<email>".
	Subject string `json:"sub"`
	// ClientID is set when the actor presented a broker token.
	ClientID string `json:"client_id,omitempty"`
	Actor    *Actor `json:"act,omitempty"`
}

// HasScopes reports whether the token holds every one of scopes.
func (t *Token) HasScopes(scopes ...string) bool {
	for _, s := range scopes {
		if !slices.Contains(t.Scopes, s) {
			return false
		}
	}
	return true
}

// Claims decodes the token's verified claims, all of them, into v, as
// json.Unmarshal would.
func (t *Token) Claims(v any) error {
	if err := json.Unmarshal(t.claims, v); err != nil {
		return fmt.Errorf("resource: token claims: %w", err)
	}
	return nil
}
