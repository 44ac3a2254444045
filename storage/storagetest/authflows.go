package storagetest

import (
	"encoding/hex"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/idbroker/broker/storage"
)

func authRequest(id string) storage.AuthRequest {
	maxAge := 10 * time.Minute
	return storage.AuthRequest{
		ID:                  id,
		ClientID:            "web",
		RedirectURI:         "https://app.example.com/cb",
		Scopes:              []string{"openid", "email"},
		State:               "st",
		Nonce:               "no",
		ResponseType:        "code",
		ResponseMode:        "query",
		CodeChallenge:       "chal",
		CodeChallengeMethod: "S256",
		Prompt:              []string{"login"},
		MaxAge:              &maxAge,
		LoginHint:           "ada@example.com",
		UILocales:           []string{"en", "fr"},
		Audience:            []string{"https://api.example.com"},
		CreatedAt:           t0,
		ExpiresAt:           t0.Add(10 * time.Minute),
		BrowserHash:         []byte("browser-binding-hash-0123456789ab"),
	}
}

func testAuthRequestRoundTrip(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	r := authRequest("ar1")
	r.ConnectorID, r.UpstreamState, r.UpstreamNonce, r.UpstreamVerifier = "auth0", "ups", "upn", "upv"
	r.UserID, r.AuthTime, r.AMR, r.IDP, r.Org, r.SessionID, r.Done = "u", t0.Add(time.Second), []string{"fed"}, "auth0", "org_1", "sess", true
	r.UpstreamRefreshToken = []byte{1, 2, 3}
	r.Impersonator = "workos-impersonator:support@example.com"
	wantErr(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, r), nil)
	wantErr(t, "CreateAuthRequest(again)", s.CreateAuthRequest(ctx, r), storage.ErrAlreadyExists)

	got, err := s.GetAuthRequest(ctx, "ar1")
	wantErr(t, "GetAuthRequest", err, nil)
	wantEqual(t, "GetAuthRequest", got, r)
	got, err = s.GetAuthRequestByUpstreamState(ctx, "ups")
	wantErr(t, "GetAuthRequestByUpstreamState", err, nil)
	wantEqual(t, "GetAuthRequestByUpstreamState", got, r)
	_, err = s.GetAuthRequestByUpstreamState(ctx, "other")
	wantErr(t, "GetAuthRequestByUpstreamState(unknown)", err, storage.ErrNotFound)
	_, err = s.GetAuthRequestByUpstreamState(ctx, "")
	wantErr(t, "GetAuthRequestByUpstreamState(empty)", err, storage.ErrNotFound)

	wantErr(t, "DeleteAuthRequest", s.DeleteAuthRequest(ctx, "ar1"), nil)
	_, err = s.GetAuthRequest(ctx, "ar1")
	wantErr(t, "GetAuthRequest(deleted)", err, storage.ErrNotFound)
	_, err = s.GetAuthRequestByUpstreamState(ctx, "ups")
	wantErr(t, "GetAuthRequestByUpstreamState(deleted)", err, storage.ErrNotFound)
	wantErr(t, "DeleteAuthRequest(deleted)", s.DeleteAuthRequest(ctx, "ar1"), storage.ErrNotFound)

	// A minimal request (nil slices, no MaxAge) round-trips too.
	min := storage.AuthRequest{ID: "ar2", ClientID: "web", CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)}
	wantErr(t, "CreateAuthRequest(minimal)", s.CreateAuthRequest(ctx, min), nil)
	got, err = s.GetAuthRequest(ctx, "ar2")
	wantErr(t, "GetAuthRequest(minimal)", err, nil)
	wantEqual(t, "minimal request", got, min)
	if got.MaxAge != nil {
		t.Fatalf("MaxAge = %v; want nil", *got.MaxAge)
	}
}

func testAuthRequestUpdate(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	wantErr(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, authRequest("ar")), nil)
	got, err := s.UpdateAuthRequest(ctx, "ar", func(r storage.AuthRequest) (storage.AuthRequest, error) {
		if r.ClientID != "web" {
			return r, fmt.Errorf("update saw %+v", r)
		}
		r.ID = "renamed"                          // ignored: a request keeps its id
		r.BrowserHash = []byte("another-browser") // and its browser
		r.UserID, r.Done, r.AMR, r.UpstreamState = "user-1", true, []string{"otp"}, "s1"
		return r, nil
	})
	wantErr(t, "UpdateAuthRequest", err, nil)
	want := authRequest("ar")
	want.UserID, want.Done, want.AMR, want.UpstreamState = "user-1", true, []string{"otp"}, "s1"
	wantEqual(t, "updated request", got, want)
	got, _ = s.GetAuthRequest(ctx, "ar")
	wantEqual(t, "stored request", got, want)
	got, err = s.GetAuthRequestByUpstreamState(ctx, "s1")
	wantErr(t, "GetAuthRequestByUpstreamState(new state)", err, nil)
	if got.ID != "ar" {
		t.Fatalf("state s1 finds %q", got.ID)
	}

	errBoom := errors.New("boom")
	_, err = s.UpdateAuthRequest(ctx, "ar", func(r storage.AuthRequest) (storage.AuthRequest, error) {
		r.UserID = "someone-else"
		return r, errBoom
	})
	wantErr(t, "UpdateAuthRequest(failing)", err, errBoom)
	got, _ = s.GetAuthRequest(ctx, "ar")
	wantEqual(t, "request after a failed update", got, want)

	_, err = s.UpdateAuthRequest(ctx, "nope", func(r storage.AuthRequest) (storage.AuthRequest, error) { return r, nil })
	wantErr(t, "UpdateAuthRequest(unknown)", err, storage.ErrNotFound)
}

func testAuthRequestUpstreamStateUnique(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	a, b := authRequest("a"), authRequest("b")
	a.UpstreamState = "shared"
	wantErr(t, "CreateAuthRequest(a)", s.CreateAuthRequest(ctx, a), nil)
	b.UpstreamState = "shared"
	wantErr(t, "CreateAuthRequest(b, same state)", s.CreateAuthRequest(ctx, b), storage.ErrAlreadyExists)
	b.UpstreamState = ""
	wantErr(t, "CreateAuthRequest(b, no state)", s.CreateAuthRequest(ctx, b), nil)
	c := authRequest("c")
	wantErr(t, "CreateAuthRequest(c, no state)", s.CreateAuthRequest(ctx, c), nil)
	_, err := s.UpdateAuthRequest(ctx, "b", func(r storage.AuthRequest) (storage.AuthRequest, error) {
		r.UpstreamState = "shared"
		return r, nil
	})
	wantErr(t, "UpdateAuthRequest(taking a's state)", err, storage.ErrAlreadyExists)
	got, _ := s.GetAuthRequestByUpstreamState(ctx, "shared")
	if got.ID != "a" {
		t.Fatalf("state finds %q; want a", got.ID)
	}
}

func testAuthRequestCopies(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	r := authRequest("ar")
	wantErr(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, r), nil)
	r.Scopes[0] = "changed-after-create"
	*r.MaxAge = time.Hour
	got, _ := s.GetAuthRequest(ctx, "ar")
	got.Scopes[0] = "changed-after-get"
	*got.MaxAge = 2 * time.Hour
	again, _ := s.GetAuthRequest(ctx, "ar")
	wantEqual(t, "stored request after callers changed their copies", again, authRequest("ar"))
}

func authCode(name, userID string) storage.AuthCode {
	return storage.AuthCode{
		CodeHash:             hash(name),
		ClientID:             "web",
		RedirectURI:          "https://app.example.com/cb",
		UserID:               userID,
		Scopes:               []string{"openid", "offline_access"},
		Audience:             []string{"https://api.example.com"},
		Nonce:                "n",
		CodeChallenge:        "c",
		CodeChallengeMethod:  "S256",
		AuthTime:             t0,
		AMR:                  []string{"otp"},
		IDP:                  "otp",
		Org:                  "org_1",
		SessionID:            "sess",
		UpstreamRefreshToken: []byte("enc"),
		Impersonator:         "workos-impersonator:support@example.com",
		ExpiresAt:            t0.Add(time.Minute),
	}
}

// issueCode creates an auth request and exchanges it for a code.
func issueCode(t *testing.T, s storage.Storage, c storage.AuthCode) {
	t.Helper()
	ar := authRequest("ar-" + hex.EncodeToString(c.CodeHash))
	wantErr(t, "CreateAuthRequest", s.CreateAuthRequest(t.Context(), ar), nil)
	wantErr(t, "CreateAuthCode", s.CreateAuthCode(t.Context(), c, ar.ID), nil)
}

func testAuthCodeCreate(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	ar := authRequest("ar")
	wantErr(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, ar), nil)
	wantErr(t, "PutOTPChallenge", s.PutOTPChallenge(ctx, storage.OTPChallenge{AuthRequestID: "ar", CodeHash: hash("otp"), CreatedAt: t0, ExpiresAt: t0.Add(time.Minute)}), nil)
	wantErr(t, "CreateAuthCode", s.CreateAuthCode(ctx, authCode("code", "u"), "ar"), nil)
	_, err := s.GetAuthRequest(ctx, "ar")
	wantErr(t, "GetAuthRequest after CreateAuthCode", err, storage.ErrNotFound)
	_, err = s.CheckOTPChallenge(ctx, "ar", hash("otp"), 5, t0)
	wantErr(t, "CheckOTPChallenge after CreateAuthCode", err, storage.ErrNotFound)

	// The request is gone, so a second completion yields no second code.
	wantErr(t, "CreateAuthCode(consumed request)", s.CreateAuthCode(ctx, authCode("code2", "u"), "ar"), storage.ErrNotFound)
	_, err = s.RedeemAuthCode(ctx, hash("code2"), "g", t0)
	wantErr(t, "RedeemAuthCode(code of consumed request)", err, storage.ErrNotFound)
}

func testAuthCodeRedeem(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	c := authCode("code", "u")
	issueCode(t, s, c)
	got, err := s.RedeemAuthCode(ctx, c.CodeHash, "grant-1", t0.Add(time.Second))
	wantErr(t, "RedeemAuthCode", err, nil)
	want := c
	want.GrantID = "grant-1"
	wantEqual(t, "redeemed code", got, want)

	got, err = s.RedeemAuthCode(ctx, c.CodeHash, "grant-2", t0.Add(2*time.Second))
	wantErr(t, "RedeemAuthCode(again)", err, storage.ErrCodeRedeemed)
	if got.GrantID != "grant-1" {
		t.Fatalf("second redemption names grant %q; want grant-1", got.GrantID)
	}

	e := authCode("expiring", "u")
	issueCode(t, s, e)
	_, err = s.RedeemAuthCode(ctx, e.CodeHash, "g", e.ExpiresAt)
	wantErr(t, "RedeemAuthCode(at expiry)", err, storage.ErrExpired)
	_, err = s.RedeemAuthCode(ctx, hash("unknown"), "g", t0)
	wantErr(t, "RedeemAuthCode(unknown)", err, storage.ErrNotFound)
}

func testAuthCodeRedeemRace(t *testing.T, s storage.Storage) {
	const rounds, racers = 10, 4
	for r := range rounds {
		c := authCode(fmt.Sprintf("race-%d", r), "u")
		issueCode(t, s, c)
		codes := make([]storage.AuthCode, racers)
		errs := make([]error, racers)
		race(racers, func(i int) {
			codes[i], errs[i] = s.RedeemAuthCode(t.Context(), c.CodeHash, fmt.Sprintf("grant-%d", i), t0)
		})
		winner := -1
		for i, err := range errs {
			switch {
			case err == nil && winner >= 0:
				t.Fatalf("round %d: racers %d and %d both redeemed the code", r, winner, i)
			case err == nil:
				winner = i
			case !errors.Is(err, storage.ErrCodeRedeemed):
				t.Fatalf("round %d racer %d: %v; want %v", r, i, err, storage.ErrCodeRedeemed)
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: nobody redeemed the code", r)
		}
		for i := range errs {
			if codes[i].GrantID != fmt.Sprintf("grant-%d", winner) {
				t.Fatalf("round %d racer %d sees grant %q; the winner's is grant-%d", r, i, codes[i].GrantID, winner)
			}
		}
	}
}

func otpChallenge(reqID, code string) storage.OTPChallenge {
	return storage.OTPChallenge{AuthRequestID: reqID, Email: "ada@example.com", CodeHash: hash(code), CreatedAt: t0, ExpiresAt: t0.Add(5 * time.Minute)}
}

func testOTPCheck(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	wantErr(t, "PutOTPChallenge(no request)", s.PutOTPChallenge(ctx, otpChallenge("none", "123456")), storage.ErrNotFound)
	wantErr(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, authRequest("ar")), nil)
	c := otpChallenge("ar", "123456")
	wantErr(t, "PutOTPChallenge", s.PutOTPChallenge(ctx, c), nil)

	_, err := s.CheckOTPChallenge(ctx, "ar", hash("000000"), 3, t0)
	wantErr(t, "CheckOTPChallenge(wrong)", err, storage.ErrOTPMismatch)
	_, err = s.CheckOTPChallenge(ctx, "ar", hash("123456")[:31], 3, t0)
	wantErr(t, "CheckOTPChallenge(prefix of the hash)", err, storage.ErrOTPMismatch)
	_, err = s.CheckOTPChallenge(ctx, "ar", hash("123456"), 3, c.ExpiresAt)
	wantErr(t, "CheckOTPChallenge(at expiry)", err, storage.ErrExpired)

	got, err := s.CheckOTPChallenge(ctx, "ar", hash("123456"), 3, t0.Add(time.Minute))
	wantErr(t, "CheckOTPChallenge(right)", err, nil)
	want := c
	want.Attempts = 2
	wantEqual(t, "matched challenge", got, want)
	_, err = s.CheckOTPChallenge(ctx, "ar", hash("123456"), 3, t0.Add(time.Minute))
	wantErr(t, "CheckOTPChallenge(used)", err, storage.ErrNotFound)
}

func testOTPExhausted(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	wantErr(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, authRequest("ar")), nil)
	wantErr(t, "PutOTPChallenge", s.PutOTPChallenge(ctx, otpChallenge("ar", "123456")), nil)
	for i := range 3 {
		_, err := s.CheckOTPChallenge(ctx, "ar", hash("bad"), 3, t0)
		wantErr(t, fmt.Sprintf("wrong code %d", i+1), err, storage.ErrOTPMismatch)
	}
	for _, now := range []time.Time{t0, t0.Add(time.Hour)} {
		_, err := s.CheckOTPChallenge(ctx, "ar", hash("123456"), 3, now)
		wantErr(t, "right code after the attempts ran out", err, storage.ErrOTPExhausted)
	}
}

func testOTPReplace(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	wantErr(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, authRequest("ar")), nil)
	wantErr(t, "PutOTPChallenge", s.PutOTPChallenge(ctx, otpChallenge("ar", "111111")), nil)
	for range 3 {
		s.CheckOTPChallenge(ctx, "ar", hash("bad"), 3, t0)
	}
	resent := otpChallenge("ar", "222222")
	resent.Attempts = 7 // ignored: a new challenge starts afresh
	wantErr(t, "PutOTPChallenge(resend)", s.PutOTPChallenge(ctx, resent), nil)
	_, err := s.CheckOTPChallenge(ctx, "ar", hash("111111"), 3, t0)
	wantErr(t, "CheckOTPChallenge(old code)", err, storage.ErrOTPMismatch)
	got, err := s.CheckOTPChallenge(ctx, "ar", hash("222222"), 3, t0)
	wantErr(t, "CheckOTPChallenge(new code)", err, nil)
	if got.Attempts != 1 {
		t.Fatalf("attempts = %d; want 1 (the old code)", got.Attempts)
	}
}

func testOTPConcurrent(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	wantErr(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, authRequest("ar")), nil)
	wantErr(t, "PutOTPChallenge", s.PutOTPChallenge(ctx, otpChallenge("ar", "123456")), nil)
	const n, max = 12, 5
	errs := make([]error, n)
	race(n, func(i int) {
		_, errs[i] = s.CheckOTPChallenge(ctx, "ar", hash(fmt.Sprint("guess", i)), max, t0)
	})
	if mismatches := countMismatches(t, errs); mismatches != max {
		t.Fatalf("%d guesses were checked; want exactly %d", mismatches, max)
	}
}

// countMismatches counts the guesses of a race that were checked (and
// wrong); every other one must have found the attempts spent.
func countMismatches(t *testing.T, errs []error) int {
	t.Helper()
	mismatches := 0
	for i, err := range errs {
		switch {
		case errors.Is(err, storage.ErrOTPMismatch):
			mismatches++
		case !errors.Is(err, storage.ErrOTPExhausted):
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	return mismatches
}

func pooledChallenge(reqID, code, key string) storage.OTPChallenge {
	c := otpChallenge(reqID, code)
	c.AttemptKey = key
	return c
}

func testOTPAttemptPool(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	for _, id := range []string{"ar1", "ar2", "ar3", "ar4", "ar5"} {
		wantErr(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, authRequest(id)), nil)
	}
	first := pooledChallenge("ar1", "111111", "k")
	wantErr(t, "PutOTPChallenge", s.PutOTPChallenge(ctx, first), nil)
	wantErr(t, "PutOTPChallenge", s.PutOTPChallenge(ctx, pooledChallenge("ar2", "222222", "k")), nil)
	wantErr(t, "PutOTPChallenge", s.PutOTPChallenge(ctx, pooledChallenge("ar3", "333333", "other")), nil)
	wantErr(t, "PutOTPChallenge", s.PutOTPChallenge(ctx, otpChallenge("ar4", "444444")), nil)

	// Three wrong guesses under one key, over two challenges.
	for i, id := range []string{"ar1", "ar1", "ar2"} {
		_, err := s.CheckOTPChallenge(ctx, id, hash("bad"), 3, t0)
		wantErr(t, fmt.Sprintf("wrong code %d under the key", i+1), err, storage.ErrOTPMismatch)
	}
	_, err := s.CheckOTPChallenge(ctx, "ar2", hash("222222"), 3, t0)
	wantErr(t, "right code of a challenge with guesses left, its pool spent", err, storage.ErrOTPExhausted)
	// A new code for the request buys nothing either.
	wantErr(t, "PutOTPChallenge(resend)", s.PutOTPChallenge(ctx, pooledChallenge("ar1", "555555", "k")), nil)
	_, err = s.CheckOTPChallenge(ctx, "ar1", hash("555555"), 3, t0)
	wantErr(t, "right code of a resent challenge, its pool spent", err, storage.ErrOTPExhausted)
	// Other keys, and challenges without one, are not in the pool.
	_, err = s.CheckOTPChallenge(ctx, "ar3", hash("333333"), 3, t0)
	wantErr(t, "right code under another key", err, nil)
	_, err = s.CheckOTPChallenge(ctx, "ar4", hash("444444"), 3, t0)
	wantErr(t, "right code without a key", err, nil)

	// The pool closes when the challenge that opened it expires.
	later := pooledChallenge("ar5", "666666", "k")
	later.ExpiresAt = first.ExpiresAt.Add(5 * time.Minute)
	wantErr(t, "PutOTPChallenge", s.PutOTPChallenge(ctx, later), nil)
	_, err = s.CheckOTPChallenge(ctx, "ar5", hash("666666"), 3, first.ExpiresAt.Add(-time.Second))
	wantErr(t, "right code just before the pool closes", err, storage.ErrOTPExhausted)
	got, err := s.CheckOTPChallenge(ctx, "ar5", hash("666666"), 3, first.ExpiresAt)
	wantErr(t, "right code once the pool closed", err, nil)
	if got.AttemptKey != "k" {
		t.Errorf("matched challenge's attempt key %q, want %q", got.AttemptKey, "k")
	}
}

func testOTPAttemptPoolConcurrent(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	const n, max = 12, 5
	for i := range 3 {
		id := fmt.Sprint("ar", i)
		wantErr(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, authRequest(id)), nil)
		wantErr(t, "PutOTPChallenge", s.PutOTPChallenge(ctx, pooledChallenge(id, "123456", "k")), nil)
	}
	errs := make([]error, n)
	race(n, func(i int) {
		_, errs[i] = s.CheckOTPChallenge(ctx, fmt.Sprint("ar", i%3), hash(fmt.Sprint("guess", i)), max, t0)
	})
	if mismatches := countMismatches(t, errs); mismatches != max {
		t.Fatalf("%d guesses were checked over three challenges of one key; want exactly %d", mismatches, max)
	}
}
