package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/idbroker/broker/storage"
)

const familyColumns = `f.id, f.client_id, f.user_id, f.scopes, f.audience, f.auth_time, f.amr, f.idp, f.org, f.session_id,
	f.upstream_refresh_token, f.upstream_checked_at, f.created_at, f.last_used_at, f.expires_at, f.idle_timeout_us, f.revoked,
	f.impersonator`

// scanFamily scans familyColumns, then the extra columns into extra.
func scanFamily(row pgx.Row, extra ...any) (storage.RefreshFamily, error) {
	var f storage.RefreshFamily
	var idleUS int64
	if err := row.Scan(append([]any{&f.ID, &f.ClientID, &f.UserID, &f.Scopes, &f.Audience, &f.AuthTime, &f.AMR, &f.IDP, &f.Org, &f.SessionID,
		&f.UpstreamRefreshToken, &f.UpstreamCheckedAt, &f.CreatedAt, &f.LastUsedAt, &f.ExpiresAt, &idleUS, &f.Revoked,
		&f.Impersonator}, extra...)...); err != nil {
		return storage.RefreshFamily{}, err
	}
	f.IdleTimeout = time.Duration(idleUS) * time.Microsecond
	utc(&f.AuthTime, &f.UpstreamCheckedAt, &f.CreatedAt, &f.LastUsedAt, &f.ExpiresAt)
	return f, nil
}

// CreateRefreshFamily implements storage.Tokens in one transaction that
// holds the grant's lock (lockGrant), as RevokeGrant does: a revocation
// racing the creation either committed first, and the insert sees it and
// inserts nothing, or waits for the family to commit and then revokes it.
// Without the lock, a revocation would miss the family its snapshot cannot
// see yet, and the family would come out live. A zero LastUsedAt is taken
// to be CreatedAt, so the idle lifetime runs from creation. Durations are
// kept to the microsecond.
//
// The family's user and session rows are locked FOR SHARE (the user's by
// lockFamilyUser, the session's by the insert itself), and the family is
// inserted only while the session (if it names one) is live at CreatedAt
// and the user is there, enabled, and without a revocation of their
// tokens at or after AuthTime (in whole seconds, as AccessTokenUser
// judges). What ends them takes a conflicting lock on the same row in its
// first statement: EndSession deletes the session's row,
// RevokeUserTokens and SetUserDisabled update the user's (FOR SHARE
// conflicts with the FOR NO KEY UPDATE lock of an update, which FOR KEY
// SHARE would not), DeleteUser locks it FOR UPDATE; each revokes (or
// deletes) the families in a later statement. Under READ COMMITTED,
// however the two overlap:
//
//   - The ending committed before the creation's lock statement: the
//     creation does not see the session, or sees the user disabled,
//     revoked or gone, and inserts nothing (ErrRevoked).
//   - The ending has locked the row but not committed when the creation
//     reaches it: the creation's FOR SHARE waits for it, then takes the
//     row's latest version (or finds it deleted); the insert's check,
//     made on that version, fails: nothing inserted.
//   - The creation locked the row first: the ending's first statement
//     waits for the creation to commit or roll back; its later statement
//     revoking the families takes its snapshot after that, so it sees the
//     committed family and revokes it (or deletes it).
//
// There is no fourth case: both sides lock the same row, and the ending
// revokes only after its lock is granted. A slow creation keeps an SSO
// touch of its session, or an update of its user, waiting until it
// commits; and SetUserDisabled alone does not revoke a family created
// just before it (the broker's disabling revokes the user's tokens next,
// and a refresh refuses a disabled user).
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
		// The locks and the insert go in one round trip; the insert, a
		// statement after the locks', takes its snapshot once they are
		// granted, so it sees every revocation committed before.
		var b pgx.Batch
		b.Queue(lockGrant, grantLockClass, f.ID)
		b.Queue(lockFamilyUser, f.UserID)
		b.Queue(`
			WITH usr AS (
				SELECT 1 FROM users u
				WHERE u.id = CASE WHEN $3 ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN $3::uuid END
					AND NOT u.disabled AND (u.tokens_revoked_at IS NULL OR u.tokens_revoked_at < $21)
			), sess AS (
				SELECT 1 FROM sessions s
				WHERE s.id = $10 AND s.expires_at > $13 AND (s.idle_deadline IS NULL OR s.idle_deadline > $13)
				FOR SHARE
			), fam AS (
				INSERT INTO refresh_families (id, client_id, user_id, scopes, audience, auth_time, amr, idp, org, session_id,
					upstream_refresh_token, upstream_checked_at, created_at, last_used_at, expires_at, idle_timeout_us, idle_deadline, revoked,
					impersonator)
				SELECT $1::text, $2::text, $3::text, $4::text[], $5::text[], $6::timestamptz, $7::text[], $8::text, $9::text, $10::text,
					$11::bytea, $12::timestamptz, $13::timestamptz, $14::timestamptz, $15::timestamptz, $16::bigint, $17::timestamptz, $18::boolean,
					$20::text
				WHERE NOT EXISTS (SELECT 1 FROM revoked_grants WHERE id = $1)
					AND EXISTS (SELECT 1 FROM usr)
					AND ($10 = '' OR EXISTS (SELECT 1 FROM sess))
				RETURNING id
			)
			INSERT INTO refresh_tokens (token_hash, family_id) SELECT $19, id FROM fam`,
			f.ID, f.ClientID, f.UserID, f.Scopes, f.Audience, f.AuthTime, f.AMR, f.IDP, f.Org, f.SessionID,
			f.UpstreamRefreshToken, f.UpstreamCheckedAt, f.CreatedAt, f.LastUsedAt, f.ExpiresAt,
			f.IdleTimeout.Microseconds(), idleDeadline(f.LastUsedAt, f.IdleTimeout), f.Revoked, tokenHash, f.Impersonator,
			f.AuthTime.Truncate(time.Second))
		results := tx.SendBatch(ctx, &b)
		_, err := results.Exec()
		if err == nil {
			_, err = results.Exec()
		}
		var tag pgconn.CommandTag
		if err == nil {
			tag, err = results.Exec()
		}
		if cerr := results.Close(); err == nil {
			err = cerr
		}
		switch {
		case isUniqueViolation(err):
			return fmt.Errorf("postgres: create refresh family %q: %w", f.ID, storage.ErrAlreadyExists)
		case err != nil:
			return fmt.Errorf("postgres: create refresh family: %w", err)
		case tag.RowsAffected() == 0:
			return fmt.Errorf("postgres: create refresh family %q: %w", f.ID, storage.ErrRevoked)
		}
		return nil
	})
}

// lockFamilyUser locks the row of the user ($1) a family is being created
// for, FOR SHARE, as a statement of its own before the insert locks the
// session's row: a creation then takes the user's lock before the
// session's, as DeleteUser does (the user FOR UPDATE, then their
// sessions), and the two cannot deadlock. The insert after it reads the
// user's row as it is now, since nothing can change it while it is
// locked. The id is matched as a UUID, so the primary key is used; an id
// that is no UUID names no user.
const lockFamilyUser = `SELECT 1 FROM users
	WHERE id = CASE WHEN $1 ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN $1::uuid END
	FOR SHARE`

// lockGrant takes a grant's transaction-scoped advisory lock, which
// serializes the creation of its refresh family with its revocation
// (CreateRefreshFamily, RevokeGrant). Its arguments are grantLockClass and
// the grant id. Two grants whose ids hash alike share a lock, which only
// makes one wait for the other.
const lockGrant = `SELECT pg_advisory_xact_lock($1, hashtext($2))`

// grantLockClass is the first key of lockGrant's two-key advisory locks,
// a key space apart from the single-key locks (signingKeysLock, tern's).
// Any constant no other user of the database takes will do; this one
// spells "grnt".
const grantLockClass int32 = 0x67726e74

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
	if f, ok, err := s.rotateUnused(ctx, req); ok || err != nil {
		return f, err
	}
	var out storage.RefreshFamily
	var refusal error // committed, then returned: a reuse must stay revoked
	err := s.inTx(ctx, "rotate refresh token", func(tx pgx.Tx) error {
		// Lock the family first, then read the token: a rotation that
		// committed while this one waited for the lock is then seen.
		var grantRevoked bool
		f, err := scanFamily(tx.QueryRow(ctx, `
			SELECT `+familyColumns+`, EXISTS (SELECT 1 FROM revoked_grants g WHERE g.id = f.id) FROM refresh_families f
			WHERE f.id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1)
			FOR UPDATE OF f`, req.TokenHash), &grantRevoked)
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
		case f.Revoked || grantRevoked || f.Expired(req.Now):
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
		if err := revokeFamily(ctx, tx, f.ID); err != nil {
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

// rotateUnused is RotateRefreshToken's common case in one statement: a
// token never rotated, of a live family. Like the transaction, it locks
// the family row before the token's, and a token rotated meanwhile fails
// the token's re-checked condition, so the statement changes nothing
// that decides; ok false sends every other case (a retry, a reuse, a
// dead family, a race lost) to the transaction, which decides it under
// the family's lock.
func (s *Store) rotateUnused(ctx context.Context, req storage.RotateRequest) (f storage.RefreshFamily, ok bool, err error) {
	f, err = scanFamily(s.pool.QueryRow(ctx, `
		WITH fam AS (
			UPDATE refresh_families f SET last_used_at = $3,
				idle_deadline = CASE WHEN f.idle_timeout_us > 0 THEN $3 + f.idle_timeout_us * interval '1 microsecond' END
			WHERE f.id = (SELECT family_id FROM refresh_tokens WHERE token_hash = $1 AND successor_hash IS NULL)
				AND NOT f.revoked AND f.expires_at > $3
				AND NOT EXISTS (SELECT 1 FROM revoked_grants g WHERE g.id = f.id)
				AND (f.idle_timeout_us = 0 OR f.last_used_at + f.idle_timeout_us * interval '1 microsecond' > $3)
			RETURNING `+familyColumns+`
		), tok AS (
			UPDATE refresh_tokens t SET successor_hash = $2, rotated_at = $3
			FROM fam WHERE t.token_hash = $1 AND t.family_id = fam.id AND t.successor_hash IS NULL
			RETURNING t.family_id
		), successor AS (
			INSERT INTO refresh_tokens (token_hash, family_id) SELECT $2, family_id FROM tok
		)
		SELECT fam.* FROM fam JOIN tok ON tok.family_id = fam.id`,
		req.TokenHash, req.SuccessorHash, req.Now))
	switch {
	case err == nil:
		return f, true, nil
	case errors.Is(err, pgx.ErrNoRows):
		return storage.RefreshFamily{}, false, nil
	case isUniqueViolation(err):
		return storage.RefreshFamily{}, false, fmt.Errorf("postgres: rotate refresh token: successor: %w", storage.ErrAlreadyExists)
	}
	return storage.RefreshFamily{}, false, fmt.Errorf("postgres: rotate refresh token: %w", err)
}

// revokeFamily revokes a family, if there is one by that id, which
// revokes the access tokens of its grant; and marks the grant's rows in
// access_tokens revoked for schema-2 binaries, which read only those.
func revokeFamily(ctx context.Context, tx pgx.Tx, id string) error {
	if _, err := tx.Exec(ctx, `UPDATE refresh_families SET revoked = true WHERE id = $1`, id); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `UPDATE access_tokens SET revoked = true WHERE grant_id = $1`, id)
	return err
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

// GetRefreshGrant implements storage.Tokens. The join casts the family's
// user_id to a UUID, so it uses the users' primary key; an id that is no
// UUID names no user.
func (s *Store) GetRefreshGrant(ctx context.Context, tokenHash []byte) (storage.RefreshFamily, storage.User, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var u storage.User
	f, err := scanFamily(s.hot.QueryRow(ctx, `
		SELECT `+familyColumns+`, `+userColumns+`
		FROM refresh_tokens t JOIN refresh_families f ON f.id = t.family_id JOIN users u
			ON u.id = CASE WHEN f.user_id ~* '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$' THEN f.user_id::uuid END
		WHERE t.token_hash = $1`, tokenHash), userFields(&u)...)
	if err != nil {
		return storage.RefreshFamily{}, storage.User{}, notFound(err, "get refresh grant")
	}
	utc(&u.CreatedAt, &u.UpdatedAt)
	return f, u, nil
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

// RevokeGrant implements storage.Tokens in one transaction. A grant
// revoked twice is kept until the later of the two untils.
func (s *Store) RevokeGrant(ctx context.Context, grantID string, until time.Time) error {
	if grantID == "" {
		return errors.New("postgres: revoke grant: empty grant id")
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	return s.inTx(ctx, "revoke grant", func(tx pgx.Tx) error {
		if err := revokeGrantIn(ctx, tx, grantID, until); err != nil {
			return fmt.Errorf("postgres: revoke grant: %w", err)
		}
		return nil
	})
}

// revokeGrantIn is RevokeGrant in the caller's transaction tx.
func revokeGrantIn(ctx context.Context, tx pgx.Tx, grantID string, until time.Time) error {
	// The grant's lock first: a family being created for it is waited
	// for, and then seen (CreateRefreshFamily).
	if _, err := tx.Exec(ctx, lockGrant, grantLockClass, grantID); err != nil {
		return err
	}
	return revokeGrantRows(ctx, tx, grantID, until)
}

// revokeGrantRows revokes the family of a grant and records the grant's
// revocation until until, for a caller that has made sure no family of
// the grant is being created meanwhile: RevokeGrant by the grant's lock,
// RemoveMember by the user's.
func revokeGrantRows(ctx context.Context, tx pgx.Tx, grantID string, until time.Time) error {
	if err := revokeFamily(ctx, tx, grantID); err != nil {
		return err
	}
	_, err := tx.Exec(ctx, `
		INSERT INTO revoked_grants (id, expires_at) VALUES ($1, $2)
		ON CONFLICT (id) DO UPDATE SET expires_at = GREATEST(revoked_grants.expires_at, EXCLUDED.expires_at)`,
		grantID, until)
	return err
}

// RevokeUserTokens implements storage.Tokens in one transaction. An
// unknown user gives storage.ErrNotFound and changes nothing. A moment
// earlier than one already recorded leaves the later one.
func (s *Store) RevokeUserTokens(ctx context.Context, userID string, now time.Time) error {
	uid, err := uuid.Parse(userID)
	if err != nil {
		return storage.ErrNotFound
	}
	// Families and access tokens name the user in canonical form.
	userID = uid.String()
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	return s.inTx(ctx, "revoke user tokens", func(tx pgx.Tx) error {
		// The user's row first: a DeleteUser under way is waited for, and
		// then there is no one to revoke.
		tag, err := tx.Exec(ctx, `UPDATE users SET tokens_revoked_at = GREATEST(tokens_revoked_at, $2) WHERE id = $1`, userID, now)
		if err != nil {
			return fmt.Errorf("postgres: revoke user tokens: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return storage.ErrNotFound
		}
		for _, q := range []string{
			`UPDATE refresh_families SET revoked = true WHERE user_id = $1`,
			`UPDATE access_tokens SET revoked = true WHERE user_id = $1`,
		} {
			if _, err := tx.Exec(ctx, q, userID); err != nil {
				return fmt.Errorf("postgres: revoke user tokens: %w", err)
			}
		}
		return nil
	})
}

// RevokeAccessToken implements storage.Tokens in one statement, which also
// marks the token's row in access_tokens, if it has one, revoked for
// schema-2 binaries.
func (s *Store) RevokeAccessToken(ctx context.Context, t storage.AccessTokenRef) error {
	if t.ID == "" {
		return errors.New("postgres: revoke access token: empty id")
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	if _, err := s.pool.Exec(ctx, `
		WITH legacy AS (
			UPDATE access_tokens SET revoked = true WHERE id = $1
		)
		INSERT INTO revoked_access_tokens (id, expires_at) VALUES ($1, $2)
		ON CONFLICT (id) DO UPDATE SET expires_at = GREATEST(revoked_access_tokens.expires_at, EXCLUDED.expires_at)`,
		t.ID, t.ExpiresAt); err != nil {
		return fmt.Errorf("postgres: revoke access token: %w", err)
	}
	return nil
}

// AccessTokenUser implements storage.Tokens in one read. A user who is
// gone gives storage.ErrNotFound; otherwise a revoked token gives
// storage.ErrRevoked even when its user is also disabled, since a
// revocation outlasts a user being disabled and enabled again.
//
// The user's tokens_revoked_at is kept to the microsecond and IssuedAt is
// taken in whole seconds: a revocation in second S is at or after a token
// issued in second T exactly when S >= T, that is when tokens_revoked_at
// >= T, whatever the fraction of S.
func (s *Store) AccessTokenUser(ctx context.Context, t storage.AccessTokenRef) (storage.User, error) {
	if _, err := uuid.Parse(t.UserID); err != nil {
		return storage.User{}, storage.ErrNotFound
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var revoked bool
	u, err := scanUser(s.hot.QueryRow(ctx, `
		SELECT `+userColumns+`,
			COALESCE(tokens_revoked_at >= $3, false)
			OR EXISTS (SELECT 1 FROM revoked_access_tokens WHERE id = $2)
			OR ($4 <> '' AND (
				EXISTS (SELECT 1 FROM revoked_grants WHERE id = $4)
				OR EXISTS (SELECT 1 FROM refresh_families WHERE id = $4 AND revoked)))
			OR EXISTS (SELECT 1 FROM access_tokens WHERE id = $2 AND revoked)
		FROM users u WHERE id = $1`,
		t.UserID, t.ID, t.IssuedAt.Truncate(time.Second), t.GrantID), &revoked)
	switch {
	case err != nil:
		return storage.User{}, notFound(err, "access token user")
	case revoked:
		return storage.User{}, storage.ErrRevoked
	case u.Disabled:
		return storage.User{}, storage.ErrUserDisabled
	}
	return u, nil
}
