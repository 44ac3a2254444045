package main

import (
	"context"
	"errors"
	"github.com/idbroker/broker/internal/testenv"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/storage/postgres/pgtest"
)

func TestSessions_ListAndRevokeEndsTheSessionAndItsRefreshTokens(t *testing.T) {
	db := pgtest.New(t)
	store := db.Open(t)
	ctx := context.Background()
	now := time.Now()
	res, err := store.ResolveIdentity(ctx, storage.ResolveRequest{Connector: "otp", Subject: "sam@example.com", Email: "sam@example.com", EmailVerified: true, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	sess := storage.Session{ID: "sid-of-sam", UserID: res.User.ID, AuthTime: now, AMR: []string{"otp"}, IDP: "otp",
		Clients: []string{"web"}, CreatedAt: now, ExpiresAt: now.Add(time.Hour), IdleTTL: 10 * time.Minute}
	if err := store.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	tokenHash := []byte("hash-of-sam's-refresh-token")
	if err := store.CreateRefreshFamily(ctx, storage.RefreshFamily{ID: "00000000-0000-4000-8000-000000000001", ClientID: "web",
		UserID: res.User.ID, SessionID: sess.ID, CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour)}, tokenHash); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, freeAddr(t), db.DSN)
	env := envFrom(map[string]string{"DATABASE_URL": db.DSN})

	var out testenv.SyncBuffer
	if err := run(ctx, []string{"sessions", "list", "--config", cfg, "--user", "SAM@example.com"}, &out, &out, env); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"1 live sessions", sess.ID, "web", "otp"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("sessions list lacks %q:\n%s", want, out.String())
		}
	}
	out = testenv.SyncBuffer{}
	if err := run(ctx, []string{"sessions", "revoke", "--config", cfg, sess.ID}, &out, &out, env); err != nil {
		t.Fatal(err)
	}
	if _, err := store.GetSession(ctx, sess.ID, time.Now()); !errors.Is(err, storage.ErrNotFound) {
		t.Errorf("session after revoke: %v", err)
	}
	if f, err := store.GetRefreshFamilyByToken(ctx, tokenHash); err != nil || !f.Revoked {
		t.Errorf("refresh family after revoke: revoked %v, %v", f.Revoked, err)
	}
	out = testenv.SyncBuffer{}
	if err := run(ctx, []string{"sessions", "list", "--config", cfg, "--user", res.User.ID}, &out, &out, env); err != nil || !strings.Contains(out.String(), "0 live sessions") {
		t.Errorf("sessions list after revoke: %v %s", err, out.String())
	}
	if err := run(ctx, []string{"sessions", "revoke", "--config", cfg, sess.ID}, &out, &out, env); err == nil || !strings.Contains(err.Error(), "no session") {
		t.Errorf("revoking an ended session: %v", err)
	}
}
