package postgres_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/storage/postgres/pgtest"
)

// A re-check that rotates a family's upstream token between the pass's
// read and its write wins: the swap misses, the row is read again, and
// what the re-check stored is what gets re-sealed, never the stale token.
func TestResealUpstreamTokens_ARotationMeanwhileWins(t *testing.T) {
	s := pgtest.NewStore(t)
	ctx := context.Background()
	now := time.Now()
	res, err := s.ResolveIdentity(ctx, storage.ResolveRequest{Connector: "auth0", Subject: "auth0|sam", Email: "sam@example.com", EmailVerified: true, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	hash := []byte("hash-of-the-family")
	if err := s.CreateRefreshFamily(ctx, storage.RefreshFamily{ID: "00000000-0000-4000-8000-000000000001", ClientID: "web", UserID: res.User.ID,
		IDP: "auth0", UpstreamRefreshToken: []byte("enc-stale"), UpstreamCheckedAt: now,
		CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour)}, hash); err != nil {
		t.Fatal(err)
	}
	var seen []string
	counts, err := s.ResealUpstreamTokens(ctx, func(old []byte) ([]byte, bool, error) {
		seen = append(seen, string(old))
		if bytes.HasPrefix(old, []byte("new:")) {
			return old, false, nil
		}
		if string(old) == "enc-stale" {
			// The broker's re-check, on another connection, meanwhile.
			if err := s.UpdateRefreshFamilyUpstream(ctx, "00000000-0000-4000-8000-000000000001", []byte("enc-fresh"), now); err != nil {
				t.Fatal(err)
			}
		}
		return append([]byte("new:"), old...), true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if counts != (storage.ResealCounts{Resealed: 1}) {
		t.Errorf("counts %+v, want one re-sealed", counts)
	}
	if got := len(seen); got != 2 || seen[1] != "enc-fresh" {
		t.Errorf("reseal was given %q, want the stale token then the fresh one", seen)
	}
	f, err := s.GetRefreshFamilyByToken(ctx, hash)
	if err != nil {
		t.Fatal(err)
	}
	if string(f.UpstreamRefreshToken) != "new:enc-fresh" {
		t.Errorf("family token %q, want the re-check's token re-sealed", f.UpstreamRefreshToken)
	}
}
