package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idbroker/broker/storage"
)

// Organisation ids of the suite, in id order.
const (
	orgA = "0a000000-0000-4000-8000-00000000000a"
	orgB = "0b000000-0000-4000-8000-00000000000b"
	orgC = "0c000000-0000-4000-8000-00000000000c"
)

func organization(id, slug string, upstream ...string) storage.Organization {
	return storage.Organization{
		ID: id, Slug: slug, Name: "Org " + slug, RequireSSO: true, UpstreamIDs: upstream,
		CreatedAt: t0, UpdatedAt: t0.Add(time.Minute),
	}
}

func mustCreateOrg(t *testing.T, s storage.Storage, o storage.Organization) {
	t.Helper()
	wantErr(t, "CreateOrganization("+o.Slug+")", s.CreateOrganization(t.Context(), o), nil)
}

func storedConnector(id, orgID string) storage.StoredConnector {
	return storage.StoredConnector{
		ID: id, Type: "oidc", Name: "Connector " + id, OrgID: orgID,
		Settings: []byte("sealed-settings"), Timeout: 5 * time.Second, RecheckInterval: 10 * time.Minute,
		CreatedAt: t0, UpdatedAt: t0,
	}
}

func member(orgID, userID, role string) storage.Membership {
	return storage.Membership{OrgID: orgID, UserID: userID, Role: role, CreatedAt: t0}
}

// orgUser returns a new user.
func orgUser(t *testing.T, s storage.Storage, subject string) storage.User {
	t.Helper()
	return mustResolve(t, s, storage.ResolveRequest{Connector: "auth0", Subject: subject}).User
}

func testOrgCRUD(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	a := organization(orgA, "acme", "auth0-org-1", "tid-1")
	mustCreateOrg(t, s, a)
	mustCreateOrg(t, s, organization(orgC, "contoso"))
	mustCreateOrg(t, s, organization(orgB, "bigcorp", "auth0-org-2"))

	wantErr(t, "CreateOrganization(same id)", s.CreateOrganization(ctx, organization(orgA, "other")), storage.ErrAlreadyExists)
	wantErr(t, "CreateOrganization(same slug)", s.CreateOrganization(ctx,
		organization("0d000000-0000-4000-8000-00000000000d", "acme")), storage.ErrAlreadyExists)
	wantErr(t, "CreateOrganization(taken upstream id)", s.CreateOrganization(ctx,
		organization("0d000000-0000-4000-8000-00000000000d", "d", "new", "tid-1")), storage.ErrAlreadyExists)
	if _, err := s.GetOrganization(ctx, "d"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("an organisation refused for its upstream id was stored: %v", err)
	}

	for _, key := range []string{orgA, "acme", "0A000000-0000-4000-8000-00000000000A"} {
		got, err := s.GetOrganization(ctx, key)
		wantErr(t, "GetOrganization("+key+")", err, nil)
		wantEqual(t, "organisation by "+key, got, a)
	}
	for _, key := range []string{"nope", "0e000000-0000-4000-8000-00000000000e", ""} {
		_, err := s.GetOrganization(ctx, key)
		wantErr(t, "GetOrganization("+key+")", err, storage.ErrNotFound)
	}

	// Callers never share memory with the store.
	got, _ := s.GetOrganization(ctx, orgA)
	got.UpstreamIDs[0] = "changed"
	got, _ = s.GetOrganization(ctx, orgA)
	wantEqual(t, "organisation after its copy changed", got, a)

	var ids []string
	for after := ""; ; {
		page, err := s.ListOrganizations(ctx, after, 2)
		wantErr(t, "ListOrganizations", err, nil)
		if len(page) == 0 {
			break
		}
		if len(page) > 2 {
			t.Fatalf("ListOrganizations(limit 2) gave %d", len(page))
		}
		for _, o := range page {
			ids = append(ids, o.ID)
		}
		after = page[len(page)-1].ID
	}
	wantEqual(t, "organisations paged", ids, []string{orgA, orgB, orgC})
	page, err := s.ListOrganizations(ctx, orgA, 10)
	wantErr(t, "ListOrganizations(after a)", err, nil)
	wantEqual(t, "first after a", page[0].ID, orgB)
	if page, _ := s.ListOrganizations(ctx, "", 0); len(page) != 0 {
		t.Errorf("ListOrganizations(limit 0) = %d organisations", len(page))
	}
}

func testOrgUpdate(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	mustCreateOrg(t, s, organization(orgA, "acme", "up-a"))
	mustCreateOrg(t, s, organization(orgB, "bigcorp", "up-b"))

	want := organization(orgA, "acme-inc", "up-a2")
	want.Name, want.RequireSSO, want.UpdatedAt = "Acme Inc", false, t0.Add(time.Hour)
	got, err := s.UpdateOrganization(ctx, orgA, func(o storage.Organization) (storage.Organization, error) {
		wantEqual(t, "organisation given to update", o, organization(orgA, "acme", "up-a"))
		o.ID = orgC // ignored
		o.Slug, o.Name, o.RequireSSO, o.UpstreamIDs, o.UpdatedAt = want.Slug, want.Name, want.RequireSSO, want.UpstreamIDs, want.UpdatedAt
		return o, nil
	})
	wantErr(t, "UpdateOrganization", err, nil)
	wantEqual(t, "updated organisation", got, want)
	got, err = s.GetOrganization(ctx, "acme-inc")
	wantErr(t, "GetOrganization(new slug)", err, nil)
	wantEqual(t, "stored organisation", got, want)
	_, err = s.GetOrganization(ctx, "acme")
	wantErr(t, "GetOrganization(old slug)", err, storage.ErrNotFound)
	_, err = s.GetOrganization(ctx, orgC)
	wantErr(t, "GetOrganization(id update tried to set)", err, storage.ErrNotFound)

	// The old slug and upstream id are free again; another's are not.
	mustCreateOrg(t, s, organization(orgC, "acme", "up-a"))
	for what, change := range map[string]func(*storage.Organization){
		"slug":        func(o *storage.Organization) { o.Slug = "bigcorp" },
		"upstream id": func(o *storage.Organization) { o.UpstreamIDs = append(o.UpstreamIDs, "up-b") },
	} {
		_, err := s.UpdateOrganization(ctx, orgA, func(o storage.Organization) (storage.Organization, error) {
			change(&o)
			return o, nil
		})
		wantErr(t, "UpdateOrganization(another's "+what+")", err, storage.ErrAlreadyExists)
	}
	got, _ = s.GetOrganization(ctx, orgA)
	wantEqual(t, "organisation after refused updates", got, want)

	errUpdate := errors.New("update refused")
	_, err = s.UpdateOrganization(ctx, orgA, func(o storage.Organization) (storage.Organization, error) {
		return storage.Organization{}, errUpdate
	})
	wantErr(t, "UpdateOrganization(update fails)", err, errUpdate)
	// An id is never taken for a slug spelled like it.
	const unknown = "0e000000-0000-4000-8000-00000000000e"
	mustCreateOrg(t, s, organization("0d000000-0000-4000-8000-00000000000d", unknown))
	mustCreateOrg(t, s, organization("0f000000-0000-4000-8000-00000000000f", orgB))
	_, err = s.UpdateOrganization(ctx, unknown, func(o storage.Organization) (storage.Organization, error) {
		t.Errorf("update called with %+v for an unknown id", o)
		return o, nil
	})
	wantErr(t, "UpdateOrganization(unknown)", err, storage.ErrNotFound)
	got, err = s.GetOrganization(ctx, orgB)
	wantErr(t, "GetOrganization(an id that is also a slug)", err, nil)
	wantEqual(t, "organisation by an id that is also another's slug", got.ID, orgB)
	got, err = s.GetOrganization(ctx, unknown)
	wantErr(t, "GetOrganization(a slug spelled like an id)", err, nil)
	wantEqual(t, "organisation by a slug spelled like an id", got.ID, "0d000000-0000-4000-8000-00000000000d")
	_, err = s.UpdateOrganization(ctx, "not-a-uuid", func(o storage.Organization) (storage.Organization, error) {
		return o, nil
	})
	wantErr(t, "UpdateOrganization(not a UUID)", err, storage.ErrNotFound)
}

func testOrgDeleteCascades(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	mustCreateOrg(t, s, organization(orgA, "acme", "up-a"))
	mustCreateOrg(t, s, organization(orgB, "bigcorp"))
	u := orgUser(t, s, "u")
	wantErr(t, "AddDomain", s.AddDomain(ctx, storage.Domain{Domain: "acme.com", OrgID: orgA, Challenge: "c", CreatedAt: t0}), nil)
	wantErr(t, "AddDomain", s.AddDomain(ctx, storage.Domain{Domain: "acme.org", OrgID: orgA, Challenge: "c", CreatedAt: t0}), nil)
	wantErr(t, "AddDomain(b)", s.AddDomain(ctx, storage.Domain{Domain: "acme.com", OrgID: orgB, Challenge: "c", CreatedAt: t0}), nil)
	_, err := s.VerifyDomain(ctx, orgA, "acme.com", "dns", t0)
	wantErr(t, "VerifyDomain", err, nil)
	for _, org := range []string{orgA, orgB} {
		_, _, err := s.EnsureMember(ctx, member(org, u.ID, storage.OrgRoleMember))
		wantErr(t, "EnsureMember", err, nil)
	}
	wantErr(t, "CreateConnector", s.CreateConnector(ctx, storedConnector("acme-idp", orgA)), nil)
	wantErr(t, "CreateConnector", s.CreateConnector(ctx, storedConnector("big-idp", orgB)), nil)

	wantErr(t, "DeleteOrganization", s.DeleteOrganization(ctx, orgA), nil)
	_, err = s.GetOrganization(ctx, orgA)
	wantErr(t, "GetOrganization(deleted)", err, storage.ErrNotFound)
	wantErr(t, "DeleteOrganization(again)", s.DeleteOrganization(ctx, orgA), storage.ErrNotFound)
	wantErr(t, "DeleteOrganization(not a UUID)", s.DeleteOrganization(ctx, "acme"), storage.ErrNotFound)

	domains, err := s.ListDomains(ctx, orgA)
	wantErr(t, "ListDomains(deleted)", err, nil)
	if len(domains) != 0 {
		t.Errorf("domains of a deleted organisation: %+v", domains)
	}
	verified, _ := s.ListVerifiedDomains(ctx)
	if len(verified) != 0 {
		t.Errorf("verified domains after the holder was deleted: %+v", verified)
	}
	_, err = s.VerifyDomain(ctx, orgB, "acme.com", "dns", t0)
	wantErr(t, "VerifyDomain(freed by the delete)", err, nil)

	ms, err := s.Memberships(ctx, u.ID)
	wantErr(t, "Memberships", err, nil)
	wantEqual(t, "memberships after the delete", ms, []storage.Membership{member(orgB, u.ID, storage.OrgRoleMember)})

	c, err := s.GetConnector(ctx, "acme-idp")
	wantErr(t, "GetConnector(detached)", err, nil)
	wantEqual(t, "detached connector", c, storedConnector("acme-idp", ""))
	c, _ = s.GetConnector(ctx, "big-idp")
	wantEqual(t, "another organisation's connector", c, storedConnector("big-idp", orgB))

	// Its slug and upstream ids are free.
	mustCreateOrg(t, s, organization(orgC, "acme", "up-a"))
}

func testOrgDomains(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	mustCreateOrg(t, s, organization(orgA, "acme"))
	mustCreateOrg(t, s, organization(orgB, "bigcorp"))
	d := func(org, domain string) storage.Domain {
		return storage.Domain{Domain: domain, OrgID: org, Challenge: "challenge-" + domain, CreatedAt: t0}
	}
	wantErr(t, "AddDomain", s.AddDomain(ctx, d(orgA, "b.example")), nil)
	wantErr(t, "AddDomain", s.AddDomain(ctx, d(orgA, "a.example")), nil)
	wantErr(t, "AddDomain(again)", s.AddDomain(ctx, d(orgA, "a.example")), storage.ErrAlreadyExists)
	wantErr(t, "AddDomain(another organisation's claim)", s.AddDomain(ctx, d(orgB, "a.example")), nil)
	wantErr(t, "AddDomain(unknown organisation)", s.AddDomain(ctx, d(orgC, "c.example")), storage.ErrNotFound)
	wantErr(t, "AddDomain(organisation not a UUID)", s.AddDomain(ctx, d("acme", "c.example")), storage.ErrNotFound)

	list, err := s.ListDomains(ctx, orgA)
	wantErr(t, "ListDomains", err, nil)
	wantEqual(t, "domains", list, []storage.Domain{d(orgA, "a.example"), d(orgA, "b.example")})
	if list, _ := s.ListVerifiedDomains(ctx); len(list) != 0 {
		t.Fatalf("verified domains before any verification: %+v", list)
	}

	_, err = s.VerifyDomain(ctx, orgA, "c.example", "dns", t0)
	wantErr(t, "VerifyDomain(no claim)", err, storage.ErrNotFound)
	_, err = s.VerifyDomain(ctx, orgC, "a.example", "dns", t0)
	wantErr(t, "VerifyDomain(unknown organisation)", err, storage.ErrNotFound)
	at := t0.Add(time.Hour)
	got, err := s.VerifyDomain(ctx, orgA, "a.example", "dns", at)
	wantErr(t, "VerifyDomain", err, nil)
	want := d(orgA, "a.example")
	want.Verified, want.VerifiedBy, want.VerifiedAt = true, "dns", at
	wantEqual(t, "verified domain", got, want)
	_, err = s.VerifyDomain(ctx, orgB, "a.example", "admin", at)
	wantErr(t, "VerifyDomain(verified by another)", err, storage.ErrAlreadyExists)
	_, err = s.VerifyDomain(ctx, orgA, "a.example", "dns", at)
	wantErr(t, "VerifyDomain(again)", err, nil)
	mustCreateOrg(t, s, organization(orgC, "contoso"))
	wantErr(t, "AddDomain(verified by another)", s.AddDomain(ctx, d(orgC, "a.example")), storage.ErrAlreadyExists)

	list, _ = s.ListVerifiedDomains(ctx)
	wantEqual(t, "verified domains", list, []storage.Domain{want})
	list, _ = s.ListDomains(ctx, orgB)
	wantEqual(t, "the loser's claim", list, []storage.Domain{d(orgB, "a.example")})

	wantErr(t, "DeleteDomain(unknown)", s.DeleteDomain(ctx, orgA, "c.example"), storage.ErrNotFound)
	wantErr(t, "DeleteDomain", s.DeleteDomain(ctx, orgA, "a.example"), nil)
	wantErr(t, "DeleteDomain(again)", s.DeleteDomain(ctx, orgA, "a.example"), storage.ErrNotFound)
	if list, _ := s.ListVerifiedDomains(ctx); len(list) != 0 {
		t.Fatalf("verified domains after the delete: %+v", list)
	}
	got, err = s.VerifyDomain(ctx, orgB, "a.example", "admin", at)
	wantErr(t, "VerifyDomain(freed)", err, nil)
	if got.OrgID != orgB || got.VerifiedBy != "admin" {
		t.Fatalf("VerifyDomain(freed) = %+v", got)
	}
}

// Of organisations verifying one domain at once, one wins.
func testOrgVerifyDomainRace(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	orgs := []string{orgA, orgB, orgC}
	for i, org := range orgs {
		mustCreateOrg(t, s, organization(org, fmt.Sprintf("org-%d", i)))
	}
	for round := range 5 {
		domain := fmt.Sprintf("race-%d.example", round)
		for _, org := range orgs {
			wantErr(t, "AddDomain", s.AddDomain(ctx, storage.Domain{Domain: domain, OrgID: org, CreatedAt: t0}), nil)
		}
		errs := make([]error, len(orgs))
		race(len(orgs), func(i int) {
			_, errs[i] = s.VerifyDomain(ctx, orgs[i], domain, "dns", t0)
		})
		won := 0
		for i, err := range errs {
			switch {
			case err == nil:
				won++
			case !errors.Is(err, storage.ErrAlreadyExists):
				t.Fatalf("VerifyDomain(%s) by %s: %v", domain, orgs[i], err)
			}
		}
		if won != 1 {
			t.Fatalf("%d organisations verified %s at once, want 1", won, domain)
		}
	}
	if list, _ := s.ListVerifiedDomains(ctx); len(list) != 5 {
		t.Fatalf("ListVerifiedDomains = %d domains, want 5", len(list))
	}
}

func testOrgMembers(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	mustCreateOrg(t, s, organization(orgA, "acme"))
	mustCreateOrg(t, s, organization(orgB, "bigcorp"))
	users := make([]storage.User, 3)
	for i := range users {
		users[i] = orgUser(t, s, fmt.Sprintf("u%d", i))
	}
	u := users[0]

	m, created, err := s.EnsureMember(ctx, member(orgA, u.ID, storage.OrgRoleMember))
	wantErr(t, "EnsureMember", err, nil)
	if !created {
		t.Fatal("EnsureMember of a new member: created false")
	}
	wantEqual(t, "membership", m, member(orgA, u.ID, storage.OrgRoleMember))
	later := member(orgA, u.ID, storage.OrgRoleAdmin)
	later.CreatedAt = t0.Add(time.Hour)
	m, created, err = s.EnsureMember(ctx, later)
	wantErr(t, "EnsureMember(again)", err, nil)
	if created {
		t.Fatal("EnsureMember of a member: created true")
	}
	wantEqual(t, "membership ensured again", m, member(orgA, u.ID, storage.OrgRoleMember))

	_, _, err = s.EnsureMember(ctx, member(orgC, u.ID, storage.OrgRoleMember))
	wantErr(t, "EnsureMember(unknown organisation)", err, storage.ErrNotFound)
	_, _, err = s.EnsureMember(ctx, member("acme", u.ID, storage.OrgRoleMember))
	wantErr(t, "EnsureMember(organisation not a UUID)", err, storage.ErrNotFound)
	_, _, err = s.EnsureMember(ctx, member(orgA, "0e000000-0000-4000-8000-00000000000e", storage.OrgRoleMember))
	wantErr(t, "EnsureMember(unknown user)", err, storage.ErrNotFound)

	m, err = s.SetMemberRole(ctx, orgA, u.ID, storage.OrgRoleAdmin)
	wantErr(t, "SetMemberRole", err, nil)
	wantEqual(t, "membership with a new role", m, member(orgA, u.ID, storage.OrgRoleAdmin))
	_, err = s.SetMemberRole(ctx, orgB, u.ID, storage.OrgRoleAdmin)
	wantErr(t, "SetMemberRole(non-member)", err, storage.ErrNotFound)

	for _, v := range users[1:] {
		_, _, err := s.EnsureMember(ctx, member(orgA, v.ID, storage.OrgRoleMember))
		wantErr(t, "EnsureMember", err, nil)
	}
	_, _, err = s.EnsureMember(ctx, member(orgB, u.ID, storage.OrgRoleMember))
	wantErr(t, "EnsureMember(b)", err, nil)

	var ids []string
	for after := ""; ; {
		page, err := s.ListMembers(ctx, orgA, after, 2)
		wantErr(t, "ListMembers", err, nil)
		if len(page) == 0 {
			break
		}
		if len(page) > 2 {
			t.Fatalf("ListMembers(limit 2) gave %d", len(page))
		}
		for _, m := range page {
			if m.OrgID != orgA {
				t.Fatalf("ListMembers(a) gave %+v", m)
			}
			ids = append(ids, m.UserID)
		}
		after = page[len(page)-1].UserID
	}
	want := []string{users[0].ID, users[1].ID, users[2].ID}
	slices.Sort(want)
	wantEqual(t, "members paged by user id", ids, want)

	ms, err := s.Memberships(ctx, u.ID)
	wantErr(t, "Memberships", err, nil)
	wantEqual(t, "memberships", ms, []storage.Membership{
		member(orgA, u.ID, storage.OrgRoleAdmin), member(orgB, u.ID, storage.OrgRoleMember),
	})

	// A deleted user's memberships go with them.
	wantErr(t, "DeleteUser", s.DeleteUser(ctx, u.ID), nil)
	if ms, _ := s.Memberships(ctx, u.ID); len(ms) != 0 {
		t.Fatalf("memberships of a deleted user: %+v", ms)
	}
	if page, _ := s.ListMembers(ctx, orgA, "", 10); len(page) != 2 {
		t.Fatalf("ListMembers after a member was deleted: %+v", page)
	}
}

// Concurrent first logins of one member make one membership.
func testOrgEnsureMemberRace(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	mustCreateOrg(t, s, organization(orgA, "acme"))
	u := orgUser(t, s, "u")
	var made atomic.Int32
	errs := make([]error, 20)
	race(20, func(i int) {
		_, created, err := s.EnsureMember(ctx, member(orgA, u.ID, storage.OrgRoleMember))
		errs[i] = err
		if created {
			made.Add(1)
		}
	})
	for _, err := range errs {
		wantErr(t, "EnsureMember", err, nil)
	}
	if n := made.Load(); n != 1 {
		t.Fatalf("%d calls made the membership, want 1", n)
	}
	if page, _ := s.ListMembers(ctx, orgA, "", 10); len(page) != 1 {
		t.Fatalf("ListMembers = %+v, want one", page)
	}
}

// Removing a member ends the user's sessions and refresh families in the
// organisation's context, and the access tokens of those grants, and
// nothing else.
func testOrgRemoveMember(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	mustCreateOrg(t, s, organization(orgA, "acme"))
	mustCreateOrg(t, s, organization(orgB, "bigcorp"))
	u, other := orgUser(t, s, "u"), orgUser(t, s, "other")
	for _, m := range []storage.Membership{
		member(orgA, u.ID, storage.OrgRoleMember), member(orgB, u.ID, storage.OrgRoleMember),
		member(orgA, other.ID, storage.OrgRoleMember),
	} {
		_, _, err := s.EnsureMember(ctx, m)
		wantErr(t, "EnsureMember", err, nil)
	}
	sess := func(id, userID, org string, created time.Time) storage.Session {
		sess := session(id, userID, created)
		sess.Org = org
		return sess
	}
	fam := func(id, userID, sessionID, org string) storage.RefreshFamily {
		f := family(id, userID, sessionID)
		f.Org = org
		return f
	}
	sessions := []storage.Session{
		sess("a2", u.ID, orgA, t0.Add(time.Minute)),
		sess("a1", u.ID, orgA, t0),
		sess("b1", u.ID, orgB, t0),
		sess("none", u.ID, "", t0),
		sess("other-a", other.ID, orgA, t0),
	}
	for _, sess := range sessions {
		wantErr(t, "CreateSession("+sess.ID+")", s.CreateSession(ctx, sess), nil)
	}
	families := []storage.RefreshFamily{
		fam("fa1", u.ID, "a1", orgA),
		fam("fa-loose", u.ID, "", orgA), // a session-less grant in the context
		fam("fb1", u.ID, "b1", orgB),
		fam("fnone", u.ID, "none", ""),
		fam("fother", other.ID, "other-a", orgA),
	}
	for _, f := range families {
		wantErr(t, "CreateRefreshFamily("+f.ID+")", s.CreateRefreshFamily(ctx, f, hash(f.ID)), nil)
	}

	until := t0.Add(time.Hour)
	ended, err := s.RemoveMember(ctx, orgA, u.ID, until)
	wantErr(t, "RemoveMember", err, nil)
	wantEqual(t, "ended sessions", ended, []storage.Session{sessions[1], sessions[0]})

	for _, id := range []string{"a1", "a2"} {
		_, err := s.GetSession(ctx, id, t0)
		wantErr(t, "GetSession(ended "+id+")", err, storage.ErrNotFound)
	}
	for _, id := range []string{"b1", "none", "other-a"} {
		_, err := s.GetSession(ctx, id, t0)
		wantErr(t, "GetSession(untouched "+id+")", err, nil)
	}
	for _, id := range []string{"fa1", "fa-loose"} {
		_, err := rotate(s, t, id, id+"-next", 0, t0)
		wantErr(t, "rotate in revoked family "+id, err, storage.ErrRevoked)
		wantRefused(t, s, "access token of revoked grant "+id, accessToken("at-"+id, id, u.ID), storage.ErrRevoked)
	}
	for _, f := range families[2:] {
		_, err := rotate(s, t, f.ID, f.ID+"-next", 0, t0)
		wantErr(t, "rotate in untouched family "+f.ID, err, nil)
		owner := u
		if f.UserID == other.ID {
			owner = other
		}
		wantActive(t, s, "access token of untouched grant "+f.ID, accessToken("at-"+f.ID, f.ID, f.UserID), owner)
	}
	wantActive(t, s, "access token of an exchange", accessToken("at-x", "", u.ID), u)

	ms, _ := s.Memberships(ctx, u.ID)
	wantEqual(t, "memberships left", ms, []storage.Membership{member(orgB, u.ID, storage.OrgRoleMember)})
	_, err = s.RemoveMember(ctx, orgA, u.ID, until)
	wantErr(t, "RemoveMember(again)", err, storage.ErrNotFound)
	_, err = s.RemoveMember(ctx, orgC, u.ID, until)
	wantErr(t, "RemoveMember(unknown organisation)", err, storage.ErrNotFound)

	// A member without sessions is removed all the same.
	ended, err = s.RemoveMember(ctx, orgB, u.ID, until)
	wantErr(t, "RemoveMember(b)", err, nil)
	wantEqual(t, "sessions ended in b", ended, []storage.Session{sessions[2]})
	_, err = s.RemoveMember(ctx, orgA, other.ID, until)
	wantErr(t, "RemoveMember(other)", err, nil)
	ended, err = func() ([]storage.Session, error) {
		_, _, err := s.EnsureMember(ctx, member(orgA, u.ID, storage.OrgRoleMember))
		wantErr(t, "EnsureMember(back)", err, nil)
		return s.RemoveMember(ctx, orgA, u.ID, until)
	}()
	wantErr(t, "RemoveMember(without sessions)", err, nil)
	if len(ended) != 0 {
		t.Fatalf("RemoveMember without sessions ended %+v", ended)
	}
}

func testOrgConnectors(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	mustCreateOrg(t, s, organization(orgA, "acme"))
	b := storedConnector("b", orgA)
	wantErr(t, "CreateConnector", s.CreateConnector(ctx, b), nil)
	wantErr(t, "CreateConnector", s.CreateConnector(ctx, storedConnector("a", "")), nil)
	wantErr(t, "CreateConnector(again)", s.CreateConnector(ctx, storedConnector("a", "")), storage.ErrAlreadyExists)
	wantErr(t, "CreateConnector(unknown organisation)", s.CreateConnector(ctx, storedConnector("c", orgB)), storage.ErrNotFound)
	wantErr(t, "CreateConnector(organisation not a UUID)", s.CreateConnector(ctx, storedConnector("c", "acme")), storage.ErrNotFound)

	got, err := s.GetConnector(ctx, "b")
	wantErr(t, "GetConnector", err, nil)
	wantEqual(t, "connector", got, b)
	got.Settings[0] = 'X'
	got, _ = s.GetConnector(ctx, "b")
	wantEqual(t, "connector after its copy changed", got, b)
	_, err = s.GetConnector(ctx, "c")
	wantErr(t, "GetConnector(unknown)", err, storage.ErrNotFound)

	list, err := s.ListConnectors(ctx)
	wantErr(t, "ListConnectors", err, nil)
	wantEqual(t, "connectors", list, []storage.StoredConnector{storedConnector("a", ""), b})

	want := b
	want.Name, want.OrgID, want.Settings, want.Timeout, want.RecheckInterval, want.Disabled, want.UpdatedAt =
		"Renamed", "", []byte("resealed"), 20*time.Second, 0, true, t0.Add(time.Hour)
	got, err = s.UpdateConnector(ctx, "b", func(c storage.StoredConnector) (storage.StoredConnector, error) {
		wantEqual(t, "connector given to update", c, b)
		c.ID, c.Type = "z", "workos" // ignored
		c.Name, c.OrgID, c.Settings, c.Timeout, c.RecheckInterval, c.Disabled, c.UpdatedAt =
			want.Name, want.OrgID, want.Settings, want.Timeout, want.RecheckInterval, want.Disabled, want.UpdatedAt
		return c, nil
	})
	wantErr(t, "UpdateConnector", err, nil)
	wantEqual(t, "updated connector", got, want)
	got, _ = s.GetConnector(ctx, "b")
	wantEqual(t, "stored connector", got, want)
	_, err = s.GetConnector(ctx, "z")
	wantErr(t, "GetConnector(id update tried to set)", err, storage.ErrNotFound)

	_, err = s.UpdateConnector(ctx, "b", func(c storage.StoredConnector) (storage.StoredConnector, error) {
		c.OrgID = orgB
		return c, nil
	})
	wantErr(t, "UpdateConnector(to unknown organisation)", err, storage.ErrNotFound)
	errUpdate := errors.New("update refused")
	_, err = s.UpdateConnector(ctx, "b", func(c storage.StoredConnector) (storage.StoredConnector, error) {
		return c, errUpdate
	})
	wantErr(t, "UpdateConnector(update fails)", err, errUpdate)
	_, err = s.UpdateConnector(ctx, "c", func(c storage.StoredConnector) (storage.StoredConnector, error) { return c, nil })
	wantErr(t, "UpdateConnector(unknown)", err, storage.ErrNotFound)
	got, _ = s.GetConnector(ctx, "b")
	wantEqual(t, "connector after refused updates", got, want)

	wantErr(t, "DeleteConnector", s.DeleteConnector(ctx, "b"), nil)
	wantErr(t, "DeleteConnector(again)", s.DeleteConnector(ctx, "b"), storage.ErrNotFound)
	list, _ = s.ListConnectors(ctx)
	wantEqual(t, "connectors after the delete", list, []storage.StoredConnector{storedConnector("a", "")})
}

// The generation changes with every organisation, domain and connector,
// and not with memberships.
func testOrgGeneration(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	last, err := s.OrgsGeneration(ctx)
	wantErr(t, "OrgsGeneration", err, nil)
	step := func(what string, changes bool, err error) {
		t.Helper()
		wantErr(t, what, err, nil)
		g, err := s.OrgsGeneration(ctx)
		wantErr(t, "OrgsGeneration after "+what, err, nil)
		if changed := g != last; changed != changes {
			t.Fatalf("after %s the generation went from %d to %d; want a change: %v", what, last, g, changes)
		}
		last = g
	}
	u := orgUser(t, s, "u")
	step("CreateOrganization", true, s.CreateOrganization(ctx, organization(orgA, "acme")))
	_, err = s.UpdateOrganization(ctx, orgA, func(o storage.Organization) (storage.Organization, error) {
		o.Name = "Acme Inc"
		return o, nil
	})
	step("UpdateOrganization", true, err)
	step("AddDomain", true, s.AddDomain(ctx, storage.Domain{Domain: "acme.com", OrgID: orgA, CreatedAt: t0}))
	_, err = s.VerifyDomain(ctx, orgA, "acme.com", "dns", t0)
	step("VerifyDomain", true, err)
	step("DeleteDomain", true, s.DeleteDomain(ctx, orgA, "acme.com"))
	step("CreateConnector", true, s.CreateConnector(ctx, storedConnector("c", orgA)))
	_, err = s.UpdateConnector(ctx, "c", func(c storage.StoredConnector) (storage.StoredConnector, error) {
		c.Disabled = true
		return c, nil
	})
	step("UpdateConnector", true, err)

	_, _, err = s.EnsureMember(ctx, member(orgA, u.ID, storage.OrgRoleMember))
	step("EnsureMember", false, err)
	_, err = s.SetMemberRole(ctx, orgA, u.ID, storage.OrgRoleAdmin)
	step("SetMemberRole", false, err)
	_, err = s.RemoveMember(ctx, orgA, u.ID, t0)
	step("RemoveMember", false, err)

	step("DeleteConnector", true, s.DeleteConnector(ctx, "c"))
	step("DeleteOrganization", true, s.DeleteOrganization(ctx, orgA))
}

// Text no record can hold finds nothing and is stored or refused as
// ErrInvalidText, as in testBadText.
func testOrgBadText(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	mustCreateOrg(t, s, organization(orgA, "acme"))
	u := orgUser(t, s, "u")
	for _, bad := range badText {
		lookups := map[string]error{}
		_, lookups["GetOrganization"] = s.GetOrganization(ctx, bad)
		_, lookups["UpdateOrganization"] = s.UpdateOrganization(ctx, bad, func(o storage.Organization) (storage.Organization, error) { return o, nil })
		lookups["DeleteOrganization"] = s.DeleteOrganization(ctx, bad)
		_, lookups["VerifyDomain"] = s.VerifyDomain(ctx, orgA, bad, "dns", t0)
		lookups["DeleteDomain"] = s.DeleteDomain(ctx, orgA, bad)
		_, _, lookups["EnsureMember"] = s.EnsureMember(ctx, member(orgA, bad, storage.OrgRoleMember))
		_, lookups["SetMemberRole"] = s.SetMemberRole(ctx, orgA, bad, storage.OrgRoleAdmin)
		_, lookups["RemoveMember"] = s.RemoveMember(ctx, orgA, bad, t0)
		_, lookups["GetConnector"] = s.GetConnector(ctx, bad)
		_, lookups["UpdateConnector"] = s.UpdateConnector(ctx, bad, func(c storage.StoredConnector) (storage.StoredConnector, error) { return c, nil })
		lookups["DeleteConnector"] = s.DeleteConnector(ctx, bad)
		for op, err := range lookups {
			if !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("%s(%q): error %v, want one that matches storage.ErrNotFound", op, bad, err)
			}
		}
		for op, f := range map[string]func() ([]storage.Membership, error){
			"ListMembers": func() ([]storage.Membership, error) { return s.ListMembers(ctx, orgA, bad, 10) },
			"Memberships": func() ([]storage.Membership, error) { return s.Memberships(ctx, bad) },
		} {
			if _, err := f(); err != nil && !errors.Is(err, storage.ErrInvalidText) {
				t.Errorf("%s(%q): error %v, want none or storage.ErrInvalidText", op, bad, err)
			}
		}

		writes := map[string]error{}
		o := organization("0e000000-0000-4000-8000-00000000000e", "slug-"+bad, "up-"+bad)
		o.Name = bad
		writes["CreateOrganization"] = s.CreateOrganization(ctx, o)
		s.DeleteOrganization(ctx, o.ID)
		_, writes["UpdateOrganization"] = s.UpdateOrganization(ctx, orgA, func(o storage.Organization) (storage.Organization, error) {
			o.Name = bad
			return o, nil
		})
		writes["AddDomain"] = s.AddDomain(ctx, storage.Domain{Domain: "d" + bad, OrgID: orgA, Challenge: bad, CreatedAt: t0})
		c := storedConnector("c-"+bad, "")
		c.Name = bad
		writes["CreateConnector"] = s.CreateConnector(ctx, c)
		for op, err := range writes {
			if err != nil && !errors.Is(err, storage.ErrInvalidText) {
				t.Errorf("%s with %q: error %v, want none or storage.ErrInvalidText", op, bad, err)
			}
		}
	}
	_, err := s.SetMemberRole(ctx, orgA, u.ID, storage.OrgRoleAdmin)
	wantErr(t, "SetMemberRole(non-member)", err, storage.ErrNotFound)
}
