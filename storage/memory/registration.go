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

func cloneRegistrationToken(t storage.RegistrationToken) storage.RegistrationToken {
	t.Hash = slices.Clone(t.Hash)
	return t
}

// registrationToken finds the token of hash; s.mu must be held.
func (s *Store) registrationToken(hash []byte) (storage.RegistrationToken, bool) {
	for _, t := range s.regTokens {
		if bytes.Equal(t.Hash, hash) {
			return t, true
		}
	}
	return storage.RegistrationToken{}, false
}

// CreateRegistrationToken implements storage.Registrations.
func (s *Store) CreateRegistrationToken(ctx context.Context, t storage.RegistrationToken) error {
	if t.ID == "" || len(t.Hash) == 0 {
		return errors.New("memory: create registration token: empty id or hash")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, taken := s.regTokens[t.ID]; taken {
		return fmt.Errorf("memory: create registration token %q: %w", t.ID, storage.ErrAlreadyExists)
	}
	if _, taken := s.registrationToken(t.Hash); taken {
		return fmt.Errorf("memory: create registration token %q: hash: %w", t.ID, storage.ErrAlreadyExists)
	}
	s.regTokens[t.ID] = cloneRegistrationToken(t)
	return nil
}

// ListRegistrationTokens implements storage.Registrations.
func (s *Store) ListRegistrationTokens(ctx context.Context) ([]storage.RegistrationToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]storage.RegistrationToken, 0, len(s.regTokens))
	for _, t := range s.regTokens {
		out = append(out, cloneRegistrationToken(t))
	}
	slices.SortFunc(out, func(a, b storage.RegistrationToken) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// RegistrationToken implements storage.Registrations.
func (s *Store) RegistrationToken(ctx context.Context, hash []byte, now time.Time) (storage.RegistrationToken, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.registrationToken(hash)
	if !ok {
		return storage.RegistrationToken{}, storage.ErrNotFound
	}
	if t.Spent(now) {
		return storage.RegistrationToken{}, storage.ErrExpired
	}
	return cloneRegistrationToken(t), nil
}

// RevokeRegistrationToken implements storage.Registrations.
func (s *Store) RevokeRegistrationToken(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.regTokens[id]; !ok {
		return storage.ErrNotFound
	}
	delete(s.regTokens, id)
	return nil
}

// RegisterClient implements storage.Registrations, under the store's
// one lock.
func (s *Store) RegisterClient(ctx context.Context, c storage.Client, tokenHash []byte, now time.Time) error {
	if c.ID == "" {
		return errors.New("memory: register client: empty id")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var t storage.RegistrationToken
	if tokenHash != nil {
		var ok bool
		if t, ok = s.registrationToken(tokenHash); !ok {
			return storage.ErrNotFound
		}
		if t.Spent(now) {
			return storage.ErrExpired
		}
	}
	if _, taken := s.clients[c.ID]; taken {
		return fmt.Errorf("memory: register client %q: %w", c.ID, storage.ErrAlreadyExists)
	}
	if tokenHash != nil {
		t.Uses++
		s.regTokens[t.ID] = t
	}
	s.clients[c.ID] = cloneClient(c)
	return nil
}

// NoteClientUse implements storage.Registrations.
func (s *Store) NoteClientUse(ctx context.Context, id string, now time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok || now.Sub(c.LastUsedAt) < storage.ClientUseGranularity {
		return nil
	}
	c.LastUsedAt = now
	s.clients[id] = c
	return nil
}

// DeleteUnusedClients implements storage.Registrations.
func (s *Store) DeleteUnusedClients(ctx context.Context, before time.Time) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var ids []string
	for id, c := range s.clients {
		if c.RegistrationTokenHash != nil && lastUse(c).Before(before) {
			ids = append(ids, id)
			delete(s.clients, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// lastUse is when c was last used, or registered if never.
func lastUse(c storage.Client) time.Time {
	if c.LastUsedAt.After(c.CreatedAt) {
		return c.LastUsedAt
	}
	return c.CreatedAt
}
