package storagetest

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/idbroker/broker/storage"
)

// resealPrefixed is a ResealUpstreamTokens function that "re-seals" by
// prefixing "new:", leaves tokens with that prefix or "enc-current" as
// they are, and cannot read "enc-bad". It records what it was given.
func resealPrefixed(seen *[]string) func([]byte) ([]byte, bool, error) {
	return func(old []byte) ([]byte, bool, error) {
		*seen = append(*seen, string(old))
		switch {
		case bytes.Equal(old, []byte("enc-bad")):
			return nil, false, fmt.Errorf("%w: no key opens it", storage.ErrUnreadable)
		case bytes.Equal(old, []byte("enc-current")), bytes.HasPrefix(old, []byte("new:")):
			return old, false, nil
		}
		return append([]byte("new:"), old...), true, nil
	}
}

func testResealUpstreamTokens(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	u := familyUser(t, s)
	wantErr(t, "CreateSession", s.CreateSession(ctx, session("s1", u, t0)), nil)
	bare := session("s2", u, t0)
	bare.UpstreamRefreshToken = nil
	wantErr(t, "CreateSession", s.CreateSession(ctx, bare), nil)
	wantErr(t, "CreateRefreshFamily", s.CreateRefreshFamily(ctx, family("shared", u, "s1"), hash("shared")), nil)
	for tok, sealed := range map[string]string{"current": "enc-current", "bad": "enc-bad", "none": ""} {
		f := family(tok, u, "")
		f.UpstreamRefreshToken = []byte(sealed)
		if sealed == "" {
			f.UpstreamRefreshToken = nil
		}
		wantErr(t, "CreateRefreshFamily", s.CreateRefreshFamily(ctx, f, hash(tok)), nil)
	}
	other := family("other", u, "")
	other.UpstreamRefreshToken = []byte("enc-other")
	wantErr(t, "CreateRefreshFamily", s.CreateRefreshFamily(ctx, other, hash("other")), nil)

	var seen []string
	counts, err := s.ResealUpstreamTokens(ctx, resealPrefixed(&seen))
	wantErr(t, "ResealUpstreamTokens", err, nil)
	wantEqual(t, "counts", counts, storage.ResealCounts{Resealed: 3, Current: 1, Unreadable: 1})
	wantEqual(t, "tokens passed", len(seen), 5)

	got, err := s.GetSession(ctx, "s1", t0)
	wantErr(t, "GetSession", err, nil)
	wantEqual(t, "session token", string(got.UpstreamRefreshToken), "new:enc-upstream")
	if got, _ := s.GetSession(ctx, "s2", t0); len(got.UpstreamRefreshToken) != 0 {
		t.Errorf("session without a token now holds %q", got.UpstreamRefreshToken)
	}
	for tok, want := range map[string]string{"shared": "new:enc-upstream", "current": "enc-current", "bad": "enc-bad", "none": "", "other": "new:enc-other"} {
		f, err := s.GetRefreshFamilyByToken(ctx, hash(tok))
		wantErr(t, "GetRefreshFamilyByToken("+tok+")", err, nil)
		wantEqual(t, "family "+tok+" token", string(f.UpstreamRefreshToken), want)
		if !f.UpstreamCheckedAt.Equal(t0) {
			t.Errorf("family %s: last check moved to %v; only its token changes", tok, f.UpstreamCheckedAt)
		}
	}

	// A second pass changes nothing.
	seen = nil
	counts, err = s.ResealUpstreamTokens(ctx, resealPrefixed(&seen))
	wantErr(t, "ResealUpstreamTokens(again)", err, nil)
	wantEqual(t, "counts of a second pass", counts, storage.ResealCounts{Current: 4, Unreadable: 1})

	// Any other error stops the pass.
	boom := errors.New("boom")
	_, err = s.ResealUpstreamTokens(ctx, func([]byte) ([]byte, bool, error) { return nil, false, boom })
	wantErr(t, "ResealUpstreamTokens(failing)", err, boom)
	got, _ = s.GetSession(ctx, "s1", t0)
	wantEqual(t, "session token after a failed pass", string(got.UpstreamRefreshToken), "new:enc-upstream")
}
