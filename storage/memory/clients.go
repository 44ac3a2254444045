package memory

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/idbroker/broker/storage"
)

// CreateClient implements storage.Clients.
func (s *Store) CreateClient(ctx context.Context, c storage.Client) error {
	if c.ID == "" {
		return errors.New("memory: create client: empty id")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.clients[c.ID]; ok {
		return fmt.Errorf("memory: create client %q: %w", c.ID, storage.ErrAlreadyExists)
	}
	s.clients[c.ID] = cloneClient(c)
	return nil
}

// GetClient implements storage.Clients.
func (s *Store) GetClient(ctx context.Context, id string) (storage.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	c, ok := s.clients[id]
	if !ok {
		return storage.Client{}, storage.ErrNotFound
	}
	return cloneClient(c), nil
}

// ListClients implements storage.Clients, ordered by ID.
func (s *Store) ListClients(ctx context.Context) ([]storage.Client, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]storage.Client, 0, len(s.clients))
	for _, c := range s.clients {
		out = append(out, cloneClient(c))
	}
	slices.SortFunc(out, func(a, b storage.Client) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// UpdateClient implements storage.Clients. Updates are serialized; update
// runs without the store's lock held, so it may read the store but must not
// update a client or an auth request itself. The client keeps its ID
// whatever update returns. An error from update is returned as it is.
func (s *Store) UpdateClient(ctx context.Context, id string, update func(storage.Client) (storage.Client, error)) (storage.Client, error) {
	s.updateMu.Lock()
	defer s.updateMu.Unlock()

	c, err := s.GetClient(ctx, id)
	if err != nil {
		return storage.Client{}, err
	}
	c, err = update(c)
	if err != nil {
		return storage.Client{}, err
	}
	c = cloneClient(c)
	c.ID = id

	s.mu.Lock()
	defer s.mu.Unlock()
	// DeleteClient does not take updateMu; do not revive a deleted client.
	if _, ok := s.clients[id]; !ok {
		return storage.Client{}, storage.ErrNotFound
	}
	s.clients[id] = c
	return cloneClient(c), nil
}

// DeleteClient implements storage.Clients.
func (s *Store) DeleteClient(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.clients[id]; !ok {
		return storage.ErrNotFound
	}
	delete(s.clients, id)
	s.deleteConsents(func(k consentKey) bool { return k.clientID == id })
	return nil
}
