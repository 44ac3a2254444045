package storagetest

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/broker/storage"
)

func isUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !strings.ContainsRune("0123456789abcdef", c) {
				return false
			}
		}
	}
	return true
}

func testResolveCreates(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	res := mustResolve(t, s, storage.ResolveRequest{
		Connector: "auth0", Subject: "auth0|1", Email: "ada@example.com", EmailVerified: true, Name: "Ada", Now: t0,
	})
	if !res.Created || res.Linked {
		t.Fatalf("Created, Linked = %v, %v; want true, false", res.Created, res.Linked)
	}
	if !isUUID(res.User.ID) {
		t.Fatalf("user id %q is not a lower-case UUID", res.User.ID)
	}
	want := storage.User{ID: res.User.ID, Email: "ada@example.com", EmailVerified: true, Name: "Ada", CreatedAt: t0, UpdatedAt: t0}
	wantEqual(t, "resolved user", res.User, want)
	u, err := s.GetUser(ctx, res.User.ID)
	wantErr(t, "GetUser", err, nil)
	wantEqual(t, "GetUser", u, want)
	u, err = s.GetUserByEmail(ctx, "ada@example.com")
	wantErr(t, "GetUserByEmail", err, nil)
	wantEqual(t, "GetUserByEmail", u, want)
	ids, err := s.ListIdentities(ctx, res.User.ID)
	wantErr(t, "ListIdentities", err, nil)
	wantEqual(t, "identities", ids, []storage.Identity{{
		Connector: "auth0", Subject: "auth0|1", UserID: res.User.ID, Email: "ada@example.com", Name: "Ada", CreatedAt: t0, LastLogin: t0,
	}})
}

// testResolveKnownOnly: KnownOnly resolves a known identity as usual and
// writes nothing for an unknown one, even with a verified email to link by.
func testResolveKnownOnly(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	owner := mustResolve(t, s, storage.ResolveRequest{Connector: "otp", Subject: "ko@example.com", Email: "ko@example.com", EmailVerified: true, Now: t0})
	_, err := s.ResolveIdentity(ctx, storage.ResolveRequest{Connector: "auth0", Subject: "auth0|ko", Email: "ko@example.com",
		EmailVerified: true, LinkByEmail: true, KnownOnly: true, Now: t0})
	wantErr(t, "KnownOnly for an unknown identity", err, storage.ErrNotFound)
	ids, err := s.ListIdentities(ctx, owner.User.ID)
	wantErr(t, "ListIdentities", err, nil)
	if len(ids) != 1 {
		t.Fatalf("KnownOnly wrote an identity: %+v", ids)
	}
	res, err := s.ResolveIdentity(ctx, storage.ResolveRequest{Connector: "otp", Subject: "ko@example.com", Name: "Ko", KnownOnly: true, Now: t0.Add(time.Hour)})
	wantErr(t, "KnownOnly for a known identity", err, nil)
	if res.User.ID != owner.User.ID || res.Created || res.Linked || res.User.Name != "Ko" {
		t.Errorf("KnownOnly for a known identity: %+v, want user %s refreshed", res, owner.User.ID)
	}
}

func testResolveKnownRefreshes(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	first := mustResolve(t, s, storage.ResolveRequest{Connector: "auth0", Subject: "s", Email: "old@example.com", EmailVerified: true, Name: "Old", Now: t0})
	t1 := t0.Add(time.Hour)
	res := mustResolve(t, s, storage.ResolveRequest{Connector: "auth0", Subject: "s", Email: "new@example.com", EmailVerified: true, Name: "New", Now: t1})
	if res.Created || res.Linked || res.User.ID != first.User.ID {
		t.Fatalf("second resolution = %+v; want the first user, neither created nor linked", res)
	}
	want := storage.User{ID: first.User.ID, Email: "new@example.com", EmailVerified: true, Name: "New", CreatedAt: t0, UpdatedAt: t1}
	wantEqual(t, "refreshed user", res.User, want)
	u, err := s.GetUser(ctx, first.User.ID)
	wantErr(t, "GetUser", err, nil)
	wantEqual(t, "stored user", u, want)
	_, err = s.GetUserByEmail(ctx, "old@example.com")
	wantErr(t, "GetUserByEmail(old address)", err, storage.ErrNotFound)
	ids, err := s.ListIdentities(ctx, first.User.ID)
	wantErr(t, "ListIdentities", err, nil)
	wantEqual(t, "identities", ids, []storage.Identity{{
		Connector: "auth0", Subject: "s", UserID: first.User.ID, Email: "new@example.com", Name: "New", CreatedAt: t0, LastLogin: t1,
	}})

	// Nothing changed: the user is left alone, the login still recorded.
	t2 := t1.Add(time.Hour)
	res = mustResolve(t, s, storage.ResolveRequest{Connector: "auth0", Subject: "s", Email: "new@example.com", EmailVerified: true, Name: "New", Now: t2})
	wantEqual(t, "unchanged user", res.User, want)
	ids, _ = s.ListIdentities(ctx, first.User.ID)
	wantEqual(t, "last login", ids[0].LastLogin, t2)
}

func testResolveLinks(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	a := mustResolve(t, s, storage.ResolveRequest{Connector: "auth0", Subject: "a", Email: "x@example.com", EmailVerified: true, Name: "X"})
	res := mustResolve(t, s, storage.ResolveRequest{
		Connector: "workos", Subject: "user_1", Email: "x@example.com", EmailVerified: true, LinkByEmail: true, Now: t0.Add(time.Minute),
	})
	if res.Created || !res.Linked || res.User.ID != a.User.ID {
		t.Fatalf("resolution = %+v; want user %s linked", res, a.User.ID)
	}
	ids, err := s.ListIdentities(ctx, a.User.ID)
	wantErr(t, "ListIdentities", err, nil)
	if len(ids) != 2 || ids[0].Connector != "auth0" || ids[1].Connector != "workos" {
		t.Fatalf("identities = %+v; want auth0 and workos, in that order", ids)
	}
	// The linked identity is now known: no second link.
	again := mustResolve(t, s, storage.ResolveRequest{Connector: "workos", Subject: "user_1", Email: "x@example.com", EmailVerified: true, LinkByEmail: true})
	if again.Created || again.Linked || again.User.ID != a.User.ID {
		t.Fatalf("resolution of linked identity = %+v", again)
	}
}

func testResolveLinkSkipsUnverified(t *testing.T, s storage.Storage) {
	a := mustResolve(t, s, storage.ResolveRequest{Connector: "entra", Subject: "tid/oid", Email: "x@example.com", EmailVerified: false})
	res := mustResolve(t, s, storage.ResolveRequest{Connector: "auth0", Subject: "b", Email: "x@example.com", EmailVerified: true, LinkByEmail: true})
	if !res.Created || res.Linked || res.User.ID == a.User.ID {
		t.Fatalf("resolution = %+v; want a new user, not %s whose email is unverified", res, a.User.ID)
	}
	if !res.User.EmailVerified {
		t.Fatalf("new user's email unverified; the address was free to claim")
	}
}

func testResolveNoLinkCreates(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	a := mustResolve(t, s, storage.ResolveRequest{Connector: "auth0", Subject: "a", Email: "x@example.com", EmailVerified: true})
	// An untrusted connector (the nOAuth case): same address, even claimed
	// verified, but no LinkByEmail.
	res := mustResolve(t, s, storage.ResolveRequest{Connector: "entra", Subject: "tid/oid", Email: "x@example.com", EmailVerified: true})
	if !res.Created || res.Linked || res.User.ID == a.User.ID {
		t.Fatalf("resolution = %+v; want a new user", res)
	}
	if res.User.EmailVerified {
		t.Fatalf("new user holds %q verified, which user %s already does", res.User.Email, a.User.ID)
	}
	u, err := s.GetUserByEmail(ctx, "x@example.com")
	wantErr(t, "GetUserByEmail", err, nil)
	if u.ID != a.User.ID {
		t.Fatalf("GetUserByEmail = %s; want the first user %s", u.ID, a.User.ID)
	}
}

func testResolveEmailUniqueness(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	// Unverified addresses may repeat.
	a := mustResolve(t, s, storage.ResolveRequest{Connector: "c1", Subject: "a", Email: "u@example.com"})
	b := mustResolve(t, s, storage.ResolveRequest{Connector: "c2", Subject: "b", Email: "u@example.com"})
	if a.User.ID == b.User.ID || a.User.Email != "u@example.com" || b.User.Email != "u@example.com" {
		t.Fatalf("users %+v and %+v; want two users sharing the unverified address", a.User, b.User)
	}
	_, err := s.GetUserByEmail(ctx, "u@example.com")
	wantErr(t, "GetUserByEmail(unverified)", err, storage.ErrNotFound)

	// A verified address has one owner: a known identity that brings an
	// address another user holds verified keeps it unverified.
	v := mustResolve(t, s, storage.ResolveRequest{Connector: "c1", Subject: "v", Email: "v@example.com", EmailVerified: true})
	res := mustResolve(t, s, storage.ResolveRequest{Connector: "c2", Subject: "b", Email: "v@example.com", EmailVerified: true, Now: t0.Add(time.Minute)})
	if res.User.ID != b.User.ID || res.User.Email != "v@example.com" || res.User.EmailVerified {
		t.Fatalf("user b after login = %+v; want v@example.com, unverified", res.User)
	}
	u, err := s.GetUserByEmail(ctx, "v@example.com")
	wantErr(t, "GetUserByEmail(verified)", err, nil)
	if u.ID != v.User.ID {
		t.Fatalf("GetUserByEmail = %s; want %s", u.ID, v.User.ID)
	}
}

func testResolvePresetUserID(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	const id = "3f1c2a9e-5b7d-4e8f-9a0b-1c2d3e4f5a6b"
	res := mustResolve(t, s, storage.ResolveRequest{Connector: "auth0", Subject: "legacy", Email: "l@example.com", EmailVerified: true, UserID: id})
	if !res.Created || res.User.ID != id {
		t.Fatalf("resolution = %+v; want user %s created", res, id)
	}
	if _, err := s.GetUser(ctx, id); err != nil {
		t.Fatalf("GetUser(%s): %v", id, err)
	}
	// A preset id never moves a known identity.
	res = mustResolve(t, s, storage.ResolveRequest{Connector: "auth0", Subject: "legacy", UserID: "9e8d7c6b-5a49-4382-9170-a1b2c3d4e5f6"})
	if res.User.ID != id {
		t.Fatalf("known identity resolved to %s; want %s", res.User.ID, id)
	}
	// A new identity cannot take over an existing user by naming its id.
	_, err := s.ResolveIdentity(ctx, storage.ResolveRequest{Connector: "other", Subject: "x", UserID: id, Now: t0})
	wantErr(t, "ResolveIdentity with a taken preset id", err, storage.ErrAlreadyExists)
	ids, _ := s.ListIdentities(ctx, id)
	if len(ids) != 1 {
		t.Fatalf("user %s has %d identities; want 1", id, len(ids))
	}
	// The preset id and the verified email disagree: refused, not linked
	// to the email's owner (which would issue another user's id).
	const other = "5a5a5a5a-1b1b-4c4c-8d8d-9e9e9e9e9e9e"
	_, err = s.ResolveIdentity(ctx, storage.ResolveRequest{Connector: "legacy", Subject: other, UserID: other,
		Email: "l@example.com", EmailVerified: true, LinkByEmail: true, Now: t0})
	wantErr(t, "ResolveIdentity with a preset id another user's email", err, storage.ErrAlreadyExists)
	if ids, _ := s.ListIdentities(ctx, id); len(ids) != 1 {
		t.Fatalf("the email's owner got the identity: %d identities", len(ids))
	}
	if _, err := s.GetUser(ctx, other); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a user %s was created: %v", other, err)
	}
}

func testResolveDisabled(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	a := mustResolve(t, s, storage.ResolveRequest{Connector: "auth0", Subject: "a", Email: "d@example.com", EmailVerified: true})
	wantErr(t, "SetUserDisabled", s.SetUserDisabled(ctx, a.User.ID, true), nil)
	u, err := s.GetUser(ctx, a.User.ID)
	wantErr(t, "GetUser", err, nil)
	if !u.Disabled {
		t.Fatalf("user not disabled after SetUserDisabled")
	}
	_, err = s.ResolveIdentity(ctx, storage.ResolveRequest{Connector: "auth0", Subject: "a", Now: t0})
	wantErr(t, "ResolveIdentity(known identity of disabled user)", err, storage.ErrUserDisabled)
	// Linking to a disabled user refuses too, rather than making a new one.
	_, err = s.ResolveIdentity(ctx, storage.ResolveRequest{Connector: "workos", Subject: "w", Email: "d@example.com", EmailVerified: true, LinkByEmail: true, Now: t0})
	wantErr(t, "ResolveIdentity(link to disabled user)", err, storage.ErrUserDisabled)
	ids, _ := s.ListIdentities(ctx, a.User.ID)
	if len(ids) != 1 {
		t.Fatalf("disabled user got an identity linked: %+v", ids)
	}
	wantErr(t, "SetUserDisabled(unknown)", s.SetUserDisabled(ctx, "00000000-0000-4000-8000-000000000000", true), storage.ErrNotFound)
	wantErr(t, "SetUserDisabled(false)", s.SetUserDisabled(ctx, a.User.ID, false), nil)
	mustResolve(t, s, storage.ResolveRequest{Connector: "auth0", Subject: "a"})
}

func testResolveConcurrentSameIdentity(t *testing.T, s storage.Storage) {
	// No verified email: only the identity's uniqueness can keep the
	// resolutions from making a user each.
	const n = 50
	results := make([]storage.Resolution, n)
	errs := make([]error, n)
	race(n, func(i int) {
		results[i], errs[i] = s.ResolveIdentity(t.Context(), storage.ResolveRequest{
			Connector: "entra", Subject: "first-login", Email: "f@example.com", Name: "F", Now: t0,
		})
	})
	created := 0
	for i := range n {
		wantErr(t, fmt.Sprintf("resolver %d", i), errs[i], nil)
		if results[i].User.ID != results[0].User.ID {
			t.Fatalf("resolver %d got user %s, resolver 0 user %s", i, results[i].User.ID, results[0].User.ID)
		}
		if results[i].Created {
			created++
		}
	}
	if created != 1 {
		t.Fatalf("%d resolvers report creating the user; want 1", created)
	}
	ids, err := s.ListIdentities(t.Context(), results[0].User.ID)
	wantErr(t, "ListIdentities", err, nil)
	if len(ids) != 1 {
		t.Fatalf("%d identities; want 1", len(ids))
	}
}

func testResolveConcurrentSameEmail(t *testing.T, s storage.Storage) {
	// Two trusted connectors meet the same person for the first time at
	// once, several times over to give a race a chance to show.
	const rounds, perConnector = 10, 5
	for r := range rounds {
		email := fmt.Sprintf("both%d@example.com", r)
		results := make([]storage.Resolution, 2*perConnector)
		errs := make([]error, 2*perConnector)
		race(2*perConnector, func(i int) {
			conn := []string{"auth0", "workos"}[i%2]
			results[i], errs[i] = s.ResolveIdentity(t.Context(), storage.ResolveRequest{
				Connector: conn, Subject: conn + email, Email: email, EmailVerified: true, LinkByEmail: true, Now: t0,
			})
		})
		created := 0
		for i := range results {
			wantErr(t, fmt.Sprintf("round %d resolver %d", r, i), errs[i], nil)
			if results[i].User.ID != results[0].User.ID {
				t.Fatalf("round %d: two users for %s: %s and %s", r, email, results[0].User.ID, results[i].User.ID)
			}
			if results[i].Created {
				created++
			}
		}
		if created != 1 {
			t.Fatalf("round %d: %d creations; want 1", r, created)
		}
		ids, _ := s.ListIdentities(t.Context(), results[0].User.ID)
		if len(ids) != 2 {
			t.Fatalf("round %d: user has %d identities; want 2", r, len(ids))
		}
	}
}

func testGetUserUnknown(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	_, err := s.GetUser(ctx, "00000000-0000-4000-8000-000000000000")
	wantErr(t, "GetUser(unknown)", err, storage.ErrNotFound)
	_, err = s.GetUser(ctx, "not-a-uuid")
	wantErr(t, "GetUser(not a UUID)", err, storage.ErrNotFound)
	_, err = s.GetUserByEmail(ctx, "nobody@example.com")
	wantErr(t, "GetUserByEmail(unknown)", err, storage.ErrNotFound)
	ids, err := s.ListIdentities(ctx, "00000000-0000-4000-8000-000000000000")
	wantErr(t, "ListIdentities(unknown)", err, nil)
	if len(ids) != 0 {
		t.Fatalf("unknown user has identities %+v", ids)
	}
}

// importUsers returns n users with ids derived from i and seed, one
// identity each.
func importUsers(seed, n int) []storage.ImportUser {
	users := make([]storage.ImportUser, n)
	for i := range users {
		users[i] = storage.ImportUser{
			ID:            fmt.Sprintf("%08x-0000-4000-8000-%012x", seed, i),
			Email:         fmt.Sprintf("u%d-%d@example.com", seed, i),
			EmailVerified: i%2 == 0,
			Name:          fmt.Sprintf("User %d", i),
			Identities:    []storage.ImportIdentity{{Connector: "auth0", Subject: fmt.Sprintf("auth0|%d-%d", seed, i)}},
		}
	}
	return users
}

func testImportIdempotent(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	users := importUsers(1, 20)
	users[0].Identities = append(users[0].Identities, storage.ImportIdentity{Connector: "entra", Subject: "tid/oid"})
	res, err := s.ImportUsers(ctx, users, t0)
	wantErr(t, "ImportUsers", err, nil)
	wantEqual(t, "first import", res, storage.ImportResult{UsersCreated: 20, IdentitiesCreated: 21})

	u, err := s.GetUser(ctx, users[0].ID)
	wantErr(t, "GetUser", err, nil)
	wantEqual(t, "imported user", u, storage.User{ID: users[0].ID, Email: users[0].Email, EmailVerified: true, Name: users[0].Name, CreatedAt: t0, UpdatedAt: t0})
	ids, err := s.ListIdentities(ctx, users[0].ID)
	wantErr(t, "ListIdentities", err, nil)
	wantEqual(t, "imported identities", ids, []storage.Identity{
		{Connector: "auth0", Subject: "auth0|1-0", UserID: users[0].ID, Email: users[0].Email, Name: users[0].Name, CreatedAt: t0},
		{Connector: "entra", Subject: "tid/oid", UserID: users[0].ID, Email: users[0].Email, Name: users[0].Name, CreatedAt: t0},
	})

	res, err = s.ImportUsers(ctx, users, t0.Add(time.Hour))
	wantErr(t, "second ImportUsers", err, nil)
	wantEqual(t, "second import", res, storage.ImportResult{})

	// An imported identity resolves to its imported user.
	r := mustResolve(t, s, storage.ResolveRequest{Connector: "auth0", Subject: "auth0|1-3", Email: users[3].Email, Name: users[3].Name})
	if r.Created || r.User.ID != users[3].ID {
		t.Fatalf("resolution of imported identity = %+v; want user %s", r, users[3].ID)
	}
}

func testImportAddsIdentity(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	users := importUsers(2, 3)
	if _, err := s.ImportUsers(ctx, users, t0); err != nil {
		t.Fatal(err)
	}
	users[1].Identities = append(users[1].Identities, storage.ImportIdentity{Connector: "workos", Subject: "user_9"})
	res, err := s.ImportUsers(ctx, users, t0)
	wantErr(t, "ImportUsers", err, nil)
	wantEqual(t, "rerun with a new identity", res, storage.ImportResult{IdentitiesCreated: 1})
}

func testImportConflicts(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	existing := importUsers(3, 2)
	if _, err := s.ImportUsers(ctx, existing, t0); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name  string
		bad   storage.ImportUser
		names string // what the error must name
	}{
		{"same id, other data", storage.ImportUser{ID: existing[0].ID, Email: "changed@example.com"}, existing[0].ID},
		{"identity of another user", storage.ImportUser{
			ID: "0000000a-0000-4000-8000-000000000001", Identities: []storage.ImportIdentity{{Connector: "auth0", Subject: "auth0|3-1"}},
		}, "auth0|3-1"},
		{"verified email taken", storage.ImportUser{
			ID: "0000000a-0000-4000-8000-000000000002", Email: existing[0].Email, EmailVerified: true,
		}, existing[0].Email},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			good := importUsers(4, 5)
			batch := append(good, tt.bad)
			res, err := s.ImportUsers(ctx, batch, t0)
			wantErr(t, "ImportUsers", err, storage.ErrAlreadyExists)
			if !strings.Contains(err.Error(), tt.names) {
				t.Fatalf("error %q does not name %q", err, tt.names)
			}
			var ie *storage.ImportError
			if !errors.As(err, &ie) || ie.Index != len(good) {
				t.Fatalf("error %v is not an ImportError for users[%d]", err, len(good))
			}
			wantEqual(t, "result of failed import", res, storage.ImportResult{})
			for _, u := range good {
				if _, err := s.GetUser(ctx, u.ID); err == nil {
					t.Fatalf("user %s of a failed import was written", u.ID)
				}
			}
		})
	}
}

func testImportInvalid(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	tests := []struct {
		name  string
		batch []storage.ImportUser
		names string
	}{
		{"not a UUID", []storage.ImportUser{{ID: "42"}}, `"42"`},
		{"id twice", []storage.ImportUser{{ID: "0000000b-0000-4000-8000-000000000001"}, {ID: "0000000b-0000-4000-8000-000000000001"}}, "users[1]"},
		{"verified email twice", []storage.ImportUser{
			{ID: "0000000b-0000-4000-8000-000000000001", Email: "e@example.com", EmailVerified: true},
			{ID: "0000000b-0000-4000-8000-000000000002", Email: "e@example.com", EmailVerified: true},
		}, "e@example.com"},
		{"identity twice", []storage.ImportUser{
			{ID: "0000000b-0000-4000-8000-000000000001", Identities: []storage.ImportIdentity{{Connector: "c", Subject: "s"}}},
			{ID: "0000000b-0000-4000-8000-000000000002", Identities: []storage.ImportIdentity{{Connector: "c", Subject: "s"}}},
		}, "c/s"},
		{"identity without subject", []storage.ImportUser{
			{ID: "0000000b-0000-4000-8000-000000000001", Identities: []storage.ImportIdentity{{Connector: "c"}}},
		}, "users[0]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.ImportUsers(ctx, tt.batch, t0)
			if err == nil {
				t.Fatal("ImportUsers accepted an invalid batch")
			}
			if !strings.Contains(err.Error(), tt.names) {
				t.Fatalf("error %q does not name %s", err, tt.names)
			}
			if ie := (*storage.ImportError)(nil); !errors.As(err, &ie) {
				t.Fatalf("error %v is not an ImportError", err)
			}
			if _, err := s.GetUser(ctx, "0000000b-0000-4000-8000-000000000001"); err == nil {
				t.Fatal("a user of the invalid batch was written")
			}
		})
	}
}

func testImportRollback(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	taken := mustResolve(t, s, storage.ResolveRequest{Connector: "auth0", Subject: "taken"})
	users := importUsers(5, 1000)
	users[999].Identities = []storage.ImportIdentity{{Connector: "auth0", Subject: "taken"}}
	_, err := s.ImportUsers(ctx, users, t0)
	wantErr(t, "ImportUsers", err, storage.ErrAlreadyExists)
	if !strings.Contains(err.Error(), users[999].ID) || !strings.Contains(err.Error(), "users[999]") {
		t.Fatalf("error %q does not name users[999] (%s)", err, users[999].ID)
	}
	for _, i := range []int{0, 500, 998} {
		if _, err := s.GetUser(ctx, users[i].ID); err == nil {
			t.Fatalf("users[%d] written by a failed import", i)
		}
	}
	ids, _ := s.ListIdentities(ctx, taken.User.ID)
	if len(ids) != 1 {
		t.Fatalf("identities of the existing user changed: %+v", ids)
	}
}
