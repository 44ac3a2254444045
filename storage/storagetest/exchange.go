package storagetest

import (
	"testing"
	"time"

	"github.com/idbroker/broker/storage"
)

func testResolveAndRecord(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	req := storage.ResolveRequest{Connector: "auth0", Subject: "k", Email: "k@example.com", EmailVerified: true, Name: "K", Now: t0}
	// resolveAndRecord checks one call that succeeds: the resolution is
	// what ResolveIdentity gives now, and the token is recorded as the
	// resolved user's.
	resolveAndRecord := func(what string, jti string) storage.Resolution {
		t.Helper()
		tok := accessToken(jti, "", "")
		res, err := s.ResolveAndRecord(ctx, req, tok)
		wantErr(t, what, err, nil)
		got, err := s.GetAccessToken(ctx, jti)
		wantErr(t, what+": GetAccessToken", err, nil)
		tok.UserID = res.User.ID
		wantEqual(t, what+": record", got, tok)
		again, err := s.ResolveIdentity(ctx, req)
		wantErr(t, what+": ResolveIdentity", err, nil)
		wantEqual(t, what+": user", res.User, again.User)
		return res
	}
	// wantNothing checks one call that fails with want and records nothing.
	wantNothing := func(what string, jti string, want error) {
		t.Helper()
		_, err := s.ResolveAndRecord(ctx, req, accessToken(jti, "", ""))
		wantErr(t, what, err, want)
		_, err = s.GetAccessToken(ctx, jti)
		wantErr(t, what+": token recorded", err, storage.ErrNotFound)
	}

	a := resolveAndRecord("new identity", "jti-new")
	if !a.Created {
		t.Fatal("ResolveAndRecord(new identity) did not report the user created")
	}
	// Unchanged and recently resolved: the common case.
	req.Now = t0.Add(10 * time.Second)
	if res := resolveAndRecord("known identity", "jti-known"); res.User.ID != a.User.ID || res.Created {
		t.Fatalf("ResolveAndRecord(known identity) = %+v, want user %s, not created", res, a.User.ID)
	}
	_, err := s.ResolveAndRecord(ctx, req, accessToken("jti-known", "", ""))
	wantErr(t, "ResolveAndRecord(same token id)", err, storage.ErrAlreadyExists)

	req.Name, req.Now = "K2", t0.Add(20*time.Second)
	if res := resolveAndRecord("renamed", "jti-renamed"); res.User.Name != "K2" {
		t.Fatalf("ResolveAndRecord(renamed) gave name %q", res.User.Name)
	}
	req.Now = t0.Add(time.Hour)
	resolveAndRecord("stale last login", "jti-stale")

	// A disabled user is refused, and nothing is recorded.
	wantErr(t, "SetUserDisabled", s.SetUserDisabled(ctx, a.User.ID, true), nil)
	req.Now = t0.Add(time.Hour + time.Second)
	wantNothing("ResolveAndRecord(disabled user)", "jti-disabled", storage.ErrUserDisabled)
	req.Now = t0.Add(2 * time.Hour)
	wantNothing("ResolveAndRecord(disabled user, stale)", "jti-disabled-stale", storage.ErrUserDisabled)

	// A new identity naming an existing user's id takes nothing over.
	req = storage.ResolveRequest{Connector: "legacy", Subject: "l", UserID: a.User.ID, Now: t0}
	wantNothing("ResolveAndRecord(preset id of another user)", "jti-preset", storage.ErrAlreadyExists)
}
