package main

import (
	"context"
	"github.com/idbroker/broker/internal/testenv"
	"strings"
	"testing"

	"github.com/idbroker/broker/storage/postgres/pgtest"
)

const otherSecretForTest = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA="

func TestKeys_ListRotateRevoke(t *testing.T) {
	db := pgtest.New(t)
	cfg := writeConfig(t, freeAddr(t), db.DSN)
	env := envFrom(map[string]string{"DATABASE_URL": db.DSN, "BROKER_SECRET": secretForTest})
	keys := func(args ...string) string {
		t.Helper()
		var out, logs testenv.SyncBuffer
		if err := run(context.Background(), append([]string{"keys", args[0], "--config", cfg}, args[1:]...), &out, &logs, env); err != nil {
			t.Fatalf("keys %v: %v\n%s", args, err, logs.String())
		}
		return out.String()
	}
	list := keys("list")
	// An ID-token key of each algorithm a client may ask for, and the
	// access-token key.
	if strings.Count(list, "signing") != 4 || !strings.Contains(list, "RS256") || !strings.Contains(list, "ES256") || !strings.Contains(list, "EdDSA") {
		t.Fatalf("keys list on a fresh database:\n%s", list)
	}
	rotated := keys("rotate")
	if strings.Count(rotated, "\n") != strings.Count(list, "\n")+4 || !strings.Contains(rotated, "published") {
		t.Fatalf("keys rotate did not pre-publish a key per use and algorithm:\n%s", rotated)
	}
	// Revoke the signing ID-token key: it leaves at once and another signs.
	var kid string
	for _, line := range strings.Split(rotated, "\n") {
		if f := strings.Fields(line); len(f) > 3 && f[2] == "id_token" && f[3] == "signing" {
			kid = f[0]
		}
	}
	if kid == "" {
		t.Fatalf("no signing ID-token key listed:\n%s", rotated)
	}
	revoked := keys("revoke", "--", kid) // a kid may begin with -
	table := revoked[strings.Index(revoked, "KID"):]
	if strings.Contains(table, kid) {
		t.Fatalf("revoked key %s still listed:\n%s", kid, revoked)
	}
	signingID := false
	for _, line := range strings.Split(table, "\n") {
		if f := strings.Fields(line); len(f) > 3 && f[2] == "id_token" && f[3] == "signing" {
			signingID = true
		}
	}
	if !signingID {
		t.Fatalf("no ID-token key signs after the revocation:\n%s", revoked)
	}
	events, err := db.Open(t).ListAudit(context.Background(), 10)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range events {
		actions = append(actions, e.Actor+" "+e.Action+" "+e.Target)
	}
	got := strings.Join(actions, "; ")
	if !strings.Contains(got, "cli keys.rotate") || !strings.Contains(got, "cli keys.revoke key:"+kid) {
		t.Errorf("audit log %q lacks the rotation and the revocation", got)
	}
}

func TestSecrets_RotateKeepsKeysAndOldSecretWorksMeanwhile(t *testing.T) {
	db := pgtest.New(t)
	cfg := writeConfig(t, freeAddr(t), db.DSN)
	listWith := func(vars map[string]string) (string, error) {
		vars["DATABASE_URL"] = db.DSN
		var out, logs testenv.SyncBuffer
		err := run(context.Background(), []string{"keys", "list", "--config", cfg}, &out, &logs, envFrom(vars))
		return out.String(), err
	}
	before, err := listWith(map[string]string{"BROKER_SECRET": secretForTest})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := listWith(map[string]string{"BROKER_SECRET": otherSecretForTest}); err == nil || !strings.Contains(err.Error(), "root secret") {
		t.Fatalf("a wrong root secret with existing keys: %v (want a clear error, never new keys)", err)
	}
	// During the rotation replicas run with both secrets.
	both := map[string]string{"BROKER_SECRET": otherSecretForTest, "BROKER_PREVIOUS_SECRET": secretForTest}
	if _, err := listWith(both); err != nil {
		t.Fatalf("new secret with the old one as previous: %v", err)
	}
	var out testenv.SyncBuffer
	both["DATABASE_URL"] = db.DSN
	if err := run(context.Background(), []string{"secrets", "rotate", "--config", cfg}, &out, &out, envFrom(both)); err != nil {
		t.Fatalf("secrets rotate: %v", err)
	}
	after, err := listWith(map[string]string{"BROKER_SECRET": otherSecretForTest})
	if err != nil {
		t.Fatalf("only the new secret after the rotation: %v", err)
	}
	kids := func(s string) string { return strings.Join(strings.Fields(s[strings.Index(s, "KID"):]), " ") }
	if kids(before) != kids(after) {
		t.Errorf("the rotation changed the keys:\n%s\n%s", before, after)
	}
}
