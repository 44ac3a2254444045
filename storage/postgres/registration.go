package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/idbroker/broker/storage"
)

const registrationTokenColumns = `id, token_hash, note, max_uses, uses, created_at, expires_at`

func scanRegistrationToken(row pgx.Row) (storage.RegistrationToken, error) {
	var t storage.RegistrationToken
	if err := row.Scan(&t.ID, &t.Hash, &t.Note, &t.MaxUses, &t.Uses, &t.CreatedAt, &t.ExpiresAt); err != nil {
		return storage.RegistrationToken{}, err
	}
	utc(&t.CreatedAt, &t.ExpiresAt)
	return t, nil
}

// CreateRegistrationToken implements storage.Registrations.
func (s *Store) CreateRegistrationToken(ctx context.Context, t storage.RegistrationToken) error {
	if t.ID == "" || len(t.Hash) == 0 {
		return errors.New("postgres: create registration token: empty id or hash")
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx, `INSERT INTO registration_tokens (`+registrationTokenColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`, t.ID, t.Hash, t.Note, t.MaxUses, t.Uses, t.CreatedAt, t.ExpiresAt)
	if isUniqueViolation(err) {
		return fmt.Errorf("postgres: create registration token %q: %w", t.ID, storage.ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("postgres: create registration token: %w", err)
	}
	return nil
}

// ListRegistrationTokens implements storage.Registrations.
func (s *Store) ListRegistrationTokens(ctx context.Context) ([]storage.RegistrationToken, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT `+registrationTokenColumns+` FROM registration_tokens ORDER BY id COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list registration tokens: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.RegistrationToken, error) {
		return scanRegistrationToken(row)
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list registration tokens: %w", err)
	}
	return list, nil
}

// RegistrationToken implements storage.Registrations.
func (s *Store) RegistrationToken(ctx context.Context, hash []byte, now time.Time) (storage.RegistrationToken, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	t, err := scanRegistrationToken(s.pool.QueryRow(ctx,
		`SELECT `+registrationTokenColumns+` FROM registration_tokens WHERE token_hash = $1`, hash))
	if err != nil {
		return storage.RegistrationToken{}, notFound(err, "get registration token")
	}
	if t.Spent(now) {
		return storage.RegistrationToken{}, storage.ErrExpired
	}
	return t, nil
}

// RevokeRegistrationToken implements storage.Registrations.
func (s *Store) RevokeRegistrationToken(ctx context.Context, id string) error {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `DELETE FROM registration_tokens WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("postgres: revoke registration token: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return storage.ErrNotFound
	}
	return nil
}

// RegisterClient implements storage.Registrations in one transaction:
// the token's use is counted by an UPDATE whose condition is checked
// again under the row lock, so concurrent registrations under a token
// with one use left spend it once; a failed insert rolls the use back.
func (s *Store) RegisterClient(ctx context.Context, c storage.Client, tokenHash []byte, now time.Time) error {
	if c.ID == "" {
		return errors.New("postgres: register client: empty id")
	}
	args, err := clientArgs(c)
	if err != nil {
		return fmt.Errorf("postgres: register client: %w", err)
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	return s.inTx(ctx, "register client", func(tx pgx.Tx) error {
		if tokenHash != nil {
			tag, err := tx.Exec(ctx, `UPDATE registration_tokens SET uses = uses + 1
				WHERE token_hash = $1 AND expires_at > $2 AND (max_uses = 0 OR uses < max_uses)`, tokenHash, now)
			if err != nil {
				return fmt.Errorf("postgres: register client: spend token: %w", err)
			}
			if tag.RowsAffected() == 0 {
				var exists bool
				if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM registration_tokens WHERE token_hash = $1)`, tokenHash).Scan(&exists); err != nil {
					return fmt.Errorf("postgres: register client: find token: %w", err)
				}
				if exists {
					return storage.ErrExpired
				}
				return storage.ErrNotFound
			}
		}
		_, err := tx.Exec(ctx, insertClient, args...)
		if isUniqueViolation(err) {
			return fmt.Errorf("postgres: register client %q: %w", c.ID, storage.ErrAlreadyExists)
		}
		if err != nil {
			return fmt.Errorf("postgres: register client: %w", err)
		}
		return nil
	})
}

// NoteClientUse implements storage.Registrations in one statement, whose
// condition makes a second replica's concurrent note a no-op.
func (s *Store) NoteClientUse(ctx context.Context, id string, now time.Time) error {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx, `UPDATE clients SET last_used_at = $2 WHERE id = $1 AND last_used_at <= $3`,
		id, now, now.Add(-storage.ClientUseGranularity))
	if err != nil {
		return fmt.Errorf("postgres: note client use: %w", err)
	}
	return nil
}

// DeleteUnusedClients implements storage.Registrations.
func (s *Store) DeleteUnusedClients(ctx context.Context, before time.Time) ([]string, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `DELETE FROM clients
		WHERE registration_token_hash IS NOT NULL AND GREATEST(created_at, last_used_at) < $1 RETURNING id`, before)
	if err != nil {
		return nil, fmt.Errorf("postgres: delete unused clients: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("postgres: delete unused clients: %w", err)
	}
	slices.Sort(ids)
	return ids, nil
}
