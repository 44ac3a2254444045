package storagetest

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/idbroker/broker/storage"
)

func client(id string) storage.Client {
	return storage.Client{
		ID:                       id,
		Name:                     "Client " + id,
		SecretHashes:             []storage.SecretHash{{Hash: hash("s1")}, {Hash: hash("s0"), ExpiresAt: t0.Add(time.Hour)}},
		RedirectURIs:             []string{"https://app.example.com/cb"},
		PostLogoutRedirectURIs:   []string{"https://app.example.com/"},
		GrantTypes:               []string{"authorization_code", "refresh_token"},
		Audiences:                []string{"https://api.example.com"},
		Scopes:                   []string{"openid", "email"},
		AllowedOrigins:           []string{"https://app.example.com"},
		JWKSURL:                  "https://app.example.com/jwks",
		JWKS:                     []byte(`{"keys":[]}`),
		BackchannelLogoutURI:     "https://app.example.com/logout",
		IDTokenSignedResponseAlg: "ES256",
		Actors:                   []string{"client:agent", "user:00000000-0000-4000-8000-00000000000d"},
		Introspector:             true,
		ThirdParty:               true,
		RegistrationTokenHash:    hash("registration"),
		LastUsedAt:               t0.Add(-time.Minute),
		IDJAGAudiences:           []string{"https://as.example.com"},
		ServiceUserID:            "00000000-0000-4000-8000-00000000000c",
		CreatedAt:                t0,
		UpdatedAt:                t0,
	}
}

func testClientCRUD(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	list, err := s.ListClients(ctx)
	wantErr(t, "ListClients(empty)", err, nil)
	if len(list) != 0 {
		t.Fatalf("ListClients of an empty store = %+v", list)
	}
	b, a := client("b"), client("a")
	a.Public, a.SecretHashes = true, nil
	wantErr(t, "CreateClient(b)", s.CreateClient(ctx, b), nil)
	wantErr(t, "CreateClient(a)", s.CreateClient(ctx, a), nil)
	wantErr(t, "CreateClient(b again)", s.CreateClient(ctx, b), storage.ErrAlreadyExists)
	got, err := s.GetClient(ctx, "b")
	wantErr(t, "GetClient", err, nil)
	wantEqual(t, "client", got, b)
	got.SecretHashes[0].Hash[0] = 'X'
	got.Actors[0] = "X"
	got, _ = s.GetClient(ctx, "b")
	wantEqual(t, "client after its copy was changed", got, b)
	list, err = s.ListClients(ctx)
	wantErr(t, "ListClients", err, nil)
	wantEqual(t, "clients", list, []storage.Client{a, b})

	got, err = s.UpdateClient(ctx, "b", func(c storage.Client) (storage.Client, error) {
		c.ID = "ignored"
		c.RedirectURIs = append(c.RedirectURIs, "http://127.0.0.1/cb")
		c.SecretHashes = c.SecretHashes[:1]
		c.Actors = []string{"client:other"}
		c.IDTokenSignedResponseAlg, c.Introspector = "", false
		c.ThirdParty, c.RegistrationTokenHash, c.LastUsedAt = false, nil, t0
		c.IDJAGAudiences = []string{"https://other-as.example.com"}
		c.UpdatedAt = t0.Add(time.Hour)
		return c, nil
	})
	wantErr(t, "UpdateClient", err, nil)
	want := client("b")
	want.RedirectURIs = append(want.RedirectURIs, "http://127.0.0.1/cb")
	want.SecretHashes = want.SecretHashes[:1]
	want.Actors = []string{"client:other"}
	want.IDTokenSignedResponseAlg, want.Introspector = "", false
	want.ThirdParty, want.RegistrationTokenHash, want.LastUsedAt = false, nil, t0
	want.IDJAGAudiences = []string{"https://other-as.example.com"}
	want.UpdatedAt = t0.Add(time.Hour)
	wantEqual(t, "updated client", got, want)
	got, _ = s.GetClient(ctx, "b")
	wantEqual(t, "stored client", got, want)
	errBoom := errors.New("boom")
	_, err = s.UpdateClient(ctx, "b", func(c storage.Client) (storage.Client, error) { return c, errBoom })
	wantErr(t, "UpdateClient(failing)", err, errBoom)
	_, err = s.UpdateClient(ctx, "nope", func(c storage.Client) (storage.Client, error) { return c, nil })
	wantErr(t, "UpdateClient(unknown)", err, storage.ErrNotFound)

	wantErr(t, "DeleteClient", s.DeleteClient(ctx, "b"), nil)
	_, err = s.GetClient(ctx, "b")
	wantErr(t, "GetClient(deleted)", err, storage.ErrNotFound)
	wantErr(t, "DeleteClient(deleted)", s.DeleteClient(ctx, "b"), storage.ErrNotFound)
}

func signingKey(id string, created time.Time) storage.SigningKey {
	return storage.SigningKey{
		ID: id, Algorithm: "ES256", Use: "access_token",
		PublicJWK: []byte(`{"kid":"` + id + `"}`), PrivateKey: []byte("sealed-" + id),
		CreatedAt: created, PublishAt: created, SignFrom: created.Add(time.Hour),
		SignUntil: created.Add(25 * time.Hour), RemoveAt: created.Add(49 * time.Hour),
	}
}

func testSigningKeys(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	keys, err := s.ListSigningKeys(ctx)
	wantErr(t, "ListSigningKeys(empty)", err, nil)
	if len(keys) != 0 {
		t.Fatalf("keys of an empty store: %+v", keys)
	}
	k1, k2 := signingKey("k1", t0), signingKey("k2", t0.Add(time.Hour))
	got, err := s.UpdateSigningKeys(ctx, func(ks []storage.SigningKey) ([]storage.SigningKey, error) {
		return append(ks, k2, k1), nil
	})
	wantErr(t, "UpdateSigningKeys", err, nil)
	wantEqual(t, "updated keys (oldest first)", got, []storage.SigningKey{k1, k2})
	keys, _ = s.ListSigningKeys(ctx)
	wantEqual(t, "listed keys", keys, []storage.SigningKey{k1, k2})

	// Removal, and a failing update that changes nothing.
	_, err = s.UpdateSigningKeys(ctx, func(ks []storage.SigningKey) ([]storage.SigningKey, error) { return ks[1:], nil })
	wantErr(t, "UpdateSigningKeys(remove)", err, nil)
	errBoom := errors.New("boom")
	_, err = s.UpdateSigningKeys(ctx, func(ks []storage.SigningKey) ([]storage.SigningKey, error) { return nil, errBoom })
	wantErr(t, "UpdateSigningKeys(failing)", err, errBoom)
	_, err = s.UpdateSigningKeys(ctx, func(ks []storage.SigningKey) ([]storage.SigningKey, error) {
		return append(ks, signingKey("k2", t0)), nil
	})
	wantErr(t, "UpdateSigningKeys(duplicate kid)", err, storage.ErrAlreadyExists)
	keys, _ = s.ListSigningKeys(ctx)
	wantEqual(t, "keys after failed updates", keys, []storage.SigningKey{k2})
}

func testSigningKeysConcurrent(t *testing.T, s storage.Storage) {
	const n = 10
	errs := make([]error, n)
	race(n, func(i int) {
		_, errs[i] = s.UpdateSigningKeys(t.Context(), func(ks []storage.SigningKey) ([]storage.SigningKey, error) {
			// Widen the window between read and write, so that updaters
			// that did not exclude each other would lose keys.
			time.Sleep(5 * time.Millisecond)
			return append(ks, signingKey(fmt.Sprintf("k%02d", i), t0.Add(time.Duration(i)*time.Second))), nil
		})
	})
	for i, err := range errs {
		wantErr(t, fmt.Sprintf("updater %d", i), err, nil)
	}
	keys, err := s.ListSigningKeys(t.Context())
	wantErr(t, "ListSigningKeys", err, nil)
	if len(keys) != n {
		t.Fatalf("%d keys after %d concurrent appends; want %d", len(keys), n, n)
	}
}

func testRateLimit(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	take := func(key string, now time.Time) (bool, time.Duration) {
		t.Helper()
		ok, retry, err := s.TakeRateLimitSlot(ctx, key, 3, time.Minute, now)
		wantErr(t, "TakeRateLimitSlot", err, nil)
		return ok, retry
	}
	limited := func(key string, now time.Time) (bool, time.Duration) {
		t.Helper()
		l, retry, err := s.RateLimited(ctx, key, 3, now)
		wantErr(t, "RateLimited", err, nil)
		return l, retry
	}
	for i := range 3 {
		if ok, retry := take("ip:1", t0.Add(time.Duration(i)*10*time.Second)); !ok || retry != 0 {
			t.Fatalf("event %d: allowed %v, retry after %v; want allowed", i+1, ok, retry)
		}
	}
	// Looking does not count: the window is full but not over.
	for range 3 {
		if l, _ := limited("ip:1", t0.Add(25*time.Second)); l {
			t.Fatal("RateLimited reports a full (not exceeded) window as limited")
		}
	}
	if ok, retry := take("ip:1", t0.Add(30*time.Second)); ok || retry != 30*time.Second {
		t.Fatalf("4th event: allowed %v, retry after %v; want refused, 30s", ok, retry)
	}
	if l, retry := limited("ip:1", t0.Add(40*time.Second)); !l || retry != 20*time.Second {
		t.Fatalf("RateLimited after the limit: %v, %v; want true, 20s", l, retry)
	}
	if l, _ := limited("unknown", t0); l {
		t.Fatal("a key never seen is limited")
	}
	if ok, _ := take("ip:2", t0.Add(30*time.Second)); !ok {
		t.Fatal("another key was refused")
	}
	if ok, retry := take("ip:1", t0.Add(59*time.Second)); ok || retry != time.Second {
		t.Fatalf("event at 59s: allowed %v, retry after %v; want refused, 1s", ok, retry)
	}
	// A new window opens when the old one ends.
	if l, _ := limited("ip:1", t0.Add(time.Minute)); l {
		t.Fatal("limited after the window ended")
	}
	if ok, _ := take("ip:1", t0.Add(time.Minute)); !ok {
		t.Fatal("first event of the next window refused")
	}
}

func testRateLimitConcurrent(t *testing.T, s storage.Storage) {
	const n, limit = 20, 5
	allowed := make([]bool, n)
	errs := make([]error, n)
	race(n, func(i int) {
		allowed[i], _, errs[i] = s.TakeRateLimitSlot(t.Context(), "k", limit, time.Minute, t0)
	})
	got := 0
	for i := range n {
		wantErr(t, "TakeRateLimitSlot", errs[i], nil)
		if allowed[i] {
			got++
		}
	}
	if got != limit {
		t.Fatalf("%d of %d concurrent events allowed; want %d", got, n, limit)
	}
}

func testJTI(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	wantErr(t, "ConsumeJTI", s.ConsumeJTI(ctx, "j1", t0.Add(time.Minute)), nil)
	wantErr(t, "ConsumeJTI(again)", s.ConsumeJTI(ctx, "j1", t0.Add(time.Minute)), storage.ErrReplay)
	const n = 10
	errs := make([]error, n)
	race(n, func(i int) { errs[i] = s.ConsumeJTI(t.Context(), "j2", t0.Add(time.Minute)) })
	ok := 0
	for _, err := range errs {
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, storage.ErrReplay):
			t.Fatalf("ConsumeJTI: %v", err)
		}
	}
	if ok != 1 {
		t.Fatalf("%d concurrent uses of one jti accepted; want 1", ok)
	}
}

func testAudit(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	events := []storage.AuditEvent{
		{Time: t0, Actor: "admin", Action: "client.create", Target: "web", Details: map[string]string{"ip": "10.0.0.1"}},
		{Time: t0.Add(time.Second), Actor: "u1", Action: "login", Target: "u1"},
		{Time: t0.Add(2 * time.Second), Actor: "u2", Action: "login", Target: "u2", Details: map[string]string{"idp": "auth0", "amr": "fed"}},
	}
	for _, e := range events {
		wantErr(t, "AppendAudit", s.AppendAudit(ctx, e), nil)
	}
	got, err := s.ListAudit(ctx, 2)
	wantErr(t, "ListAudit(2)", err, nil)
	wantEqual(t, "latest two events", got, []storage.AuditEvent{events[2], events[1]})
	got, err = s.ListAudit(ctx, 0)
	wantErr(t, "ListAudit(0)", err, nil)
	wantEqual(t, "all events", got, []storage.AuditEvent{events[2], events[1], events[0]})
}

func testDeleteExpired(t *testing.T, s storage.Storage) {
	ctx := t.Context()
	now := t0.Add(time.Hour)
	live, dead := now.Add(time.Minute), now.Add(-time.Minute)

	// One live and one expired thing of each kind.
	for id, exp := range map[string]time.Time{"ar-live": live, "ar-dead": dead, "ar-otp-dead": live} {
		r := authRequest(id)
		r.ExpiresAt = exp
		wantErr(t, "CreateAuthRequest", s.CreateAuthRequest(ctx, r), nil)
	}
	otpLive, otpDead := otpChallenge("ar-live", "1"), otpChallenge("ar-otp-dead", "2")
	otpLive.ExpiresAt, otpDead.ExpiresAt = live, dead
	wantErr(t, "PutOTPChallenge", s.PutOTPChallenge(ctx, otpLive), nil)
	wantErr(t, "PutOTPChallenge", s.PutOTPChallenge(ctx, otpDead), nil)
	for name, exp := range map[string]time.Time{"code-live": live, "code-dead": dead} {
		c := authCode(name, "u")
		c.ExpiresAt = exp
		issueCode(t, s, c)
	}
	fu := familyUser(t, s)
	fLive, fAbs, fIdle := family("f-live", fu, ""), family("f-abs", fu, ""), family("f-idle", fu, "")
	fAbs.ExpiresAt = dead
	fIdle.IdleTimeout = 30 * time.Minute
	for _, f := range []storage.RefreshFamily{fLive, fAbs, fIdle} {
		wantErr(t, "CreateRefreshFamily", s.CreateRefreshFamily(ctx, f, hash(f.ID)), nil)
	}
	u := mustResolve(t, s, storage.ResolveRequest{Connector: "auth0", Subject: "a"}).User
	atLive, atDead := accessToken("at-live", "", u.ID), accessToken("at-dead", "", u.ID)
	atLive.ExpiresAt, atDead.ExpiresAt = live, dead
	wantErr(t, "RevokeAccessToken", s.RevokeAccessToken(ctx, atLive), nil)
	wantErr(t, "RevokeAccessToken", s.RevokeAccessToken(ctx, atDead), nil)
	wantErr(t, "RevokeGrant", s.RevokeGrant(ctx, "g-live", live), nil)
	wantErr(t, "RevokeGrant", s.RevokeGrant(ctx, "g-dead", dead), nil)
	sLive, sAbs, sIdle := session("s-live", "u", now), session("s-abs", "u", now), session("s-idle", "u", t0.Add(-time.Minute))
	sAbs.ExpiresAt = dead
	for _, sess := range []storage.Session{sLive, sAbs, sIdle} {
		wantErr(t, "CreateSession", s.CreateSession(ctx, sess), nil)
	}
	s.TakeRateLimitSlot(ctx, "rl-dead", 1, time.Minute, t0)
	s.TakeRateLimitSlot(ctx, "rl-live", 1, time.Hour, now.Add(-time.Second))
	wantErr(t, "ConsumeJTI", s.ConsumeJTI(ctx, "j-live", live), nil)
	wantErr(t, "ConsumeJTI", s.ConsumeJTI(ctx, "j-dead", dead), nil)
	wantErr(t, "AppendAudit", s.AppendAudit(ctx, storage.AuditEvent{Time: t0, Action: "kept"}), nil)

	n, err := s.DeleteExpired(ctx, now)
	wantErr(t, "DeleteExpired", err, nil)
	// ar-dead, otp of ar-otp-dead, code-dead, f-abs, f-idle, the
	// revocations of at-dead and g-dead, s-abs, s-idle, rl-dead, j-dead.
	if n != 11 {
		t.Fatalf("DeleteExpired removed %d; want 11", n)
	}
	if n, _ := s.DeleteExpired(ctx, now); n != 0 {
		t.Fatalf("second DeleteExpired removed %d; want 0", n)
	}

	_, err = s.GetAuthRequest(ctx, "ar-dead")
	wantErr(t, "GetAuthRequest(expired)", err, storage.ErrNotFound)
	_, err = s.GetAuthRequest(ctx, "ar-otp-dead")
	wantErr(t, "GetAuthRequest(live, challenge expired)", err, nil)
	_, err = s.CheckOTPChallenge(ctx, "ar-otp-dead", hash("2"), 5, t0)
	wantErr(t, "CheckOTPChallenge(expired)", err, storage.ErrNotFound)
	_, err = s.CheckOTPChallenge(ctx, "ar-live", hash("1"), 5, now)
	wantErr(t, "CheckOTPChallenge(live)", err, nil)
	_, err = s.RedeemAuthCode(ctx, hash("code-dead"), "g", t0)
	wantErr(t, "RedeemAuthCode(expired)", err, storage.ErrNotFound)
	_, err = s.RedeemAuthCode(ctx, hash("code-live"), "g", now)
	wantErr(t, "RedeemAuthCode(live)", err, nil)
	for id, want := range map[string]error{"f-live": nil, "f-abs": storage.ErrNotFound, "f-idle": storage.ErrNotFound} {
		_, err := s.GetRefreshFamilyByToken(ctx, hash(id))
		wantErr(t, "GetRefreshFamilyByToken("+id+")", err, want)
	}
	// A revocation is swept once the tokens it revokes have expired, and
	// their expiry refuses them from then on: the store no longer does.
	wantActive(t, s, "token whose revocation expired", atDead, u)
	wantActive(t, s, "token of a grant whose revocation expired", accessToken("at-g-dead", "g-dead", u.ID), u)
	wantRefused(t, s, "token whose revocation is live", atLive, storage.ErrRevoked)
	wantRefused(t, s, "token of a grant whose revocation is live", accessToken("at-g-live", "g-live", u.ID), storage.ErrRevoked)
	if _, err := s.EndSession(ctx, "s-abs"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("EndSession(expired) = %v; want it swept", err)
	}
	_, err = s.GetSession(ctx, "s-live", now)
	wantErr(t, "GetSession(live)", err, nil)
	if ok, _, _ := s.TakeRateLimitSlot(ctx, "rl-live", 1, time.Hour, now); ok {
		t.Fatal("live rate-limit window was swept")
	}
	wantErr(t, "ConsumeJTI(expired, swept)", s.ConsumeJTI(ctx, "j-dead", live), nil)
	wantErr(t, "ConsumeJTI(live)", s.ConsumeJTI(ctx, "j-live", live), storage.ErrReplay)
	if a, _ := s.ListAudit(ctx, 0); len(a) != 1 {
		t.Fatalf("audit log has %d events after DeleteExpired; want 1", len(a))
	}
}
