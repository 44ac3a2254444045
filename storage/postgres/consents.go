package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/idbroker/broker/storage"
)

const consentColumns = `user_id::text, client_id, resource, scopes, granted_at`

func scanConsent(row pgx.Row) (storage.Consent, error) {
	var c storage.Consent
	if err := row.Scan(&c.UserID, &c.ClientID, &c.Resource, &c.Scopes, &c.GrantedAt); err != nil {
		return storage.Consent{}, err
	}
	utc(&c.GrantedAt)
	return c, nil
}

// GetConsent implements storage.Consents.
func (s *Store) GetConsent(ctx context.Context, userID, clientID, resource string) (storage.Consent, error) {
	userID, ok := canonicalUUID(userID)
	if !ok {
		return storage.Consent{}, storage.ErrNotFound
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	c, err := scanConsent(s.pool.QueryRow(ctx, `SELECT `+consentColumns+` FROM consents
		WHERE user_id = $1 AND client_id = $2 AND resource = $3`, userID, clientID, resource))
	if err != nil {
		return storage.Consent{}, notFound(err, "get consent")
	}
	return c, nil
}

// GrantConsent implements storage.Consents in one statement: the union of
// the scopes is taken on the row as it conflicts, so concurrent grants
// keep each other's.
func (s *Store) GrantConsent(ctx context.Context, c storage.Consent) (storage.Consent, error) {
	userID, ok := canonicalUUID(c.UserID)
	if !ok {
		return storage.Consent{}, storage.ErrNotFound
	}
	scopes := slices.Clone(c.Scopes)
	slices.Sort(scopes)
	scopes = slices.Compact(scopes)
	if scopes == nil {
		scopes = []string{}
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	got, err := scanConsent(s.pool.QueryRow(ctx, `
		INSERT INTO consents (user_id, client_id, resource, scopes, granted_at)
		VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (user_id, client_id, resource) DO UPDATE SET
			scopes = ARRAY(SELECT DISTINCT unnest(consents.scopes || EXCLUDED.scopes) ORDER BY 1),
			granted_at = EXCLUDED.granted_at
		RETURNING `+consentColumns, userID, c.ClientID, c.Resource, scopes, c.GrantedAt))
	if isForeignKeyViolation(err) {
		return storage.Consent{}, storage.ErrNotFound
	}
	if err != nil {
		return storage.Consent{}, fmt.Errorf("postgres: grant consent: %w", err)
	}
	// ORDER BY sorts by the database's collation; the model's order is
	// byte-wise, as the memory store's.
	slices.Sort(got.Scopes)
	return got, nil
}

// ListConsents implements storage.Consents.
func (s *Store) ListConsents(ctx context.Context, userID string) ([]storage.Consent, error) {
	userID, ok := canonicalUUID(userID)
	if !ok {
		return nil, nil
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT `+consentColumns+` FROM consents WHERE user_id = $1
		ORDER BY client_id COLLATE "C", resource COLLATE "C"`, userID)
	if err != nil {
		return nil, fmt.Errorf("postgres: list consents: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.Consent, error) { return scanConsent(row) })
	if err != nil {
		return nil, fmt.Errorf("postgres: list consents: %w", err)
	}
	for i := range out {
		slices.Sort(out[i].Scopes)
	}
	return out, nil
}

// RevokeConsent implements storage.Consents in one transaction. It holds
// the user's row first, as RemoveMember does: a family being created for
// the user holds it shared (CreateRefreshFamily), so it is either seen
// here and revoked, or created after and refused by the grant revoked
// here. A code redeemed meanwhile is either deleted before its
// redemption (which then finds nothing) or seen redeemed, and its grant
// revoked.
func (s *Store) RevokeConsent(ctx context.Context, userID, clientID string, revokeUntil time.Time) ([]storage.Consent, error) {
	userID, ok := canonicalUUID(userID)
	if !ok {
		return nil, storage.ErrNotFound
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var revoked []storage.Consent
	err := s.inTx(ctx, "revoke consent", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE`, userID); err != nil {
			return fmt.Errorf("postgres: revoke consent: lock user: %w", err)
		}
		rows, err := tx.Query(ctx, `DELETE FROM consents WHERE user_id = $1 AND client_id = $2
			RETURNING `+consentColumns, userID, clientID)
		if err != nil {
			return fmt.Errorf("postgres: revoke consent: %w", err)
		}
		revoked, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.Consent, error) { return scanConsent(row) })
		if err != nil {
			return fmt.Errorf("postgres: revoke consent: %w", err)
		}
		if len(revoked) == 0 {
			return storage.ErrNotFound
		}
		if _, err := tx.Exec(ctx, `DELETE FROM auth_codes
			WHERE grant_id IS NULL AND data->>'UserID' = $1 AND data->>'ClientID' = $2`, userID, clientID); err != nil {
			return fmt.Errorf("postgres: revoke consent: delete codes: %w", err)
		}
		rows, err = tx.Query(ctx, `
			SELECT id FROM refresh_families WHERE user_id = $1 AND client_id = $2
			UNION
			SELECT grant_id FROM auth_codes
			WHERE grant_id IS NOT NULL AND data->>'UserID' = $1 AND data->>'ClientID' = $2
			ORDER BY 1`, userID, clientID)
		if err != nil {
			return fmt.Errorf("postgres: revoke consent: grants: %w", err)
		}
		grants, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("postgres: revoke consent: grants: %w", err)
		}
		// Not the grants' locks, for RemoveMember's reason: the user's
		// lock keeps creations out, and the other order could deadlock.
		for _, id := range grants {
			if err := revokeGrantRows(ctx, tx, id, revokeUntil); err != nil {
				return fmt.Errorf("postgres: revoke consent: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(revoked, func(a, b storage.Consent) int { return strings.Compare(a.Resource, b.Resource) })
	for i := range revoked {
		slices.Sort(revoked[i].Scopes)
	}
	return revoked, nil
}
