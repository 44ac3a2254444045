package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/idbroker/broker/storage"
)

const resourceColumns = `id, scopes, access_token_ttl, third_party, created_at, updated_at`

func scanResource(row pgx.Row) (storage.Resource, error) {
	var r storage.Resource
	var ttl int64
	if err := row.Scan(&r.ID, &r.Scopes, &ttl, &r.ThirdParty, &r.CreatedAt, &r.UpdatedAt); err != nil {
		return storage.Resource{}, err
	}
	r.AccessTokenTTL = time.Duration(ttl)
	if len(r.Scopes) == 0 {
		r.Scopes = nil
	}
	utc(&r.CreatedAt, &r.UpdatedAt)
	return r, nil
}

func resourceArgs(r storage.Resource) []any {
	scopes := r.Scopes
	if scopes == nil {
		scopes = []string{}
	}
	return []any{r.ID, scopes, int64(r.AccessTokenTTL), r.ThirdParty, r.CreatedAt, r.UpdatedAt}
}

// CreateResource implements storage.Resources.
func (s *Store) CreateResource(ctx context.Context, r storage.Resource) error {
	if r.ID == "" {
		return errors.New("postgres: create resource: empty id")
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	_, err := s.pool.Exec(ctx, `INSERT INTO resources (`+resourceColumns+`) VALUES ($1, $2, $3, $4, $5, $6)`, resourceArgs(r)...)
	if isUniqueViolation(err) {
		return fmt.Errorf("postgres: create resource %q: %w", r.ID, storage.ErrAlreadyExists)
	}
	if err != nil {
		return fmt.Errorf("postgres: create resource: %w", err)
	}
	return nil
}

// GetResource implements storage.Resources.
func (s *Store) GetResource(ctx context.Context, id string) (storage.Resource, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	r, err := scanResource(s.pool.QueryRow(ctx, `SELECT `+resourceColumns+` FROM resources WHERE id = $1`, id))
	if err != nil {
		return storage.Resource{}, notFound(err, "get resource")
	}
	return r, nil
}

// ListResources implements storage.Resources, ordered by ID byte-wise.
func (s *Store) ListResources(ctx context.Context) ([]storage.Resource, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT `+resourceColumns+` FROM resources ORDER BY id COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list resources: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.Resource, error) { return scanResource(row) })
	if err != nil {
		return nil, fmt.Errorf("postgres: list resources: %w", err)
	}
	return list, nil
}

// UpdateResource implements storage.Resources. The row is locked while
// update runs, so update may read the store but must not write this
// resource itself.
func (s *Store) UpdateResource(ctx context.Context, id string, update func(storage.Resource) (storage.Resource, error)) (storage.Resource, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var out storage.Resource
	err := s.inTx(ctx, "update resource", func(tx pgx.Tx) error {
		r, err := scanResource(tx.QueryRow(ctx, `SELECT `+resourceColumns+` FROM resources WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return notFound(err, "update resource")
		}
		if r, err = update(r); err != nil {
			return err
		}
		r.ID = id
		if _, err := tx.Exec(ctx, `UPDATE resources SET scopes = $2, access_token_ttl = $3, third_party = $4,
			created_at = $5, updated_at = $6 WHERE id = $1`, resourceArgs(r)...); err != nil {
			return fmt.Errorf("postgres: update resource: %w", err)
		}
		out = r
		return nil
	})
	if err != nil {
		return storage.Resource{}, err
	}
	return out, nil
}

// DeleteResource implements storage.Resources.
func (s *Store) DeleteResource(ctx context.Context, id string) error {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `DELETE FROM resources WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("postgres: delete resource: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return storage.ErrNotFound
	}
	return nil
}
