package memory

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/idbroker/broker/storage"
)

func cloneResource(r storage.Resource) storage.Resource {
	r.Scopes = slices.Clone(r.Scopes)
	return r
}

// CreateResource implements storage.Resources.
func (s *Store) CreateResource(ctx context.Context, r storage.Resource) error {
	if r.ID == "" {
		return errors.New("memory: create resource: empty id")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.resources[r.ID]; ok {
		return fmt.Errorf("memory: create resource %q: %w", r.ID, storage.ErrAlreadyExists)
	}
	s.resources[r.ID] = cloneResource(r)
	return nil
}

// GetResource implements storage.Resources.
func (s *Store) GetResource(ctx context.Context, id string) (storage.Resource, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.resources[id]
	if !ok {
		return storage.Resource{}, storage.ErrNotFound
	}
	return cloneResource(r), nil
}

// ListResources implements storage.Resources, ordered by ID.
func (s *Store) ListResources(ctx context.Context) ([]storage.Resource, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]storage.Resource, 0, len(s.resources))
	for _, r := range s.resources {
		out = append(out, cloneResource(r))
	}
	slices.SortFunc(out, func(a, b storage.Resource) int { return cmp.Compare(a.ID, b.ID) })
	return out, nil
}

// UpdateResource implements storage.Resources. Updates are serialized;
// update runs without the store's lock held, so it may read the store.
func (s *Store) UpdateResource(ctx context.Context, id string, update func(storage.Resource) (storage.Resource, error)) (storage.Resource, error) {
	s.updateMu.Lock()
	defer s.updateMu.Unlock()

	r, err := s.GetResource(ctx, id)
	if err != nil {
		return storage.Resource{}, err
	}
	if r, err = update(r); err != nil {
		return storage.Resource{}, err
	}
	r = cloneResource(r)
	r.ID = id

	s.mu.Lock()
	defer s.mu.Unlock()
	// DeleteResource does not take updateMu; do not revive a deleted one.
	if _, ok := s.resources[id]; !ok {
		return storage.Resource{}, storage.ErrNotFound
	}
	s.resources[id] = r
	return cloneResource(r), nil
}

// DeleteResource implements storage.Resources.
func (s *Store) DeleteResource(ctx context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.resources[id]; !ok {
		return storage.ErrNotFound
	}
	delete(s.resources, id)
	return nil
}
