package memory

import (
	"context"
	"sync"
	"time"

	"github.com/idbroker/broker/storage"
)

// Store is an in-memory storage.Storage. The zero value is not usable; call
// New.
type Store struct {
	// updateMu serializes UpdateAuthRequest, UpdateClient,
	// UpdateOrganization, UpdateConnector and UpdateResource, so that their callbacks run
	// outside mu and may read the store, as they may with
	// Postgres, whose row locks do not block readers.
	updateMu sync.Mutex
	// keysMu serializes UpdateSigningKeys on its own: generating a key in
	// the callback can take long and must not hold up other updates.
	keysMu sync.Mutex

	mu             sync.Mutex // guards the fields below
	users          map[string]storage.User
	verifiedEmails map[string]string // verified email → user id; at most one user each
	identities     map[identityKey]storage.Identity
	authRequests   map[string]storage.AuthRequest
	upstreamStates map[string]string               // non-empty upstream state → auth request id
	codes          map[string]storage.AuthCode     // by string(CodeHash)
	otps           map[string]storage.OTPChallenge // by auth request id
	otpPools       map[string]rateWindow           // wrong guesses by attempt key
	families       map[string]storage.RefreshFamily
	refreshTokens  map[string]refreshToken // by string(token hash)
	revokedTokens  map[string]time.Time    // jti → until
	revokedGrants  map[string]time.Time    // grant id → until
	userRevokedAt  map[string]time.Time    // user id → latest RevokeUserTokens moment
	sessions       map[string]storage.Session
	clients        map[string]storage.Client
	resources      map[string]storage.Resource
	consents       map[consentKey]storage.Consent
	regTokens      map[string]storage.RegistrationToken
	signingKeys    []storage.SigningKey // ordered by CreatedAt, then ID
	rateLimits     map[string]rateWindow
	jtis           map[string]time.Time // jti → expiry
	audit          []storage.AuditEvent // oldest first
	orgIndexes
}

var _ storage.Storage = (*Store)(nil)

// New returns an empty Store.
func New() *Store {
	return &Store{
		users:          make(map[string]storage.User),
		verifiedEmails: make(map[string]string),
		identities:     make(map[identityKey]storage.Identity),
		authRequests:   make(map[string]storage.AuthRequest),
		upstreamStates: make(map[string]string),
		codes:          make(map[string]storage.AuthCode),
		otps:           make(map[string]storage.OTPChallenge),
		otpPools:       make(map[string]rateWindow),
		families:       make(map[string]storage.RefreshFamily),
		refreshTokens:  make(map[string]refreshToken),
		revokedTokens:  make(map[string]time.Time),
		revokedGrants:  make(map[string]time.Time),
		userRevokedAt:  make(map[string]time.Time),
		sessions:       make(map[string]storage.Session),
		clients:        make(map[string]storage.Client),
		resources:      make(map[string]storage.Resource),
		consents:       make(map[consentKey]storage.Consent),
		regTokens:      make(map[string]storage.RegistrationToken),
		rateLimits:     make(map[string]rateWindow),
		jtis:           make(map[string]time.Time),
		orgIndexes:     newOrgIndexes(),
	}
}

// Ping always succeeds: memory is always reachable.
func (s *Store) Ping(ctx context.Context) error { return nil }

// Close does nothing; the store's memory is released with it.
func (s *Store) Close() error { return nil }

// DeleteExpired removes everything whose lifetime ended at or before now.
// It counts auth requests, codes, one-time-code challenges, refresh
// families, access-token and grant revocations, sessions, rate-limit
// counters and jtis; the tokens of a removed family and the challenge of a
// removed auth request go with them uncounted. The audit log is kept.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for id, c := range s.otps {
		if !now.Before(c.ExpiresAt) {
			delete(s.otps, id)
			n++
		}
	}
	for id, r := range s.authRequests {
		if !now.Before(r.ExpiresAt) {
			s.deleteAuthRequest(id)
			n++
		}
	}
	for h, c := range s.codes {
		if !now.Before(c.ExpiresAt) {
			delete(s.codes, h)
			n++
		}
	}
	dead := make(map[string]bool)
	for id, f := range s.families {
		if f.Sweepable(now) {
			delete(s.families, id)
			dead[id] = true
			n++
		}
	}
	for h, t := range s.refreshTokens {
		if dead[t.familyID] {
			delete(s.refreshTokens, h)
		}
	}
	for _, m := range []map[string]time.Time{s.revokedTokens, s.revokedGrants} {
		for id, until := range m {
			if !now.Before(until) {
				delete(m, id)
				n++
			}
		}
	}
	for id, sess := range s.sessions {
		if !sessionLive(sess, now) {
			delete(s.sessions, id)
			n++
		}
	}
	for _, m := range []map[string]rateWindow{s.rateLimits, s.otpPools} {
		for k, w := range m {
			if !now.Before(w.end) {
				delete(m, k)
				n++
			}
		}
	}
	for jti, exp := range s.jtis {
		if !now.Before(exp) {
			delete(s.jtis, jti)
			n++
		}
	}
	return n, nil
}
