package memory

import (
	"cmp"
	"context"
	"fmt"
	"slices"

	"github.com/idbroker/broker/storage"
)

// ListSigningKeys implements storage.SigningKeys, ordered by CreatedAt,
// then ID.
func (s *Store) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneSigningKeys(s.signingKeys), nil
}

// UpdateSigningKeys implements storage.SigningKeys. Updaters are serialized
// by their own lock, and update runs without the store's lock held, so
// readers are not held up by a slow key generation. Two keys with one ID
// fail the update with storage.ErrAlreadyExists. An error from update is
// returned as it is.
func (s *Store) UpdateSigningKeys(ctx context.Context, update func([]storage.SigningKey) ([]storage.SigningKey, error)) ([]storage.SigningKey, error) {
	s.keysMu.Lock()
	defer s.keysMu.Unlock()

	keys, err := s.ListSigningKeys(ctx)
	if err != nil {
		return nil, err
	}
	keys, err = update(keys)
	if err != nil {
		return nil, err
	}
	keys = cloneSigningKeys(keys)
	slices.SortFunc(keys, compareSigningKeys)
	seen := make(map[string]bool, len(keys))
	for _, k := range keys {
		if seen[k.ID] {
			return nil, fmt.Errorf("memory: update signing keys: key %q twice: %w", k.ID, storage.ErrAlreadyExists)
		}
		seen[k.ID] = true
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	s.signingKeys = keys
	return cloneSigningKeys(keys), nil
}

func compareSigningKeys(a, b storage.SigningKey) int {
	return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
}
