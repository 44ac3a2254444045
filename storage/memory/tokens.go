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
// to be CreatedAt, so the idle lifetime runs from creation. The grant's
// revocation, the session's end and the user's are checked under mu,
// which RevokeGrant, EndSession, SetUserDisabled, RevokeUserTokens and
// DeleteUser hold too: each of them ran wholly before the creation, and
// the creation sees it, or wholly after, and sees the family.
func (s *Store) CreateRefreshFamily(ctx context.Context, f storage.RefreshFamily, tokenHash []byte) error {
	if f.ID == "" || len(tokenHash) == 0 {
		return errors.New("memory: create refresh family: empty id or token hash")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.revokedGrants[f.ID]; ok {
		return fmt.Errorf("memory: create refresh family %q: %w", f.ID, storage.ErrRevoked)
	}
	if why := s.familyRefusal(f); why != "" {
		return fmt.Errorf("memory: create refresh family %q: %s: %w", f.ID, why, storage.ErrRevoked)
	}
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

// familyRefusal says why f may not be created, or "" when it may: its
// session is gone or past its lifetime at f.CreatedAt, or its user is
// gone, disabled, or had their tokens revoked at or after f.AuthTime (in
// whole seconds, as AccessTokenUser judges). The caller holds mu.
func (s *Store) familyRefusal(f storage.RefreshFamily) string {
	if f.SessionID != "" {
		if sess, ok := s.sessions[f.SessionID]; !ok || !sessionLive(sess, f.CreatedAt) {
			return "session ended"
		}
	}
	u, ok := s.users[canonicalID(f.UserID)]
	switch {
	case !ok:
		return "no such user"
	case u.Disabled:
		return "user disabled"
	}
	if at, ok := s.userRevokedAt[u.ID]; ok && !at.Before(f.AuthTime.Truncate(time.Second)) {
		return "user's tokens revoked"
	}
	return ""
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
	if _, ok := s.revokedGrants[f.ID]; ok || f.Revoked || f.Expired(req.Now) {
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

// revokeFamily revokes a family, if there is one by that id, which
// revokes the access tokens of its grant. The caller holds mu.
func (s *Store) revokeFamily(id string) {
	if f, ok := s.families[id]; ok {
		f.Revoked = true
		s.families[id] = f
	}
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

// GetRefreshGrant implements storage.Tokens.
func (s *Store) GetRefreshGrant(ctx context.Context, tokenHash []byte) (storage.RefreshFamily, storage.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.refreshTokens[string(tokenHash)]
	if !ok {
		return storage.RefreshFamily{}, storage.User{}, storage.ErrNotFound
	}
	f := s.families[t.familyID]
	u, ok := s.users[canonicalID(f.UserID)]
	if !ok {
		return storage.RefreshFamily{}, storage.User{}, storage.ErrNotFound
	}
	return cloneFamily(f), u, nil
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

// RevokeGrant implements storage.Tokens. A grant revoked twice is kept
// until the later of the two untils.
func (s *Store) RevokeGrant(ctx context.Context, grantID string, until time.Time) error {
	if grantID == "" {
		return errors.New("memory: revoke grant: empty grant id")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revokeFamily(grantID)
	s.revokedGrants[grantID] = later(s.revokedGrants[grantID], until)
	return nil
}

// RevokeUserTokens implements storage.Tokens. An unknown user gives
// storage.ErrNotFound and changes nothing. A moment earlier than one
// already recorded leaves the later one.
func (s *Store) RevokeUserTokens(ctx context.Context, userID string, now time.Time) error {
	userID = canonicalID(userID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[userID]; !ok {
		return storage.ErrNotFound
	}
	s.userRevokedAt[userID] = later(s.userRevokedAt[userID], now)
	for id, f := range s.families {
		if f.UserID == userID {
			f.Revoked = true
			s.families[id] = f
		}
	}
	return nil
}

// RevokeAccessToken implements storage.Tokens.
func (s *Store) RevokeAccessToken(ctx context.Context, t storage.AccessTokenRef) error {
	if t.ID == "" {
		return errors.New("memory: revoke access token: empty id")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.revokedTokens[t.ID] = later(s.revokedTokens[t.ID], t.ExpiresAt)
	return nil
}

// AccessTokenUser implements storage.Tokens. A user who is gone gives
// storage.ErrNotFound; otherwise a revoked token gives storage.ErrRevoked
// even when its user is also disabled, since a revocation outlasts a user
// being disabled and enabled again.
func (s *Store) AccessTokenUser(ctx context.Context, t storage.AccessTokenRef) (storage.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[canonicalID(t.UserID)]
	if !ok {
		return storage.User{}, storage.ErrNotFound
	}
	if s.revoked(t, u.ID) {
		return storage.User{}, storage.ErrRevoked
	}
	if u.Disabled {
		return storage.User{}, storage.ErrUserDisabled
	}
	return u, nil
}

// revoked reports whether t, a token of user userID, was revoked. A user's
// revocation is compared in whole seconds: one in second S is at or after
// a token issued in second T exactly when S >= T, that is when the moment
// of the revocation is not before T. The caller holds mu.
func (s *Store) revoked(t storage.AccessTokenRef, userID string) bool {
	if _, ok := s.revokedTokens[t.ID]; ok {
		return true
	}
	if t.GrantID != "" {
		if _, ok := s.revokedGrants[t.GrantID]; ok {
			return true
		}
		if f, ok := s.families[t.GrantID]; ok && f.Revoked {
			return true
		}
	}
	at, ok := s.userRevokedAt[userID]
	return ok && !at.Before(t.IssuedAt.Truncate(time.Second))
}

// later returns the later of a and b.
func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
