package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/broker/broker/admin"
	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/storage/postgres/pgtest"
)

// A person's consents are listed and taken back from the command line as
// through the admin API: taking one back revokes the client's refresh
// tokens for them, and is audited.
func TestUsers_ConsentsAreListedAndRevoked(t *testing.T) {
	db := pgtest.New(t)
	store := db.Open(t)
	ctx := context.Background()
	now := time.Now()
	res, err := store.ResolveIdentity(ctx, storage.ResolveRequest{Connector: "otp", Subject: "ada@example.com", Email: "ada@example.com", EmailVerified: true, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	ada := res.User
	if _, err := store.GrantConsent(ctx, storage.Consent{UserID: ada.ID, ClientID: "agent-app", Scopes: []string{"openid", "email"}, GrantedAt: now}); err != nil {
		t.Fatal(err)
	}
	family := storage.RefreshFamily{ID: "fam", ClientID: "agent-app", UserID: ada.ID, AuthTime: now, CreatedAt: now, LastUsedAt: now,
		UpstreamCheckedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := store.CreateRefreshFamily(ctx, family, []byte("token-hash")); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, freeAddr(t), db.DSN)
	env := envFrom(map[string]string{"DATABASE_URL": db.DSN})
	cli := func(args ...string) (string, error) {
		var out testenv.SyncBuffer
		err := run(ctx, append([]string{"users", args[0], "--config", cfg}, args[1:]...), &out, &out, env)
		return out.String(), err
	}

	if out, err := cli("consents", "ada@example.com"); err != nil || !strings.Contains(out, "agent-app  (the client's own)  email openid") {
		t.Fatalf("consents: %v %s", err, out)
	}
	if out, err := cli("revoke-consent", ada.ID, "agent-app"); err != nil || !strings.Contains(out, "no longer allows agent-app") {
		t.Fatalf("revoke-consent: %v %s", err, out)
	}
	if f, err := store.GetRefreshFamilyByToken(ctx, []byte("token-hash")); err != nil || !f.Revoked {
		t.Fatalf("the client's family after revoke-consent: revoked %v, %v", f.Revoked, err)
	}
	if out, err := cli("consents", ada.ID); err != nil || strings.Contains(out, "agent-app") {
		t.Fatalf("consents after revoke-consent: %v %s", err, out)
	}
	if _, err := cli("revoke-consent", ada.ID, "agent-app"); err == nil {
		t.Error("revoking a consent there is not succeeded")
	}
	if _, err := cli("revoke-consent", ada.ID); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Errorf("revoke-consent without a client: %v", err)
	}
	events, err := store.ListAudit(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(events) == 0 || events[0].Actor != admin.ActorCLI || events[0].Action != "user.consent.revoke" || events[0].Details["client_id"] != "agent-app" {
		t.Errorf("audit: %+v", events)
	}
}
