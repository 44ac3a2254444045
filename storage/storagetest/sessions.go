package storagetest

import (
	"testing"
	"time"

	"github.com/idbroker/broker/storage"
)

func session(id, userID string, created time.Time) storage.Session {
	return storage.Session{
		ID: id, UserID: userID, AuthTime: created, AMR: []string{"otp"}, IDP: "otp",
		Clients: []string{"web"}, CreatedAt: created, LastSeenAt: created,
		ExpiresAt: created.Add(12 * time.Hour), IdleTTL: time.Hour,
		Org: orgA, UpstreamRefreshToken: []byte("enc-upstream"),
		Impersonator: "workos-impersonator:support@example.com",
	}
}

func testSessionLifetimes(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	sess := session("s1", "u", t0)
	wantErr(t, "CreateSession", s.CreateSession(ctx, sess), nil)
	wantErr(t, "CreateSession(again)", s.CreateSession(ctx, sess), storage.ErrAlreadyExists)
	got, err := s.GetSession(ctx, "s1", t0.Add(time.Minute))
	wantErr(t, "GetSession", err, nil)
	wantEqual(t, "session", got, sess)
	_, err = s.GetSession(ctx, "s1", t0.Add(time.Hour))
	wantErr(t, "GetSession(idle)", err, storage.ErrNotFound)
	wantErr(t, "TouchSession(idle)", s.TouchSession(ctx, "s1", "web", t0.Add(time.Hour)), storage.ErrNotFound)

	// Kept alive by use, it still ends at its absolute lifetime.
	for now := t0.Add(50 * time.Minute); now.Before(sess.ExpiresAt); now = now.Add(50 * time.Minute) {
		_, err := s.GetSession(ctx, "s1", now)
		wantErr(t, "GetSession(kept alive) at "+now.Sub(t0).String(), err, nil)
		wantErr(t, "TouchSession", s.TouchSession(ctx, "s1", "", now), nil)
	}
	_, err = s.GetSession(ctx, "s1", sess.ExpiresAt)
	wantErr(t, "GetSession(absolute expiry)", err, storage.ErrNotFound)
	_, err = s.GetSession(ctx, "nope", t0)
	wantErr(t, "GetSession(unknown)", err, storage.ErrNotFound)
}

func testSessionTouchList(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	wantErr(t, "CreateSession", s.CreateSession(ctx, session("b", "u", t0.Add(time.Minute))), nil)
	wantErr(t, "CreateSession", s.CreateSession(ctx, session("a", "u", t0)), nil)
	wantErr(t, "CreateSession", s.CreateSession(ctx, session("old", "u", t0.Add(-13*time.Hour))), nil)
	wantErr(t, "CreateSession", s.CreateSession(ctx, session("c", "other", t0)), nil)

	now := t0.Add(30 * time.Minute)
	wantErr(t, "TouchSession", s.TouchSession(ctx, "a", "cli", now), nil)
	wantErr(t, "TouchSession(again)", s.TouchSession(ctx, "a", "cli", now), nil)
	wantErr(t, "TouchSession(unknown)", s.TouchSession(ctx, "nope", "cli", now), storage.ErrNotFound)
	got, _ := s.GetSession(ctx, "a", now)
	want := session("a", "u", t0)
	want.Clients, want.LastSeenAt = []string{"web", "cli"}, now
	wantEqual(t, "touched session", got, want)

	list, err := s.ListSessions(ctx, "u", now)
	wantErr(t, "ListSessions", err, nil)
	if len(list) != 2 || list[0].ID != "a" || list[1].ID != "b" {
		t.Fatalf("ListSessions = %+v; want a, b (live, oldest first)", list)
	}
	list, _ = s.ListSessions(ctx, "u", t0.Add(80*time.Minute))
	if len(list) != 1 || list[0].ID != "a" {
		t.Fatalf("ListSessions after b went idle = %+v; want a", list)
	}
}

func testSessionEnd(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	u := mustResolve(t, s, storage.ResolveRequest{Connector: "auth0", Subject: "a"}).User
	sess := session("s1", u.ID, t0)
	wantErr(t, "CreateSession", s.CreateSession(ctx, sess), nil)
	wantErr(t, "CreateSession(s2)", s.CreateSession(ctx, session("s2", u.ID, t0)), nil)
	wantErr(t, "CreateRefreshFamily", s.CreateRefreshFamily(ctx, family("in1", u.ID, "s1"), hash("in1")), nil)
	wantErr(t, "CreateRefreshFamily", s.CreateRefreshFamily(ctx, family("in2", u.ID, "s1"), hash("in2")), nil)
	wantErr(t, "CreateRefreshFamily", s.CreateRefreshFamily(ctx, family("out", u.ID, "s2"), hash("out")), nil)

	got, err := s.EndSession(ctx, "s1")
	wantErr(t, "EndSession", err, nil)
	wantEqual(t, "ended session", got, sess)
	_, err = s.GetSession(ctx, "s1", t0)
	wantErr(t, "GetSession(ended)", err, storage.ErrNotFound)
	for _, tok := range []string{"in1", "in2"} {
		_, err := rotate(s, t, tok, tok+"b", 0, t0)
		wantErr(t, "rotate token of ended session", err, storage.ErrRevoked)
	}
	_, err = rotate(s, t, "out", "outb", 0, t0)
	wantErr(t, "rotate token of another session", err, nil)
	wantRefused(t, s, "token of a family of the ended session", accessToken("at-in", "in1", u.ID), storage.ErrRevoked)
	wantActive(t, s, "token of a family of another session", accessToken("at-out", "out", u.ID), u)
	_, err = s.EndSession(ctx, "s1")
	wantErr(t, "EndSession(again)", err, storage.ErrNotFound)
}

func testSessionUpdateUpstream(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	old, next := []byte("enc-upstream"), []byte("enc-rotated")
	u := familyUser(t, s)
	wantErr(t, "CreateSession", s.CreateSession(ctx, session("s1", u, t0)), nil)
	wantErr(t, "CreateSession", s.CreateSession(ctx, session("s2", u, t0)), nil)
	wantErr(t, "CreateRefreshFamily", s.CreateRefreshFamily(ctx, family("checked", u, "s1"), hash("checked")), nil)
	wantErr(t, "CreateRefreshFamily", s.CreateRefreshFamily(ctx, family("sibling", u, "s1"), hash("sibling")), nil)
	own := family("own", u, "s1") // from a later login with a token of its own
	own.UpstreamRefreshToken = []byte("enc-own")
	wantErr(t, "CreateRefreshFamily", s.CreateRefreshFamily(ctx, own, hash("own")), nil)
	wantErr(t, "CreateRefreshFamily", s.CreateRefreshFamily(ctx, family("other", u, "s2"), hash("other")), nil)

	// The re-check records its own family first, then the session's.
	wantErr(t, "UpdateRefreshFamilyUpstream", s.UpdateRefreshFamilyUpstream(ctx, "checked", next, t0.Add(time.Hour)), nil)
	wantErr(t, "UpdateSessionUpstream", s.UpdateSessionUpstream(ctx, "s1", old, next), nil)
	got, err := s.GetSession(ctx, "s1", t0)
	wantErr(t, "GetSession", err, nil)
	wantEqual(t, "session token", string(got.UpstreamRefreshToken), string(next))
	for tok, want := range map[string]string{"checked": "enc-rotated", "sibling": "enc-rotated", "own": "enc-own", "other": "enc-upstream"} {
		f, err := s.GetRefreshFamilyByToken(ctx, hash(tok))
		wantErr(t, "GetRefreshFamilyByToken("+tok+")", err, nil)
		wantEqual(t, "family "+tok+" token", string(f.UpstreamRefreshToken), want)
	}
	if f, _ := s.GetRefreshFamilyByToken(ctx, hash("sibling")); !f.UpstreamCheckedAt.Equal(t0) {
		t.Errorf("sibling family's last check moved to %v; only its token changes", f.UpstreamCheckedAt)
	}
	other, _ := s.GetSession(ctx, "s2", t0)
	wantEqual(t, "other session token", string(other.UpstreamRefreshToken), string(old))

	// A stale old (another re-check got there first) changes nothing.
	wantErr(t, "UpdateSessionUpstream(stale)", s.UpdateSessionUpstream(ctx, "s1", old, []byte("enc-lost")), nil)
	got, _ = s.GetSession(ctx, "s1", t0)
	wantEqual(t, "session token after a stale update", string(got.UpstreamRefreshToken), string(next))
	wantErr(t, "UpdateSessionUpstream(unknown)", s.UpdateSessionUpstream(ctx, "nope", old, next), nil)
}
