package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/idbroker/broker/storage"
)

const sessionColumns = `id, user_id, auth_time, amr, idp, clients, created_at, last_seen_at, expires_at, idle_ttl_us, org, upstream_refresh_token, impersonator`

// sessionLive is the SQL condition for a session within both lifetimes at $2.
const sessionLive = `expires_at > $2 AND (idle_deadline IS NULL OR idle_deadline > $2)`

func scanSession(row pgx.Row) (storage.Session, error) {
	var sess storage.Session
	var idleUS int64
	if err := row.Scan(&sess.ID, &sess.UserID, &sess.AuthTime, &sess.AMR, &sess.IDP, &sess.Clients,
		&sess.CreatedAt, &sess.LastSeenAt, &sess.ExpiresAt, &idleUS, &sess.Org, &sess.UpstreamRefreshToken,
		&sess.Impersonator); err != nil {
		return storage.Session{}, err
	}
	sess.IdleTTL = time.Duration(idleUS) * time.Microsecond
	utc(&sess.AuthTime, &sess.CreatedAt, &sess.LastSeenAt, &sess.ExpiresAt)
	return sess, nil
}

// CreateSession implements storage.Sessions. A zero LastSeenAt is taken to
// be CreatedAt.
func (s *Store) CreateSession(ctx context.Context, sess storage.Session) error {
	if sess.ID == "" {
		return errors.New("postgres: create session: empty id")
	}
	if sess.LastSeenAt.IsZero() {
		sess.LastSeenAt = sess.CreatedAt
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	_, err := s.hot.Exec(ctx, `
		INSERT INTO sessions (id, user_id, auth_time, amr, idp, clients, created_at, last_seen_at, expires_at, idle_ttl_us, idle_deadline,
			org, upstream_refresh_token, impersonator)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`,
		sess.ID, sess.UserID, sess.AuthTime, sess.AMR, sess.IDP, sess.Clients, sess.CreatedAt, sess.LastSeenAt, sess.ExpiresAt,
		sess.IdleTTL.Microseconds(), idleDeadline(sess.LastSeenAt, sess.IdleTTL), sess.Org, sess.UpstreamRefreshToken, sess.Impersonator)
	if isUniqueViolation(err) {
		return fmt.Errorf("postgres: create session: %w", storage.ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("postgres: create session: %w", err)
	}
	return nil
}

// GetSession implements storage.Sessions.
func (s *Store) GetSession(ctx context.Context, id string, now time.Time) (storage.Session, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	sess, err := scanSession(s.pool.QueryRow(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE id = $1 AND `+sessionLive, id, now))
	if err != nil {
		return storage.Session{}, notFound(err, "get session")
	}
	return sess, nil
}

// TouchSession implements storage.Sessions in one UPDATE. A session that is
// no longer live is not revived: storage.ErrNotFound. An empty clientID
// only records the use.
func (s *Store) TouchSession(ctx context.Context, id, clientID string, now time.Time) error {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `
		UPDATE sessions SET
			last_seen_at = $2,
			idle_deadline = CASE WHEN idle_ttl_us > 0 THEN $2 + idle_ttl_us * interval '1 microsecond' END,
			clients = CASE WHEN $3 = '' OR $3 = ANY (clients) THEN clients ELSE array_append(clients, $3::text) END
		WHERE id = $1 AND `+sessionLive, id, now, clientID)
	if err != nil {
		return fmt.Errorf("postgres: touch session: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return storage.ErrNotFound
	}
	return nil
}

// ListSessions implements storage.Sessions: the user's live sessions,
// oldest first.
func (s *Store) ListSessions(ctx context.Context, userID string, now time.Time) ([]storage.Session, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT `+sessionColumns+` FROM sessions WHERE user_id = $1 AND `+sessionLive+`
		ORDER BY created_at, id COLLATE "C"`, userID, now)
	if err != nil {
		return nil, fmt.Errorf("postgres: list sessions: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.Session, error) { return scanSession(row) })
	if err != nil {
		return nil, fmt.Errorf("postgres: list sessions: %w", err)
	}
	return list, nil
}

// EndSession implements storage.Sessions in one transaction. A revoked
// family revokes the access tokens of its grant (see AccessTokenUser); their
// rows in access_tokens are marked revoked too, for schema-2 binaries. A
// session past its lifetime but not yet swept can still be ended.
func (s *Store) EndSession(ctx context.Context, id string) (storage.Session, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var out storage.Session
	err := s.inTx(ctx, "end session", func(tx pgx.Tx) error {
		sess, err := scanSession(tx.QueryRow(ctx, `DELETE FROM sessions WHERE id = $1 RETURNING `+sessionColumns, id))
		if err != nil {
			return notFound(err, "end session")
		}
		if _, err := tx.Exec(ctx, `
			WITH revoked AS (
				UPDATE refresh_families SET revoked = true WHERE session_id = $1 RETURNING id
			)
			UPDATE access_tokens SET revoked = true WHERE grant_id IN (SELECT id FROM revoked)`, id); err != nil {
			return fmt.Errorf("postgres: end session: revoke families: %w", err)
		}
		out = sess
		return nil
	})
	if err != nil {
		return storage.Session{}, err
	}
	return out, nil
}

// UpdateSessionUpstream implements storage.Sessions in one statement. The
// families of a session that is gone are updated too: they may outlive it.
func (s *Store) UpdateSessionUpstream(ctx context.Context, id string, old, next []byte) error {
	if len(old) == 0 {
		return nil
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	if _, err := s.pool.Exec(ctx, `
		WITH sess AS (
			UPDATE sessions SET upstream_refresh_token = $3 WHERE id = $1 AND upstream_refresh_token = $2
		)
		UPDATE refresh_families SET upstream_refresh_token = $3
		WHERE session_id = $1 AND upstream_refresh_token = $2`, id, old, next); err != nil {
		return fmt.Errorf("postgres: update session upstream: %w", err)
	}
	return nil
}
