package storagetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/idbroker/broker/storage"
)

func family(id, userID, sessionID string) storage.RefreshFamily {
	return storage.RefreshFamily{
		ID:                   id,
		ClientID:             "web",
		UserID:               userID,
		Scopes:               []string{"openid", "offline_access"},
		Audience:             []string{"https://api.example.com"},
		AuthTime:             t0,
		AMR:                  []string{"fed"},
		IDP:                  "auth0",
		Org:                  orgA,
		SessionID:            sessionID,
		UpstreamRefreshToken: []byte("enc-upstream"),
		UpstreamCheckedAt:    t0,
		Impersonator:         "workos-impersonator:support@example.com",
		CreatedAt:            t0,
		LastUsedAt:           t0,
		ExpiresAt:            t0.Add(30 * 24 * time.Hour),
		IdleTimeout:          24 * time.Hour,
	}
}

// familyUser returns the id of a user for a test's families, which only
// a user who is there can have.
func familyUser(t *testing.T, s storage.Storage) string {
	t.Helper()
	return mustResolve(t, s, storage.ResolveRequest{Connector: "auth0", Subject: "family-user"}).User.ID
}

func rotate(s storage.Storage, t *testing.T, from, to string, window time.Duration, now time.Time) (storage.RefreshFamily, error) {
	return s.RotateRefreshToken(t.Context(), storage.RotateRequest{TokenHash: hash(from), SuccessorHash: hash(to), RetryWindow: window, Now: now})
}

func testRefreshRoundTrip(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	f := family("fam", familyUser(t, s), "sess")
	wantErr(t, "CreateSession", s.CreateSession(ctx, session("sess", f.UserID, t0)), nil)
	wantErr(t, "CreateRefreshFamily", s.CreateRefreshFamily(ctx, f, hash("t1")), nil)
	wantErr(t, "CreateRefreshFamily(again)", s.CreateRefreshFamily(ctx, f, hash("t9")), storage.ErrAlreadyExists)
	got, err := s.GetRefreshFamilyByToken(ctx, hash("t1"))
	wantErr(t, "GetRefreshFamilyByToken", err, nil)
	wantEqual(t, "family", got, f)
	_, err = s.GetRefreshFamilyByToken(ctx, hash("t9"))
	wantErr(t, "GetRefreshFamilyByToken(unknown)", err, storage.ErrNotFound)
	_, err = rotate(s, t, "unknown", "x", 0, t0)
	wantErr(t, "RotateRefreshToken(unknown)", err, storage.ErrNotFound)
}

func testRefreshGrant(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	u := mustResolve(t, s, storage.ResolveRequest{Connector: "auth0", Subject: "a", Email: "a@example.com", EmailVerified: true, Name: "A"}).User
	f := family("fam", u.ID, "sess")
	wantErr(t, "CreateSession", s.CreateSession(ctx, session("sess", u.ID, t0)), nil)
	wantErr(t, "CreateRefreshFamily", s.CreateRefreshFamily(ctx, f, hash("t1")), nil)
	_, err := rotate(s, t, "t1", "t2", 0, t0)
	wantErr(t, "rotate t1", err, nil)
	for _, tok := range []string{"t1", "t2"} {
		gotF, gotU, err := s.GetRefreshGrant(ctx, hash(tok))
		wantErr(t, "GetRefreshGrant("+tok+")", err, nil)
		wantEqual(t, "family", gotF.ID, f.ID)
		wantEqual(t, "user", gotU, u)
	}
	_, _, err = s.GetRefreshGrant(ctx, hash("t9"))
	wantErr(t, "GetRefreshGrant(unknown token)", err, storage.ErrNotFound)
	// A family whose user is gone is not a grant; nor is it created.
	for i, userID := range []string{"4f9e6c1a-8d2b-4c7e-9a3f-0b1c2d3e4f50", "not-a-uuid"} {
		id := fmt.Sprintf("orphan-%d", i)
		wantErr(t, "CreateRefreshFamily", s.CreateRefreshFamily(ctx, family(id, userID, ""), hash(id)), storage.ErrRevoked)
		_, _, err = s.GetRefreshGrant(ctx, hash(id))
		wantErr(t, "GetRefreshGrant(user "+userID+")", err, storage.ErrNotFound)
	}
}

func testRefreshRotate(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	f := family("fam", familyUser(t, s), "")
	wantErr(t, "CreateRefreshFamily", s.CreateRefreshFamily(ctx, f, hash("t1")), nil)
	t1 := t0.Add(time.Hour)
	got, err := rotate(s, t, "t1", "t2", 2*time.Second, t1)
	wantErr(t, "rotate t1", err, nil)
	want := f
	want.LastUsedAt = t1
	wantEqual(t, "rotated family", got, want)
	got, err = s.GetRefreshFamilyByToken(ctx, hash("t2"))
	wantErr(t, "GetRefreshFamilyByToken(successor)", err, nil)
	wantEqual(t, "family by successor", got, want)
	_, err = rotate(s, t, "t2", "t3", 2*time.Second, t1.Add(time.Hour))
	wantErr(t, "rotate t2", err, nil)
}

func testRefreshRetry(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	wantErr(t, "CreateRefreshFamily", s.CreateRefreshFamily(ctx, family("fam", familyUser(t, s), ""), hash("t1")), nil)
	const window = 2 * time.Second
	_, err := rotate(s, t, "t1", "t2", window, t0)
	wantErr(t, "rotate t1", err, nil)
	got, err := rotate(s, t, "t1", "t2", window, t0.Add(window-time.Millisecond))
	wantErr(t, "retry of t1 within the window", err, nil)
	if got.ID != "fam" || got.Revoked {
		t.Fatalf("retry gave %+v; want family fam, live", got)
	}
	_, err = rotate(s, t, "t2", "t3", window, t0.Add(window))
	wantErr(t, "rotate t2 after the retry", err, nil)
}

func testRefreshReuseOutsideWindow(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	wantErr(t, "CreateRefreshFamily", s.CreateRefreshFamily(ctx, family("fam", familyUser(t, s), ""), hash("t1")), nil)
	const window = 2 * time.Second
	_, err := rotate(s, t, "t1", "t2", window, t0)
	wantErr(t, "rotate t1", err, nil)
	_, err = rotate(s, t, "t1", "t2", window, t0.Add(window))
	wantErr(t, "reuse of t1 after the window", err, storage.ErrRefreshReused)
	_, err = rotate(s, t, "t2", "t3", window, t0.Add(window))
	wantErr(t, "rotate successor of a reused token", err, storage.ErrRevoked)
	f, err := s.GetRefreshFamilyByToken(ctx, hash("t2"))
	wantErr(t, "GetRefreshFamilyByToken", err, nil)
	if !f.Revoked {
		t.Fatal("family not revoked after reuse")
	}
}

func testRefreshReuseAfterSuccessor(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	wantErr(t, "CreateRefreshFamily", s.CreateRefreshFamily(ctx, family("fam", familyUser(t, s), ""), hash("t1")), nil)
	const window = 2 * time.Second
	_, err := rotate(s, t, "t1", "t2", window, t0)
	wantErr(t, "rotate t1", err, nil)
	_, err = rotate(s, t, "t2", "t3", window, t0.Add(500*time.Millisecond))
	wantErr(t, "rotate t2", err, nil)
	_, err = rotate(s, t, "t1", "t2", window, t0.Add(time.Second))
	wantErr(t, "reuse of t1 within the window, successor used", err, storage.ErrRefreshReused)
	_, err = rotate(s, t, "t3", "t4", window, t0.Add(time.Second))
	wantErr(t, "rotate t3 after reuse", err, storage.ErrRevoked)
}

func testRefreshConcurrentRetry(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	wantErr(t, "CreateRefreshFamily", s.CreateRefreshFamily(ctx, family("fam", familyUser(t, s), ""), hash("t1")), nil)
	// A client firing the same refresh several times at once (the broker
	// derives the successor from the token, so they all name t2): one
	// rotation, the rest retries, nothing revoked.
	const n = 8
	errs := make([]error, n)
	race(n, func(i int) {
		_, errs[i] = rotate(s, t, "t1", "t2", 2*time.Second, t0)
	})
	for i, err := range errs {
		wantErr(t, fmt.Sprintf("concurrent refresh %d", i), err, nil)
	}
	_, err := rotate(s, t, "t2", "t3", 2*time.Second, t0.Add(time.Minute))
	wantErr(t, "rotate t2", err, nil)
}

func testRefreshExpiry(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	f := family("idle", familyUser(t, s), "")
	f.IdleTimeout = time.Hour
	wantErr(t, "CreateRefreshFamily", s.CreateRefreshFamily(ctx, f, hash("i1")), nil)
	t1 := t0.Add(59 * time.Minute)
	_, err := rotate(s, t, "i1", "i2", 0, t1)
	wantErr(t, "rotate within the idle timeout", err, nil)
	_, err = rotate(s, t, "i2", "i3", 0, t1.Add(time.Hour))
	wantErr(t, "rotate after the idle timeout", err, storage.ErrRevoked)

	g := family("abs", familyUser(t, s), "")
	g.IdleTimeout = 0
	g.ExpiresAt = t0.Add(2 * time.Hour)
	wantErr(t, "CreateRefreshFamily", s.CreateRefreshFamily(ctx, g, hash("a1")), nil)
	_, err = rotate(s, t, "a1", "a2", 0, g.ExpiresAt.Add(-time.Second))
	wantErr(t, "rotate before the absolute expiry", err, nil)
	_, err = rotate(s, t, "a2", "a3", 0, g.ExpiresAt)
	wantErr(t, "rotate at the absolute expiry", err, storage.ErrRevoked)
}

func testRefreshUpstream(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	wantErr(t, "CreateRefreshFamily", s.CreateRefreshFamily(ctx, family("fam", familyUser(t, s), ""), hash("t1")), nil)
	t1 := t0.Add(time.Hour)
	wantErr(t, "UpdateRefreshFamilyUpstream", s.UpdateRefreshFamilyUpstream(ctx, "fam", []byte("new-enc"), t1), nil)
	f, _ := s.GetRefreshFamilyByToken(ctx, hash("t1"))
	if string(f.UpstreamRefreshToken) != "new-enc" || !f.UpstreamCheckedAt.Equal(t1) {
		t.Fatalf("upstream = %q at %v; want new-enc at %v", f.UpstreamRefreshToken, f.UpstreamCheckedAt, t1)
	}
	wantErr(t, "UpdateRefreshFamilyUpstream(unknown)", s.UpdateRefreshFamilyUpstream(ctx, "nope", nil, t1), storage.ErrNotFound)
}
