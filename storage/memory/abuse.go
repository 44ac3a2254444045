package memory

import (
	"context"
	"fmt"
	"time"

	"github.com/idbroker/broker/storage"
)

// rateWindow is a fixed window that opened with its first event.
type rateWindow struct {
	count int
	end   time.Time
}

// TakeRateLimitSlot implements storage.Abuse. A window opens with the first
// event under key and lasts window; refused events count too, so hammering
// a key does not earn slots.
func (s *Store) TakeRateLimitSlot(ctx context.Context, key string, limit int, window time.Duration, now time.Time) (bool, time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.rateLimits[key]
	if now.Before(w.end) {
		w.count++
	} else {
		w = rateWindow{count: 1, end: now.Add(window)}
	}
	s.rateLimits[key] = w
	if w.count <= limit {
		return true, 0, nil
	}
	return false, w.end.Sub(now), nil
}

// RateLimited implements storage.Abuse.
func (s *Store) RateLimited(ctx context.Context, key string, limit int, now time.Time) (bool, time.Duration, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w := s.rateLimits[key]
	if now.Before(w.end) && w.count > limit {
		return true, w.end.Sub(now), nil
	}
	return false, 0, nil
}

// ConsumeJTI implements storage.Abuse. A jti stays used until DeleteExpired
// removes it after expiresAt.
func (s *Store) ConsumeJTI(ctx context.Context, jti string, expiresAt time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.jtis[jti]; ok {
		return fmt.Errorf("memory: consume jti %q: %w", jti, storage.ErrReplay)
	}
	s.jtis[jti] = expiresAt
	return nil
}
