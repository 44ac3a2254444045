package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/idbroker/broker/storage"
)

// ListUsers implements storage.Users. Postgres orders uuids by their
// bytes, which is the order of their canonical text.
func (s *Store) ListUsers(ctx context.Context, after string, limit int) ([]storage.User, error) {
	if limit <= 0 {
		return nil, nil
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var rows pgx.Rows
	var err error
	if after == "" {
		rows, err = s.pool.Query(ctx, `SELECT `+userColumns+` FROM users u ORDER BY id LIMIT $1`, limit)
	} else {
		id, perr := uuid.Parse(after)
		if perr != nil {
			return nil, fmt.Errorf("postgres: list users: after %q is not a user id", after)
		}
		rows, err = s.pool.Query(ctx, `SELECT `+userColumns+` FROM users u WHERE id > $1 ORDER BY id LIMIT $2`, id.String(), limit)
	}
	if err != nil {
		return nil, fmt.Errorf("postgres: list users: %w", err)
	}
	users, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.User, error) { return scanUser(row) })
	if err != nil {
		return nil, fmt.Errorf("postgres: list users: %w", err)
	}
	return users, nil
}

// DeleteUser implements storage.Users in one transaction. Identities go
// with the user (ON DELETE CASCADE), refresh tokens with their families.
// The user's access tokens need no row of their own: AccessTokenUser finds
// no user for them. Their rows in access_tokens, written by schema-2
// binaries, are deleted for those.
func (s *Store) DeleteUser(ctx context.Context, id string) error {
	uid, err := uuid.Parse(id)
	if err != nil {
		return storage.ErrNotFound
	}
	id = uid.String()
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	defer s.identities.changed(id)
	return s.inTx(ctx, "delete user", func(tx pgx.Tx) error {
		// Lock the user first, so a login resolving to them waits and
		// then finds no user rather than one half deleted.
		var found string
		if err := tx.QueryRow(ctx, `SELECT id::text FROM users WHERE id = $1 FOR UPDATE`, id).Scan(&found); err != nil {
			return notFound(err, "delete user")
		}
		for _, q := range []string{
			`DELETE FROM refresh_families WHERE user_id = $1`,
			`DELETE FROM access_tokens WHERE user_id = $1`,
			`DELETE FROM sessions WHERE user_id = $1`,
			`DELETE FROM users WHERE id = $1`,
		} {
			if _, err := tx.Exec(ctx, q, id); err != nil {
				return fmt.Errorf("postgres: delete user: %w", err)
			}
		}
		return nil
	})
}

// LinkIdentity implements storage.Users in one transaction; the primary
// key of identities decides between two concurrent links of one identity.
func (s *Store) LinkIdentity(ctx context.Context, ident storage.Identity) error {
	if ident.Connector == "" || ident.Subject == "" {
		return errors.New("postgres: link identity: connector and subject are required")
	}
	uid, err := uuid.Parse(ident.UserID)
	if err != nil {
		return storage.ErrNotFound
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	return s.inTx(ctx, "link identity", func(tx pgx.Tx) error {
		// FOR SHARE keeps the user from being deleted under the link.
		var found string
		if err := tx.QueryRow(ctx, `SELECT id::text FROM users WHERE id = $1 FOR SHARE`, uid.String()).Scan(&found); err != nil {
			return notFound(err, "link identity")
		}
		var owner string
		err := tx.QueryRow(ctx, `
			INSERT INTO identities (connector, subject, user_id, email, name, created_at, last_login)
			VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (connector, subject) DO UPDATE SET connector = identities.connector
			RETURNING user_id::text`,
			ident.Connector, ident.Subject, found, ident.Email, ident.Name, ident.CreatedAt, ident.LastLogin).Scan(&owner)
		if err != nil {
			return fmt.Errorf("postgres: link identity: %w", err)
		}
		if owner != found {
			return fmt.Errorf("postgres: link identity %s/%s: it belongs to user %s: %w", ident.Connector, ident.Subject, owner, storage.ErrAlreadyExists)
		}
		return nil
	})
}

// UnlinkIdentity implements storage.Users.
func (s *Store) UnlinkIdentity(ctx context.Context, userID, connector, subject string) error {
	uid, err := uuid.Parse(userID)
	if err != nil {
		return storage.ErrNotFound
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `DELETE FROM identities WHERE connector = $1 AND subject = $2 AND user_id = $3`, connector, subject, uid.String())
	if err != nil {
		return fmt.Errorf("postgres: unlink identity: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return storage.ErrNotFound
	}
	s.identities.changed(uid.String())
	return nil
}
