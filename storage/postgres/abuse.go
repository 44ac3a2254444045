package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/idbroker/broker/storage"
	"github.com/jackc/pgx/v5"
)

// TakeRateLimitSlot implements storage.Abuse in one INSERT ... ON CONFLICT
// statement, so replicas counting the same key never lose an event. A
// window opens with the first event under key and lasts window; refused
// events count too, so hammering a key does not earn slots.
func (s *Store) TakeRateLimitSlot(ctx context.Context, key string, limit int, window time.Duration, now time.Time) (bool, time.Duration, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var count int
	var end time.Time
	err := s.hot.QueryRow(ctx, `
		INSERT INTO rate_limits AS r (key, count, window_end) VALUES ($1, 1, $3)
		ON CONFLICT (key) DO UPDATE SET
			count = CASE WHEN r.window_end > $2 THEN r.count + 1 ELSE 1 END,
			window_end = CASE WHEN r.window_end > $2 THEN r.window_end ELSE EXCLUDED.window_end END
		RETURNING count, window_end`, key, now, now.Add(window)).Scan(&count, &end)
	if err != nil {
		return false, 0, fmt.Errorf("postgres: take rate-limit slot: %w", err)
	}
	if count <= limit {
		return true, 0, nil
	}
	return false, end.Sub(now), nil
}

// ConsumeJTI implements storage.Abuse. A jti stays used until DeleteExpired
// removes it after expiresAt.
func (s *Store) ConsumeJTI(ctx context.Context, jti string, expiresAt time.Time) error {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `INSERT INTO used_jtis (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING`, jti, expiresAt)
	if err != nil {
		return fmt.Errorf("postgres: consume jti: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("postgres: consume jti %q: %w", jti, storage.ErrReplay)
	}
	return nil
}

// RateLimited implements storage.Abuse.
func (s *Store) RateLimited(ctx context.Context, key string, limit int, now time.Time) (bool, time.Duration, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var end time.Time
	err := s.pool.QueryRow(ctx, `SELECT window_end FROM rate_limits WHERE key = $1 AND window_end > $2 AND count > $3`,
		key, now, limit).Scan(&end)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, 0, nil
	}
	if err != nil {
		return false, 0, fmt.Errorf("postgres: rate limited: %w", err)
	}
	return true, end.Sub(now), nil
}
