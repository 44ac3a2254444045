package storagetest

import (
	"errors"
	"testing"
	"time"

	"github.com/idbroker/broker/storage"
)

// badText are strings a request may carry and no record can hold in
// every backend: Postgres refuses NUL and bytes that are not UTF-8.
var badText = []string{"a\x00b", "a\xffb", "a\xc0\xafb", "a\xed\xa0\x80b"}

// Lookups by text no record can hold find nothing, in every backend, and
// writes of it either succeed or are refused as ErrInvalidText: never an
// error that reads as an unreachable store.
func testBadText(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	wantErr(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, authRequest("ar")), nil)
	for _, bad := range badText {
		lookups := map[string]error{}
		_, lookups["GetAuthRequest"] = s.GetAuthRequest(ctx, bad)
		_, lookups["GetAuthRequestByUpstreamState"] = s.GetAuthRequestByUpstreamState(ctx, bad)
		_, lookups["UpdateAuthRequest"] = s.UpdateAuthRequest(ctx, bad, func(r storage.AuthRequest) (storage.AuthRequest, error) { return r, nil })
		_, lookups["CheckOTPChallenge"] = s.CheckOTPChallenge(ctx, bad, hash("c"), 5, t0)
		_, lookups["GetClient"] = s.GetClient(ctx, bad)
		_, lookups["UpdateClient"] = s.UpdateClient(ctx, bad, func(c storage.Client) (storage.Client, error) { return c, nil })
		lookups["DeleteClient"] = s.DeleteClient(ctx, bad)
		_, lookups["GetSession"] = s.GetSession(ctx, bad, t0)
		_, lookups["EndSession"] = s.EndSession(ctx, bad)
		_, lookups["GetUser"] = s.GetUser(ctx, bad)
		lookups["DeleteUser"] = s.DeleteUser(ctx, bad)
		lookups["UnlinkIdentity"] = s.UnlinkIdentity(ctx, "00000000-0000-4000-8000-000000000001", bad, "s")
		for op, err := range lookups {
			if !errors.Is(err, storage.ErrNotFound) {
				t.Errorf("%s(%q): error %v, want one that matches storage.ErrNotFound", op, bad, err)
			}
		}

		writes := map[string]error{}
		r := authRequest("ar-" + bad)
		r.State, r.LoginHint = bad, bad
		writes["CreateAuthRequest"] = s.CreateAuthRequest(ctx, r)
		_, writes["UpdateAuthRequest"] = s.UpdateAuthRequest(ctx, "ar", func(r storage.AuthRequest) (storage.AuthRequest, error) {
			r.LoginHint = bad
			return r, nil
		})
		_, _, writes["TakeRateLimitSlot"] = s.TakeRateLimitSlot(ctx, "otp-email:"+bad, 5, time.Minute, t0)
		_, _, writes["RateLimited"] = s.RateLimited(ctx, "otp-email:"+bad, 5, t0)
		writes["ConsumeJTI"] = s.ConsumeJTI(ctx, bad, t0.Add(time.Hour))
		c := client("c-" + bad)
		c.Name = bad
		writes["CreateClient"] = s.CreateClient(ctx, c)
		for op, err := range writes {
			if err != nil && !errors.Is(err, storage.ErrInvalidText) {
				t.Errorf("%s with %q: error %v, want none or storage.ErrInvalidText", op, bad, err)
			}
		}
	}
}
