package memory

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/idbroker/broker/storage"
)

// consentKey names one consent.
type consentKey struct{ userID, clientID, resource string }

// consentUser returns the canonical form of a consent's user id, and
// false when it is not a UUID: as in Postgres, no user has such an id.
func consentUser(id string) (string, bool) {
	u, err := uuid.Parse(id)
	if err != nil {
		return "", false
	}
	return u.String(), true
}

// GetConsent implements storage.Consents.
func (s *Store) GetConsent(ctx context.Context, userID, clientID, resource string) (storage.Consent, error) {
	userID, ok := consentUser(userID)
	if !ok {
		return storage.Consent{}, storage.ErrNotFound
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.consents[consentKey{userID, clientID, resource}]
	if !ok {
		return storage.Consent{}, storage.ErrNotFound
	}
	return cloneConsent(c), nil
}

// GrantConsent implements storage.Consents under one hold of the lock.
func (s *Store) GrantConsent(ctx context.Context, c storage.Consent) (storage.Consent, error) {
	userID, ok := consentUser(c.UserID)
	if !ok {
		return storage.Consent{}, storage.ErrNotFound
	}
	c.UserID = userID
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[userID]; !ok {
		return storage.Consent{}, storage.ErrNotFound
	}
	k := consentKey{userID, c.ClientID, c.Resource}
	scopes := append(slices.Clone(s.consents[k].Scopes), c.Scopes...)
	slices.Sort(scopes)
	c.Scopes = slices.Compact(scopes)
	s.consents[k] = c
	return cloneConsent(c), nil
}

// ListConsents implements storage.Consents.
func (s *Store) ListConsents(ctx context.Context, userID string) ([]storage.Consent, error) {
	userID, ok := consentUser(userID)
	if !ok {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []storage.Consent
	for k, c := range s.consents {
		if k.userID == userID {
			out = append(out, cloneConsent(c))
		}
	}
	slices.SortFunc(out, compareConsents)
	return out, nil
}

// RevokeConsent implements storage.Consents under one hold of the lock.
func (s *Store) RevokeConsent(ctx context.Context, userID, clientID string, revokeUntil time.Time) ([]storage.Consent, error) {
	userID, ok := consentUser(userID)
	if !ok {
		return nil, storage.ErrNotFound
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var revoked []storage.Consent
	for k, c := range s.consents {
		if k.userID == userID && k.clientID == clientID {
			delete(s.consents, k)
			revoked = append(revoked, c)
		}
	}
	if len(revoked) == 0 {
		return nil, storage.ErrNotFound
	}
	for id, f := range s.families {
		if f.UserID == userID && f.ClientID == clientID {
			s.revokeFamily(id)
			s.revokedGrants[id] = later(s.revokedGrants[id], revokeUntil)
		}
	}
	for h, code := range s.codes {
		if canonicalID(code.UserID) != userID || code.ClientID != clientID {
			continue
		}
		if code.GrantID == "" {
			delete(s.codes, h)
			continue
		}
		s.revokeFamily(code.GrantID)
		s.revokedGrants[code.GrantID] = later(s.revokedGrants[code.GrantID], revokeUntil)
	}
	slices.SortFunc(revoked, compareConsents)
	return revoked, nil
}

// deleteConsents removes consents that match. The caller holds mu.
func (s *Store) deleteConsents(match func(consentKey) bool) {
	for k := range s.consents {
		if match(k) {
			delete(s.consents, k)
		}
	}
}

func compareConsents(a, b storage.Consent) int {
	return cmp.Or(cmp.Compare(a.ClientID, b.ClientID), cmp.Compare(a.Resource, b.Resource))
}

func cloneConsent(c storage.Consent) storage.Consent {
	c.Scopes = slices.Clone(c.Scopes)
	return c
}
