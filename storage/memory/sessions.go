package memory

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/idbroker/broker/storage"
)

// sessionLive reports whether s is within both its lifetimes at now.
func sessionLive(s storage.Session, now time.Time) bool {
	if !now.Before(s.ExpiresAt) {
		return false
	}
	return s.IdleTTL <= 0 || now.Before(s.LastSeenAt.Add(s.IdleTTL))
}

// CreateSession implements storage.Sessions. A zero LastSeenAt is taken to
// be CreatedAt.
func (s *Store) CreateSession(ctx context.Context, sess storage.Session) error {
	if sess.ID == "" {
		return errors.New("memory: create session: empty id")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.sessions[sess.ID]; ok {
		return fmt.Errorf("memory: create session: %w", storage.ErrAlreadyExists)
	}
	if sess.LastSeenAt.IsZero() {
		sess.LastSeenAt = sess.CreatedAt
	}
	s.sessions[sess.ID] = cloneSession(sess)
	return nil
}

// GetSession implements storage.Sessions.
func (s *Store) GetSession(ctx context.Context, id string, now time.Time) (storage.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[id]
	if !ok || !sessionLive(sess, now) {
		return storage.Session{}, storage.ErrNotFound
	}
	return cloneSession(sess), nil
}

// TouchSession implements storage.Sessions. A session that is no longer
// live is not revived: storage.ErrNotFound. An empty clientID only records
// the use.
func (s *Store) TouchSession(ctx context.Context, id, clientID string, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[id]
	if !ok || !sessionLive(sess, now) {
		return storage.ErrNotFound
	}
	sess.LastSeenAt = now
	if clientID != "" && !slices.Contains(sess.Clients, clientID) {
		sess.Clients = append(slices.Clone(sess.Clients), clientID)
	}
	s.sessions[id] = sess
	return nil
}

// ListSessions implements storage.Sessions: the user's live sessions,
// oldest first.
func (s *Store) ListSessions(ctx context.Context, userID string, now time.Time) ([]storage.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []storage.Session
	for _, sess := range s.sessions {
		if sess.UserID == userID && sessionLive(sess, now) {
			out = append(out, cloneSession(sess))
		}
	}
	slices.SortFunc(out, func(a, b storage.Session) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// EndSession implements storage.Sessions. A revoked family revokes the
// access tokens of its grant (see AccessTokenUser). A session past its
// lifetime but not yet swept can still be ended.
func (s *Store) EndSession(ctx context.Context, id string) (storage.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.sessions[id]
	if !ok {
		return storage.Session{}, storage.ErrNotFound
	}
	delete(s.sessions, id)
	for fid, f := range s.families {
		if f.SessionID == id {
			s.revokeFamily(fid)
		}
	}
	return cloneSession(sess), nil
}

// UpdateSessionUpstream implements storage.Sessions. The families of a
// session that is gone are updated too: they may outlive it.
func (s *Store) UpdateSessionUpstream(ctx context.Context, id string, old, next []byte) error {
	if len(old) == 0 {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if sess, ok := s.sessions[id]; ok && bytes.Equal(sess.UpstreamRefreshToken, old) {
		sess.UpstreamRefreshToken = slices.Clone(next)
		s.sessions[id] = sess
	}
	for fid, f := range s.families {
		if f.SessionID == id && bytes.Equal(f.UpstreamRefreshToken, old) {
			f.UpstreamRefreshToken = slices.Clone(next)
			s.families[fid] = f
		}
	}
	return nil
}
