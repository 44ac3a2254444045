package memory

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/idbroker/broker/storage"
)

// refreshToken is one token of a family. A token with a successor has been
// rotated; the family's current token has none.
type refreshToken struct {
	familyID  string
	successor string // string(hash) of the token that replaced this one
	rotatedAt time.Time
}

// CreateRefreshFamily implements storage.Tokens. A zero LastUsedAt is taken
// to be CreatedAt, so the idle lifetime runs from creation.
func (s *Store) CreateRefreshFamily(ctx context.Context, f storage.RefreshFamily, tokenHash []byte) error {
	if f.ID == "" || len(tokenHash) == 0 {
		return errors.New("memory: create refresh family: empty id or token hash")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.families[f.ID]; ok {
		return fmt.Errorf("memory: create refresh family %q: %w", f.ID, storage.ErrAlreadyExists)
	}
	if _, ok := s.refreshTokens[string(tokenHash)]; ok {
		return fmt.Errorf("memory: create refresh family %q: token: %w", f.ID, storage.ErrAlreadyExists)
	}
	if f.LastUsedAt.IsZero() {
		f.LastUsedAt = f.CreatedAt
	}
	s.families[f.ID] = cloneFamily(f)
	s.refreshTokens[string(tokenHash)] = refreshToken{familyID: f.ID}
	return nil
}

// RotateRefreshToken implements storage.Tokens. On storage.ErrRefreshReused
// it returns the family it revoked, so the caller can say whose it was.
func (s *Store) RotateRefreshToken(ctx context.Context, req storage.RotateRequest) (storage.RefreshFamily, error) {
	if len(req.SuccessorHash) == 0 {
		return storage.RefreshFamily{}, errors.New("memory: rotate refresh token: empty successor hash")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.refreshTokens[string(req.TokenHash)]
	if !ok {
		return storage.RefreshFamily{}, storage.ErrNotFound
	}
	f := s.families[t.familyID]
	if f.Revoked || f.Expired(req.Now) {
		return storage.RefreshFamily{}, storage.ErrRevoked
	}
	if t.successor == "" {
		if _, ok := s.refreshTokens[string(req.SuccessorHash)]; ok {
			return storage.RefreshFamily{}, fmt.Errorf("memory: rotate refresh token: successor: %w", storage.ErrAlreadyExists)
		}
		t.successor, t.rotatedAt = string(req.SuccessorHash), req.Now
		s.refreshTokens[string(req.TokenHash)] = t
		s.refreshTokens[t.successor] = refreshToken{familyID: f.ID}
		f.LastUsedAt = req.Now
		s.families[f.ID] = f
		return cloneFamily(f), nil
	}
	if req.Now.Sub(t.rotatedAt) < req.RetryWindow && s.refreshTokens[t.successor].successor == "" {
		return cloneFamily(f), nil
	}
	s.revokeFamily(f.ID)
	return cloneFamily(s.families[f.ID]), storage.ErrRefreshReused
}

// revokeFamily revokes a family, if there is one by that id, and the access
// tokens of its grant, and reports whether it found either. The caller
// holds mu.
func (s *Store) revokeFamily(id string) bool {
	found := false
	if f, ok := s.families[id]; ok {
		f.Revoked = true
		s.families[id] = f
		found = true
	}
	for tid, t := range s.accessTokens {
		if t.GrantID == id {
			t.Revoked = true
			s.accessTokens[tid] = t
			found = true
		}
	}
	return found
}

// GetRefreshFamilyByToken implements storage.Tokens. It answers for any
// token of the family, current or rotated, and for revoked and expired
// families too: the caller judges the family it gets.
func (s *Store) GetRefreshFamilyByToken(ctx context.Context, tokenHash []byte) (storage.RefreshFamily, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.refreshTokens[string(tokenHash)]
	if !ok {
		return storage.RefreshFamily{}, storage.ErrNotFound
	}
	return cloneFamily(s.families[t.familyID]), nil
}

// UpdateRefreshFamilyUpstream implements storage.Tokens.
func (s *Store) UpdateRefreshFamilyUpstream(ctx context.Context, familyID string, upstreamRefreshToken []byte, checkedAt time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.families[familyID]
	if !ok {
		return storage.ErrNotFound
	}
	f.UpstreamRefreshToken = append([]byte(nil), upstreamRefreshToken...)
	f.UpstreamCheckedAt = checkedAt
	s.families[familyID] = f
	return nil
}

// RevokeRefreshFamily implements storage.Tokens. A grant without a family
// (a code grant that issued only access tokens) has those revoked; only when
// there is neither a family nor an access token of the grant is the answer
// storage.ErrNotFound.
func (s *Store) RevokeRefreshFamily(ctx context.Context, familyID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.revokeFamily(familyID) {
		return storage.ErrNotFound
	}
	return nil
}

// RevokeUserTokens implements storage.Tokens.
func (s *Store) RevokeUserTokens(ctx context.Context, userID string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for id, f := range s.families {
		if f.UserID == userID {
			f.Revoked = true
			s.families[id] = f
		}
	}
	for id, t := range s.accessTokens {
		if t.UserID == userID {
			t.Revoked = true
			s.accessTokens[id] = t
		}
	}
	return nil
}

// CreateAccessToken implements storage.Tokens.
func (s *Store) CreateAccessToken(ctx context.Context, t storage.AccessToken) error {
	if t.ID == "" {
		return errors.New("memory: create access token: empty id")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.accessTokens[t.ID]; ok {
		return fmt.Errorf("memory: create access token %q: %w", t.ID, storage.ErrAlreadyExists)
	}
	s.accessTokens[t.ID] = cloneAccessToken(t)
	return nil
}

// GetAccessToken implements storage.Tokens. It returns revoked and expired
// records too (until DeleteExpired removes them): the caller checks.
func (s *Store) GetAccessToken(ctx context.Context, id string) (storage.AccessToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.accessTokens[id]
	if !ok {
		return storage.AccessToken{}, storage.ErrNotFound
	}
	return cloneAccessToken(t), nil
}

// RevokeAccessToken implements storage.Tokens.
func (s *Store) RevokeAccessToken(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.accessTokens[id]
	if !ok {
		return storage.ErrNotFound
	}
	t.Revoked = true
	s.accessTokens[id] = t
	return nil
}
