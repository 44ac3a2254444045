package storage

import (
	"fmt"

	"github.com/google/uuid"
)

// ImportError names the entry of an import that stopped it. Index is the
// entry's position in the slice given to ImportUsers, so a caller reading
// a file can report the line.
type ImportError struct {
	Index int
	ID    string // the entry's user id, as given
	Field string // the field at fault: "id", "email", "identities"
	Err   error
}

func (e *ImportError) Error() string {
	return fmt.Sprintf("users[%d] (id %q) %s: %v", e.Index, e.ID, e.Field, e.Err)
}

func (e *ImportError) Unwrap() error { return e.Err }

// ValidateImport checks an import on its own, before it meets stored data:
// every id a UUID and used once, every identity complete and used once,
// every verified email claimed once. It returns the canonical ids.
func ValidateImport(users []ImportUser) ([]uuid.UUID, error) {
	ids := make([]uuid.UUID, len(users))
	seenIDs := make(map[uuid.UUID]int, len(users))
	seenEmails := make(map[string]int)
	type identityKey struct{ connector, subject string }
	seenIdentities := make(map[identityKey]int)
	for i, u := range users {
		fail := func(field, format string, args ...any) error {
			return &ImportError{Index: i, ID: u.ID, Field: field, Err: fmt.Errorf(format, args...)}
		}
		id, err := uuid.Parse(u.ID)
		if err != nil {
			return nil, fail("id", "not a UUID")
		}
		ids[i] = id
		if j, ok := seenIDs[id]; ok {
			return nil, fail("id", "same id as users[%d]", j)
		}
		seenIDs[id] = i
		if u.EmailVerified {
			if u.Email == "" {
				return nil, fail("email", "email_verified without an email")
			}
			if j, ok := seenEmails[u.Email]; ok {
				return nil, fail("email", "verified email %q also claimed by users[%d]", u.Email, j)
			}
			seenEmails[u.Email] = i
		}
		for _, ii := range u.Identities {
			if ii.Connector == "" || ii.Subject == "" {
				return nil, fail("identities", "an identity needs a connector and a subject")
			}
			key := identityKey{ii.Connector, ii.Subject}
			if j, ok := seenIdentities[key]; ok {
				return nil, fail("identities", "identity %s/%s also given for users[%d]", ii.Connector, ii.Subject, j)
			}
			seenIdentities[key] = i
		}
	}
	return ids, nil
}
