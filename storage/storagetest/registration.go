package storagetest

import (
	"errors"
	"testing"
	"time"

	"github.com/idbroker/broker/storage"
)

func registrationToken(id string, maxUses int) storage.RegistrationToken {
	return storage.RegistrationToken{ID: id, Hash: hash("initial " + id), Note: "for " + id, MaxUses: maxUses,
		CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
}

// registered is a client as /register stores it, created at t0.
func registered(id string) storage.Client {
	c := client(id)
	c.Public, c.SecretHashes, c.ServiceUserID, c.LastUsedAt = true, nil, "", time.Time{}
	c.RegistrationTokenHash = hash("registration " + id)
	return c
}

func testRegistrationTokens(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	b, a := registrationToken("b", 2), registrationToken("a", 0)
	wantErr(t, "CreateRegistrationToken(b)", s.CreateRegistrationToken(ctx, b), nil)
	wantErr(t, "CreateRegistrationToken(a)", s.CreateRegistrationToken(ctx, a), nil)
	wantErr(t, "CreateRegistrationToken(b again)", s.CreateRegistrationToken(ctx, b), storage.ErrAlreadyExists)
	sameHash := registrationToken("c", 0)
	sameHash.Hash = b.Hash
	wantErr(t, "CreateRegistrationToken(b's hash)", s.CreateRegistrationToken(ctx, sameHash), storage.ErrAlreadyExists)
	list, err := s.ListRegistrationTokens(ctx)
	wantErr(t, "ListRegistrationTokens", err, nil)
	wantEqual(t, "tokens", list, []storage.RegistrationToken{a, b})

	got, err := s.RegistrationToken(ctx, b.Hash, t0)
	wantErr(t, "RegistrationToken(b)", err, nil)
	wantEqual(t, "token", got, b)
	_, err = s.RegistrationToken(ctx, b.Hash, b.ExpiresAt)
	wantErr(t, "RegistrationToken(b) at its expiry", err, storage.ErrExpired)
	_, err = s.RegistrationToken(ctx, hash("unknown"), t0)
	wantErr(t, "RegistrationToken(unknown)", err, storage.ErrNotFound)

	wantErr(t, "RevokeRegistrationToken(a)", s.RevokeRegistrationToken(ctx, "a"), nil)
	wantErr(t, "RevokeRegistrationToken(a again)", s.RevokeRegistrationToken(ctx, "a"), storage.ErrNotFound)
	_, err = s.RegistrationToken(ctx, a.Hash, t0)
	wantErr(t, "RegistrationToken(revoked)", err, storage.ErrNotFound)
}

func testRegisterClient(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	tok := registrationToken("one", 2)
	wantErr(t, "CreateRegistrationToken", s.CreateRegistrationToken(ctx, tok), nil)

	open := registered("open")
	wantErr(t, "RegisterClient without a token", s.RegisterClient(ctx, open, nil, t0), nil)
	got, err := s.GetClient(ctx, "open")
	wantErr(t, "GetClient(open)", err, nil)
	wantEqual(t, "registered client", got, open)

	wantErr(t, "RegisterClient(first use)", s.RegisterClient(ctx, registered("c1"), tok.Hash, t0), nil)
	wantErr(t, "RegisterClient(id taken)", s.RegisterClient(ctx, registered("c1"), tok.Hash, t0), storage.ErrAlreadyExists)
	used, err := s.RegistrationToken(ctx, tok.Hash, t0)
	wantErr(t, "RegistrationToken after one use", err, nil)
	if used.Uses != 1 {
		t.Fatalf("uses after one registration and one refused = %d, want 1", used.Uses)
	}
	wantErr(t, "RegisterClient(expired token)", s.RegisterClient(ctx, registered("late"), tok.Hash, tok.ExpiresAt), storage.ErrExpired)
	wantErr(t, "RegisterClient(unknown token)", s.RegisterClient(ctx, registered("stranger"), hash("unknown"), t0), storage.ErrNotFound)
	wantErr(t, "RegisterClient(second use)", s.RegisterClient(ctx, registered("c2"), tok.Hash, t0), nil)
	wantErr(t, "RegisterClient(used up)", s.RegisterClient(ctx, registered("c3"), tok.Hash, t0), storage.ErrExpired)
	_, err = s.RegistrationToken(ctx, tok.Hash, t0)
	wantErr(t, "RegistrationToken used up", err, storage.ErrExpired)
	for _, id := range []string{"late", "stranger", "c3"} {
		_, err := s.GetClient(ctx, id)
		wantErr(t, "GetClient("+id+") refused", err, storage.ErrNotFound)
	}
}

func testRegisterClientConcurrentLastUse(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	tok := registrationToken("once", 1)
	wantErr(t, "CreateRegistrationToken", s.CreateRegistrationToken(ctx, tok), nil)
	const n = 8
	errs := make([]error, n)
	race(n, func(i int) {
		errs[i] = s.RegisterClient(ctx, registered(string(rune('a'+i))), tok.Hash, t0)
	})
	registeredCount := 0
	for _, err := range errs {
		switch {
		case err == nil:
			registeredCount++
		case !errors.Is(err, storage.ErrExpired):
			t.Fatalf("RegisterClient: %v", err)
		}
	}
	list, err := s.ListClients(ctx)
	wantErr(t, "ListClients", err, nil)
	if registeredCount != 1 || len(list) != 1 {
		t.Fatalf("%d concurrent registrations with a single-use token succeeded and %d clients stored, want 1 and 1", registeredCount, len(list))
	}
}

func testRegisteredClientUse(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	old, busy, fresh, admin := registered("old"), registered("busy"), registered("fresh"), client("admin")
	fresh.CreatedAt = t0.Add(48 * time.Hour)
	admin.RegistrationTokenHash, admin.LastUsedAt = nil, time.Time{}
	for _, c := range []storage.Client{old, busy, fresh} {
		wantErr(t, "RegisterClient("+c.ID+")", s.RegisterClient(ctx, c, nil, c.CreatedAt), nil)
	}
	wantErr(t, "CreateClient(admin)", s.CreateClient(ctx, admin), nil)

	wantErr(t, "NoteClientUse(busy)", s.NoteClientUse(ctx, "busy", t0.Add(24*time.Hour)), nil)
	wantErr(t, "NoteClientUse(busy, soon after)", s.NoteClientUse(ctx, "busy", t0.Add(24*time.Hour+30*time.Minute)), nil)
	got, _ := s.GetClient(ctx, "busy")
	wantEqual(t, "busy's last use, noted once within the granularity", got.LastUsedAt, t0.Add(24*time.Hour))
	wantErr(t, "NoteClientUse(busy, an hour on)", s.NoteClientUse(ctx, "busy", t0.Add(25*time.Hour)), nil)
	got, _ = s.GetClient(ctx, "busy")
	wantEqual(t, "busy's last use an hour on", got.LastUsedAt, t0.Add(25*time.Hour))
	wantErr(t, "NoteClientUse(unknown)", s.NoteClientUse(ctx, "unknown", t0), nil)

	ids, err := s.DeleteUnusedClients(ctx, t0.Add(48*time.Hour))
	wantErr(t, "DeleteUnusedClients", err, nil)
	wantEqual(t, "deleted", ids, []string{"busy", "old"})
	list, _ := s.ListClients(ctx)
	left := []string{}
	for _, c := range list {
		left = append(left, c.ID)
	}
	wantEqual(t, "clients left", left, []string{"admin", "fresh"})
}
