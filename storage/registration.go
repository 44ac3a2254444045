package storage

import (
	"context"
	"time"
)

// RegistrationToken is an initial access token (RFC 7591 section 3): what
// an administrator hands the developer of a client so that it may
// register at /register when registration asks for one. Storage keeps
// only its SHA-256; the token itself is shown once, when it is created.
type RegistrationToken struct {
	// ID names the token to administrators (listing, revoking); it is
	// not the token and lets nobody register.
	ID   string
	Hash []byte // SHA-256 of the token
	// Note says what the token is for, in the administrator's words.
	Note string
	// MaxUses is how many clients the token may register; 0 for any
	// number until it expires.
	MaxUses   int
	Uses      int
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Spent reports whether t may register no more clients at now: past
// its expiry, or its uses used up.
func (t RegistrationToken) Spent(now time.Time) bool {
	return !now.Before(t.ExpiresAt) || (t.MaxUses > 0 && t.Uses >= t.MaxUses)
}

// ClientUseGranularity is how stale a registered client's LastUsedAt may
// be: a token issued to a client whose recorded use is younger writes
// nothing, so the token endpoint's hot path stays a read.
const ClientUseGranularity = time.Hour

// Registrations holds the initial access tokens of dynamic client
// registration (RFC 7591) and the life of the clients it registers:
// registering one with a token's use, recording its use, and deleting
// those unused for too long. A registered client is a Client whose
// RegistrationTokenHash is set; Clients reads, lists and deletes it like
// any other.
type Registrations interface {
	// CreateRegistrationToken stores t; an id or hash taken gives
	// ErrAlreadyExists.
	CreateRegistrationToken(ctx context.Context, t RegistrationToken) error
	// ListRegistrationTokens returns every token, spent ones included,
	// ordered by ID byte-wise.
	ListRegistrationTokens(ctx context.Context) ([]RegistrationToken, error)
	// RegistrationToken returns the token whose hash is hash, while it
	// may register a client at now. None (never created, or revoked):
	// ErrNotFound; expired or used up: ErrExpired. It writes nothing.
	RegistrationToken(ctx context.Context, hash []byte, now time.Time) (RegistrationToken, error)
	// RevokeRegistrationToken deletes the token of id; clients it
	// registered stay. An unknown id gives ErrNotFound.
	RevokeRegistrationToken(ctx context.Context, id string) error
	// RegisterClient stores c, a client registered through /register,
	// and with a non-nil tokenHash spends one use of that initial access
	// token, atomically: of concurrent registrations under a token with
	// one use left, one stores its client and the others store nothing.
	// The token gone gives ErrNotFound, spent at now ErrExpired, and a
	// client id taken ErrAlreadyExists; in each case nothing is written.
	RegisterClient(ctx context.Context, c Client, tokenHash []byte, now time.Time) error
	// NoteClientUse records that client id obtained a token at now,
	// unless its recorded use (LastUsedAt) is within
	// ClientUseGranularity of now. An unknown client is not an error:
	// it may have been deleted meanwhile.
	NoteClientUse(ctx context.Context, id string, now time.Time) error
	// DeleteUnusedClients deletes the registered clients whose last use
	// (LastUsedAt, else CreatedAt for one never used) is before before,
	// and returns their ids, ordered byte-wise. Other clients are never
	// touched.
	DeleteUnusedClients(ctx context.Context, before time.Time) ([]string, error)
}
