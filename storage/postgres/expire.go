package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/idbroker/broker/storage"
)

// deleteBatch bounds the rows one DELETE of DeleteExpired removes, so that
// no statement holds many row locks, or runs long, while requests wait.
const deleteBatch = 1000

// sweeps are the expired-row conditions of DeleteExpired, on $1 = now, in
// the order they run: challenges before their auth requests, so that each
// expired challenge is counted before a cascade could take it uncounted.
var sweeps = []struct{ table, expired string }{
	{"otp_challenges", "expires_at <= $1"},
	{"auth_requests", "expires_at <= $1"},
	{"auth_codes", "expires_at <= $1"},
	// A revoked family stays storage.RevokedFamilyRetention longer: it
	// still revokes the access tokens of its grant.
	{"refresh_families", fmt.Sprintf(`(expires_at <= $1 OR idle_deadline <= $1) AND (NOT revoked
		OR expires_at <= $1 - make_interval(secs => %[1]d) OR idle_deadline <= $1 - make_interval(secs => %[1]d))`,
		int64(storage.RevokedFamilyRetention/time.Second))},
	{"access_tokens", "expires_at <= $1"}, // written by schema-2 binaries
	{"revoked_access_tokens", "expires_at <= $1"},
	{"revoked_grants", "expires_at <= $1"},
	{"sessions", "expires_at <= $1 OR idle_deadline <= $1"},
	{"rate_limits", "window_end <= $1"},
	{"otp_attempt_pools", "expires_at <= $1"},
	{"used_jtis", "expires_at <= $1"},
}

// DeleteExpired implements storage.Storage, in batches of deleteBatch rows,
// each its own statement and transaction. It counts the rows of the tables
// in sweeps; the tokens of a removed family and the challenge of a removed
// auth request go with them by cascade, uncounted. The audit log is kept.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int, error) {
	total := 0
	for _, sw := range sweeps {
		// Selecting ctids and deleting by them gives a TID scan, and the
		// repeated condition skips a row changed (say, a session touched)
		// since it was picked.
		query := fmt.Sprintf(`DELETE FROM %[1]s WHERE ctid = ANY (ARRAY (
			SELECT ctid FROM %[1]s WHERE %[2]s LIMIT %[3]d)) AND (%[2]s)`, sw.table, sw.expired, deleteBatch)
		for {
			n, err := s.deleteOnce(ctx, query, now)
			if err != nil {
				return total, fmt.Errorf("postgres: delete expired %s: %w", sw.table, err)
			}
			total += n
			if n < deleteBatch {
				break
			}
		}
	}
	return total, nil
}

func (s *Store) deleteOnce(ctx context.Context, query string, now time.Time) (int, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, query, now)
	return int(tag.RowsAffected()), err
}
