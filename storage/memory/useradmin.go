package memory

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/idbroker/broker/storage"
)

// ListUsers implements storage.Users.
func (s *Store) ListUsers(ctx context.Context, after string, limit int) ([]storage.User, error) {
	if limit <= 0 {
		return nil, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []storage.User
	for id, u := range s.users {
		if id > after {
			out = append(out, u)
		}
	}
	slices.SortFunc(out, func(a, b storage.User) int { return cmp.Compare(a.ID, b.ID) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// DeleteUser implements storage.Users under one hold of the lock.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	id = canonicalID(id)
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[id]
	if !ok {
		return storage.ErrNotFound
	}
	if u.EmailVerified && s.verifiedEmails[u.Email] == id {
		delete(s.verifiedEmails, u.Email)
	}
	delete(s.users, id)
	for k, ident := range s.identities {
		if ident.UserID == id {
			delete(s.identities, k)
		}
	}
	for sid, sess := range s.sessions {
		if sess.UserID == id {
			delete(s.sessions, sid)
		}
	}
	dead := make(map[string]bool)
	for fid, f := range s.families {
		if f.UserID == id {
			delete(s.families, fid)
			dead[fid] = true
		}
	}
	for h, t := range s.refreshTokens {
		if dead[t.familyID] {
			delete(s.refreshTokens, h)
		}
	}
	delete(s.userRevokedAt, id)
	s.deleteConsents(func(k consentKey) bool { return k.userID == id })
	for k := range s.members {
		if k.userID == id {
			delete(s.members, k)
		}
	}
	return nil
}

// LinkIdentity implements storage.Users.
func (s *Store) LinkIdentity(ctx context.Context, ident storage.Identity) error {
	if ident.Connector == "" || ident.Subject == "" {
		return errors.New("memory: link identity: connector and subject are required")
	}
	ident.UserID = canonicalID(ident.UserID)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.users[ident.UserID]; !ok {
		return storage.ErrNotFound
	}
	key := identityKey{ident.Connector, ident.Subject}
	if cur, ok := s.identities[key]; ok {
		if cur.UserID == ident.UserID {
			return nil
		}
		return fmt.Errorf("memory: link identity %s/%s: it belongs to user %s: %w", ident.Connector, ident.Subject, cur.UserID, storage.ErrAlreadyExists)
	}
	s.identities[key] = ident
	return nil
}

// UnlinkIdentity implements storage.Users.
func (s *Store) UnlinkIdentity(ctx context.Context, userID, connector, subject string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	key := identityKey{connector, subject}
	if cur, ok := s.identities[key]; !ok || cur.UserID != canonicalID(userID) {
		return storage.ErrNotFound
	}
	delete(s.identities, key)
	return nil
}
