package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/idbroker/broker/storage"
)

// signingKeysLock is the advisory lock that makes UpdateSigningKeys
// exclusive across replicas. Any constant no other user of the database
// takes will do; this one spells "sigkeys".
const signingKeysLock int64 = 0x7369676b657973

const signingKeyColumns = `id, algorithm, use, public_jwk, private_key, created_at, publish_at, sign_from, sign_until, remove_at`

func listSigningKeys(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) ([]storage.SigningKey, error) {
	rows, err := q.Query(ctx, `SELECT `+signingKeyColumns+` FROM signing_keys ORDER BY created_at, id COLLATE "C"`)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.SigningKey, error) {
		var k storage.SigningKey
		err := row.Scan(&k.ID, &k.Algorithm, &k.Use, &k.PublicJWK, &k.PrivateKey, &k.CreatedAt, &k.PublishAt, &k.SignFrom, &k.SignUntil, &k.RemoveAt)
		utc(&k.CreatedAt, &k.PublishAt, &k.SignFrom, &k.SignUntil, &k.RemoveAt)
		return k, err
	})
}

// ListSigningKeys implements storage.SigningKeys, ordered by CreatedAt,
// then ID.
func (s *Store) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	keys, err := listSigningKeys(ctx, s.pool)
	if err != nil {
		return nil, fmt.Errorf("postgres: list signing keys: %w", err)
	}
	return keys, nil
}

// UpdateSigningKeys implements storage.SigningKeys. A transaction-scoped
// advisory lock serializes updaters across replicas while readers go on
// reading the committed set; update runs inside the transaction, under the
// operation timeout. Two keys with one ID fail the update with
// storage.ErrAlreadyExists. An error from update is returned as it is.
func (s *Store) UpdateSigningKeys(ctx context.Context, update func([]storage.SigningKey) ([]storage.SigningKey, error)) ([]storage.SigningKey, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var out []storage.SigningKey
	err := s.inTx(ctx, "update signing keys", func(tx pgx.Tx) error {
		wrap := func(err error) error { return fmt.Errorf("postgres: update signing keys: %w", err) }
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, signingKeysLock); err != nil {
			return wrap(err)
		}
		keys, err := listSigningKeys(ctx, tx)
		if err != nil {
			return wrap(err)
		}
		if keys, err = update(keys); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `DELETE FROM signing_keys`); err != nil {
			return wrap(err)
		}
		var b pgx.Batch
		for _, k := range keys {
			b.Queue(`INSERT INTO signing_keys (`+signingKeyColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`,
				k.ID, k.Algorithm, k.Use, k.PublicJWK, k.PrivateKey, k.CreatedAt, k.PublishAt, k.SignFrom, k.SignUntil, k.RemoveAt)
		}
		err = tx.SendBatch(ctx, &b).Close()
		if isUniqueViolation(err) {
			return fmt.Errorf("postgres: update signing keys: duplicate key id: %w", storage.ErrAlreadyExists)
		}
		if err != nil {
			return wrap(err)
		}
		// Read back what was written, in the order every reader sees.
		if out, err = listSigningKeys(ctx, tx); err != nil {
			return wrap(err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
