package storagetest

import (
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/idbroker/broker/storage"
)

// A family is not created under a session that has ended (or never was,
// or is past its lifetime when the family is created): the logout that
// ended it came first, and what the family would have been revoked by
// has already run.
func testRefreshCreateForEndedSession(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	u := mustResolve(t, s, storage.ResolveRequest{Connector: "auth0", Subject: "a"}).User
	wantErr(t, "CreateSession(ended)", s.CreateSession(ctx, session("ended", u.ID, t0)), nil)
	wantErr(t, "CreateSession(live)", s.CreateSession(ctx, session("live", u.ID, t0)), nil)
	wantErr(t, "CreateSession(idle)", s.CreateSession(ctx, session("idle", u.ID, t0.Add(-2*time.Hour))), nil)
	_, err := s.EndSession(ctx, "ended")
	wantErr(t, "EndSession", err, nil)

	for _, sid := range []string{"ended", "never", "idle"} {
		id := "f-" + sid
		wantErr(t, "CreateRefreshFamily(session "+sid+")", s.CreateRefreshFamily(ctx, family(id, u.ID, sid), hash(id)), storage.ErrRevoked)
		_, err := s.GetRefreshFamilyByToken(ctx, hash(id))
		wantErr(t, "GetRefreshFamilyByToken(refused under session "+sid+")", err, storage.ErrNotFound)
	}
	wantErr(t, "CreateRefreshFamily(live session)", s.CreateRefreshFamily(ctx, family("f-live", u.ID, "live"), hash("f-live")), nil)
	wantErr(t, "CreateRefreshFamily(no session)", s.CreateRefreshFamily(ctx, family("f-none", u.ID, ""), hash("f-none")), nil)
}

// A family is not created for a user who is gone, disabled, or whose
// tokens were revoked at or after its login (in whole seconds, as access
// tokens are judged): the revocation came first.
func testRefreshCreateForRevokedUser(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	revoked := mustResolve(t, s, storage.ResolveRequest{Connector: "auth0", Subject: "revoked"}).User
	disabled := mustResolve(t, s, storage.ResolveRequest{Connector: "auth0", Subject: "disabled"}).User
	gone := mustResolve(t, s, storage.ResolveRequest{Connector: "auth0", Subject: "gone"}).User

	wantErr(t, "RevokeUserTokens", s.RevokeUserTokens(ctx, revoked.ID, t0.Add(300*time.Millisecond)), nil)
	for _, c := range []struct {
		id       string
		authTime time.Time
		want     error
	}{
		{"before", t0.Add(-time.Hour), storage.ErrRevoked},
		{"same-second", t0.Add(900 * time.Millisecond), storage.ErrRevoked},
		{"after", t0.Add(time.Second), nil},
	} {
		f := family(c.id, revoked.ID, "")
		f.AuthTime = c.authTime
		wantErr(t, "CreateRefreshFamily(login "+c.id+" the revocation)", s.CreateRefreshFamily(ctx, f, hash(c.id)), c.want)
	}

	wantErr(t, "SetUserDisabled", s.SetUserDisabled(ctx, disabled.ID, true), nil)
	wantErr(t, "CreateRefreshFamily(disabled user)", s.CreateRefreshFamily(ctx, family("dis", disabled.ID, ""), hash("dis")), storage.ErrRevoked)
	wantErr(t, "SetUserDisabled(false)", s.SetUserDisabled(ctx, disabled.ID, false), nil)
	wantErr(t, "CreateRefreshFamily(enabled again)", s.CreateRefreshFamily(ctx, family("dis", disabled.ID, ""), hash("dis")), nil)

	wantErr(t, "DeleteUser", s.DeleteUser(ctx, gone.ID), nil)
	wantErr(t, "CreateRefreshFamily(deleted user)", s.CreateRefreshFamily(ctx, family("gone", gone.ID, ""), hash("gone")), storage.ErrRevoked)
	wantErr(t, "CreateRefreshFamily(unknown user)", s.CreateRefreshFamily(ctx, family("unknown", uuid.NewString(), ""), hash("unknown")), storage.ErrRevoked)
	wantErr(t, "CreateRefreshFamily(user id no user can have)", s.CreateRefreshFamily(ctx, family("not-uuid", "u", ""), hash("not-uuid")), storage.ErrRevoked)
	for _, id := range []string{"before", "same-second", "gone", "unknown", "not-uuid"} {
		_, err := s.GetRefreshFamilyByToken(ctx, hash(id))
		wantErr(t, "GetRefreshFamilyByToken(refused "+id+")", err, storage.ErrNotFound)
	}
}

// ender is what ends a session's or a user's families: a logout, an
// admin revoking or deleting a user.
type ender struct {
	name string
	// end ends what the families of user u under session sid belong to.
	end func(t *testing.T, s storage.Storage, u storage.User, sid string) error
}

var enders = []ender{
	{"EndSession", func(t *testing.T, s storage.Storage, u storage.User, sid string) error {
		_, err := s.EndSession(t.Context(), sid)
		return err
	}},
	{"DisableUser", func(t *testing.T, s storage.Storage, u storage.User, sid string) error {
		// As the broker disables a user: disabled, then their tokens
		// revoked at the moment of it.
		if err := s.SetUserDisabled(t.Context(), u.ID, true); err != nil {
			return err
		}
		return s.RevokeUserTokens(t.Context(), u.ID, t0)
	}},
	{"RevokeUserTokens", func(t *testing.T, s storage.Storage, u storage.User, sid string) error {
		return s.RevokeUserTokens(t.Context(), u.ID, t0)
	}},
	{"DeleteUser", func(t *testing.T, s storage.Storage, u storage.User, sid string) error {
		return s.DeleteUser(t.Context(), u.ID)
	}},
	{"RemoveMember", func(t *testing.T, s storage.Storage, u storage.User, sid string) error {
		// The session and its families are in orgA's context (session,
		// family); the user was made a member at login.
		err := s.CreateOrganization(t.Context(), organization(orgA, "acme"))
		if err != nil && !errors.Is(err, storage.ErrAlreadyExists) {
			return err
		}
		if _, _, err := s.EnsureMember(t.Context(), member(orgA, u.ID, storage.OrgRoleMember)); err != nil {
			return err
		}
		_, err = s.RemoveMember(t.Context(), orgA, u.ID, t0.Add(time.Hour))
		return err
	}},
}

// Codes of one login redeemed while the login's session is ended (a
// logout) or its user's tokens revoked, disabled or deleted (the admin
// API): whatever the order, once both are done no family of the session
// or user is live, and no access token of theirs is honoured. Free
// rounds let the creations land before, during and after the ending;
// held rounds hold every creation until the ending has returned, so each
// family is created after it, which no lock of the ending can then stop:
// the creation must see for itself that its session or user is done.
func testFamilyCreationRacesEnding(t *testing.T, s storage.Storage) {
	const rounds, racers = 4, 20
	for _, e := range enders {
		t.Run(e.name, func(t *testing.T) {
			for r := range rounds {
				held := r%2 == 1
				u := mustResolve(t, s, storage.ResolveRequest{Connector: "auth0", Subject: fmt.Sprintf("%s-%d", e.name, r)}).User
				sid := fmt.Sprintf("sess-%s-%d", e.name, r)
				wantErr(t, "CreateSession", s.CreateSession(t.Context(), session(sid, u.ID, t0)), nil)
				release := make(chan struct{})
				if !held {
					close(release)
				}
				store := storage.Storage(HeldFamilies{Storage: s, Release: release})
				grant := func(i int) string { return fmt.Sprintf("%s-%d-%d", e.name, r, i) }
				var created atomic.Int32
				errs := make([]error, racers)
				race(racers, func(i int) {
					if i == 0 {
						errs[i] = e.end(t, s, u, sid)
						if held {
							close(release)
						}
						return
					}
					err := store.CreateRefreshFamily(t.Context(), family(grant(i), u.ID, sid), hash(grant(i)))
					switch {
					case err == nil:
						created.Add(1)
					case errors.Is(err, storage.ErrRevoked):
						err = nil
					}
					errs[i] = err
				})
				for i, err := range errs {
					wantErr(t, fmt.Sprintf("round %d racer %d", r, i), err, nil)
				}
				if held && created.Load() > 0 {
					t.Errorf("round %d: %d families created after %s returned", r, created.Load(), e.name)
				}
				for i := 1; i < racers; i++ {
					_, err := rotate(s, t, grant(i), grant(i)+"+", 0, t0)
					if !errors.Is(err, storage.ErrRevoked) && !errors.Is(err, storage.ErrNotFound) {
						t.Errorf("round %d: rotate family %s after %s: %v; want %v or %v", r, grant(i), e.name, err, storage.ErrRevoked, storage.ErrNotFound)
					}
					if _, err := s.GetRefreshFamilyByToken(t.Context(), hash(grant(i))); err == nil {
						// Created, so its access tokens were issued: revoked.
						if _, err := s.AccessTokenUser(t.Context(), accessToken("at-"+grant(i), grant(i), u.ID)); err == nil {
							t.Errorf("round %d: access token of family %s honoured after %s", r, grant(i), e.name)
						}
					}
				}
			}
		})
	}
}
