package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/idbroker/broker/storage"
)

// isForeignKeyViolation reports whether err is a foreign_key_violation:
// a row named an organisation or a user that is not there.
func isForeignKeyViolation(err error) bool { return isCode(err, "23503") }

// canonicalUUID returns id in the form Postgres prints a uuid, and false
// when it is not a UUID, which names no organisation or user.
func canonicalUUID(id string) (string, bool) {
	u, err := uuid.Parse(id)
	if err != nil {
		return "", false
	}
	return u.String(), true
}

// inOrgsTx is inTx for a change that OrgsGeneration counts: it bumps the
// generation in the change's transaction, so the count moves exactly when
// the change commits, whichever replica made it.
func (s *Store) inOrgsTx(ctx context.Context, what string, fn func(pgx.Tx) error) error {
	return s.inTx(ctx, what, func(tx pgx.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE orgs_generation SET generation = generation + 1`); err != nil {
			return fmt.Errorf("postgres: %s: count the change: %w", what, err)
		}
		return nil
	})
}

// deleteCounted runs a DELETE in inOrgsTx; storage.ErrNotFound when it
// removed nothing.
func (s *Store) deleteCounted(ctx context.Context, what, query string, args ...any) error {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	return s.inOrgsTx(ctx, what, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, query, args...)
		if err != nil {
			return fmt.Errorf("postgres: %s: %w", what, err)
		}
		if tag.RowsAffected() == 0 {
			return storage.ErrNotFound
		}
		return nil
	})
}

// orgColumns select an organisation from organizations o, with its
// upstream ids in the order they were given.
const orgColumns = `o.id::text, o.slug, o.name, o.require_sso,
	ARRAY(SELECT u.upstream_id FROM organization_upstream_ids u WHERE u.org_id = o.id ORDER BY u.position),
	o.created_at, o.updated_at`

func scanOrganization(row pgx.Row) (storage.Organization, error) {
	var o storage.Organization
	if err := row.Scan(&o.ID, &o.Slug, &o.Name, &o.RequireSSO, &o.UpstreamIDs, &o.CreatedAt, &o.UpdatedAt); err != nil {
		return storage.Organization{}, err
	}
	if len(o.UpstreamIDs) == 0 {
		o.UpstreamIDs = nil
	}
	utc(&o.CreatedAt, &o.UpdatedAt)
	return o, nil
}

// insertUpstreamIDs records o's upstream ids; a unique violation means
// another organisation (or o itself, twice) names one.
func insertUpstreamIDs(ctx context.Context, tx pgx.Tx, o storage.Organization) error {
	for i, up := range o.UpstreamIDs {
		if _, err := tx.Exec(ctx, `INSERT INTO organization_upstream_ids (upstream_id, org_id, position) VALUES ($1, $2, $3)`,
			up, o.ID, i); err != nil {
			if isUniqueViolation(err) {
				return fmt.Errorf("upstream id %q: %w", up, storage.ErrAlreadyExists)
			}
			return err
		}
	}
	return nil
}

// CreateOrganization implements storage.Organizations in one transaction.
func (s *Store) CreateOrganization(ctx context.Context, o storage.Organization) error {
	id, ok := canonicalUUID(o.ID)
	if !ok {
		return fmt.Errorf("postgres: create organization: id %q is not a UUID", o.ID)
	}
	o.ID = id
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	return s.inOrgsTx(ctx, "create organization", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `
			INSERT INTO organizations (id, slug, name, require_sso, created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6)`, o.ID, o.Slug, o.Name, o.RequireSSO, o.CreatedAt, o.UpdatedAt)
		if isUniqueViolation(err) {
			return fmt.Errorf("postgres: create organization %s: id or slug: %w", o.ID, storage.ErrAlreadyExists)
		}
		if err != nil {
			return fmt.Errorf("postgres: create organization: %w", err)
		}
		if err := insertUpstreamIDs(ctx, tx, o); err != nil {
			return fmt.Errorf("postgres: create organization %s: %w", o.ID, err)
		}
		return nil
	})
}

// GetOrganization implements storage.Organizations. An id is preferred to
// a slug, so a slug spelled like another organisation's id never hides it.
func (s *Store) GetOrganization(ctx context.Context, idOrSlug string) (storage.Organization, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var id *string
	if c, ok := canonicalUUID(idOrSlug); ok {
		id = &c
	}
	o, err := scanOrganization(s.pool.QueryRow(ctx, `
		SELECT `+orgColumns+` FROM organizations o
		WHERE o.id = $1::uuid OR o.slug = $2
		ORDER BY o.id = $1::uuid DESC NULLS LAST
		LIMIT 1`, id, idOrSlug))
	if err != nil {
		return storage.Organization{}, notFound(err, "get organization")
	}
	return o, nil
}

// ListOrganizations implements storage.Organizations. The canonical text
// of a uuid sorts byte-wise as the uuid does.
func (s *Store) ListOrganizations(ctx context.Context, after string, limit int) ([]storage.Organization, error) {
	if limit <= 0 {
		return nil, nil
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `
		SELECT `+orgColumns+` FROM organizations o
		WHERE o.id::text > $1 COLLATE "C"
		ORDER BY o.id LIMIT $2`, after, limit)
	if err != nil {
		return nil, fmt.Errorf("postgres: list organizations: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.Organization, error) { return scanOrganization(row) })
	if err != nil {
		return nil, fmt.Errorf("postgres: list organizations: %w", err)
	}
	return list, nil
}

// UpdateOrganization implements storage.Organizations. The row is locked
// while update runs, so update may read the store but must not write this
// organisation itself. An error from update is returned as it is.
func (s *Store) UpdateOrganization(ctx context.Context, id string, update func(storage.Organization) (storage.Organization, error)) (storage.Organization, error) {
	id, ok := canonicalUUID(id)
	if !ok {
		return storage.Organization{}, storage.ErrNotFound
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var out storage.Organization
	err := s.inOrgsTx(ctx, "update organization", func(tx pgx.Tx) error {
		o, err := scanOrganization(tx.QueryRow(ctx, `SELECT `+orgColumns+` FROM organizations o WHERE o.id = $1 FOR UPDATE`, id))
		if err != nil {
			return notFound(err, "update organization")
		}
		if o, err = update(o); err != nil {
			return err
		}
		o.ID = id
		_, err = tx.Exec(ctx, `
			UPDATE organizations SET slug = $2, name = $3, require_sso = $4, created_at = $5, updated_at = $6
			WHERE id = $1`, o.ID, o.Slug, o.Name, o.RequireSSO, o.CreatedAt, o.UpdatedAt)
		if isUniqueViolation(err) {
			return fmt.Errorf("postgres: update organization %s: slug %q: %w", id, o.Slug, storage.ErrAlreadyExists)
		}
		if err != nil {
			return fmt.Errorf("postgres: update organization: %w", err)
		}
		if _, err := tx.Exec(ctx, `DELETE FROM organization_upstream_ids WHERE org_id = $1`, id); err != nil {
			return fmt.Errorf("postgres: update organization: %w", err)
		}
		if err := insertUpstreamIDs(ctx, tx, o); err != nil {
			return fmt.Errorf("postgres: update organization %s: %w", id, err)
		}
		out = o
		return nil
	})
	if err != nil {
		return storage.Organization{}, err
	}
	return out, nil
}

// DeleteOrganization implements storage.Organizations in one transaction:
// the foreign keys remove its upstream ids, domains and memberships and
// detach its connectors.
func (s *Store) DeleteOrganization(ctx context.Context, id string) error {
	id, ok := canonicalUUID(id)
	if !ok {
		return storage.ErrNotFound
	}
	return s.deleteCounted(ctx, "delete organization", `DELETE FROM organizations WHERE id = $1`, id)
}

const domainColumns = `domain, org_id::text, challenge, verified, verified_by, verified_at, created_at`

func scanDomain(row pgx.Row) (storage.Domain, error) {
	var d storage.Domain
	if err := row.Scan(&d.Domain, &d.OrgID, &d.Challenge, &d.Verified, &d.VerifiedBy, &d.VerifiedAt, &d.CreatedAt); err != nil {
		return storage.Domain{}, err
	}
	utc(&d.VerifiedAt, &d.CreatedAt)
	return d, nil
}

func collectDomains(rows pgx.Rows, err error) ([]storage.Domain, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.Domain, error) { return scanDomain(row) })
}

// AddDomain implements storage.Organizations. The claim is stored
// unverified whatever d says; ErrNotFound when the organisation does not
// exist.
func (s *Store) AddDomain(ctx context.Context, d storage.Domain) error {
	orgID, ok := canonicalUUID(d.OrgID)
	if !ok {
		return fmt.Errorf("postgres: add domain %q: organization: %w", d.Domain, storage.ErrNotFound)
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	return s.inOrgsTx(ctx, "add domain", func(tx pgx.Tx) error {
		// A verification committing meanwhile leaves this claim beside
		// it, unverifiable: the same as a claim made just before.
		tag, err := tx.Exec(ctx, `
			INSERT INTO organization_domains (org_id, domain, challenge, verified, verified_by, verified_at, created_at)
			SELECT $1, $2, $3, false, '', $4, $5
			WHERE NOT EXISTS (SELECT 1 FROM organization_domains WHERE domain = $2 AND verified AND org_id <> $1)`,
			orgID, d.Domain, d.Challenge, time.Time{}, d.CreatedAt)
		switch {
		case isUniqueViolation(err):
			return fmt.Errorf("postgres: add domain %q: %w", d.Domain, storage.ErrAlreadyExists)
		case isForeignKeyViolation(err):
			return fmt.Errorf("postgres: add domain %q: organization: %w", d.Domain, storage.ErrNotFound)
		case err != nil:
			return fmt.Errorf("postgres: add domain: %w", err)
		case tag.RowsAffected() == 0:
			return fmt.Errorf("postgres: add domain %q: verified by another organization: %w", d.Domain, storage.ErrAlreadyExists)
		}
		return nil
	})
}

// ListDomains implements storage.Organizations.
func (s *Store) ListDomains(ctx context.Context, orgID string) ([]storage.Domain, error) {
	orgID, ok := canonicalUUID(orgID)
	if !ok {
		return nil, nil
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	list, err := collectDomains(s.pool.Query(ctx, `
		SELECT `+domainColumns+` FROM organization_domains WHERE org_id = $1 ORDER BY domain COLLATE "C"`, orgID))
	if err != nil {
		return nil, fmt.Errorf("postgres: list domains: %w", err)
	}
	return list, nil
}

// VerifyDomain implements storage.Organizations in one statement; the
// partial unique index on verified domains decides between organisations
// verifying at once. Verifying a claim already verified records by and at
// anew.
func (s *Store) VerifyDomain(ctx context.Context, orgID, domain, by string, at time.Time) (storage.Domain, error) {
	orgID, ok := canonicalUUID(orgID)
	if !ok {
		return storage.Domain{}, storage.ErrNotFound
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var out storage.Domain
	err := s.inOrgsTx(ctx, "verify domain", func(tx pgx.Tx) error {
		d, err := scanDomain(tx.QueryRow(ctx, `
			UPDATE organization_domains SET verified = true, verified_by = $3, verified_at = $4
			WHERE org_id = $1 AND domain = $2
			RETURNING `+domainColumns, orgID, domain, by, at))
		if isUniqueViolation(err) {
			return fmt.Errorf("postgres: verify domain %q: verified by another organization: %w", domain, storage.ErrAlreadyExists)
		}
		if err != nil {
			return notFound(err, "verify domain")
		}
		out = d
		return nil
	})
	if err != nil {
		return storage.Domain{}, err
	}
	return out, nil
}

// DeleteDomain implements storage.Organizations; ErrNotFound without the
// claim.
func (s *Store) DeleteDomain(ctx context.Context, orgID, domain string) error {
	orgID, ok := canonicalUUID(orgID)
	if !ok {
		return storage.ErrNotFound
	}
	return s.deleteCounted(ctx, "delete domain", `DELETE FROM organization_domains WHERE org_id = $1 AND domain = $2`, orgID, domain)
}

// ListVerifiedDomains implements storage.Organizations.
func (s *Store) ListVerifiedDomains(ctx context.Context) ([]storage.Domain, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	list, err := collectDomains(s.pool.Query(ctx, `
		SELECT `+domainColumns+` FROM organization_domains WHERE verified ORDER BY domain COLLATE "C"`))
	if err != nil {
		return nil, fmt.Errorf("postgres: list verified domains: %w", err)
	}
	return list, nil
}

const memberColumns = `org_id::text, user_id::text, role, created_at`

func scanMember(row pgx.Row) (storage.Membership, error) {
	var m storage.Membership
	if err := row.Scan(&m.OrgID, &m.UserID, &m.Role, &m.CreatedAt); err != nil {
		return storage.Membership{}, err
	}
	utc(&m.CreatedAt)
	return m, nil
}

func collectMembers(rows pgx.Rows, err error) ([]storage.Membership, error) {
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.Membership, error) { return scanMember(row) })
}

// EnsureMember implements storage.Organizations. The primary key decides
// between concurrent calls: the insert of each but one does nothing, after
// waiting for the one that did, and each of them then reads the
// membership that one made.
func (s *Store) EnsureMember(ctx context.Context, m storage.Membership) (storage.Membership, bool, error) {
	orgID, ok := canonicalUUID(m.OrgID)
	if !ok {
		return storage.Membership{}, false, fmt.Errorf("postgres: ensure member: organization: %w", storage.ErrNotFound)
	}
	userID, ok := canonicalUUID(m.UserID)
	if !ok {
		return storage.Membership{}, false, fmt.Errorf("postgres: ensure member: user: %w", storage.ErrNotFound)
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	// A membership removed between the insert and the read is made again.
	for range 3 {
		got, err := scanMember(s.pool.QueryRow(ctx, `
			INSERT INTO organization_members (org_id, user_id, role, created_at) VALUES ($1, $2, $3, $4)
			ON CONFLICT (org_id, user_id) DO NOTHING
			RETURNING `+memberColumns, orgID, userID, m.Role, m.CreatedAt))
		switch {
		case err == nil:
			return got, true, nil
		case isForeignKeyViolation(err):
			return storage.Membership{}, false, fmt.Errorf("postgres: ensure member: organization or user: %w", storage.ErrNotFound)
		case !errors.Is(err, pgx.ErrNoRows):
			return storage.Membership{}, false, fmt.Errorf("postgres: ensure member: %w", err)
		}
		got, err = scanMember(s.pool.QueryRow(ctx, `
			SELECT `+memberColumns+` FROM organization_members WHERE org_id = $1 AND user_id = $2`, orgID, userID))
		if err == nil {
			return got, false, nil
		}
		if !errors.Is(err, pgx.ErrNoRows) {
			return storage.Membership{}, false, fmt.Errorf("postgres: ensure member: %w", err)
		}
	}
	return storage.Membership{}, false, errors.New("postgres: ensure member: membership removed as often as it was made")
}

// SetMemberRole implements storage.Organizations.
func (s *Store) SetMemberRole(ctx context.Context, orgID, userID, role string) (storage.Membership, error) {
	orgID, ok := canonicalUUID(orgID)
	if !ok {
		return storage.Membership{}, storage.ErrNotFound
	}
	userID, ok = canonicalUUID(userID)
	if !ok {
		return storage.Membership{}, storage.ErrNotFound
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	m, err := scanMember(s.pool.QueryRow(ctx, `
		UPDATE organization_members SET role = $3 WHERE org_id = $1 AND user_id = $2
		RETURNING `+memberColumns, orgID, userID, role))
	if err != nil {
		return storage.Membership{}, notFound(err, "set member role")
	}
	return m, nil
}

// RemoveMember implements storage.Organizations in one transaction. It
// ends each of the user's sessions in the organisation's context as
// EndSession does, and revokes as RevokeGrant does each of the user's
// refresh families in that context or under one of those sessions.
//
// The user's row is locked first, FOR NO KEY UPDATE, which a family being
// created for the user (FOR SHARE, see CreateRefreshFamily) conflicts
// with: such a family committed before, and is revoked here, or is
// created after, and sees its session gone or is the caller's to refuse.
// The membership's foreign key takes a lock that does not conflict.
func (s *Store) RemoveMember(ctx context.Context, orgID, userID string, revokeUntil time.Time) ([]storage.Session, error) {
	orgID, ok := canonicalUUID(orgID)
	if !ok {
		return nil, storage.ErrNotFound
	}
	userID, ok = canonicalUUID(userID)
	if !ok {
		return nil, storage.ErrNotFound
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var ended []storage.Session
	err := s.inTx(ctx, "remove member", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT 1 FROM users WHERE id = $1 FOR NO KEY UPDATE`, userID); err != nil {
			return fmt.Errorf("postgres: remove member: lock user: %w", err)
		}
		tag, err := tx.Exec(ctx, `DELETE FROM organization_members WHERE org_id = $1 AND user_id = $2`, orgID, userID)
		if err != nil {
			return fmt.Errorf("postgres: remove member: %w", err)
		}
		if tag.RowsAffected() == 0 {
			return storage.ErrNotFound
		}
		rows, err := tx.Query(ctx, `DELETE FROM sessions WHERE user_id = $1 AND org = $2 RETURNING `+sessionColumns, userID, orgID)
		if err != nil {
			return fmt.Errorf("postgres: remove member: end sessions: %w", err)
		}
		ended, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.Session, error) { return scanSession(row) })
		if err != nil {
			return fmt.Errorf("postgres: remove member: end sessions: %w", err)
		}
		sessionIDs := make([]string, len(ended))
		for i, sess := range ended {
			sessionIDs[i] = sess.ID
		}
		rows, err = tx.Query(ctx, `
			SELECT id FROM refresh_families
			WHERE user_id = $1 AND (org = $2 OR session_id = ANY ($3))
			ORDER BY id`, userID, orgID, sessionIDs)
		if err != nil {
			return fmt.Errorf("postgres: remove member: families: %w", err)
		}
		families, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return fmt.Errorf("postgres: remove member: families: %w", err)
		}
		// Not the grants' locks, which a family being created takes
		// before its user's: the user's lock, held, already keeps
		// creations out, and taking both in the other order could
		// deadlock where two grant ids hash alike.
		for _, id := range families {
			if err := revokeGrantRows(ctx, tx, id, revokeUntil); err != nil {
				return fmt.Errorf("postgres: remove member: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(ended, func(a, b storage.Session) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return ended, nil
}

// ListMembers implements storage.Organizations. An organisation that does
// not exist has no members.
func (s *Store) ListMembers(ctx context.Context, orgID, after string, limit int) ([]storage.Membership, error) {
	orgID, ok := canonicalUUID(orgID)
	if !ok || limit <= 0 {
		return nil, nil
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	list, err := collectMembers(s.pool.Query(ctx, `
		SELECT `+memberColumns+` FROM organization_members
		WHERE org_id = $1 AND user_id::text > $2 COLLATE "C"
		ORDER BY user_id LIMIT $3`, orgID, after, limit))
	if err != nil {
		return nil, fmt.Errorf("postgres: list members: %w", err)
	}
	return list, nil
}

// Memberships implements storage.Organizations.
func (s *Store) Memberships(ctx context.Context, userID string) ([]storage.Membership, error) {
	userID, ok := canonicalUUID(userID)
	if !ok {
		return nil, nil
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	list, err := collectMembers(s.pool.Query(ctx, `
		SELECT `+memberColumns+` FROM organization_members WHERE user_id = $1 ORDER BY org_id`, userID))
	if err != nil {
		return nil, fmt.Errorf("postgres: memberships: %w", err)
	}
	return list, nil
}

const connectorColumns = `id, type, name, COALESCE(org_id::text, ''), settings, timeout_us, recheck_interval_us, disabled,
	created_at, updated_at`

func scanConnector(row pgx.Row) (storage.StoredConnector, error) {
	var c storage.StoredConnector
	var timeoutUS, recheckUS int64
	if err := row.Scan(&c.ID, &c.Type, &c.Name, &c.OrgID, &c.Settings, &timeoutUS, &recheckUS, &c.Disabled,
		&c.CreatedAt, &c.UpdatedAt); err != nil {
		return storage.StoredConnector{}, err
	}
	c.Timeout = time.Duration(timeoutUS) * time.Microsecond
	c.RecheckInterval = time.Duration(recheckUS) * time.Microsecond
	utc(&c.CreatedAt, &c.UpdatedAt)
	return c, nil
}

// connectorArgs are the values of connectorColumns for c, with its
// organisation as a uuid or NULL. An OrgID that is no UUID names no
// organisation: storage.ErrNotFound.
func connectorArgs(c storage.StoredConnector) ([]any, error) {
	var orgID *string
	if c.OrgID != "" {
		id, ok := canonicalUUID(c.OrgID)
		if !ok {
			return nil, fmt.Errorf("organization %q: %w", c.OrgID, storage.ErrNotFound)
		}
		orgID = &id
	}
	return []any{c.ID, c.Type, c.Name, orgID, c.Settings, c.Timeout.Microseconds(), c.RecheckInterval.Microseconds(),
		c.Disabled, c.CreatedAt, c.UpdatedAt}, nil
}

// connectorError gives err, from writing connector id, the meaning the
// contract gives it.
func connectorError(what, id string, err error) error {
	switch {
	case isUniqueViolation(err):
		return fmt.Errorf("postgres: %s %q: %w", what, id, storage.ErrAlreadyExists)
	case isForeignKeyViolation(err):
		return fmt.Errorf("postgres: %s %q: organization: %w", what, id, storage.ErrNotFound)
	}
	return fmt.Errorf("postgres: %s %q: %w", what, id, err)
}

// CreateConnector implements storage.Organizations. ErrNotFound when the
// connector names an organisation that does not exist.
func (s *Store) CreateConnector(ctx context.Context, c storage.StoredConnector) error {
	if c.ID == "" {
		return errors.New("postgres: create connector: empty id")
	}
	args, err := connectorArgs(c)
	if err != nil {
		return fmt.Errorf("postgres: create connector %q: %w", c.ID, err)
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	return s.inOrgsTx(ctx, "create connector", func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `
			INSERT INTO stored_connectors (id, type, name, org_id, settings, timeout_us, recheck_interval_us, disabled,
				created_at, updated_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, args...); err != nil {
			return connectorError("create connector", c.ID, err)
		}
		return nil
	})
}

// GetConnector implements storage.Organizations.
func (s *Store) GetConnector(ctx context.Context, id string) (storage.StoredConnector, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	c, err := scanConnector(s.pool.QueryRow(ctx, `SELECT `+connectorColumns+` FROM stored_connectors WHERE id = $1`, id))
	if err != nil {
		return storage.StoredConnector{}, notFound(err, "get connector")
	}
	return c, nil
}

// ListConnectors implements storage.Organizations, ordered by id
// byte-wise.
func (s *Store) ListConnectors(ctx context.Context) ([]storage.StoredConnector, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `SELECT `+connectorColumns+` FROM stored_connectors ORDER BY id COLLATE "C"`)
	if err != nil {
		return nil, fmt.Errorf("postgres: list connectors: %w", err)
	}
	list, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.StoredConnector, error) { return scanConnector(row) })
	if err != nil {
		return nil, fmt.Errorf("postgres: list connectors: %w", err)
	}
	return list, nil
}

// UpdateConnector implements storage.Organizations. The row is locked
// while update runs, so update may read the store but must not write this
// connector itself. An error from update is returned as it is.
func (s *Store) UpdateConnector(ctx context.Context, id string, update func(storage.StoredConnector) (storage.StoredConnector, error)) (storage.StoredConnector, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var out storage.StoredConnector
	err := s.inOrgsTx(ctx, "update connector", func(tx pgx.Tx) error {
		old, err := scanConnector(tx.QueryRow(ctx, `SELECT `+connectorColumns+` FROM stored_connectors WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return notFound(err, "update connector")
		}
		c, err := update(old)
		if err != nil {
			return err
		}
		c.ID, c.Type = id, old.Type
		args, err := connectorArgs(c)
		if err != nil {
			return fmt.Errorf("postgres: update connector %q: %w", id, err)
		}
		if _, err := tx.Exec(ctx, `
			UPDATE stored_connectors SET type = $2, name = $3, org_id = $4, settings = $5, timeout_us = $6,
				recheck_interval_us = $7, disabled = $8, created_at = $9, updated_at = $10
			WHERE id = $1`, args...); err != nil {
			return connectorError("update connector", id, err)
		}
		out = c
		return nil
	})
	if err != nil {
		return storage.StoredConnector{}, err
	}
	return out, nil
}

// DeleteConnector implements storage.Organizations.
func (s *Store) DeleteConnector(ctx context.Context, id string) error {
	return s.deleteCounted(ctx, "delete connector", `DELETE FROM stored_connectors WHERE id = $1`, id)
}

// OrgsGeneration implements storage.Organizations.
func (s *Store) OrgsGeneration(ctx context.Context) (int64, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	var n int64
	if err := s.pool.QueryRow(ctx, `SELECT generation FROM orgs_generation`).Scan(&n); err != nil {
		return 0, fmt.Errorf("postgres: orgs generation: %w", err)
	}
	return n, nil
}
