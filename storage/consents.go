package storage

import (
	"context"
	"slices"
	"time"
)

// Consent is a user's remembered leave for a third-party client to act for
// them: tokens for Resource ("" for the client's own audience, when the
// request named no resource) with any of Scopes. One is kept per (UserID,
// ClientID, Resource).
type Consent struct {
	UserID    string
	ClientID  string
	Resource  string
	Scopes    []string // sorted, each once
	GrantedAt time.Time
}

// Covers reports whether c allows every one of scopes.
func (c Consent) Covers(scopes []string) bool {
	for _, s := range scopes {
		if !slices.Contains(c.Scopes, s) {
			return false
		}
	}
	return true
}

// Consents holds what users consented to. A user id that is not a UUID
// names no user: a lookup gives ErrNotFound, a list nothing.
type Consents interface {
	// GetConsent returns the consent of (userID, clientID, resource), or
	// ErrNotFound.
	GetConsent(ctx context.Context, userID, clientID, resource string) (Consent, error)
	// GrantConsent records c, adding its scopes to those already
	// consented to for its (UserID, ClientID, Resource), atomically (two
	// grants at once keep both's scopes), with GrantedAt c's; it returns
	// the consent as stored. ErrNotFound when the user does not exist.
	// A user's consents go when the user is deleted, a client's when the
	// client is.
	GrantConsent(ctx context.Context, c Consent) (Consent, error)
	// ListConsents returns a user's consents, by client id then resource.
	ListConsents(ctx context.Context, userID string) ([]Consent, error)
	// RevokeConsent deletes every consent of userID to clientID and, in
	// the same operation, revokes what the client holds for the user:
	// each of their refresh families and each redeemed code's grant as
	// RevokeGrant does (their access tokens refused until revokeUntil;
	// give it the access-token lifetime from now), and each code not yet
	// redeemed, which is deleted. So no grant the consent allowed outlives
	// it, even one whose code is being redeemed meanwhile. It returns the
	// consents it deleted; ErrNotFound when there were none.
	RevokeConsent(ctx context.Context, userID, clientID string, revokeUntil time.Time) ([]Consent, error)
}
