package postgres

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/idbroker/broker/storage"
)

// Auth requests and codes are stored as the JSON encoding of their storage
// types. Both live minutes, so a field added in one release reads as its
// zero value from rows the previous release wrote; renaming or removing a
// field needs the same care as a column.
//
// An auth request's BrowserHash is a column of its own (browser_hash,
// migration 004), not part of data: a release before it rewrites data
// without the field when it updates a request, and would otherwise unbind
// a request it touches during a rolling upgrade.

// nullIfEmpty maps "" to SQL NULL, for unique columns where "none" must not
// collide with "none".
func nullIfEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// CreateAuthRequest implements storage.AuthFlows.
func (s *Store) CreateAuthRequest(ctx context.Context, req storage.AuthRequest) error {
	if req.ID == "" {
		return errors.New("postgres: create auth request: empty id")
	}
	data, err := authRequestData(req)
	if err != nil {
		return fmt.Errorf("postgres: create auth request: %w", err)
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	_, err = s.hot.Exec(ctx, `INSERT INTO auth_requests (id, upstream_state, expires_at, data, browser_hash) VALUES ($1, $2, $3, $4, $5)`,
		req.ID, nullIfEmpty(req.UpstreamState), req.ExpiresAt, data, req.BrowserHash)
	if isUniqueViolation(err) {
		return fmt.Errorf("postgres: create auth request %q: %w", req.ID, storage.ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("postgres: create auth request: %w", err)
	}
	return nil
}

// authRequestData is the data column of r: everything but the columns of
// their own.
func authRequestData(r storage.AuthRequest) ([]byte, error) {
	r.BrowserHash = nil
	return json.Marshal(r)
}

// authRequestColumns are what scanAuthRequest reads, in its order.
const authRequestColumns = `data, browser_hash`

func scanAuthRequest(row pgx.Row) (storage.AuthRequest, error) {
	var data, browserHash []byte
	if err := row.Scan(&data, &browserHash); err != nil {
		return storage.AuthRequest{}, err
	}
	var r storage.AuthRequest
	if err := json.Unmarshal(data, &r); err != nil {
		return storage.AuthRequest{}, fmt.Errorf("decode auth request: %w", err)
	}
	r.BrowserHash = browserHash
	return r, nil
}

// GetAuthRequest implements storage.AuthFlows. It returns a request even
// past its ExpiresAt until DeleteExpired removes it: the caller checks.
func (s *Store) GetAuthRequest(ctx context.Context, id string) (storage.AuthRequest, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	r, err := scanAuthRequest(s.pool.QueryRow(ctx, `SELECT `+authRequestColumns+` FROM auth_requests WHERE id = $1`, id))
	if err != nil {
		return storage.AuthRequest{}, notFound(err, "get auth request")
	}
	return r, nil
}

// GetAuthRequestByUpstreamState implements storage.AuthFlows.
func (s *Store) GetAuthRequestByUpstreamState(ctx context.Context, state string) (storage.AuthRequest, error) {
	if state == "" {
		return storage.AuthRequest{}, storage.ErrNotFound
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	r, err := scanAuthRequest(s.pool.QueryRow(ctx, `SELECT `+authRequestColumns+` FROM auth_requests WHERE upstream_state = $1`, state))
	if err != nil {
		return storage.AuthRequest{}, notFound(err, "get auth request by upstream state")
	}
	return r, nil
}

// UpdateAuthRequest implements storage.AuthFlows. The row is locked while
// update runs, so update may read the store but must not write this
// request itself. The request keeps its ID and BrowserHash whatever
// update returns (the UPDATE leaves browser_hash alone). An error from
// update is returned as it is.
func (s *Store) UpdateAuthRequest(ctx context.Context, id string, update func(storage.AuthRequest) (storage.AuthRequest, error)) (storage.AuthRequest, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var out storage.AuthRequest
	err := s.inHotTx(ctx, "update auth request", func(tx pgx.Tx) error {
		r, err := scanAuthRequest(tx.QueryRow(ctx, `SELECT `+authRequestColumns+` FROM auth_requests WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return notFound(err, "update auth request")
		}
		binding := r.BrowserHash
		if r, err = update(r); err != nil {
			return err
		}
		r.ID, r.BrowserHash = id, binding
		data, err := authRequestData(r)
		if err != nil {
			return fmt.Errorf("postgres: update auth request: %w", err)
		}
		_, err = tx.Exec(ctx, `UPDATE auth_requests SET upstream_state = $2, expires_at = $3, data = $4 WHERE id = $1`,
			id, nullIfEmpty(r.UpstreamState), r.ExpiresAt, data)
		if isUniqueViolation(err) {
			return fmt.Errorf("postgres: update auth request %q: upstream state: %w", id, storage.ErrAlreadyExists)
		}
		if err != nil {
			return fmt.Errorf("postgres: update auth request: %w", err)
		}
		out = r
		return nil
	})
	if err != nil {
		return storage.AuthRequest{}, err
	}
	return out, nil
}

// DeleteAuthRequest implements storage.AuthFlows. The request's
// one-time-code challenge goes with it.
func (s *Store) DeleteAuthRequest(ctx context.Context, id string) error {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	tag, err := s.hot.Exec(ctx, `DELETE FROM auth_requests WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("postgres: delete auth request: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return storage.ErrNotFound
	}
	return nil
}

// CreateAuthCode implements storage.AuthFlows. If the auth request is gone
// (another completion consumed it) no code is stored and the error is
// storage.ErrNotFound, so one request yields at most one code.
func (s *Store) CreateAuthCode(ctx context.Context, code storage.AuthCode, authRequestID string) error {
	if len(code.CodeHash) == 0 {
		return errors.New("postgres: create auth code: empty code hash")
	}
	data, err := json.Marshal(code)
	if err != nil {
		return fmt.Errorf("postgres: create auth code: %w", err)
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	return s.inHotTx(ctx, "create auth code", func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM auth_requests WHERE id = $1`, authRequestID)
		if err != nil {
			return fmt.Errorf("postgres: create auth code: delete auth request: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("postgres: create auth code: auth request %q: %w", authRequestID, storage.ErrNotFound)
		}
		_, err = tx.Exec(ctx, `INSERT INTO auth_codes (code_hash, grant_id, expires_at, data) VALUES ($1, NULL, $2, $3)`,
			code.CodeHash, code.ExpiresAt, data)
		if isUniqueViolation(err) {
			return fmt.Errorf("postgres: create auth code: %w", storage.ErrAlreadyExists)
		}
		if err != nil {
			return fmt.Errorf("postgres: create auth code: %w", err)
		}
		return nil
	})
}

func decodeAuthCode(data []byte, grantID *string) (storage.AuthCode, error) {
	var c storage.AuthCode
	if err := json.Unmarshal(data, &c); err != nil {
		return storage.AuthCode{}, fmt.Errorf("postgres: decode auth code: %w", err)
	}
	if grantID != nil {
		c.GrantID = *grantID
	}
	return c, nil
}

// RedeemAuthCode implements storage.AuthFlows with one conditional UPDATE:
// of concurrent redemptions, the first takes the row lock and sets
// grant_id, and the others, re-checking the condition once it commits,
// match nothing. Only then is the row read to say why. A used code gives
// storage.ErrCodeRedeemed even past its expiry, so a late replay still lets
// the broker revoke the grant.
func (s *Store) RedeemAuthCode(ctx context.Context, codeHash []byte, grantID string, now time.Time) (storage.AuthCode, error) {
	if grantID == "" {
		return storage.AuthCode{}, errors.New("postgres: redeem code: empty grant id")
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var data []byte
	err := s.pool.QueryRow(ctx, `
		UPDATE auth_codes SET grant_id = $2
		WHERE code_hash = $1 AND grant_id IS NULL AND expires_at > $3
		RETURNING data`, codeHash, grantID, now).Scan(&data)
	if err == nil {
		return decodeAuthCode(data, &grantID)
	}
	if !errors.Is(err, pgx.ErrNoRows) {
		return storage.AuthCode{}, fmt.Errorf("postgres: redeem code: %w", err)
	}
	var used *string
	err = s.pool.QueryRow(ctx, `SELECT grant_id, data FROM auth_codes WHERE code_hash = $1`, codeHash).Scan(&used, &data)
	switch {
	case err != nil:
		return storage.AuthCode{}, notFound(err, "redeem code")
	case used != nil:
		c, err := decodeAuthCode(data, used)
		if err != nil {
			return storage.AuthCode{}, err
		}
		return c, storage.ErrCodeRedeemed
	}
	return storage.AuthCode{}, storage.ErrExpired
}

// PutOTPChallenge implements storage.AuthFlows. The new challenge starts
// with no attempts, whatever c.Attempts says; its auth request must exist.
func (s *Store) PutOTPChallenge(ctx context.Context, c storage.OTPChallenge) error {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	_, err := s.hot.Exec(ctx, `
		INSERT INTO otp_challenges (auth_request_id, email, code_hash, attempts, attempt_key, created_at, expires_at)
		VALUES ($1, $2, $3, 0, $4, $5, $6)
		ON CONFLICT (auth_request_id) DO UPDATE SET
			email = EXCLUDED.email, code_hash = EXCLUDED.code_hash, attempts = 0, attempt_key = EXCLUDED.attempt_key,
			created_at = EXCLUDED.created_at, expires_at = EXCLUDED.expires_at`,
		c.AuthRequestID, c.Email, c.CodeHash, c.AttemptKey, c.CreatedAt, c.ExpiresAt)
	if isCode(err, "23503") { // foreign_key_violation: no such auth request
		return fmt.Errorf("postgres: put one-time code: auth request %q: %w", c.AuthRequestID, storage.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("postgres: put one-time code: %w", err)
	}
	return nil
}

// CheckOTPChallenge implements storage.AuthFlows. The challenge row is
// locked for the check, and then its attempt pool's row (opened or
// reopened by the same statement), so concurrent guesses are counted one
// by one; the comparison runs here, in constant time, not in SQL. An
// exhausted challenge stays exhausted past its expiry, until
// DeleteExpired removes it.
func (s *Store) CheckOTPChallenge(ctx context.Context, authRequestID string, codeHash []byte, maxAttempts int, now time.Time) (storage.OTPChallenge, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var out storage.OTPChallenge
	var refusal error // committed, then returned
	err := s.inTx(ctx, "check one-time code", func(tx pgx.Tx) error {
		c := storage.OTPChallenge{AuthRequestID: authRequestID}
		err := tx.QueryRow(ctx, `
			SELECT email, code_hash, attempts, attempt_key, created_at, expires_at FROM otp_challenges
			WHERE auth_request_id = $1 FOR UPDATE`, authRequestID).Scan(&c.Email, &c.CodeHash, &c.Attempts, &c.AttemptKey, &c.CreatedAt, &c.ExpiresAt)
		if err != nil {
			return notFound(err, "check one-time code")
		}
		utc(&c.CreatedAt, &c.ExpiresAt)
		switch {
		case c.Attempts >= maxAttempts:
			refusal = storage.ErrOTPExhausted
			return nil
		case !now.Before(c.ExpiresAt):
			refusal = storage.ErrExpired
			return nil
		}
		if c.AttemptKey != "" {
			var pooled int
			err := tx.QueryRow(ctx, `
				INSERT INTO otp_attempt_pools AS p (key, attempts, expires_at) VALUES ($1, 0, $2)
				ON CONFLICT (key) DO UPDATE SET
					attempts = CASE WHEN p.expires_at > $3 THEN p.attempts ELSE 0 END,
					expires_at = CASE WHEN p.expires_at > $3 THEN p.expires_at ELSE EXCLUDED.expires_at END
				RETURNING attempts`, c.AttemptKey, c.ExpiresAt, now).Scan(&pooled)
			if err != nil {
				return fmt.Errorf("postgres: check one-time code: open attempt pool: %w", err)
			}
			if pooled >= maxAttempts {
				refusal = storage.ErrOTPExhausted
				return nil
			}
		}
		if subtle.ConstantTimeCompare(codeHash, c.CodeHash) != 1 {
			refusal = storage.ErrOTPMismatch
			_, err = tx.Exec(ctx, `UPDATE otp_challenges SET attempts = attempts + 1 WHERE auth_request_id = $1`, authRequestID)
			if err == nil && c.AttemptKey != "" {
				_, err = tx.Exec(ctx, `UPDATE otp_attempt_pools SET attempts = attempts + 1 WHERE key = $1`, c.AttemptKey)
			}
		} else {
			out = c
			_, err = tx.Exec(ctx, `DELETE FROM otp_challenges WHERE auth_request_id = $1`, authRequestID)
		}
		if err != nil {
			return fmt.Errorf("postgres: check one-time code: %w", err)
		}
		return nil
	})
	if err != nil {
		return storage.OTPChallenge{}, err
	}
	if refusal != nil {
		return storage.OTPChallenge{}, refusal
	}
	return out, nil
}
