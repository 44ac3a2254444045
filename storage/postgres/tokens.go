package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/idbroker/broker/storage"
)

const familyColumns = `f.id, f.client_id, f.user_id, f.scopes, f.audience, f.auth_time, f.amr, f.idp, f.org, f.session_id,
	f.upstream_refresh_token, f.upstream_checked_at, f.created_at, f.last_used_at, f.expires_at, f.idle_timeout_us, f.revoked`

func scanFamily(row pgx.Row) (storage.RefreshFamily, error) {
	var f storage.RefreshFamily
	var idleUS int64
	if err := row.Scan(&f.ID, &f.ClientID, &f.UserID, &f.Scopes, &f.Audience, &f.AuthTime, &f.AMR, &f.IDP, &f.Org, &f.SessionID,
		&f.UpstreamRefreshToken, &f.UpstreamCheckedAt, &f.CreatedAt, &f.LastUsedAt, &f.ExpiresAt, &idleUS, &f.Revoked); err != nil {
		return storage.RefreshFamily{}, err
	}
	f.IdleTimeout = time.Duration(idleUS) * time.Microsecond
	utc(&f.AuthTime, &f.UpstreamCheckedAt, &f.CreatedAt, &f.LastUsedAt, &f.ExpiresAt)
	return f, nil
}

// CreateRefreshFamily implements storage.Tokens. A zero LastUsedAt is taken
// to be CreatedAt, so the idle lifetime runs from creation. Durations are
// kept to the microsecond.
func (s *Store) CreateRefreshFamily(ctx context.Context, f storage.RefreshFamily, tokenHash []byte) error {
	if f.ID == "" || len(tokenHash) == 0 {
		return errors.New("postgres: create refresh family: empty id or token hash")
	}
	if f.LastUsedAt.IsZero() {
		f.LastUsedAt = f.CreatedAt
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	return s.inTx(ctx, "create refresh family", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
			INSERT INTO refresh_families (id, client_id, user_id, scopes, audience, auth_time, amr, idp, org, session_id,
				upstream_refresh_token, upstream_checked_at, created_at, last_used_at, expires_at, idle_timeout_us, idle_deadline, revoked)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)`,
			f.ID, f.ClientID, f.UserID, f.Scopes, f.Audience, f.AuthTime, f.AMR, f.IDP, f.Org, f.SessionID,
			f.UpstreamRefreshToken, f.UpstreamCheckedAt, f.CreatedAt, f.LastUsedAt, f.ExpiresAt,
			f.IdleTimeout.Microseconds(), idleDeadline(f.LastUsedAt, f.IdleTimeout), f.Revoked)
		if err == nil {
			_, err = tx.Exec(ctx, `INSERT INTO refresh_tokens (token_hash, family_id) VALUES ($1, $2)`, tokenHash, f.ID)
		}
		if isUniqueViolation(err) {
			return fmt.Errorf("postgres: create refresh family %q: %w", f.ID, storage.ErrAlreadyExists)
		}
		if err != nil {
			return fmt.Errorf("postgres: create refresh family: %w", err)
		}
		return nil
	})
}

// RotateRefreshToken implements storage.Tokens in one transaction that
// locks the family row first, so rotations, retries and reuse of one
// family's tokens are decided one at a time, by whichever replica. On
// storage.ErrRefreshReused it returns the family it revoked, so the caller
// can say whose it was.
func (s *Store) RotateRefreshToken(ctx context.Context, req storage.RotateRequest) (storage.RefreshFamily, error) {
	if len(req.SuccessorHash) == 0 {
		return storage.RefreshFamily{}, errors.New("postgres: rotate refresh token: empty successor hash")
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var out storage.RefreshFamily
	var refusal error // committed, then returned: a reuse must stay revoked
	err := s.inTx(ctx, "rotate refresh token", func(tx pgx.Tx) error {
		// Lock the family first, then read the token: a rotation that
		// committed while this one waited for the lock is then seen.
		f, err := scanFamily(tx.QueryRow(ctx, `
			SELECT `+familyColumns+` FROM refresh_families f
			WHERE f.id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1)
			FOR UPDATE`, req.TokenHash))
		if err != nil {
			return notFound(err, "rotate refresh token")
		}
		var successor []byte
		var rotatedAt *time.Time
		if err := tx.QueryRow(ctx, `SELECT successor_hash, rotated_at FROM refresh_tokens WHERE token_hash = $1`,
			req.TokenHash).Scan(&successor, &rotatedAt); err != nil {
			return fmt.Errorf("postgres: rotate refresh token: %w", err)
		}
		wrap := func(err error) error { return fmt.Errorf("postgres: rotate refresh token: %w", err) }
		switch {
		case f.Revoked || f.Expired(req.Now):
			refusal = storage.ErrRevoked
			return nil

		case successor == nil:
			_, err := tx.Exec(ctx, `INSERT INTO refresh_tokens (token_hash, family_id) VALUES ($1, $2)`, req.SuccessorHash, f.ID)
			if isUniqueViolation(err) {
				return fmt.Errorf("postgres: rotate refresh token: successor: %w", storage.ErrAlreadyExists)
			}
			if err != nil {
				return wrap(err)
			}
			if _, err := tx.Exec(ctx, `UPDATE refresh_tokens SET successor_hash = $2, rotated_at = $3 WHERE token_hash = $1`,
				req.TokenHash, req.SuccessorHash, req.Now); err != nil {
				return wrap(err)
			}
			if _, err := tx.Exec(ctx, `UPDATE refresh_families SET last_used_at = $2, idle_deadline = $3 WHERE id = $1`,
				f.ID, req.Now, idleDeadline(req.Now, f.IdleTimeout)); err != nil {
				return wrap(err)
			}
			f.LastUsedAt = req.Now.UTC()
			out = f
			return nil
		}

		// A rotated token: a retry if recent and its successor unused.
		var successorUsed bool
		if err := tx.QueryRow(ctx, `SELECT successor_hash IS NOT NULL FROM refresh_tokens WHERE token_hash = $1`,
			successor).Scan(&successorUsed); err != nil {
			return wrap(err)
		}
		if req.Now.Sub(*rotatedAt) < req.RetryWindow && !successorUsed {
			out = f
			return nil
		}
		if _, err := revokeGrant(ctx, tx, f.ID); err != nil {
			return wrap(err)
		}
		f.Revoked = true
		out, refusal = f, storage.ErrRefreshReused
		return nil
	})
	if err != nil {
		return storage.RefreshFamily{}, err
	}
	return out, refusal
}

// revokeGrant revokes a family, if there is one by that id, and the access
// tokens of its grant, and reports how many rows it revoked.
func revokeGrant(ctx context.Context, tx pgx.Tx, id string) (int64, error) {
	a, err := tx.Exec(ctx, `UPDATE refresh_families SET revoked = true WHERE id = $1`, id)
	if err != nil {
		return 0, err
	}
	b, err := tx.Exec(ctx, `UPDATE access_tokens SET revoked = true WHERE grant_id = $1`, id)
	if err != nil {
		return 0, err
	}
	return a.RowsAffected() + b.RowsAffected(), nil
}

// GetRefreshFamilyByToken implements storage.Tokens. It answers for any
// token of the family, current or rotated, and for revoked and expired
// families too: the caller judges the family it gets.
func (s *Store) GetRefreshFamilyByToken(ctx context.Context, tokenHash []byte) (storage.RefreshFamily, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	f, err := scanFamily(s.pool.QueryRow(ctx, `
		SELECT `+familyColumns+` FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id
		WHERE t.token_hash = $1`, tokenHash))
	if err != nil {
		return storage.RefreshFamily{}, notFound(err, "get refresh family")
	}
	return f, nil
}

// UpdateRefreshFamilyUpstream implements storage.Tokens.
func (s *Store) UpdateRefreshFamilyUpstream(ctx context.Context, familyID string, upstreamRefreshToken []byte, checkedAt time.Time) error {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `UPDATE refresh_families SET upstream_refresh_token = $2, upstream_checked_at = $3 WHERE id = $1`,
		familyID, upstreamRefreshToken, checkedAt)
	if err != nil {
		return fmt.Errorf("postgres: update refresh family upstream: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return storage.ErrNotFound
	}
	return nil
}

// RevokeRefreshFamily implements storage.Tokens. A grant without a family
// (a code grant that issued only access tokens) has those revoked; only when
// there is neither a family nor an access token of the grant is the answer
// storage.ErrNotFound.
func (s *Store) RevokeRefreshFamily(ctx context.Context, familyID string) error {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	return s.inTx(ctx, "revoke refresh family", func(tx pgx.Tx) error {
		n, err := revokeGrant(ctx, tx, familyID)
		if err != nil {
			return fmt.Errorf("postgres: revoke refresh family: %w", err)
		}
		if n == 0 {
			return storage.ErrNotFound
		}
		return nil
	})
}

// RevokeUserTokens implements storage.Tokens.
func (s *Store) RevokeUserTokens(ctx context.Context, userID string) error {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	return s.inTx(ctx, "revoke user tokens", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `UPDATE refresh_families SET revoked = true WHERE user_id = $1`, userID); err != nil {
			return fmt.Errorf("postgres: revoke user tokens: %w", err)
		}
		if _, err := tx.Exec(ctx, `UPDATE access_tokens SET revoked = true WHERE user_id = $1`, userID); err != nil {
			return fmt.Errorf("postgres: revoke user tokens: %w", err)
		}
		return nil
	})
}

// CreateAccessToken implements storage.Tokens.
func (s *Store) CreateAccessToken(ctx context.Context, t storage.AccessToken) error {
	if t.ID == "" {
		return errors.New("postgres: create access token: empty id")
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	_, err := s.ephemeral.Exec(ctx, `
		INSERT INTO access_tokens (id, grant_id, client_id, user_id, audience, scopes, issued_at, expires_at, revoked)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		t.ID, t.GrantID, t.ClientID, t.UserID, t.Audience, t.Scopes, t.IssuedAt, t.ExpiresAt, t.Revoked)
	if isUniqueViolation(err) {
		return fmt.Errorf("postgres: create access token %q: %w", t.ID, storage.ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("postgres: create access token: %w", err)
	}
	return nil
}

// GetAccessToken implements storage.Tokens. It returns revoked and expired
// records too (until DeleteExpired removes them): the caller checks.
func (s *Store) GetAccessToken(ctx context.Context, id string) (storage.AccessToken, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var t storage.AccessToken
	err := s.pool.QueryRow(ctx, `
		SELECT id, grant_id, client_id, user_id, audience, scopes, issued_at, expires_at, revoked
		FROM access_tokens WHERE id = $1`, id).Scan(
		&t.ID, &t.GrantID, &t.ClientID, &t.UserID, &t.Audience, &t.Scopes, &t.IssuedAt, &t.ExpiresAt, &t.Revoked)
	if err != nil {
		return storage.AccessToken{}, notFound(err, "get access token")
	}
	utc(&t.IssuedAt, &t.ExpiresAt)
	return t, nil
}

// RevokeAccessToken implements storage.Tokens.
func (s *Store) RevokeAccessToken(ctx context.Context, id string) error {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `UPDATE access_tokens SET revoked = true WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("postgres: revoke access token: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return storage.ErrNotFound
	}
	return nil
}
