package memory

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/idbroker/broker/storage"
)

type identityKey struct{ connector, subject string }

// ResolveIdentity implements storage.Users. A user's email counts as
// verified only while no other user holds it verified: an upstream that
// says "verified" for an address another user already owns gets a user (or
// an update) with that address unverified, never a second owner.
func (s *Store) ResolveIdentity(ctx context.Context, req storage.ResolveRequest) (storage.Resolution, error) {
	if req.Connector == "" || req.Subject == "" {
		return storage.Resolution{}, errors.New("memory: resolve identity: connector and subject are required")
	}
	presetID, err := req.PresetUserID()
	if err != nil {
		return storage.Resolution{}, err
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	return s.resolve(req, presetID)
}

// resolve is ResolveIdentity's resolution. The caller holds mu.
func (s *Store) resolve(req storage.ResolveRequest, presetID string) (storage.Resolution, error) {
	key := identityKey{req.Connector, req.Subject}
	if ident, ok := s.identities[key]; ok {
		u := s.users[ident.UserID]
		if u.Disabled {
			return storage.Resolution{}, storage.ErrUserDisabled
		}
		ident.Email, ident.Name, ident.LastLogin = req.Email, req.Name, req.Now
		s.identities[key] = ident
		owner, taken := s.verifiedEmails[req.Email]
		if nu, changed := req.RefreshUser(u, taken && owner != u.ID); changed {
			s.putUser(nu)
			u = nu
		}
		return storage.Resolution{User: u}, nil
	}
	if req.KnownOnly {
		return storage.Resolution{}, fmt.Errorf("memory: resolve identity %s/%s: %w", req.Connector, req.Subject, storage.ErrNotFound)
	}

	if req.LinkByEmail && req.EmailVerified && req.Email != "" {
		if id, ok := s.verifiedEmails[req.Email]; ok {
			u := s.users[id]
			if u.Disabled {
				return storage.Resolution{}, storage.ErrUserDisabled
			}
			if presetID != "" && u.ID != presetID {
				return storage.Resolution{}, fmt.Errorf("memory: resolve identity: user id %s, but the email belongs to user %s: %w", presetID, u.ID, storage.ErrAlreadyExists)
			}
			s.identities[key] = newIdentity(req, u.ID)
			return storage.Resolution{User: u, Linked: true}, nil
		}
	}

	id := presetID
	if id == "" {
		id = uuid.NewString()
	} else if _, ok := s.users[id]; ok {
		return storage.Resolution{}, fmt.Errorf("memory: resolve identity: preset user id %s: %w", id, storage.ErrAlreadyExists)
	}
	_, taken := s.verifiedEmails[req.Email]
	u := storage.User{
		ID:            id,
		Email:         req.Email,
		EmailVerified: req.EmailVerified && req.Email != "" && !taken,
		Name:          req.Name,
		CreatedAt:     req.Now,
		UpdatedAt:     req.Now,
	}
	s.putUser(u)
	s.identities[key] = newIdentity(req, id)
	return storage.Resolution{User: u, Created: true}, nil
}

func newIdentity(req storage.ResolveRequest, userID string) storage.Identity {
	return storage.Identity{
		Connector: req.Connector,
		Subject:   req.Subject,
		UserID:    userID,
		Email:     req.Email,
		Name:      req.Name,
		CreatedAt: req.Now,
		LastLogin: req.Now,
	}
}

// putUser stores u and keeps the verified-email index in step. The caller
// holds mu and has made sure u's verified email is not another user's.
func (s *Store) putUser(u storage.User) {
	if old, ok := s.users[u.ID]; ok && old.EmailVerified && s.verifiedEmails[old.Email] == u.ID {
		delete(s.verifiedEmails, old.Email)
	}
	if u.EmailVerified {
		s.verifiedEmails[u.Email] = u.ID
	}
	s.users[u.ID] = u
}

// GetUser implements storage.Users.
func (s *Store) GetUser(ctx context.Context, id string) (storage.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[canonicalID(id)]
	if !ok {
		return storage.User{}, storage.ErrNotFound
	}
	return u, nil
}

// canonicalID returns the canonical form of a UUID (as Postgres prints it),
// or id unchanged if it is not one, so lookups match however the caller
// spelled it.
func canonicalID(id string) string {
	u, err := uuid.Parse(id)
	if err != nil {
		return id
	}
	return u.String()
}

// GetUserByEmail implements storage.Users.
func (s *Store) GetUserByEmail(ctx context.Context, email string) (storage.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.verifiedEmails[email]
	if !ok {
		return storage.User{}, storage.ErrNotFound
	}
	return s.users[id], nil
}

// ListIdentities implements storage.Users. The identities come ordered by
// connector, then subject; an unknown user has none.
func (s *Store) ListIdentities(ctx context.Context, userID string) ([]storage.Identity, error) {
	userID = canonicalID(userID)
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []storage.Identity
	for _, ident := range s.identities {
		if ident.UserID == userID {
			out = append(out, ident)
		}
	}
	slices.SortFunc(out, func(a, b storage.Identity) int {
		return cmp.Or(cmp.Compare(a.Connector, b.Connector), cmp.Compare(a.Subject, b.Subject))
	})
	return out, nil
}

// ImportUsers implements storage.Users. Errors name the offending entry as
// users[i] (its index in users) with its id; conflicts with stored data
// wrap storage.ErrAlreadyExists.
func (s *Store) ImportUsers(ctx context.Context, users []storage.ImportUser, now time.Time) (storage.ImportResult, error) {
	uids, err := storage.ValidateImport(users)
	if err != nil {
		return storage.ImportResult{}, fmt.Errorf("memory: %w", err)
	}
	ids := make([]string, len(uids))
	for i, id := range uids {
		ids[i] = id.String()
	}

	s.mu.Lock()
	defer s.mu.Unlock()

	// Check everything before writing anything: all or nothing.
	for i, iu := range users {
		id := ids[i]
		if u, ok := s.users[id]; ok && (u.Email != iu.Email || u.EmailVerified != iu.EmailVerified || u.Name != iu.Name) {
			return storage.ImportResult{}, &storage.ImportError{Index: i, ID: iu.ID, Field: "id", Err: fmt.Errorf("user exists with other data: %w", storage.ErrAlreadyExists)}
		}
		if iu.EmailVerified {
			if owner, ok := s.verifiedEmails[iu.Email]; ok && owner != id {
				return storage.ImportResult{}, &storage.ImportError{Index: i, ID: iu.ID, Field: "email", Err: fmt.Errorf("verified email %q belongs to user %s: %w", iu.Email, owner, storage.ErrAlreadyExists)}
			}
		}
		for _, ii := range iu.Identities {
			if ident, ok := s.identities[identityKey{ii.Connector, ii.Subject}]; ok && ident.UserID != id {
				return storage.ImportResult{}, &storage.ImportError{Index: i, ID: iu.ID, Field: "identities", Err: fmt.Errorf("identity %s/%s belongs to user %s: %w", ii.Connector, ii.Subject, ident.UserID, storage.ErrAlreadyExists)}
			}
		}
	}

	var res storage.ImportResult
	for i, iu := range users {
		id := ids[i]
		if _, ok := s.users[id]; !ok {
			s.putUser(storage.User{
				ID:            id,
				Email:         iu.Email,
				EmailVerified: iu.EmailVerified,
				Name:          iu.Name,
				CreatedAt:     now,
				UpdatedAt:     now,
			})
			res.UsersCreated++
		}
		for _, ii := range iu.Identities {
			key := identityKey{ii.Connector, ii.Subject}
			if _, ok := s.identities[key]; ok {
				continue
			}
			s.identities[key] = storage.Identity{
				Connector: ii.Connector,
				Subject:   ii.Subject,
				UserID:    id,
				Email:     iu.Email,
				Name:      iu.Name,
				CreatedAt: now,
			}
			res.IdentitiesCreated++
		}
	}
	return res, nil
}

// SetUserDisabled implements storage.Users; a disabled user's identities
// resolve to storage.ErrUserDisabled.
func (s *Store) SetUserDisabled(ctx context.Context, id string, disabled bool) error {
	return s.setUser(id, func(u *storage.User) { u.Disabled = disabled })
}

// SetUserAdmin implements storage.Users.
func (s *Store) SetUserAdmin(ctx context.Context, id string, admin bool) error {
	return s.setUser(id, func(u *storage.User) { u.Admin = admin })
}

// setUser applies set to the stored user id under the lock; an unknown
// user is storage.ErrNotFound.
func (s *Store) setUser(id string, set func(*storage.User)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.users[canonicalID(id)]
	if !ok {
		return storage.ErrNotFound
	}
	set(&u)
	s.users[u.ID] = u
	return nil
}
