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

// The admin role is managed from the command line as from the admin API:
// granted and revoked by email or id, shown, and audited.
func TestUsers_GrantAndRevokeAdminAreShownAndAudited(t *testing.T) {
	db := pgtest.New(t)
	store := db.Open(t)
	ctx := context.Background()
	resolve := func(connector, subject, email string) storage.User {
		t.Helper()
		res, err := store.ResolveIdentity(ctx, storage.ResolveRequest{Connector: connector, Subject: subject, Email: email, EmailVerified: email != "", Now: time.Now()})
		if err != nil {
			t.Fatal(err)
		}
		return res.User
	}
	ada := resolve("otp", "ada@example.com", "ada@example.com")
	service := resolve("client", "svc", "")
	cfg := writeConfig(t, freeAddr(t), db.DSN)
	env := envFrom(map[string]string{"DATABASE_URL": db.DSN})
	cli := func(args ...string) (string, error) {
		var out testenv.SyncBuffer
		err := run(ctx, append([]string{"users", args[0], "--config", cfg}, args[1:]...), &out, &out, env)
		return out.String(), err
	}
	isAdmin := func() bool {
		t.Helper()
		u, err := store.GetUser(ctx, ada.ID)
		if err != nil {
			t.Fatal(err)
		}
		return u.Admin
	}

	if out, err := cli("grant-admin", "ADA@example.com"); err != nil || !strings.Contains(out, "granted the admin role") {
		t.Fatalf("grant-admin: %v %s", err, out)
	}
	if !isAdmin() {
		t.Fatal("not an admin after grant-admin")
	}
	if out, _ := cli("show", ada.ID); !strings.Contains(out, "roles:          admin") {
		t.Errorf("users show: %s", out)
	}
	if out, _ := cli("list"); !strings.Contains(out, ada.ID) || !strings.Contains(out, "(admin)") {
		t.Errorf("users list: %s", out)
	}

	if out, err := cli("revoke-admin", ada.ID); err != nil || !strings.Contains(out, "no longer holds the admin role") {
		t.Fatalf("revoke-admin: %v %s", err, out)
	}
	if isAdmin() {
		t.Fatal("still an admin after revoke-admin")
	}
	if out, _ := cli("show", ada.ID); !strings.Contains(out, "roles:          none") {
		t.Errorf("users show after revoke-admin: %s", out)
	}

	if _, err := cli("grant-admin", service.ID); err == nil || !strings.Contains(err.Error(), "service user") {
		t.Errorf("grant-admin to a machine client's service user: %v", err)
	}
	if _, err := cli("grant-admin", "nobody@example.com"); err == nil {
		t.Error("grant-admin to nobody succeeded")
	}
	if _, err := cli("grant-admin"); err == nil || !strings.Contains(err.Error(), "usage") {
		t.Errorf("grant-admin without a user: %v", err)
	}

	events, err := store.ListAudit(ctx, 100)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range events {
		if e.Actor == admin.ActorCLI && e.Target == "user:"+ada.ID {
			actions = append(actions, e.Action)
		}
	}
	if got := strings.Join(actions, " "); got != "user.revoke-admin user.grant-admin" {
		t.Errorf("audit actions %q, newest first", got)
	}
}
