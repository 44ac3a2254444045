package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/storage/postgres/pgtest"
)

// secrets rotate re-seals the upstream refresh tokens of sessions and
// refresh families under the new root secret, so that they still open
// once BROKER_PREVIOUS_SECRET is removed; a session and its family keep
// sharing one sealed token; what opens under neither secret is left and
// counted; a second run changes nothing. (That the broker's re-check then
// succeeds is TestRefresh_UpstreamTokenResealedByASecretRotation... in
// package broker.)
func TestSecrets_RotateResealsUpstreamRefreshTokens(t *testing.T) {
	db := pgtest.New(t)
	store := db.Open(t)
	ctx := context.Background()
	oldSecret, err := broker.ParseRootSecret(secretForTest)
	if err != nil {
		t.Fatal(err)
	}
	newSecret, err := broker.ParseRootSecret(otherSecretForTest)
	if err != nil {
		t.Fatal(err)
	}
	before, err := broker.UpstreamTokenEnvelope(oldSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	after, err := broker.UpstreamTokenEnvelope(newSecret, nil)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := before.Seal([]byte("upstream-refresh"))
	if err != nil {
		t.Fatal(err)
	}
	lost, err := broker.UpstreamTokenEnvelope(broker.NewEphemeralRootSecret(), nil)
	if err != nil {
		t.Fatal(err)
	}
	unreadable, err := lost.Seal([]byte("lost"))
	if err != nil {
		t.Fatal(err)
	}

	now := time.Now()
	res, err := store.ResolveIdentity(ctx, storage.ResolveRequest{Connector: "auth0", Subject: "auth0|sam", Email: "sam@example.com", EmailVerified: true, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	sess := storage.Session{ID: "sid-of-sam", UserID: res.User.ID, AuthTime: now, AMR: []string{"pwd"}, IDP: "auth0",
		Clients: []string{"web"}, CreatedAt: now, ExpiresAt: now.Add(time.Hour), IdleTTL: 10 * time.Minute, UpstreamRefreshToken: sealed}
	if err := store.CreateSession(ctx, sess); err != nil {
		t.Fatal(err)
	}
	family := func(id, sessionID string, token []byte) []byte {
		hash := []byte("hash-of-" + id)
		if err := store.CreateRefreshFamily(ctx, storage.RefreshFamily{ID: id, ClientID: "web", UserID: res.User.ID, SessionID: sessionID,
			IDP: "auth0", UpstreamRefreshToken: token, UpstreamCheckedAt: now,
			CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour)}, hash); err != nil {
			t.Fatal(err)
		}
		return hash
	}
	shared := family("00000000-0000-4000-8000-000000000001", sess.ID, sealed)
	lostHash := family("00000000-0000-4000-8000-000000000002", "", unreadable)

	cfg := writeConfig(t, freeAddr(t), db.DSN)
	env := envFrom(map[string]string{"DATABASE_URL": db.DSN, "BROKER_SECRET": otherSecretForTest, "BROKER_PREVIOUS_SECRET": secretForTest})
	var out testenv.SyncBuffer
	if err := run(ctx, []string{"secrets", "rotate", "--config", cfg}, &out, &out, env); err != nil {
		t.Fatalf("secrets rotate: %v\n%s", err, out.String())
	}
	if want := "upstream refresh tokens: 2 re-sealed under the new root secret, 0 already current, 1 unreadable"; !strings.Contains(out.String(), want) {
		t.Errorf("secrets rotate printed\n%s\nwant %q", out.String(), want)
	}

	// Only the new secret from here on.
	gotSess, err := store.GetSession(ctx, sess.ID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	gotFam, err := store.GetRefreshFamilyByToken(ctx, shared)
	if err != nil {
		t.Fatal(err)
	}
	for what, token := range map[string][]byte{"session": gotSess.UpstreamRefreshToken, "family": gotFam.UpstreamRefreshToken} {
		if plain, err := after.Open(token); err != nil || string(plain) != "upstream-refresh" {
			t.Errorf("the %s's upstream token under the new secret alone: %q, %v", what, plain, err)
		}
	}
	if !bytes.Equal(gotSess.UpstreamRefreshToken, gotFam.UpstreamRefreshToken) {
		t.Error("the session and its family no longer share one sealed token")
	}
	if f, err := store.GetRefreshFamilyByToken(ctx, lostHash); err != nil || !bytes.Equal(f.UpstreamRefreshToken, unreadable) {
		t.Errorf("the unreadable token was not left as it is: %v", err)
	}

	out = testenv.SyncBuffer{}
	if err := run(ctx, []string{"secrets", "rotate", "--config", cfg}, &out, &out, env); err != nil {
		t.Fatalf("secrets rotate (again): %v", err)
	}
	if want := "upstream refresh tokens: 0 re-sealed under the new root secret, 2 already current, 1 unreadable"; !strings.Contains(out.String(), want) {
		t.Errorf("a second secrets rotate printed\n%s\nwant %q", out.String(), want)
	}
	if again, _ := store.GetSession(ctx, sess.ID, time.Now()); !bytes.Equal(again.UpstreamRefreshToken, gotSess.UpstreamRefreshToken) {
		t.Error("a second run changed the session's token")
	}
}
