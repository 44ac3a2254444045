package storagetest

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/idbroker/broker/storage"
)

// HeldFamilies wraps a store so that CreateRefreshFamily waits, before it
// reaches the store, until Release is closed. It plays the slow winner of
// a code redemption (a pool wait, a slow disk), held until the replays of
// its code have revoked the grant: the interleaving in which the family
// is created after its grant's revocation, and must not come out live.
type HeldFamilies struct {
	storage.Storage
	Release <-chan struct{}
	// Arrived, when not nil, is sent the family's id as each creation
	// begins to wait: a test can end a session or revoke a user while a
	// family of theirs is known to be on its way.
	Arrived chan<- string
}

// CreateRefreshFamily waits for Release, then creates f.
func (h HeldFamilies) CreateRefreshFamily(ctx context.Context, f storage.RefreshFamily, tokenHash []byte) error {
	if h.Arrived != nil {
		select {
		case h.Arrived <- f.ID:
		case <-ctx.Done():
			return fmt.Errorf("storagetest: held create refresh family: %w", ctx.Err())
		}
	}
	select {
	case <-h.Release:
	case <-ctx.Done():
		return fmt.Errorf("storagetest: held create refresh family: %w", ctx.Err())
	}
	return h.Storage.CreateRefreshFamily(ctx, f, tokenHash)
}

// A grant revoked before its family is created (its code replayed while
// the first redemption was slow) never gets a live family.
func testRefreshCreateAfterRevocation(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	u := mustResolve(t, s, storage.ResolveRequest{Connector: "auth0", Subject: "a"}).User
	wantErr(t, "RevokeGrant", s.RevokeGrant(ctx, "fam", t0.Add(time.Hour)), nil)
	wantErr(t, "CreateRefreshFamily(revoked grant)", s.CreateRefreshFamily(ctx, family("fam", u.ID, ""), hash("t1")), storage.ErrRevoked)
	_, err := s.GetRefreshFamilyByToken(ctx, hash("t1"))
	wantErr(t, "GetRefreshFamilyByToken(token of the refused family)", err, storage.ErrNotFound)
	_, err = rotate(s, t, "t1", "t2", 0, t0)
	wantErr(t, "rotate the refused family's token", err, storage.ErrNotFound)
	wantRefused(t, s, "access token of the revoked grant", accessToken("a1", "fam", u.ID), storage.ErrRevoked)
	// Another grant is not affected.
	wantErr(t, "CreateRefreshFamily(other grant)", s.CreateRefreshFamily(ctx, family("other", u.ID, ""), hash("o1")), nil)
	// Once its grant is revoked, a family created again is refused as
	// revoked, whether or not it exists.
	wantErr(t, "RevokeGrant(other)", s.RevokeGrant(ctx, "other", t0.Add(time.Hour)), nil)
	wantErr(t, "CreateRefreshFamily(other again)", s.CreateRefreshFamily(ctx, family("other", u.ID, ""), hash("o1")), storage.ErrRevoked)
}

// Fifty redemptions of one code at once: the winner creates its refresh
// family, every loser revokes the winner's grant as a replay does. In
// whatever order they land (a replay before the family exists, one while
// it is being created, or after) nothing of the grant stays alive. In
// every other round the winner is held until every replay has revoked.
func testRedeemReplayRevokesFamily(t *testing.T, s storage.Storage) {
	u := mustResolve(t, s, storage.ResolveRequest{Connector: "auth0", Subject: "a"}).User
	const rounds, racers = 6, 50
	for r := range rounds {
		held := r%2 == 1
		release := make(chan struct{})
		store := storage.Storage(HeldFamilies{Storage: s, Release: release})
		if !held {
			close(release)
		}
		c := authCode(fmt.Sprintf("replay-%d", r), u.ID)
		issueCode(t, s, c)
		token := hash(fmt.Sprintf("replay-%d-t1", r))
		var created atomic.Bool
		var revoked atomic.Int32
		errs := make([]error, racers)
		race(racers, func(i int) {
			ctx := t.Context()
			grantID := fmt.Sprintf("g%d-%d", r, i)
			code, err := store.RedeemAuthCode(ctx, c.CodeHash, grantID, t0)
			switch {
			case err == nil:
				err = store.CreateRefreshFamily(ctx, family(grantID, u.ID, ""), token)
				created.Store(err == nil)
				if errors.Is(err, storage.ErrRevoked) {
					err = nil
				}
			case errors.Is(err, storage.ErrCodeRedeemed):
				err = store.RevokeGrant(ctx, code.GrantID, t0.Add(time.Hour))
				if revoked.Add(1) == racers-1 && held {
					close(release)
				}
			}
			errs[i] = err
		})
		for i, err := range errs {
			wantErr(t, fmt.Sprintf("round %d racer %d", r, i), err, nil)
		}
		code, err := s.RedeemAuthCode(t.Context(), c.CodeHash, "late", t0)
		wantErr(t, "RedeemAuthCode after the race", err, storage.ErrCodeRedeemed)
		_, err = s.RotateRefreshToken(t.Context(), storage.RotateRequest{TokenHash: token, SuccessorHash: hash(fmt.Sprintf("replay-%d-t2", r)), Now: t0})
		if created.Load() {
			wantErr(t, fmt.Sprintf("round %d: rotate the winner's token", r), err, storage.ErrRevoked)
		} else {
			wantErr(t, fmt.Sprintf("round %d: rotate the token of a family never created", r), err, storage.ErrNotFound)
		}
		wantRefused(t, s, fmt.Sprintf("round %d: access token of the winner's grant", r), accessToken(fmt.Sprintf("a%d", r), code.GrantID, u.ID), storage.ErrRevoked)
	}
}

// Rotations of a family racing the revocation of its grant: once the
// revocation has returned, no token of the family rotates, and no
// rotation that began before it left a live successor.
func testRefreshRotationRacesRevocation(t *testing.T, s storage.Storage) {
	u := mustResolve(t, s, storage.ResolveRequest{Connector: "auth0", Subject: "a"}).User
	const racers = 50
	wantErr(t, "CreateRefreshFamily", s.CreateRefreshFamily(t.Context(), family("fam", u.ID, ""), hash("r0")), nil)
	errs := make([]error, racers)
	race(racers, func(i int) {
		if i%5 == 0 {
			errs[i] = s.RevokeGrant(t.Context(), "fam", t0.Add(time.Hour))
			return
		}
		// A chain of rotations, each a retry or a reuse of the others'.
		from, to := fmt.Sprintf("r%d", i%3), fmt.Sprintf("r%d", i%3+1)
		_, err := rotate(s, t, from, to, 2*time.Second, t0)
		if errors.Is(err, storage.ErrRevoked) || errors.Is(err, storage.ErrRefreshReused) || errors.Is(err, storage.ErrNotFound) {
			err = nil
		}
		errs[i] = err
	})
	for i, err := range errs {
		wantErr(t, fmt.Sprintf("racer %d", i), err, nil)
	}
	for i := range 4 {
		_, err := rotate(s, t, fmt.Sprintf("r%d", i), fmt.Sprintf("x%d", i), 2*time.Second, t0)
		if !errors.Is(err, storage.ErrRevoked) && !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("rotate r%d after the revocation: %v; want %v or %v", i, err, storage.ErrRevoked, storage.ErrNotFound)
		}
	}
	wantRefused(t, s, "access token of the revoked grant", accessToken("a1", "fam", u.ID), storage.ErrRevoked)
}
