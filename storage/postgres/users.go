package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/idbroker/broker/storage"
)

// resolveAttempts bounds how often ResolveIdentity runs its transaction
// again after losing a race: the second attempt sees the winner's rows, so
// more than a couple are needed only under extreme contention.
const resolveAttempts = 5

// userColumns are a user's columns in a query that names users u.
const userColumns = `u.id::text, u.email, u.email_verified, u.name, u.disabled, u.admin, u.created_at, u.updated_at`

// userFields are the scan targets of userColumns in u; the caller puts
// the times in UTC (utc) after the scan.
func userFields(u *storage.User) []any {
	return []any{&u.ID, &u.Email, &u.EmailVerified, &u.Name, &u.Disabled, &u.Admin, &u.CreatedAt, &u.UpdatedAt}
}

// scanUser scans userColumns, then into extra the columns a query selects
// after them.
func scanUser(row pgx.Row, extra ...any) (storage.User, error) {
	var u storage.User
	err := row.Scan(append(userFields(&u), extra...)...)
	utc(&u.CreatedAt, &u.UpdatedAt)
	return u, err
}

// ResolveIdentity implements storage.Users in one transaction. It takes no
// lock of its own: when concurrent resolutions race to create the same
// identity or claim the same verified email, the primary key of identities
// or the unique index on verified emails fails all but one, and the losers
// run again and find the winner's rows.
//
// A user's email counts as verified only while no other user holds it
// verified: an upstream that says "verified" for an address another user
// already owns gets a user (or an update) with that address unverified.
func (s *Store) ResolveIdentity(ctx context.Context, req storage.ResolveRequest) (storage.Resolution, error) {
	if req.Connector == "" || req.Subject == "" {
		return storage.Resolution{}, errors.New("postgres: resolve identity: connector and subject are required")
	}
	presetID, err := req.PresetUserID()
	if err != nil {
		return storage.Resolution{}, err
	}
	if e, hit := s.identities.lookup(identityKey{req.Connector, req.Subject}); hit {
		if res, ok, err := unchanged(req, e); ok {
			return res, err
		}
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	res, err := s.resolve(ctx, req, presetID)
	if sessionEnded(err) {
		// Resolving is safe to run twice (a second run finds what a first
		// one committed), and the pool now holds no ended session.
		res, err = s.resolve(ctx, req, presetID)
	}
	return res, err
}

func (s *Store) resolve(ctx context.Context, req storage.ResolveRequest, presetID string) (storage.Resolution, error) {
	if res, ok, err := s.resolveOneStatement(ctx, req, presetID); ok || err != nil {
		return res, err
	}
	return s.resolveTx(ctx, req, presetID)
}

// resolveOneStatement answers the two common cases in one statement, with
// no transaction of its own and no lock:
//   - a known identity whose details have not changed and whose last
//     login was recorded within storage.LastLoginGranularity: a read (the
//     statement inserts nothing and commits no WAL), which fills the
//     identity cache, so that ResolveIdentity reads nothing at all while
//     the cache holds it;
//   - a first login: an identity nobody holds, with an email no user owns
//     verified, and no preset user id: the user and its identity are
//     inserted together, committed durably, or not at all.
//
// ok is false for every other case, which the full resolution answers: a
// known identity whose details changed, an email owned verified (ON
// CONFLICT leaves the user out, so the identity insert has no row), a
// concurrent first login of the same identity (the identity insert fails
// the whole statement), a preset id.
//
// BenchmarkResolveIdentityNew (issue 23), 16 goroutines on two cores: the
// full resolution's seven round trips took 600–660 µs/op, a read then an
// insert 355–365, this one statement 231–248. The price is paid by a known
// identity the cache does not hold (BenchmarkResolveIdentityKnownDeaf):
// 48 µs/op as a plain read, 67 as this statement. While notifications
// flow, a known identity is read once per replica and change.
func (s *Store) resolveOneStatement(ctx context.Context, req storage.ResolveRequest, presetID string) (res storage.Resolution, ok bool, err error) {
	key := identityKey{req.Connector, req.Subject}
	create := presetID == "" && !req.KnownOnly
	nu := storage.User{ID: uuid.NewString(), Email: req.Email, EmailVerified: req.EmailVerified && req.Email != "",
		Name: req.Name, CreatedAt: req.Now.UTC(), UpdatedAt: req.Now.UTC()}
	gen := s.identities.begin()
	var e cachedIdentity
	var created bool
	e.user, err = scanUser(s.pool.QueryRow(ctx, `
		WITH found AS (
			SELECT `+userColumns+`, i.email AS identity_email, i.name AS identity_name, i.last_login
			FROM identities i JOIN users u ON u.id = i.user_id
			WHERE i.connector = $1 AND i.subject = $2
		), new_user AS (
			INSERT INTO users (id, email, email_verified, name, created_at, updated_at)
			SELECT $3, $4, $5, $6, $7, $7 WHERE $8 AND NOT EXISTS (SELECT 1 FROM found)
			ON CONFLICT DO NOTHING
			RETURNING id
		), new_identity AS (
			INSERT INTO identities (connector, subject, user_id, email, name, created_at, last_login)
			SELECT $1, $2, id, $4, $6, $7, $7 FROM new_user
			RETURNING user_id
		)
		SELECT found.*, false FROM found
		UNION ALL
		SELECT user_id::text, $4, $5, $6, false, false, $7, $7, $4, $6, $7, true FROM new_identity`,
		req.Connector, req.Subject, nu.ID, nu.Email, nu.EmailVerified, nu.Name, req.Now, create),
		&e.email, &e.name, &e.lastLogin, &created)
	switch {
	case errors.Is(err, pgx.ErrNoRows) && req.KnownOnly:
		return res, true, fmt.Errorf("postgres: resolve identity %s/%s: %w", req.Connector, req.Subject, storage.ErrNotFound)
	case errors.Is(err, pgx.ErrNoRows), isUniqueViolation(err):
		return res, false, nil
	case err != nil:
		return res, false, fmt.Errorf("postgres: resolve identity %s/%s: %w", req.Connector, req.Subject, err)
	case created:
		return storage.Resolution{User: nu, Created: true}, true, nil
	}
	s.identities.fill(key, e, gen)
	return unchanged(req, e)
}

// unchanged is resolveOneStatement's answer from what it read, e, or the
// cache holds: ok is false when the full resolution must run.
func unchanged(req storage.ResolveRequest, e cachedIdentity) (res storage.Resolution, ok bool, err error) {
	if e.user.Disabled {
		return res, true, storage.ErrUserDisabled
	}
	recent := req.Now.Sub(e.lastLogin) < storage.LastLoginGranularity
	if _, changed := req.RefreshUser(e.user, false); changed || !recent || e.email != req.Email || e.name != req.Name {
		return res, false, nil
	}
	return storage.Resolution{User: e.user}, true, nil
}

// resolveTx resolves req in a transaction, run again after losing a race.
func (s *Store) resolveTx(ctx context.Context, req storage.ResolveRequest, presetID string) (storage.Resolution, error) {
	for attempt := 1; ; attempt++ {
		var res storage.Resolution
		err := s.inTx(ctx, "resolve identity", func(tx pgx.Tx) error {
			var err error
			res, err = resolve(ctx, tx, req, presetID)
			if err != nil && !errors.Is(err, storage.ErrUserDisabled) && !errors.Is(err, storage.ErrAlreadyExists) {
				return fmt.Errorf("postgres: resolve identity %s/%s: %w", req.Connector, req.Subject, err)
			}
			return err
		})
		if isRetryable(err) && attempt < resolveAttempts {
			continue
		}
		return res, err
	}
}

func resolve(ctx context.Context, tx pgx.Tx, req storage.ResolveRequest, presetID string) (storage.Resolution, error) {
	// A known identity: its user, refreshed.
	u, err := scanUser(tx.QueryRow(ctx, `
		SELECT `+userColumns+`
		FROM identities i JOIN users u ON u.id = i.user_id
		WHERE i.connector = $1 AND i.subject = $2
		FOR UPDATE`, req.Connector, req.Subject))
	switch {
	case err == nil:
		if u.Disabled {
			return storage.Resolution{}, storage.ErrUserDisabled
		}
		if _, err := tx.Exec(ctx, `UPDATE identities SET email = $3, name = $4, last_login = $5 WHERE connector = $1 AND subject = $2`,
			req.Connector, req.Subject, req.Email, req.Name, req.Now); err != nil {
			return storage.Resolution{}, err
		}
		takenByOther := false
		if req.Email != "" && req.EmailVerified {
			if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE email = $1 AND email_verified AND id <> $2)`,
				req.Email, u.ID).Scan(&takenByOther); err != nil {
				return storage.Resolution{}, err
			}
		}
		nu, changed := req.RefreshUser(u, takenByOther)
		if changed {
			if _, err := tx.Exec(ctx, `UPDATE users SET email = $2, email_verified = $3, name = $4, updated_at = $5 WHERE id = $1`,
				nu.ID, nu.Email, nu.EmailVerified, nu.Name, nu.UpdatedAt); err != nil {
				return storage.Resolution{}, err
			}
		}
		return storage.Resolution{User: nu}, nil
	case !errors.Is(err, pgx.ErrNoRows):
		return storage.Resolution{}, err
	case req.KnownOnly:
		// Gone since resolveOneStatement saw it (deleted meanwhile).
		return storage.Resolution{}, storage.ErrNotFound
	}

	// A trusted, verified email: link to its owner.
	if req.LinkByEmail && req.EmailVerified && req.Email != "" {
		u, err := scanUser(tx.QueryRow(ctx, `SELECT `+userColumns+` FROM users u WHERE email = $1 AND email_verified FOR SHARE`, req.Email))
		switch {
		case err == nil:
			if u.Disabled {
				return storage.Resolution{}, storage.ErrUserDisabled
			}
			if presetID != "" && u.ID != presetID {
				return storage.Resolution{}, fmt.Errorf("user id %s, but the email belongs to user %s: %w", presetID, u.ID, storage.ErrAlreadyExists)
			}
			if err := insertIdentity(ctx, tx, req, u.ID); err != nil {
				return storage.Resolution{}, err
			}
			return storage.Resolution{User: u, Linked: true}, nil
		case !errors.Is(err, pgx.ErrNoRows):
			return storage.Resolution{}, err
		}
	}

	// Nobody: a new user.
	id := presetID
	if id == "" {
		id = uuid.NewString()
	} else {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE id = $1)`, id).Scan(&exists); err != nil {
			return storage.Resolution{}, err
		}
		if exists {
			return storage.Resolution{}, fmt.Errorf("postgres: resolve identity: preset user id %s: %w", id, storage.ErrAlreadyExists)
		}
	}
	// With LinkByEmail the address was free a statement ago; if another
	// resolution has claimed it since, the unique index fails the insert
	// and the retry links to its owner. Without, an address already owned
	// is taken unverified.
	verified := req.EmailVerified && req.Email != ""
	if verified && !req.LinkByEmail {
		var taken bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM users WHERE email = $1 AND email_verified)`, req.Email).Scan(&taken); err != nil {
			return storage.Resolution{}, err
		}
		verified = !taken
	}
	u = storage.User{ID: id, Email: req.Email, EmailVerified: verified, Name: req.Name, CreatedAt: req.Now, UpdatedAt: req.Now}
	if _, err := tx.Exec(ctx, `INSERT INTO users (id, email, email_verified, name, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		u.ID, u.Email, u.EmailVerified, u.Name, u.CreatedAt, u.UpdatedAt); err != nil {
		return storage.Resolution{}, err
	}
	if err := insertIdentity(ctx, tx, req, u.ID); err != nil {
		return storage.Resolution{}, err
	}
	u.CreatedAt, u.UpdatedAt = u.CreatedAt.UTC(), u.UpdatedAt.UTC()
	return storage.Resolution{User: u, Created: true}, nil
}

func insertIdentity(ctx context.Context, tx pgx.Tx, req storage.ResolveRequest, userID string) error {
	_, err := tx.Exec(ctx, `
		INSERT INTO identities (connector, subject, user_id, email, name, created_at, last_login)
		VALUES ($1, $2, $3, $4, $5, $6, $6)`,
		req.Connector, req.Subject, userID, req.Email, req.Name, req.Now)
	return err
}

// GetUser implements storage.Users. An id that is not a UUID names no user.
func (s *Store) GetUser(ctx context.Context, id string) (storage.User, error) {
	if _, err := uuid.Parse(id); err != nil {
		return storage.User{}, storage.ErrNotFound
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users u WHERE id = $1`, id))
	if err != nil {
		return storage.User{}, notFound(err, "get user")
	}
	return u, nil
}

// GetUserByEmail implements storage.Users.
func (s *Store) GetUserByEmail(ctx context.Context, email string) (storage.User, error) {
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	u, err := scanUser(s.pool.QueryRow(ctx, `SELECT `+userColumns+` FROM users u WHERE email = $1 AND email_verified`, email))
	if err != nil {
		return storage.User{}, notFound(err, "get user by email")
	}
	return u, nil
}

// SetUserDisabled implements storage.Users; a disabled user's identities
// resolve to storage.ErrUserDisabled.
func (s *Store) SetUserDisabled(ctx context.Context, id string, disabled bool) error {
	return s.setUserFlag(ctx, "disabled", id, disabled)
}

// SetUserAdmin implements storage.Users.
func (s *Store) SetUserAdmin(ctx context.Context, id string, admin bool) error {
	return s.setUserFlag(ctx, "admin", id, admin)
}

// setUserFlag sets the boolean column of user id to v. column is one of
// this file's constants, never input; an unknown user is
// storage.ErrNotFound.
func (s *Store) setUserFlag(ctx context.Context, column, id string, v bool) error {
	uid, err := uuid.Parse(id)
	if err != nil {
		return storage.ErrNotFound
	}
	id = uid.String()
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	tag, err := s.pool.Exec(ctx, `UPDATE users SET `+column+` = $2 WHERE id = $1`, id, v)
	if err != nil {
		return fmt.Errorf("postgres: set user %s: %w", column, err)
	}
	if tag.RowsAffected() == 0 {
		return storage.ErrNotFound
	}
	// This replica drops the user's identities at once; the others when
	// the trigger's notice reaches them.
	s.identities.changed(id)
	return nil
}

// ListIdentities implements storage.Users. The identities come ordered by
// connector, then subject, byte-wise; an unknown user has none.
func (s *Store) ListIdentities(ctx context.Context, userID string) ([]storage.Identity, error) {
	if _, err := uuid.Parse(userID); err != nil {
		return nil, nil
	}
	ctx, cancel := s.timeout(ctx)
	defer cancel()
	rows, err := s.pool.Query(ctx, `
		SELECT connector, subject, user_id::text, email, name, created_at, last_login
		FROM identities WHERE user_id = $1
		ORDER BY connector COLLATE "C", subject COLLATE "C"`, userID)
	if err != nil {
		return nil, fmt.Errorf("postgres: list identities: %w", err)
	}
	ids, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.Identity, error) {
		var i storage.Identity
		err := row.Scan(&i.Connector, &i.Subject, &i.UserID, &i.Email, &i.Name, &i.CreatedAt, &i.LastLogin)
		utc(&i.CreatedAt, &i.LastLogin)
		return i, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: list identities: %w", err)
	}
	return ids, nil
}
