package postgres_test

import (
	"errors"
	"testing"
	"time"

	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/storage/postgres/pgtest"
)

// During a rolling upgrade schema-2 binaries record each access token they
// issue in access_tokens, and judge tokens by its revoked column alone.
// A schema-3 store must refuse a token a schema-2 binary revoked there, and
// mark there every revocation it makes.

// insertLegacyToken writes an access_tokens row as a schema-2 binary does.
func insertLegacyToken(t *testing.T, db *pgtest.Schema, id, grantID, userID string, revoked bool) {
	t.Helper()
	now := time.Now()
	exec(t, db.DSN, `
		INSERT INTO access_tokens (id, grant_id, client_id, user_id, audience, scopes, issued_at, expires_at, revoked)
		VALUES ($1, $2, 'web', $3, NULL, NULL, $4, $5, $6)`,
		id, grantID, userID, now, now.Add(15*time.Minute), revoked)
}

func TestAccessTokenUser_LegacyRowRevokedRefuses(t *testing.T) {
	db := pgtest.New(t)
	s := db.Open(t)
	ctx := t.Context()
	now := time.Now()
	res, err := s.ResolveIdentity(ctx, storage.ResolveRequest{Connector: "auth0", Subject: "a", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	u := res.User
	insertLegacyToken(t, db, "legacy-revoked", "", u.ID, true)
	insertLegacyToken(t, db, "legacy-live", "", u.ID, false)

	ref := func(id string) storage.AccessTokenRef {
		return storage.AccessTokenRef{ID: id, UserID: u.ID, IssuedAt: now, ExpiresAt: now.Add(15 * time.Minute)}
	}
	if _, err := s.AccessTokenUser(ctx, ref("legacy-revoked")); !errors.Is(err, storage.ErrRevoked) {
		t.Fatalf("AccessTokenUser(token revoked by a schema-2 binary) = %v; want %v", err, storage.ErrRevoked)
	}
	if got, err := s.AccessTokenUser(ctx, ref("legacy-live")); err != nil || got.ID != u.ID {
		t.Fatalf("AccessTokenUser(live legacy token) = %+v, %v; want user %s", got, err, u.ID)
	}
}

func TestRevocations_MarkLegacyRows(t *testing.T) {
	db := pgtest.New(t)
	s := db.Open(t)
	ctx := t.Context()
	now := time.Now()
	var users []storage.User
	for _, sub := range []string{"a", "b"} {
		res, err := s.ResolveIdentity(ctx, storage.ResolveRequest{Connector: "auth0", Subject: sub, Now: now})
		if err != nil {
			t.Fatal(err)
		}
		users = append(users, res.User)
	}
	a, b := users[0], users[1]
	for _, row := range []struct{ id, grant, user string }{
		{"by-id", "", a.ID},
		{"by-grant", "code-grant", a.ID},
		{"by-reuse", "fam", a.ID},
		{"by-session", "sess-fam", a.ID},
		{"by-user", "", b.ID},
		{"untouched", "other", a.ID},
	} {
		insertLegacyToken(t, db, row.id, row.grant, row.user, false)
	}
	fam := storage.RefreshFamily{ID: "fam", ClientID: "web", UserID: a.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateRefreshFamily(ctx, fam, []byte("t1")); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSession(ctx, storage.Session{ID: "sess", UserID: a.ID, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	sessFam := storage.RefreshFamily{ID: "sess-fam", ClientID: "web", UserID: a.ID, SessionID: "sess", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.CreateRefreshFamily(ctx, sessFam, []byte("s1")); err != nil {
		t.Fatal(err)
	}

	if err := s.RevokeAccessToken(ctx, storage.AccessTokenRef{ID: "by-id", UserID: a.ID, ExpiresAt: now.Add(time.Minute)}); err != nil {
		t.Fatalf("RevokeAccessToken: %v", err)
	}
	if err := s.RevokeGrant(ctx, "code-grant", now.Add(time.Minute)); err != nil {
		t.Fatalf("RevokeGrant: %v", err)
	}
	rotate := storage.RotateRequest{TokenHash: []byte("t1"), SuccessorHash: []byte("t2"), Now: now}
	if _, err := s.RotateRefreshToken(ctx, rotate); err != nil {
		t.Fatalf("rotate: %v", err)
	}
	if _, err := s.RotateRefreshToken(ctx, rotate); !errors.Is(err, storage.ErrRefreshReused) {
		t.Fatalf("reuse: %v; want %v", err, storage.ErrRefreshReused)
	}
	if _, err := s.EndSession(ctx, "sess"); err != nil {
		t.Fatalf("EndSession: %v", err)
	}
	if err := s.RevokeUserTokens(ctx, b.ID, now); err != nil {
		t.Fatalf("RevokeUserTokens: %v", err)
	}

	for id, want := range map[string]int{"by-id": 1, "by-grant": 1, "by-reuse": 1, "by-session": 1, "by-user": 1, "untouched": 0} {
		if got := queryInt(t, db.DSN, `SELECT count(*) FROM access_tokens WHERE id = $1 AND revoked`, id); got != want {
			t.Errorf("legacy row %s: %d revoked; want %d", id, got, want)
		}
	}
}
