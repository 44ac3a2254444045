package storagetest

import (
	"fmt"
	"testing"
	"time"

	"github.com/idbroker/broker/storage"
)

// accessToken is a token of user userID under grant grantID ("" for an
// exchange), issued at t0 and live for 15 minutes.
func accessToken(id, grantID, userID string) storage.AccessTokenRef {
	return storage.AccessTokenRef{ID: id, GrantID: grantID, UserID: userID, IssuedAt: t0, ExpiresAt: t0.Add(15 * time.Minute)}
}

// wantActive fails the test unless AccessTokenUser accepts tok as a token
// of u.
func wantActive(t *testing.T, s storage.Storage, what string, tok storage.AccessTokenRef, u storage.User) {
	t.Helper()
	got, err := s.AccessTokenUser(t.Context(), tok)
	wantErr(t, what, err, nil)
	wantEqual(t, what+": user", got, u)
}

// wantRefused fails the test unless AccessTokenUser refuses tok with want.
func wantRefused(t *testing.T, s storage.Storage, what string, tok storage.AccessTokenRef, want error) {
	t.Helper()
	_, err := s.AccessTokenUser(t.Context(), tok)
	wantErr(t, what, err, want)
}

func testAccessTokenActive(t *testing.T, s storage.Storage) {
	u := mustResolve(t, s, storage.ResolveRequest{Connector: "auth0", Subject: "a", Email: "a@example.com", EmailVerified: true, Name: "A"}).User
	wantActive(t, s, "token of a grant", accessToken("jti-1", "g", u.ID), u)
	wantActive(t, s, "token of an exchange", accessToken("jti-2", "", u.ID), u)
}

func testAccessTokenRevokeJTI(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	u := mustResolve(t, s, storage.ResolveRequest{Connector: "auth0", Subject: "a"}).User
	tok := accessToken("jti-1", "g", u.ID)
	wantErr(t, "RevokeAccessToken", s.RevokeAccessToken(ctx, tok), nil)
	wantRefused(t, s, "revoked token", tok, storage.ErrRevoked)
	wantActive(t, s, "another token of the grant", accessToken("jti-2", "g", u.ID), u)
	wantErr(t, "RevokeAccessToken(again)", s.RevokeAccessToken(ctx, tok), nil)
	wantRefused(t, s, "token revoked twice", tok, storage.ErrRevoked)
}

func testAccessTokenRevokeGrant(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	u := mustResolve(t, s, storage.ResolveRequest{Connector: "auth0", Subject: "a"}).User
	wantErr(t, "CreateRefreshFamily", s.CreateRefreshFamily(ctx, family("fam", u.ID, ""), hash("t1")), nil)
	wantErr(t, "CreateRefreshFamily", s.CreateRefreshFamily(ctx, family("other", u.ID, ""), hash("o1")), nil)
	until := t0.Add(time.Hour)

	wantErr(t, "RevokeGrant", s.RevokeGrant(ctx, "fam", until), nil)
	_, err := rotate(s, t, "t1", "t2", 0, t0)
	wantErr(t, "rotate in the revoked grant's family", err, storage.ErrRevoked)
	_, err = rotate(s, t, "o1", "o2", 0, t0)
	wantErr(t, "rotate in another family", err, nil)
	wantRefused(t, s, "token of the revoked grant", accessToken("a1", "fam", u.ID), storage.ErrRevoked)
	wantActive(t, s, "token of another grant", accessToken("a2", "other", u.ID), u)
	wantActive(t, s, "token of an exchange", accessToken("a3", "", u.ID), u)

	// A code grant that issued only access tokens has no family: its
	// tokens are revoked all the same, as are those of a grant the store
	// never saw.
	issueCode(t, s, authCode("code", u.ID))
	_, err = s.RedeemAuthCode(ctx, hash("code"), "code-grant", t0)
	wantErr(t, "RedeemAuthCode", err, nil)
	wantErr(t, "RevokeGrant(code grant without family)", s.RevokeGrant(ctx, "code-grant", until), nil)
	wantRefused(t, s, "token of a code grant without family", accessToken("a4", "code-grant", u.ID), storage.ErrRevoked)
	wantErr(t, "RevokeGrant(never seen)", s.RevokeGrant(ctx, "unseen", until), nil)
	wantRefused(t, s, "token of a grant never seen", accessToken("a5", "unseen", u.ID), storage.ErrRevoked)
	wantErr(t, "RevokeGrant(again)", s.RevokeGrant(ctx, "fam", until), nil)
}

// A refresh token presented again after its retry window revokes its
// family, and so the access tokens of the family's grant.
func testAccessTokenFamilyReuseRevokesGrant(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	u := mustResolve(t, s, storage.ResolveRequest{Connector: "auth0", Subject: "a"}).User
	wantErr(t, "CreateRefreshFamily", s.CreateRefreshFamily(ctx, family("fam", u.ID, ""), hash("t1")), nil)
	tok := accessToken("at", "fam", u.ID)
	wantActive(t, s, "token of a live family", tok, u)
	const window = 2 * time.Second
	_, err := rotate(s, t, "t1", "t2", window, t0)
	wantErr(t, "rotate t1", err, nil)
	wantActive(t, s, "token of a rotated family", tok, u)
	_, err = rotate(s, t, "t1", "t2", window, t0.Add(window))
	wantErr(t, "reuse of t1 after the window", err, storage.ErrRefreshReused)
	wantRefused(t, s, "token of a family revoked for reuse", tok, storage.ErrRevoked)
}

// A revoked family outlives its lifetime by storage.RevokedFamilyRetention
// in DeleteExpired, so the access tokens it issued last stay revoked for
// as long as they can live; a family that was never revoked goes at once.
func testAccessTokenRevokedFamilyKeptPastExpiry(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	u := mustResolve(t, s, storage.ResolveRequest{Connector: "auth0", Subject: "a"}).User
	revoked, live := family("revoked", u.ID, ""), family("live", u.ID, "")
	revoked.IdleTimeout, live.IdleTimeout = 0, 0
	revoked.ExpiresAt, live.ExpiresAt = t0.Add(time.Hour), t0.Add(time.Hour)
	wantErr(t, "CreateRefreshFamily", s.CreateRefreshFamily(ctx, revoked, hash("r1")), nil)
	wantErr(t, "CreateRefreshFamily", s.CreateRefreshFamily(ctx, live, hash("l1")), nil)
	_, err := rotate(s, t, "r1", "r2", 0, t0)
	wantErr(t, "rotate r1", err, nil)
	_, err = rotate(s, t, "r1", "r2", 0, t0.Add(time.Second))
	wantErr(t, "reuse of r1", err, storage.ErrRefreshReused)
	// The last token before the family's end, still live after it.
	tok := accessToken("at", "revoked", u.ID)
	tok.IssuedAt, tok.ExpiresAt = t0.Add(59*time.Minute), t0.Add(74*time.Minute)

	_, err = s.DeleteExpired(ctx, t0.Add(time.Hour+time.Minute))
	wantErr(t, "DeleteExpired just past the families' end", err, nil)
	wantRefused(t, s, "token of the revoked family, swept once", tok, storage.ErrRevoked)
	_, err = s.GetRefreshFamilyByToken(ctx, hash("l1"))
	wantErr(t, "the never-revoked family, past its end", err, storage.ErrNotFound)

	_, err = s.DeleteExpired(ctx, t0.Add(time.Hour+storage.RevokedFamilyRetention))
	wantErr(t, "DeleteExpired past the retention", err, nil)
	_, err = s.GetRefreshFamilyByToken(ctx, hash("r2"))
	wantErr(t, "the revoked family, past its retention", err, storage.ErrNotFound)
}

func testAccessTokenRevokeUserTokens(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	u1 := mustResolve(t, s, storage.ResolveRequest{Connector: "auth0", Subject: "u1"}).User
	u2 := mustResolve(t, s, storage.ResolveRequest{Connector: "auth0", Subject: "u2"}).User
	wantErr(t, "CreateRefreshFamily", s.CreateRefreshFamily(ctx, family("f1", u1.ID, ""), hash("t1")), nil)
	wantErr(t, "CreateRefreshFamily", s.CreateRefreshFamily(ctx, family("f2", u2.ID, ""), hash("t2")), nil)
	issued := func(id string, at time.Time) storage.AccessTokenRef {
		tok := accessToken(id, "", u1.ID)
		tok.IssuedAt = at
		return tok
	}
	earlier := issued("earlier", t0.Add(-time.Minute))
	sameSecond := issued("same-second", t0)
	// Issued after the revocation, but in its second: iat has whole
	// seconds, so the store cannot tell it from one issued before.
	sameSecondAfter := issued("same-second-after", t0.Add(900*time.Millisecond))
	nextSecond := issued("next-second", t0.Add(time.Second))

	wantErr(t, "RevokeUserTokens", s.RevokeUserTokens(ctx, u1.ID, t0.Add(500*time.Millisecond)), nil)
	_, err := rotate(s, t, "t1", "t1b", 0, t0)
	wantErr(t, "rotate u1's token", err, storage.ErrRevoked)
	_, err = rotate(s, t, "t2", "t2b", 0, t0)
	wantErr(t, "rotate u2's token", err, nil)
	wantRefused(t, s, "token issued before the revocation", earlier, storage.ErrRevoked)
	wantRefused(t, s, "token issued in the revocation's second", sameSecond, storage.ErrRevoked)
	wantRefused(t, s, "token issued after the revocation in its second", sameSecondAfter, storage.ErrRevoked)
	wantActive(t, s, "token issued the second after the revocation", nextSecond, u1)
	wantActive(t, s, "token of another user", accessToken("other", "", u2.ID), u2)

	// An earlier moment undoes nothing; a later one reaches further.
	wantErr(t, "RevokeUserTokens(earlier)", s.RevokeUserTokens(ctx, u1.ID, t0.Add(-time.Hour)), nil)
	wantRefused(t, s, "token of the second revoked, after an earlier revocation", sameSecond, storage.ErrRevoked)
	wantActive(t, s, "token of the next second, after an earlier revocation", nextSecond, u1)
	wantErr(t, "RevokeUserTokens(later)", s.RevokeUserTokens(ctx, u1.ID, t0.Add(time.Second)), nil)
	wantRefused(t, s, "token of the second revoked later", nextSecond, storage.ErrRevoked)

	wantErr(t, "RevokeUserTokens(unknown user)", s.RevokeUserTokens(ctx, unknownUser, t0), storage.ErrNotFound)
	wantErr(t, "RevokeUserTokens(not a UUID)", s.RevokeUserTokens(ctx, "nobody", t0), storage.ErrNotFound)
}

// A disabled user's tokens give ErrUserDisabled until the user is enabled
// again; a revoked token gives ErrRevoked whatever its user's state, since
// its revocation outlasts the user being enabled.
func testAccessTokenDisabledUser(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	u := mustResolve(t, s, storage.ResolveRequest{Connector: "auth0", Subject: "a"}).User
	tok, revoked := accessToken("at", "", u.ID), accessToken("revoked", "", u.ID)
	wantErr(t, "RevokeAccessToken", s.RevokeAccessToken(ctx, revoked), nil)
	wantErr(t, "SetUserDisabled", s.SetUserDisabled(ctx, u.ID, true), nil)
	wantRefused(t, s, "token of a disabled user", tok, storage.ErrUserDisabled)
	wantRefused(t, s, "revoked token of a disabled user", revoked, storage.ErrRevoked)
	wantErr(t, "SetUserDisabled(false)", s.SetUserDisabled(ctx, u.ID, false), nil)
	wantActive(t, s, "token of a user enabled again", tok, u)
	wantRefused(t, s, "revoked token of a user enabled again", revoked, storage.ErrRevoked)
}

// A user who is gone gives ErrNotFound for every token naming them,
// revoked or not.
func testAccessTokenUserGone(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	u := mustResolve(t, s, storage.ResolveRequest{Connector: "auth0", Subject: "a"}).User
	tok, revoked := accessToken("at", "", u.ID), accessToken("revoked", "", u.ID)
	wantErr(t, "RevokeAccessToken", s.RevokeAccessToken(ctx, revoked), nil)
	wantErr(t, "DeleteUser", s.DeleteUser(ctx, u.ID), nil)
	wantRefused(t, s, "token of a deleted user", tok, storage.ErrNotFound)
	wantRefused(t, s, "revoked token of a deleted user", revoked, storage.ErrNotFound)
	wantRefused(t, s, "token of an unknown user", accessToken("at", "", unknownUser), storage.ErrNotFound)
	wantRefused(t, s, "token whose user is not a UUID", accessToken("at", "", "nobody"), storage.ErrNotFound)
}

// Concurrent revocations of one grant and one jti all succeed, and the
// revocation is kept until the latest until of them, whichever committed
// last.
func testAccessTokenConcurrentRevocations(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	u := mustResolve(t, s, storage.ResolveRequest{Connector: "auth0", Subject: "a"}).User
	const n = 8
	errs := make([]error, 2*n)
	race(2*n, func(i int) {
		until := t0.Add(time.Duration(i/2+1) * time.Minute)
		if i%2 == 0 {
			errs[i] = s.RevokeGrant(ctx, "g", until)
			return
		}
		tok := accessToken("jti", "", u.ID)
		tok.ExpiresAt = until
		errs[i] = s.RevokeAccessToken(ctx, tok)
	})
	for i, err := range errs {
		wantErr(t, fmt.Sprintf("concurrent revocation %d", i), err, nil)
	}
	latest := t0.Add(n * time.Minute)
	_, err := s.DeleteExpired(ctx, latest.Add(-time.Second))
	wantErr(t, "DeleteExpired", err, nil)
	wantRefused(t, s, "token of the grant before the latest until", accessToken("a", "g", u.ID), storage.ErrRevoked)
	wantRefused(t, s, "revoked jti before the latest until", accessToken("jti", "", u.ID), storage.ErrRevoked)
	removed, err := s.DeleteExpired(ctx, latest)
	wantErr(t, "DeleteExpired", err, nil)
	if removed != 2 {
		t.Fatalf("DeleteExpired at the latest until removed %d; want the 2 revocations", removed)
	}
}
