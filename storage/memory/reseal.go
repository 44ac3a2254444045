package memory

import (
	"context"
	"errors"
	"slices"

	"github.com/idbroker/broker/storage"
)

// ResealUpstreamTokens implements storage.Sessions. It holds the store's
// lock throughout, so every row is replaced atomically and nothing can
// rotate a token between its read and its write.
func (s *Store) ResealUpstreamTokens(ctx context.Context, reseal func(old []byte) ([]byte, bool, error)) (storage.ResealCounts, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var counts storage.ResealCounts
	one := func(old []byte) ([]byte, bool, error) {
		if len(old) == 0 {
			return nil, false, nil
		}
		next, changed, err := reseal(slices.Clone(old))
		switch {
		case errors.Is(err, storage.ErrUnreadable):
			counts.Unreadable++
			return nil, false, nil
		case err != nil:
			return nil, false, err
		case !changed:
			counts.Current++
			return nil, false, nil
		}
		counts.Resealed++
		return slices.Clone(next), true, nil
	}
	for id, f := range s.families {
		next, changed, err := one(f.UpstreamRefreshToken)
		if err != nil {
			return counts, err
		}
		if changed {
			f.UpstreamRefreshToken = next
			s.families[id] = f
		}
	}
	for id, sess := range s.sessions {
		next, changed, err := one(sess.UpstreamRefreshToken)
		if err != nil {
			return counts, err
		}
		if changed {
			sess.UpstreamRefreshToken = next
			s.sessions[id] = sess
		}
	}
	return counts, nil
}
