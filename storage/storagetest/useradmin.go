package storagetest

import (
	"testing"

	"github.com/idbroker/broker/storage"
)

const unknownUser = "00000000-0000-4000-8000-000000000000"

func testListUsersPages(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	want := map[string]bool{}
	for i := range 5 {
		res := mustResolve(t, s, storage.ResolveRequest{Connector: "otp", Subject: string(rune('a' + i))})
		want[res.User.ID] = true
	}
	var seen []string
	after := ""
	for {
		page, err := s.ListUsers(ctx, after, 2)
		wantErr(t, "ListUsers", err, nil)
		if len(page) > 2 {
			t.Fatalf("ListUsers(limit 2) gave %d users", len(page))
		}
		if len(page) == 0 {
			break
		}
		for _, u := range page {
			if len(seen) > 0 && u.ID <= seen[len(seen)-1] {
				t.Fatalf("ListUsers out of order: %s after %s", u.ID, seen[len(seen)-1])
			}
			seen = append(seen, u.ID)
		}
		after = page[len(page)-1].ID
	}
	if len(seen) != len(want) {
		t.Fatalf("ListUsers paged through %d users, want %d", len(seen), len(want))
	}
	for _, id := range seen {
		if !want[id] {
			t.Fatalf("ListUsers gave unknown user %s", id)
		}
	}
}

func testDeleteUser(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	gone := mustResolve(t, s, storage.ResolveRequest{Connector: "auth0", Subject: "gone", Email: "gone@example.com", EmailVerified: true}).User
	kept := mustResolve(t, s, storage.ResolveRequest{Connector: "auth0", Subject: "kept"}).User
	wantErr(t, "LinkIdentity", s.LinkIdentity(ctx, storage.Identity{Connector: "otp", Subject: "gone@example.com", UserID: gone.ID, CreatedAt: t0, LastLogin: t0}), nil)
	wantErr(t, "CreateSession", s.CreateSession(ctx, session("s-gone", gone.ID, t0)), nil)
	wantErr(t, "CreateSession", s.CreateSession(ctx, session("s-kept", kept.ID, t0)), nil)
	wantErr(t, "CreateRefreshFamily", s.CreateRefreshFamily(ctx, family("f-gone", gone.ID, "s-gone"), hash("f-gone")), nil)
	wantErr(t, "CreateRefreshFamily", s.CreateRefreshFamily(ctx, family("f-kept", kept.ID, "s-kept"), hash("f-kept")), nil)

	wantErr(t, "DeleteUser", s.DeleteUser(ctx, gone.ID), nil)
	_, err := s.GetUser(ctx, gone.ID)
	wantErr(t, "GetUser(deleted)", err, storage.ErrNotFound)
	_, err = s.GetUserByEmail(ctx, "gone@example.com")
	wantErr(t, "GetUserByEmail(deleted)", err, storage.ErrNotFound)
	ids, err := s.ListIdentities(ctx, gone.ID)
	wantErr(t, "ListIdentities(deleted)", err, nil)
	if len(ids) != 0 {
		t.Fatalf("deleted user keeps identities %+v", ids)
	}
	_, err = s.GetSession(ctx, "s-gone", t0)
	wantErr(t, "GetSession(deleted user's)", err, storage.ErrNotFound)
	_, err = s.GetRefreshFamilyByToken(ctx, hash("f-gone"))
	wantErr(t, "GetRefreshFamilyByToken(deleted user's)", err, storage.ErrNotFound)
	wantRefused(t, s, "deleted user's access token", accessToken("at-gone", "f-gone", gone.ID), storage.ErrNotFound)

	// The other user is untouched.
	_, err = s.GetSession(ctx, "s-kept", t0)
	wantErr(t, "GetSession(other user's)", err, nil)
	_, err = rotate(s, t, "f-kept", "f-kept2", 0, t0)
	wantErr(t, "rotate other user's token", err, nil)
	wantActive(t, s, "other user's access token", accessToken("at-kept", "f-kept", kept.ID), kept)

	// The identity is free again: it resolves to a new user, and the
	// address can be verified by someone else.
	res := mustResolve(t, s, storage.ResolveRequest{Connector: "auth0", Subject: "gone", Email: "gone@example.com", EmailVerified: true})
	if !res.Created || res.User.ID == gone.ID || !res.User.EmailVerified {
		t.Fatalf("identity of a deleted user resolved to %+v; want a new user owning the address", res)
	}
	wantErr(t, "DeleteUser(again)", s.DeleteUser(ctx, gone.ID), storage.ErrNotFound)
	wantErr(t, "DeleteUser(not a UUID)", s.DeleteUser(ctx, "nope"), storage.ErrNotFound)
}

func testLinkIdentity(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	a := mustResolve(t, s, storage.ResolveRequest{Connector: "otp", Subject: "a@example.com", Email: "a@example.com", EmailVerified: true}).User
	b := mustResolve(t, s, storage.ResolveRequest{Connector: "otp", Subject: "b@example.com"}).User
	link := storage.Identity{Connector: "entra", Subject: "tid/oid", UserID: a.ID, Email: "a@corp.example.com", Name: "A", CreatedAt: t0, LastLogin: t0}
	wantErr(t, "LinkIdentity", s.LinkIdentity(ctx, link), nil)
	wantErr(t, "LinkIdentity(again, same user)", s.LinkIdentity(ctx, link), nil)
	ids, _ := s.ListIdentities(ctx, a.ID)
	wantEqual(t, "identities after link", ids, []storage.Identity{link, {
		Connector: "otp", Subject: "a@example.com", UserID: a.ID, Email: "a@example.com", CreatedAt: t0, LastLogin: t0,
	}})
	// The linked identity now resolves to its user.
	res := mustResolve(t, s, storage.ResolveRequest{Connector: "entra", Subject: "tid/oid"})
	if res.User.ID != a.ID || res.Created {
		t.Fatalf("linked identity resolved to %+v; want user %s", res, a.ID)
	}

	other := link
	other.UserID = b.ID
	wantErr(t, "LinkIdentity(another user's)", s.LinkIdentity(ctx, other), storage.ErrAlreadyExists)
	if ids, _ := s.ListIdentities(ctx, b.ID); len(ids) != 1 {
		t.Fatalf("refused link changed user b: %+v", ids)
	}
	unknown := link
	unknown.Connector, unknown.UserID = "auth0", unknownUser
	wantErr(t, "LinkIdentity(unknown user)", s.LinkIdentity(ctx, unknown), storage.ErrNotFound)

	wantErr(t, "UnlinkIdentity(another user's)", s.UnlinkIdentity(ctx, b.ID, "entra", "tid/oid"), storage.ErrNotFound)
	wantErr(t, "UnlinkIdentity", s.UnlinkIdentity(ctx, a.ID, "entra", "tid/oid"), nil)
	wantErr(t, "UnlinkIdentity(again)", s.UnlinkIdentity(ctx, a.ID, "entra", "tid/oid"), storage.ErrNotFound)
	if ids, _ := s.ListIdentities(ctx, a.ID); len(ids) != 1 {
		t.Fatalf("identities after unlink: %+v", ids)
	}
	// Unlinked, it is free for another user.
	wantErr(t, "LinkIdentity(to b after unlink)", s.LinkIdentity(ctx, other), nil)
}

// testAdminRole: the role is stored with the user and read back by every
// read that returns the user, the ones that admit a token included, so
// the broker sees a revocation on the next request.
func testAdminRole(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	u := mustResolve(t, s, storage.ResolveRequest{Connector: "otp", Subject: "root@example.com", Email: "root@example.com", EmailVerified: true}).User
	other := mustResolve(t, s, storage.ResolveRequest{Connector: "otp", Subject: "other@example.com"}).User
	if u.Admin {
		t.Fatal("a new user holds the admin role")
	}
	wantErr(t, "CreateRefreshFamily", s.CreateRefreshFamily(ctx, family("f-root", u.ID, ""), hash("f-root")), nil)
	reads := func(want bool) {
		t.Helper()
		check := func(what string, got storage.User, err error) {
			t.Helper()
			wantErr(t, what, err, nil)
			if got.ID != u.ID || got.Admin != want {
				t.Fatalf("%s: user %s admin %t, want %s admin %t", what, got.ID, got.Admin, u.ID, want)
			}
		}
		got, err := s.GetUser(ctx, u.ID)
		check("GetUser", got, err)
		got, err = s.GetUserByEmail(ctx, "root@example.com")
		check("GetUserByEmail", got, err)
		got, err = s.AccessTokenUser(ctx, accessToken("at-root", "", u.ID))
		check("AccessTokenUser", got, err)
		_, got, err = s.GetRefreshGrant(ctx, hash("f-root"))
		check("GetRefreshGrant", got, err)
		res, err := s.ResolveIdentity(ctx, storage.ResolveRequest{Connector: "otp", Subject: "root@example.com", Now: t0})
		check("ResolveIdentity", res.User, err)
		page, err := s.ListUsers(ctx, "", 10)
		wantErr(t, "ListUsers", err, nil)
		for _, p := range page {
			if p.ID == u.ID && p.Admin != want || p.ID == other.ID && p.Admin {
				t.Fatalf("ListUsers: %+v", p)
			}
		}
	}
	wantErr(t, "SetUserAdmin(true)", s.SetUserAdmin(ctx, u.ID, true), nil)
	reads(true)
	wantErr(t, "SetUserAdmin(true) again", s.SetUserAdmin(ctx, u.ID, true), nil)
	reads(true)
	wantErr(t, "SetUserAdmin(false)", s.SetUserAdmin(ctx, u.ID, false), nil)
	reads(false)
	wantErr(t, "SetUserAdmin(false) again", s.SetUserAdmin(ctx, u.ID, false), nil)
	wantErr(t, "SetUserAdmin(unknown)", s.SetUserAdmin(ctx, unknownUser, true), storage.ErrNotFound)
	wantErr(t, "SetUserAdmin(not a UUID)", s.SetUserAdmin(ctx, "root", true), storage.ErrNotFound)
	if got, _ := s.GetUser(ctx, other.ID); got.Admin {
		t.Fatal("granting one user the role gave it to another")
	}
}
