package keys_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"

	"github.com/idbroker/broker/keys"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/storage/memory"
	"github.com/idbroker/broker/storage/postgres/pgtest"
)

const (
	rotation    = 24 * time.Hour
	prePublish  = time.Hour
	retireAfter = 2 * time.Hour
	refresh     = 30 * time.Second
	issuer      = "https://auth.example.com"
)

// clock is a settable clock shared by the managers of a test.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) Add(d time.Duration) { c.Set(c.Now().Add(d)) }

func newKEK(t testing.TB) []byte {
	k := make([]byte, keys.KEKSize)
	if _, err := rand.Read(k); err != nil {
		t.Fatal(err)
	}
	return k
}

func quiet() *slog.Logger { return slog.New(slog.DiscardHandler) }

// config is a test configuration; ES256 for ID tokens too unless a test
// needs RS256, because 2048-bit RSA generation is slow under -race.
func config(clk *clock, kek []byte) keys.Config {
	return keys.Config{
		IDTokenAlgorithm:     keys.ES256,
		AccessTokenAlgorithm: keys.ES256,
		RotationPeriod:       rotation,
		PrePublish:           prePublish,
		JWKSMaxAge:           15 * time.Minute,
		RetireAfter:          retireAfter,
		RefreshInterval:      refresh,
		KEKs:                 [][]byte{kek},
		Clock:                clk.Now,
		Logger:               quiet(),
	}
}

func newManager(t testing.TB, store storage.SigningKeys, cfg keys.Config) *keys.Manager {
	t.Helper()
	m, err := keys.New(context.Background(), store, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return m
}

func rows(t testing.TB, store storage.SigningKeys) []storage.SigningKey {
	t.Helper()
	rs, err := store.ListSigningKeys(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func refreshNow(t testing.TB, m *keys.Manager) {
	t.Helper()
	if err := m.Refresh(context.Background()); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
}

// idToken signs an ID token for client "app" living ttl from now.
func idToken(t testing.TB, m *keys.Manager, now time.Time, ttl time.Duration) string {
	t.Helper()
	payload, err := json.Marshal(map[string]any{
		"iss": issuer, "aud": "app", "sub": "8a4c3d0e-6f3b-4f7e-9d3a-1c2b3a4d5e6f",
		"iat": now.Unix(), "exp": now.Add(ttl).Unix(),
	})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := m.Sign(keys.UseIDToken, "", "JWT", payload)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return tok
}

func headerOf(t testing.TB, token string) jose.Header {
	t.Helper()
	obj, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.RS256, jose.ES256, jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	return obj.Signatures[0].Protected
}

func jwksKIDs(t testing.TB, m *keys.Manager) []string {
	t.Helper()
	body, _ := m.JWKS()
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(body, &set); err != nil {
		t.Fatalf("JWKS: %v", err)
	}
	var kids []string
	for _, k := range set.Keys {
		if !k.IsPublic() {
			t.Fatalf("JWKS holds a private key: %s", k.KeyID)
		}
		kids = append(kids, k.KeyID)
	}
	return kids
}

func stateOf(t testing.TB, m *keys.Manager, kid string) keys.State {
	t.Helper()
	infos, err := m.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, i := range infos {
		if i.ID == kid {
			return i.State
		}
	}
	return "absent"
}

// jwksServer serves m's JWKS as the broker would.
func jwksServer(t testing.TB, m *keys.Manager) string {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, etag := m.JWKS()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("ETag", etag)
		w.Write(body)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestKeyLife_PublishedSigningRetiredGone(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	start := clk.Now()
	store := memory.New()
	cfg := config(clk, newKEK(t))
	cfg.IDTokenAlgorithm = keys.RS256
	m := newManager(t, store, cfg)
	jwksURL := jwksServer(t, m)
	verifier := func(skipExpiry bool) *oidc.IDTokenVerifier {
		// A fresh key set each time, as a verifier starting cold would have.
		return oidc.NewVerifier(issuer, oidc.NewRemoteKeySet(ctx, jwksURL), &oidc.Config{
			ClientID: "app", Now: clk.Now, SkipExpiryCheck: skipExpiry,
			SupportedSigningAlgs: m.Algorithms(keys.UseIDToken),
		})
	}

	// At first start the first key signs at once.
	k1 := headerOf(t, idToken(t, m, clk.Now(), time.Hour)).KeyID
	if got := stateOf(t, m, k1); got != keys.StateSigning {
		t.Fatalf("first key is %s, want signing", got)
	}

	// Shortly before the period ends, the next key is published and does
	// not sign yet.
	clk.Set(start.Add(rotation - prePublish - refresh))
	refreshNow(t, m)
	var k2 string
	for _, kid := range jwksKIDs(t, m) {
		if kid != k1 && stateOf(t, m, kid) == keys.StatePublished {
			for _, r := range rows(t, store) {
				if r.ID == kid && r.Use == string(keys.UseIDToken) {
					k2 = kid
				}
			}
		}
	}
	if k2 == "" {
		t.Fatalf("no ID-token key pre-published; JWKS %v", jwksKIDs(t, m))
	}
	if got := headerOf(t, idToken(t, m, clk.Now(), time.Hour)).KeyID; got != k1 {
		t.Fatalf("pre-published key signs: kid %s, want %s", got, k1)
	}

	// A token signed just before the switch, living an hour.
	clk.Set(start.Add(rotation - time.Second))
	last := idToken(t, m, clk.Now(), time.Hour)
	if h := headerOf(t, last); h.KeyID != k1 || h.Algorithm != "RS256" || h.ExtraHeaders["typ"] != "JWT" {
		t.Fatalf("header %+v, want kid %s, RS256, typ JWT", h, k1)
	}

	// At the end of the period the new key signs, with no storage read;
	// the old one is retired and still published.
	clk.Set(start.Add(rotation))
	if got := headerOf(t, idToken(t, m, clk.Now(), time.Hour)).KeyID; got != k2 {
		t.Fatalf("after the switch kid %s, want %s", got, k2)
	}
	if got := stateOf(t, m, k1); got != keys.StateRetired {
		t.Fatalf("old key is %s, want retired", got)
	}
	if !slices.Contains(jwksKIDs(t, m), k1) {
		t.Fatal("retired key left the JWKS before its tokens expired")
	}
	clk.Add(59 * time.Minute)
	if _, err := verifier(false).Verify(ctx, last); err != nil {
		t.Fatalf("token signed before the rotation, within its lifetime: %v", err)
	}
	clk.Add(2 * time.Minute)
	if _, err := verifier(false).Verify(ctx, last); err == nil || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired token: err = %v, want expiry", err)
	}

	// RetireAfter past the switch, the key is gone from the JWKS, before
	// any refresh, and from storage at the next.
	clk.Set(start.Add(rotation + retireAfter))
	if slices.Contains(jwksKIDs(t, m), k1) {
		t.Fatal("key still published past RemoveAt")
	}
	if got := stateOf(t, m, k1); got != keys.StateRemoved {
		t.Fatalf("old key is %s, want removed", got)
	}
	refreshNow(t, m)
	if got := stateOf(t, m, k1); got != "absent" {
		t.Fatalf("old key is %s after refresh, want dropped", got)
	}
	if _, err := verifier(true).Verify(ctx, last); err == nil {
		t.Fatal("token of a removed key still verifies")
	}
	if _, _, err := m.Verify(last); err == nil {
		t.Fatal("Manager.Verify accepts a token of a removed key")
	}
}

// forEachBackend runs test against each storage backend. open returns the
// store of one more replica: the one shared memory store, or a Postgres
// store with a pool of its own on one schema (so only the database is
// shared, as between real replicas).
func forEachBackend(t *testing.T, test func(t *testing.T, open func() storage.SigningKeys)) {
	t.Run("memory", func(t *testing.T) {
		store := memory.New()
		test(t, func() storage.SigningKeys { return store })
	})
	t.Run("postgres", func(t *testing.T) {
		db := pgtest.New(t)
		test(t, func() storage.SigningKeys { return db.Open(t) })
	})
}

func TestRotation_TwoReplicasRacingMakeOneKey(t *testing.T) {
	forEachBackend(t, testTwoReplicasRacingMakeOneKey)
}

func testTwoReplicasRacingMakeOneKey(t *testing.T, open func() storage.SigningKeys) {
	clk := newClock()
	start := clk.Now()
	store := open()
	cfg := config(clk, newKEK(t))
	a := newManager(t, store, cfg)
	b := newManager(t, open(), cfg)
	before := len(rows(t, store))
	if before != 2 {
		t.Fatalf("%d keys after two starts, want 2 (one per use)", before)
	}

	clk.Set(start.Add(rotation - prePublish))
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i, m := range []*keys.Manager{a, b} {
		wg.Go(func() { errs[i] = m.Refresh(context.Background()) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	after := rows(t, store)
	if len(after) != 4 {
		t.Fatalf("%d keys after racing rotations, want 4 (one new per use)", len(after))
	}
	if n := a.KeysCreated() + b.KeysCreated(); n != 4 {
		t.Fatalf("replicas count %d keys created, want 4 (two first keys, two rotations)", n)
	}
	refreshNow(t, a)
	refreshNow(t, b)
	ja, ea := a.JWKS()
	jb, eb := b.JWKS()
	if !bytes.Equal(ja, jb) || ea != eb {
		t.Fatalf("replicas serve different JWKS:\n%s %s\n%s %s", ja, ea, jb, eb)
	}

	// Both switch at the same instant, to the same key.
	clk.Set(start.Add(rotation))
	ka := headerOf(t, idToken(t, a, clk.Now(), time.Minute)).KeyID
	kb := headerOf(t, idToken(t, b, clk.Now(), time.Minute)).KeyID
	if ka != kb {
		t.Fatalf("replicas sign with %s and %s", ka, kb)
	}
}

func TestRun_ReplicaPicksUpRotation(t *testing.T) {
	forEachBackend(t, testReplicaPicksUpRotation)
}

func testReplicaPicksUpRotation(t *testing.T, open func() storage.SigningKeys) {
	clk := newClock()
	cfg := config(clk, newKEK(t))
	a := newManager(t, open(), cfg)
	cfg.RefreshInterval = 10 * time.Millisecond
	cfg.PrePublish = 15*time.Minute + time.Second
	b := newManager(t, open(), cfg)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	if err := a.Rotate(context.Background(), true); err != nil {
		t.Fatal(err)
	}
	want, _ := a.JWKS()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, _ := b.JWKS()
		if bytes.Equal(got, want) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Run did not pick up the other replica's rotation")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestRestart_KeepsKeys(t *testing.T) {
	forEachBackend(t, testRestartKeepsKeys)
}

func testRestartKeepsKeys(t *testing.T, open func() storage.SigningKeys) {
	clk := newClock()
	cfg := config(clk, newKEK(t))
	m1 := newManager(t, open(), cfg)
	tok := idToken(t, m1, clk.Now(), time.Hour)
	body1, etag1 := m1.JWKS()

	m2 := newManager(t, open(), cfg)
	body2, etag2 := m2.JWKS()
	if !bytes.Equal(body1, body2) || etag1 != etag2 {
		t.Fatal("restart changed the JWKS")
	}
	if _, _, err := m2.Verify(tok); err != nil {
		t.Fatalf("token from before the restart: %v", err)
	}
	if got, want := headerOf(t, idToken(t, m2, clk.Now(), time.Hour)).KeyID, headerOf(t, tok).KeyID; got != want {
		t.Fatalf("restart signs with %s, want %s", got, want)
	}
}

func TestNew_RefusesKeysItCannotOpen(t *testing.T) {
	clk := newClock()
	kek := newKEK(t)
	tamper := func(f func([]storage.SigningKey)) func(*testing.T, storage.SigningKeys) {
		return func(t *testing.T, store storage.SigningKeys) {
			_, err := store.UpdateSigningKeys(context.Background(), func(rs []storage.SigningKey) ([]storage.SigningKey, error) {
				f(rs)
				return rs, nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, tc := range []struct {
		name   string
		keks   [][]byte
		change func(*testing.T, storage.SigningKeys)
		is     error
		want   string
	}{
		{name: "wrong KEK", keks: [][]byte{newKEK(t)}, is: keys.ErrUnknownKEK, want: "wrong or missing root secret"},
		{name: "missing KEK", keks: nil, want: "no key-encryption key configured, but storage holds 2 signing keys"},
		{name: "tampered ciphertext", keks: [][]byte{kek}, is: keys.ErrTampered, want: "tampered",
			change: tamper(func(rs []storage.SigningKey) { rs[0].PrivateKey[len(rs[0].PrivateKey)-1] ^= 1 })},
		{name: "swapped ciphertexts", keks: [][]byte{kek}, is: keys.ErrTampered, want: "tampered",
			change: tamper(func(rs []storage.SigningKey) { rs[0].PrivateKey, rs[1].PrivateKey = rs[1].PrivateKey, rs[0].PrivateKey })},
		{name: "relabelled use", keks: [][]byte{kek}, is: keys.ErrTampered, want: "tampered",
			change: tamper(func(rs []storage.SigningKey) { rs[0].Use, rs[1].Use = rs[1].Use, rs[0].Use })},
		{name: "substituted public key", keks: [][]byte{kek}, is: keys.ErrTampered, want: "public JWK does not match",
			change: tamper(func(rs []storage.SigningKey) {
				var jwk jose.JSONWebKey
				if err := jwk.UnmarshalJSON(rs[1].PublicJWK); err != nil {
					panic(err)
				}
				jwk.KeyID = rs[0].ID
				rs[0].PublicJWK, _ = jwk.MarshalJSON()
			})},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := memory.New()
			newManager(t, store, config(clk, kek))
			if tc.change != nil {
				tc.change(t, store)
			}
			before := rows(t, store)
			cfg := config(clk, nil)
			cfg.KEKs = tc.keks
			_, err := keys.New(context.Background(), store, cfg)
			if err == nil {
				t.Fatal("New succeeded")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Errorf("err = %v, want %v", err, tc.is)
			}
			if !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "keys: ") {
				t.Errorf("err = %q, want it to say %q", err, tc.want)
			}
			if tc.is != nil && !strings.Contains(err.Error(), before[0].ID) && !strings.Contains(err.Error(), before[1].ID) {
				t.Errorf("err = %q does not name the key", err)
			}
			if after := rows(t, store); len(after) != len(before) {
				t.Errorf("failed start changed storage: %d keys, had %d", len(after), len(before))
			}
		})
	}
}

func TestSign_KIDAlwaysInJWKS(t *testing.T) {
	clk := newClock()
	start := clk.Now()
	store := memory.New()
	cfg := config(clk, newKEK(t))
	cfg.AccessTokenAlgorithm = keys.EdDSA
	a := newManager(t, store, cfg)
	b := newManager(t, store, cfg) // a replica that refreshes one step late
	seen := map[string]bool{}
	for step := time.Duration(0); step < 3*rotation; step += 10 * time.Minute {
		clk.Set(start.Add(step))
		refreshNow(t, a)
		for _, m := range []*keys.Manager{a, b} {
			for _, use := range []keys.Use{keys.UseIDToken, keys.UseAccessToken} {
				tok, err := m.Sign(use, "", "at+jwt", []byte(`{}`))
				if err != nil {
					t.Fatalf("at +%v: %v", step, err)
				}
				kid := headerOf(t, tok).KeyID
				seen[kid] = true
				if !slices.Contains(jwksKIDs(t, m), kid) {
					t.Fatalf("at +%v: %s token kid %s not in the JWKS", step, use, kid)
				}
				if _, _, err := a.Verify(tok); err != nil {
					t.Fatalf("at +%v: %v", step, err)
				}
			}
		}
		refreshNow(t, b)
	}
	if len(seen) < 6 {
		t.Fatalf("signed with %d keys over three periods, want at least 6", len(seen))
	}
}

func TestRevoke_RemovesKeyAtOnce(t *testing.T) {
	clk := newClock()
	store := memory.New()
	cfg := config(clk, newKEK(t))
	var logs bytes.Buffer
	cfg.Logger = slog.New(slog.NewTextHandler(&logs, nil))
	m := newManager(t, store, cfg)
	old := idToken(t, m, clk.Now(), time.Hour)
	kid := headerOf(t, old).KeyID

	if err := m.Revoke(context.Background(), kid); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(jwksKIDs(t, m), kid) {
		t.Fatal("revoked key still in the JWKS")
	}
	if _, _, err := m.Verify(old); err == nil {
		t.Fatal("token of a revoked key verifies")
	}
	next := idToken(t, m, clk.Now(), time.Hour)
	if got := headerOf(t, next).KeyID; got == kid || !slices.Contains(jwksKIDs(t, m), got) {
		t.Fatalf("after revocation signs with %s", got)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "REVOKED") || !strings.Contains(logs.String(), kid) {
		t.Fatalf("no loud log line naming the key:\n%s", logs.String())
	}
	if err := m.Revoke(context.Background(), "no-such-kid"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("revoking an unknown kid: %v", err)
	}

	// Another replica drops it at its next refresh.
	other := newManager(t, store, cfg)
	if slices.Contains(jwksKIDs(t, other), kid) {
		t.Fatal("revoked key published by another replica")
	}
}

func TestRevoke_PendingSuccessorStillTakesOver(t *testing.T) {
	clk := newClock()
	start := clk.Now()
	store := memory.New()
	m := newManager(t, store, config(clk, newKEK(t)))
	clk.Set(start.Add(rotation - prePublish))
	refreshNow(t, m)
	cur := headerOf(t, idToken(t, m, clk.Now(), time.Minute)).KeyID
	if err := m.Revoke(context.Background(), cur); err != nil {
		t.Fatal(err)
	}
	fresh := headerOf(t, idToken(t, m, clk.Now(), time.Minute)).KeyID
	clk.Set(start.Add(rotation))
	successor := headerOf(t, idToken(t, m, clk.Now(), time.Minute)).KeyID
	if fresh == cur || successor == fresh || successor == cur {
		t.Fatalf("revoked %s, then signed with %s and at the period's end %s; want three keys", cur, fresh, successor)
	}
}

func TestAlgorithmChange_RotatesThroughPrePublication(t *testing.T) {
	clk := newClock()
	start := clk.Now()
	store := memory.New()
	cfg := config(clk, newKEK(t))
	old := newManager(t, store, cfg)
	oldTok, err := old.Sign(keys.UseAccessToken, "", "at+jwt", []byte(`{"sub":"x"}`))
	if err != nil {
		t.Fatal(err)
	}

	cfg.AccessTokenAlgorithm = keys.EdDSA
	m := newManager(t, store, cfg)
	if got := m.Algorithms(keys.UseAccessToken); !slices.Equal(got, []string{"ES256", "EdDSA"}) {
		t.Fatalf("Algorithms = %v during the change, want both", got)
	}
	tok, err := m.Sign(keys.UseAccessToken, "", "at+jwt", []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if h := headerOf(t, tok); h.Algorithm != "ES256" || h.ExtraHeaders["typ"] != "at+jwt" {
		t.Fatalf("signs with %s before the new key's pre-publication is over", h.Algorithm)
	}

	clk.Set(start.Add(prePublish))
	tok, err = m.Sign(keys.UseAccessToken, "", "at+jwt", []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if alg := headerOf(t, tok).Algorithm; alg != "EdDSA" {
		t.Fatalf("signs with %s after pre-publication, want EdDSA", alg)
	}
	if _, _, err := m.Verify(oldTok); err != nil {
		t.Fatalf("token signed before the change: %v", err)
	}

	clk.Set(start.Add(prePublish + retireAfter))
	refreshNow(t, m)
	if got := m.Algorithms(keys.UseAccessToken); !slices.Equal(got, []string{"EdDSA"}) {
		t.Fatalf("Algorithms = %v after retirement, want [EdDSA]", got)
	}
	if _, _, err := m.Verify(oldTok); err == nil {
		t.Fatal("old algorithm's token verifies after its key left")
	}
	// The ID-token chain was not disturbed.
	if got := m.Algorithms(keys.UseIDToken); !slices.Equal(got, []string{"ES256"}) {
		t.Fatalf("ID token algorithms = %v", got)
	}
}

func TestRotate(t *testing.T) {
	clk := newClock()
	store := memory.New()
	m := newManager(t, store, config(clk, newKEK(t)))
	ctx := context.Background()
	k1 := headerOf(t, idToken(t, m, clk.Now(), time.Minute)).KeyID

	if err := m.Rotate(ctx, false); err != nil {
		t.Fatal(err)
	}
	if n := len(rows(t, store)); n != 4 {
		t.Fatalf("%d keys after a rotation, want 4", n)
	}
	if got := headerOf(t, idToken(t, m, clk.Now(), time.Minute)).KeyID; got != k1 {
		t.Fatal("Rotate(false) signs at once")
	}
	if err := m.Rotate(ctx, false); err != nil {
		t.Fatal(err)
	}
	if n := len(rows(t, store)); n != 4 {
		t.Fatalf("a second Rotate(false) made keys: %d", n)
	}
	clk.Add(prePublish)
	k2 := headerOf(t, idToken(t, m, clk.Now(), time.Minute)).KeyID
	if k2 == k1 {
		t.Fatal("no switch after pre-publication")
	}

	if err := m.Rotate(ctx, true); err != nil {
		t.Fatal(err)
	}
	k3 := headerOf(t, idToken(t, m, clk.Now(), time.Minute)).KeyID
	if k3 == k2 || k3 == k1 {
		t.Fatal("Rotate(true) did not switch at once")
	}
	if got := stateOf(t, m, k2); got != keys.StateRetired {
		t.Fatalf("key replaced by Rotate(true) is %s, want retired", got)
	}
}

func TestReencryptAll_ThenNewWithOnlyNewKEK(t *testing.T) {
	clk := newClock()
	store := memory.New()
	oldKEK, newKEK := newKEK(t), newKEK(t)
	m := newManager(t, store, config(clk, oldKEK))
	tok := idToken(t, m, clk.Now(), time.Hour)
	ctx := context.Background()

	n, err := keys.ReencryptAll(ctx, store, [][]byte{oldKEK}, newKEK)
	if err != nil || n != 2 {
		t.Fatalf("ReencryptAll = %d, %v; want 2", n, err)
	}
	if n, err := keys.ReencryptAll(ctx, store, [][]byte{oldKEK}, newKEK); err != nil || n != 0 {
		t.Fatalf("second ReencryptAll = %d, %v; want 0", n, err)
	}
	m2 := newManager(t, store, config(clk, newKEK))
	if _, _, err := m2.Verify(tok); err != nil {
		t.Fatalf("same keys after re-encryption: %v", err)
	}
	if _, err := keys.New(ctx, store, config(clk, oldKEK)); !errors.Is(err, keys.ErrUnknownKEK) {
		t.Fatalf("old KEK alone after re-encryption: %v", err)
	}
	// A replica on both secrets reads the keys; one still on the old
	// secret alone fails loudly and keeps signing with what it holds.
	both := config(clk, newKEK)
	both.KEKs = append(both.KEKs, oldKEK)
	newManager(t, store, both)
	if err := m.Refresh(ctx); !errors.Is(err, keys.ErrUnknownKEK) {
		t.Fatalf("refresh with the old KEK alone: %v", err)
	}
	if _, err := m.Sign(keys.UseIDToken, "", "JWT", []byte(`{}`)); err != nil {
		t.Fatalf("sign after a failed refresh: %v", err)
	}
	if _, err := keys.ReencryptAll(ctx, store, [][]byte{oldKEK}, oldKEK[:16]); err == nil {
		t.Fatal("short KEK accepted")
	}
}

func TestSign_ExtraIDTokenAlgorithm(t *testing.T) {
	clk := newClock()
	cfg := config(clk, newKEK(t))
	cfg.ExtraIDTokenAlgorithms = []string{keys.EdDSA}
	m := newManager(t, memory.New(), cfg)
	def, err := m.Sign(keys.UseIDToken, "", "JWT", []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	ed, err := m.Sign(keys.UseIDToken, keys.EdDSA, "JWT", []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if a, b := headerOf(t, def).Algorithm, headerOf(t, ed).Algorithm; a != "ES256" || b != "EdDSA" {
		t.Fatalf("default signs %s, EdDSA request signs %s", a, b)
	}
	if got := m.Algorithms(keys.UseIDToken); !slices.Equal(got, []string{"ES256", "EdDSA"}) {
		t.Fatalf("Algorithms = %v", got)
	}
	if _, err := m.Sign(keys.UseIDToken, keys.RS256, "JWT", []byte(`{}`)); !errors.Is(err, keys.ErrNoSigningKey) {
		t.Fatalf("RS256 without an RS256 key: %v", err)
	}
}

func TestVerify_Rejects(t *testing.T) {
	clk := newClock()
	m := newManager(t, memory.New(), config(clk, newKEK(t)))
	other := newManager(t, memory.New(), config(clk, newKEK(t)))
	good := idToken(t, m, clk.Now(), time.Hour)
	foreign := idToken(t, other, clk.Now(), time.Hour)
	kid := headerOf(t, good).KeyID

	hmacSigner, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: make([]byte, 32)},
		(&jose.SignerOptions{}).WithHeader("kid", kid))
	if err != nil {
		t.Fatal(err)
	}
	hs, _ := hmacSigner.Sign([]byte(`{}`))
	hsTok, _ := hs.CompactSerialize()

	// The foreign key's signature under our kid.
	parts := strings.Split(good, ".")
	forged := parts[0] + "." + parts[1] + "." + strings.Split(foreign, ".")[2]

	for name, tok := range map[string]string{
		"unknown kid":    foreign,
		"HS256":          hsTok,
		"bad signature":  forged,
		"unsigned":       parts[0] + "." + parts[1] + ".",
		"garbage":        "not a token",
		"JSON serialism": `{"payload":"e30","signatures":[]}`,
	} {
		if _, _, err := m.Verify(tok); err == nil {
			t.Errorf("%s: verified", name)
		} else if !strings.HasPrefix(err.Error(), "keys: ") {
			t.Errorf("%s: error %q", name, err)
		}
	}
	payload, h, err := m.Verify(good)
	if err != nil || h.KeyID != kid || !bytes.Contains(payload, []byte(`"aud":"app"`)) {
		t.Fatalf("good token: %s %+v %v", payload, h, err)
	}
}

func TestNew_RejectsUnsafeConfig(t *testing.T) {
	clk := newClock()
	for name, f := range map[string]func(*keys.Config){
		"prePublish within the JWKS cache": func(c *keys.Config) { c.PrePublish = 15 * time.Minute },
		"no retireAfter":                   func(c *keys.Config) { c.RetireAfter = 0 },
		"HS256":                            func(c *keys.Config) { c.IDTokenAlgorithm = "HS256" },
		"none":                             func(c *keys.Config) { c.AccessTokenAlgorithm = "none" },
		"short KEK":                        func(c *keys.Config) { c.KEKs = [][]byte{make([]byte, 16)} },
		"period within prePublish":         func(c *keys.Config) { c.RotationPeriod = time.Hour },
	} {
		cfg := config(clk, newKEK(t))
		f(&cfg)
		if _, err := keys.New(context.Background(), memory.New(), cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestSign_DroppedExtraDoesNotBecomeDefault(t *testing.T) {
	clk := newClock()
	store := memory.New()
	cfg := config(clk, newKEK(t))
	newManager(t, store, cfg)
	clk.Add(time.Minute)
	withExtra := cfg
	withExtra.ExtraIDTokenAlgorithms = []string{keys.EdDSA}
	newManager(t, store, withExtra) // its EdDSA key starts signing after the ES256 one

	m := newManager(t, store, cfg)
	tok, err := m.Sign(keys.UseIDToken, "", "JWT", []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if alg := headerOf(t, tok).Algorithm; alg != "ES256" {
		t.Fatalf("default ID token algorithm %s, want the configured ES256", alg)
	}
}

func TestRotation_AfterOutage(t *testing.T) {
	clk := newClock()
	start := clk.Now()
	store := memory.New()
	cfg := config(clk, newKEK(t))
	m := newManager(t, store, cfg)
	k1 := headerOf(t, idToken(t, m, clk.Now(), time.Minute)).KeyID

	// No replica ran until ten minutes before the period's end: the
	// successor still gets its full pre-publication, and the current key
	// signs on until then.
	clk.Set(start.Add(rotation - 10*time.Minute))
	refreshNow(t, m)
	clk.Set(start.Add(rotation + 30*time.Minute))
	if got := headerOf(t, idToken(t, m, clk.Now(), time.Minute)).KeyID; got != k1 {
		t.Fatalf("switched to %s before the successor's pre-publication ended", got)
	}
	clk.Set(start.Add(rotation - 10*time.Minute + prePublish))
	k2 := headerOf(t, idToken(t, m, clk.Now(), time.Minute)).KeyID
	if k2 == k1 {
		t.Fatal("no switch after the late successor's pre-publication")
	}

	// Down for longer than a whole period: nothing signs, so a key signs
	// at once on the next start.
	clk.Add(3 * rotation)
	if _, err := m.Sign(keys.UseIDToken, "", "JWT", nil); !errors.Is(err, keys.ErrNoSigningKey) {
		t.Fatalf("signing past every key's period: %v", err)
	}
	m2 := newManager(t, store, cfg)
	k3 := headerOf(t, idToken(t, m2, clk.Now(), time.Minute)).KeyID
	if k3 == k2 || k3 == k1 || !slices.Contains(jwksKIDs(t, m2), k3) {
		t.Fatalf("after the outage signs with %s; JWKS %v", k3, jwksKIDs(t, m2))
	}
	if slices.Contains(jwksKIDs(t, m2), k1) || slices.Contains(jwksKIDs(t, m2), k2) {
		t.Fatal("keys past RemoveAt still published")
	}
}

func TestSigner_AlgorithmMatchesToken(t *testing.T) {
	clk := newClock()
	cfg := config(clk, newKEK(t))
	cfg.IDTokenAlgorithm = keys.EdDSA
	m := newManager(t, memory.New(), cfg)
	s, err := m.Signer(keys.UseIDToken, "")
	if err != nil {
		t.Fatal(err)
	}
	tok, err := s.Sign("JWT", []byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if h := headerOf(t, tok); h.Algorithm != s.Algorithm() || h.KeyID != s.KeyID() || s.Algorithm() != "EdDSA" {
		t.Fatalf("header %s/%s, Signer says %s/%s", h.Algorithm, h.KeyID, s.Algorithm(), s.KeyID())
	}
	if _, err := (keys.Signer{}).Sign("JWT", nil); err == nil {
		t.Fatal("zero Signer signs")
	}
}
