package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/idbroker/broker/storage"
)

// ImportUsers implements storage.Users in one transaction: the batch is
// copied into temporary tables, checked against stored users and
// identities by a few set-wise queries, and inserted with INSERT ...
// SELECT. Errors name the offending entry as users[i] (its index in users)
// with its id; conflicts with stored data wrap storage.ErrAlreadyExists.
//
// ImportUsers runs under the caller's deadline only: a large import may
// take longer than a request.
func (s *Store) ImportUsers(ctx context.Context, users []storage.ImportUser, now time.Time) (storage.ImportResult, error) {
	ids, err := storage.ValidateImport(users)
	if err != nil {
		return storage.ImportResult{}, fmt.Errorf("postgres: %w", err)
	}
	var res storage.ImportResult
	err = s.inTx(ctx, "import users", func(tx pgx.Tx) error {
		var err error
		res, err = importUsers(ctx, tx, users, ids, now)
		return err
	})
	if err != nil {
		return storage.ImportResult{}, err
	}
	return res, nil
}

func importUsers(ctx context.Context, tx pgx.Tx, users []storage.ImportUser, ids []uuid.UUID, now time.Time) (storage.ImportResult, error) {
	wrap := func(what string, err error) error { return fmt.Errorf("postgres: import users: %s: %w", what, err) }
	if _, err := tx.Exec(ctx, `
		CREATE TEMPORARY TABLE import_users (
			ord integer NOT NULL, id uuid NOT NULL, email text NOT NULL, email_verified boolean NOT NULL, name text NOT NULL
		) ON COMMIT DROP;
		CREATE TEMPORARY TABLE import_identities (
			ord integer NOT NULL, user_id uuid NOT NULL, connector text NOT NULL, subject text NOT NULL
		) ON COMMIT DROP`); err != nil {
		return storage.ImportResult{}, wrap("create temporary tables", err)
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"import_users"}, []string{"ord", "id", "email", "email_verified", "name"},
		pgx.CopyFromSlice(len(users), func(i int) ([]any, error) {
			u := users[i]
			return []any{i, ids[i], u.Email, u.EmailVerified, u.Name}, nil
		})); err != nil {
		return storage.ImportResult{}, wrap("copy users", err)
	}
	var identityRows [][]any
	for i, u := range users {
		for _, ii := range u.Identities {
			identityRows = append(identityRows, []any{i, ids[i], ii.Connector, ii.Subject})
		}
	}
	if _, err := tx.CopyFrom(ctx, pgx.Identifier{"import_identities"}, []string{"ord", "user_id", "connector", "subject"},
		pgx.CopyFromRows(identityRows)); err != nil {
		return storage.ImportResult{}, wrap("copy identities", err)
	}
	// Autovacuum never analyzes temporary tables; without statistics the
	// planner takes them for tiny and picks nested loops over 100,000 rows.
	if _, err := tx.Exec(ctx, `ANALYZE import_users; ANALYZE import_identities`); err != nil {
		return storage.ImportResult{}, wrap("analyze", err)
	}

	var ord int
	var id, other, email, connector, subject string
	err := tx.QueryRow(ctx, `
		SELECT iu.ord, iu.id::text FROM import_users iu JOIN users u ON u.id = iu.id
		WHERE (u.email, u.email_verified, u.name) IS DISTINCT FROM (iu.email, iu.email_verified, iu.name)
		ORDER BY iu.ord LIMIT 1`).Scan(&ord, &id)
	if err == nil {
		return storage.ImportResult{}, &storage.ImportError{Index: ord, ID: id, Field: "id", Err: fmt.Errorf("user exists with other data: %w", storage.ErrAlreadyExists)}
	} else if !errors.Is(err, pgx.ErrNoRows) {
		return storage.ImportResult{}, wrap("check users", err)
	}
	err = tx.QueryRow(ctx, `
		SELECT iu.ord, iu.id::text, iu.email, u.id::text FROM import_users iu JOIN users u ON u.email = iu.email AND u.email_verified
		WHERE iu.email_verified AND u.id <> iu.id
		ORDER BY iu.ord LIMIT 1`).Scan(&ord, &id, &email, &other)
	if err == nil {
		return storage.ImportResult{}, &storage.ImportError{Index: ord, ID: id, Field: "email", Err: fmt.Errorf("verified email %q belongs to user %s: %w", email, other, storage.ErrAlreadyExists)}
	} else if !errors.Is(err, pgx.ErrNoRows) {
		return storage.ImportResult{}, wrap("check emails", err)
	}
	err = tx.QueryRow(ctx, `
		SELECT ii.ord, ii.user_id::text, ii.connector, ii.subject, i.user_id::text
		FROM import_identities ii JOIN identities i ON i.connector = ii.connector AND i.subject = ii.subject
		WHERE i.user_id <> ii.user_id
		ORDER BY ii.ord LIMIT 1`).Scan(&ord, &id, &connector, &subject, &other)
	if err == nil {
		return storage.ImportResult{}, &storage.ImportError{Index: ord, ID: id, Field: "identities", Err: fmt.Errorf("identity %s/%s belongs to user %s: %w", connector, subject, other, storage.ErrAlreadyExists)}
	} else if !errors.Is(err, pgx.ErrNoRows) {
		return storage.ImportResult{}, wrap("check identities", err)
	}

	// A row another writer added since the checks fails the insert on a
	// unique constraint, and with it the whole import: never half of one.
	var res storage.ImportResult
	tag, err := tx.Exec(ctx, `
		INSERT INTO users (id, email, email_verified, name, created_at, updated_at)
		SELECT id, email, email_verified, name, $1, $1 FROM import_users iu
		WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.id = iu.id)`, now)
	if err != nil {
		return storage.ImportResult{}, wrap("insert users", err)
	}
	res.UsersCreated = int(tag.RowsAffected())
	tag, err = tx.Exec(ctx, `
		INSERT INTO identities (connector, subject, user_id, email, name, created_at, last_login)
		SELECT ii.connector, ii.subject, ii.user_id, iu.email, iu.name, $1, $2
		FROM import_identities ii JOIN import_users iu ON iu.ord = ii.ord
		WHERE NOT EXISTS (SELECT 1 FROM identities i WHERE i.connector = ii.connector AND i.subject = ii.subject)`, now, time.Time{})
	if err != nil {
		return storage.ImportResult{}, wrap("insert identities", err)
	}
	res.IdentitiesCreated = int(tag.RowsAffected())
	return res, nil
}
