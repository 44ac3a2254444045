package broker_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/storage/memory"
	"github.com/idbroker/broker/storage/postgres/pgtest"
	"github.com/idbroker/broker/upstream/legacy"
)

// legacyID is the legacy connector's id in these tests: the platform's own
// OTP session service (context/000: clj-pg-wrapper behind platform-api).
const legacyID = "platform"

// legacyTTL is the legacy connector's cache lifetime in these tests.
const legacyTTL = time.Minute

// legacyEnv is a broker with the fake upstreams, the exchanging clients
// and a legacy session service.
type legacyEnv struct {
	*upstreams
	legacy *testenv.Legacy
}

// newLegacyEnv configures the legacy connector as the migration guide
// does: trustEmail, with the service's emailVerified field vouching for
// the address (an OTP service's addresses are proved by every login).
// That is what lets the person's later OTP or Auth0 login find the user
// a legacy token created; without the field, a legacy email is never
// verified and those logins would make a second user.
func newLegacyEnv(t *testing.T, opts ...envOption) *legacyEnv {
	f := testenv.NewLegacy(t)
	withLegacy := func(c *broker.Config, o *broker.Options) {
		c.Connectors = append(c.Connectors, broker.ConnectorConfig{
			ID: legacyID, Type: "legacy", Name: legacyID, Timeout: 300 * time.Millisecond,
			Config: &legacy.Config{ValidateURL: f.ValidateURL,
				TrustEmail: true, Fields: legacy.Fields{EmailVerified: "emailVerified"}, CacheTTL: legacyTTL},
		})
	}
	u := newUpstreams(t, nil, append([]envOption{withExchange, withLegacy}, opts...)...)
	return &legacyEnv{upstreams: u, legacy: f}
}

// withStore runs the broker on s.
func withStore(s storage.Storage) envOption {
	return func(c *broker.Config, o *broker.Options) { o.Storage = s }
}

// eachStore runs test on the memory store and, when the test database is
// configured, on Postgres: keeping the legacy UUID is a storage promise.
func eachStore(t *testing.T, test func(t *testing.T, store storage.Storage)) {
	t.Run("memory", func(t *testing.T) { test(t, memory.New()) })
	t.Run("postgres", func(t *testing.T) { test(t, pgtest.New(t).Open(t)) })
}

// legacyUser is a person of the legacy service whose email it vouches for.
func legacyUser(id, email, name string) testenv.LegacyUser {
	return testenv.LegacyUser{UserID: id, Email: email, Name: name, Extra: map[string]any{"emailVerified": true}}
}

// legacyForm is an exchange of a legacy session token, as a backend that
// received X-User-Token sends it.
func legacyForm(token string) url.Values {
	return url.Values{"subject_token": {token}, "subject_token_type": {accessTokenType}, "connector": {legacyID}}
}

// mustExchangeLegacy exchanges a legacy token and returns the sub of the
// broker token, verified as a downstream service would.
func (e *legacyEnv) mustExchangeLegacy(token string) string {
	e.t.Helper()
	er := e.exchange(legacyForm(token))
	if er.Status != http.StatusOK || er.AccessToken == "" {
		e.t.Fatalf("legacy exchange: %d %s: %s", er.Status, er.Error, er.Description)
	}
	c := e.verifyAccess(er.AccessToken, apiAudience)
	if c.IDP != legacyID || c.ClientID != exchangerID {
		e.t.Errorf("claims %+v", c)
	}
	e.assertNotLogged(token, er.AccessToken)
	return c.Subject
}

func TestLegacyExchange_ImportedUserKeepsTheirUUID(t *testing.T) {
	eachStore(t, func(t *testing.T, store storage.Storage) {
		e := newLegacyEnv(t, withStore(store))
		ctx := context.Background()
		const (
			withIdentity = "d75f5ee0-d9be-11ef-9dab-52d74335e147"
			byEmail      = "0b9c2f4e-8a1d-4c3b-9e6f-5a4d3c2b1a09"
		)
		// One imported with the legacy identity (the guide's line), one
		// with a verified email alone, which the trusted legacy
		// connector links by.
		if _, err := e.store.ImportUsers(ctx, []storage.ImportUser{
			{ID: withIdentity, Email: "jordan@ey.com", EmailVerified: true, Name: "Jordan Austin",
				Identities: []storage.ImportIdentity{{Connector: legacyID, Subject: withIdentity}}},
			{ID: byEmail, Email: "sam@ey.com", EmailVerified: true, Name: "Sam Lee"},
		}, time.Now()); err != nil {
			t.Fatal(err)
		}
		for _, p := range []testenv.LegacyUser{
			legacyUser(withIdentity, "jordan@ey.com", "Jordan Austin"),
			legacyUser(byEmail, "sam@ey.com", "Sam Lee"),
		} {
			if sub := e.mustExchangeLegacy(e.legacy.Issue(p)); sub != p.UserID {
				t.Errorf("imported user %s exchanged to sub %s", p.UserID, sub)
			}
			ids, err := e.store.ListIdentities(ctx, p.UserID)
			if err != nil || len(ids) != 1 || ids[0].Connector != legacyID || ids[0].Subject != p.UserID {
				t.Errorf("identities of %s: %+v, %v; want the one legacy identity", p.UserID, ids, err)
			}
		}
		if strings.Contains(e.logText(), "user provisioned") {
			t.Error("exchanging an imported user's token provisioned a user")
		}
	})
}

// A legacy user the broker has never seen is created with the legacy
// UUID, and the same person later signing in by OTP or through Auth0 is
// that user.
func TestLegacyExchange_FirstSightKeepsTheLegacyUUID(t *testing.T) {
	eachStore(t, func(t *testing.T, store storage.Storage) {
		e := newLegacyEnv(t, withStore(store))
		const id = "5c3e1a7b-9d2f-4e8a-b6c4-1f0e9d8c7b6a"
		const email = "riley@ey.com" // no connector's domain: the login page sends a code
		if sub := e.mustExchangeLegacy(e.legacy.Issue(legacyUser(id, email, "Riley Chen"))); sub != id {
			t.Fatalf("first-sight legacy user got sub %s, want the legacy UUID %s", sub, id)
		}
		u, err := e.store.GetUser(context.Background(), id)
		if err != nil || u.Email != email || !u.EmailVerified || u.Name != "Riley Chen" {
			t.Fatalf("user %s: %+v, %v", id, u, err)
		}
		// A new session token of the same user is the same user.
		if sub := e.mustExchangeLegacy(e.legacy.Issue(legacyUser(id, email, "Riley Chen"))); sub != id {
			t.Errorf("second session: sub %s, want %s", sub, id)
		}

		otp := e.verifyIDToken(e.redeem(e.login(e.browser(), email, authRequest{})).IDToken, broker.DevClientID)
		if otp.Subject != id {
			t.Errorf("OTP login with the verified email: sub %s, want the legacy UUID %s", otp.Subject, id)
		}
		e.auth0.SetNextUser(testenv.User{Sub: "waad|riley", Email: email, EmailVerified: true, Name: "Riley Chen"})
		if _, c := e.mustLoginViaButton("auth0"); c.Subject != id {
			t.Errorf("Auth0 login with the verified email: sub %s, want the legacy UUID %s", c.Subject, id)
		}
		ids, _ := e.store.ListIdentities(context.Background(), id)
		if len(ids) != 3 {
			t.Errorf("user %s has identities %+v; want legacy, otp and auth0", id, ids)
		}
	})
}

// Every refusal of the legacy service, and every answer that names no
// usable identity, refuses the exchange with the error RFC 8693 section
// 2.2.2 gives (or 503 when nothing could be decided) and writes nothing.
func TestLegacyExchange_RefusalsWriteNothing(t *testing.T) {
	e := newLegacyEnv(t)
	for _, tc := range []struct {
		name   string
		id     string
		fail   func(f *testenv.Legacy, token string)
		status int
		code   string
	}{
		{"401", "11111111-1111-4111-8111-111111111111", func(f *testenv.Legacy, _ string) { f.FailWith(http.StatusUnauthorized) },
			http.StatusBadRequest, "invalid_request"},
		{"403", "22222222-2222-4222-8222-222222222222", func(f *testenv.Legacy, _ string) { f.FailWith(http.StatusForbidden) },
			http.StatusBadRequest, "invalid_request"},
		{"ended session", "33333333-3333-4333-8333-333333333333", func(f *testenv.Legacy, tok string) { f.Revoke(tok) },
			http.StatusBadRequest, "invalid_request"},
		{"500", "44444444-4444-4444-8444-444444444444", func(f *testenv.Legacy, _ string) { f.FailWith(http.StatusInternalServerError) },
			http.StatusServiceUnavailable, "temporarily_unavailable"},
		{"timeout", "55555555-5555-4555-8555-555555555555", func(f *testenv.Legacy, _ string) { f.Hang() },
			http.StatusServiceUnavailable, "temporarily_unavailable"},
		{"garbage JSON", "66666666-6666-4666-8666-666666666666", func(f *testenv.Legacy, _ string) { f.Garbage() },
			http.StatusBadRequest, "invalid_request"},
		{"userId not a UUID", "77777777-7777-4777-8777-777777777777", func(f *testenv.Legacy, _ string) { f.BadUserID() },
			http.StatusBadRequest, "invalid_request"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok := e.legacy.Issue(legacyUser(tc.id, tc.name+"@ey.com", ""))
			tc.fail(e.legacy, tok)
			defer e.legacy.Recover()
			calls := e.legacy.Calls()
			er := e.exchange(legacyForm(tok))
			assertRefused(t, er, tc.status, tc.code)
			if e.legacy.Calls() != calls+1 {
				t.Errorf("%d calls to the legacy service, want 1", e.legacy.Calls()-calls)
			}
			if _, err := e.store.GetUser(context.Background(), tc.id); err != storage.ErrNotFound {
				t.Errorf("GetUser(%s) after a refusal: %v; want not found", tc.id, err)
			}
			e.assertNotLogged(tok)
		})
	}
	if strings.Contains(e.logText(), "user provisioned") {
		t.Error("a refused legacy exchange provisioned a user")
	}
}

// A legacy token is only ever verified by the legacy connector, named by
// the client, as an access token.
func TestLegacyExchange_TokenMustBeNamedAndTyped(t *testing.T) {
	e := newLegacyEnv(t)
	const id = "8a7b6c5d-4e3f-4a1b-9c8d-7e6f5a4b3c2d"
	tok := e.legacy.Issue(legacyUser(id, "quinn@ey.com", ""))
	for _, tc := range []struct {
		name  string
		form  url.Values
		calls int // to the legacy service
	}{
		{"no connector", url.Values{"subject_token": {tok}, "subject_token_type": {accessTokenType}}, 0},
		{"a JWT connector", url.Values{"subject_token": {tok}, "subject_token_type": {accessTokenType}, "connector": {"auth0"}}, 0},
		{"as an ID token", url.Values{"subject_token": {tok}, "subject_token_type": {idTokenType}, "connector": {legacyID}}, 0},
		{"as an actor", url.Values{"subject_token": {e.auth0.AccessToken(testenv.User{Sub: "auth0|x"}, apiAudience)},
			"subject_token_type": {accessTokenType}, "actor_token": {tok}, "actor_token_type": {accessTokenType}}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := e.legacy.Calls()
			assertRefused(t, e.exchange(tc.form), http.StatusBadRequest, "invalid_request")
			if n := e.legacy.Calls() - calls; n != tc.calls {
				t.Errorf("%d calls to the legacy service, want %d", n, tc.calls)
			}
		})
	}
	if _, err := e.store.GetUser(context.Background(), id); err != storage.ErrNotFound {
		t.Errorf("GetUser(%s): %v; want not found", id, err)
	}
}

// A user imported with the legacy UUID but neither the legacy identity nor
// a verified email to link by is not taken over by naming its id, and
// not guessed at: the exchange is refused (not a 503), and nothing is
// written.
func TestLegacyExchange_ImportedUserWithoutALinkIsRefused(t *testing.T) {
	e := newLegacyEnv(t)
	ctx := context.Background()
	const id = "9f8e7d6c-5b4a-4938-8271-605f4e3d2c1b"
	if _, err := e.store.ImportUsers(ctx, []storage.ImportUser{{ID: id, Email: "alex@ey.com", Name: "Alex"}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	er := e.exchange(legacyForm(e.legacy.Issue(legacyUser(id, "alex@ey.com", "Alex"))))
	assertRefused(t, er, http.StatusBadRequest, "invalid_request")
	if ids, err := e.store.ListIdentities(ctx, id); err != nil || len(ids) != 0 {
		t.Errorf("identities of %s: %+v, %v; want none", id, ids, err)
	}
	if !strings.Contains(e.logText(), "exists without this identity") {
		t.Error("the log does not say why")
	}
}

// Answers are reused for the cache's TTL, so a backend's traffic is not
// the legacy service's; after it, the service is asked again.
func TestLegacyExchange_CacheSparesTheLegacyService(t *testing.T) {
	e := newLegacyEnv(t)
	const id = "2d4f6a8c-1b3e-4c5d-8e7f-9a0b1c2d3e4f"
	tok := e.legacy.Issue(legacyUser(id, "casey@ey.com", "Casey"))
	e.mustExchangeLegacy(tok)
	e.mustExchangeLegacy(tok)
	if n := e.legacy.Calls(); n != 1 {
		t.Fatalf("%d calls for two exchanges within the TTL, want 1", n)
	}
	e.clock.Advance(legacyTTL + time.Second)
	if sub := e.exchange(legacyForm(tok)); sub.Status != http.StatusOK {
		t.Fatalf("exchange after the TTL: %d %s", sub.Status, sub.Error)
	}
	if n := e.legacy.Calls(); n != 2 {
		t.Fatalf("%d calls after the TTL, want 2", n)
	}
}

func TestLegacyConfig(t *testing.T) {
	const base = `
issuer: https://auth.example.com
connectors:
  - { id: otp, type: otp }
  - id: platform
    type: legacy
`
	env := func(string) (string, bool) { return "s3cret", true }
	c, err := broker.ParseConfig([]byte(base+`    validateURL: https://platform-api.internal/public/auth/validate
    method: POST
    tokenIn: header:X-User-Token
    fields: { userId: userId, email: email, name: name, emailVerified: emailVerified }
    timeout: 2s
    cacheTTL: 30s
    cacheSize: 5000
    clientID: broker
    clientSecret: ${LEGACY_SECRET}
    trustEmail: true
`), env)
	if err != nil {
		t.Fatal(err)
	}
	cc, lc := c.Connectors[1], c.Connectors[1].Config.(*legacy.Config)
	if lc.ValidateURL != "https://platform-api.internal/public/auth/validate" || lc.Method != "POST" || lc.TokenIn != "header:X-User-Token" ||
		lc.Fields != (legacy.Fields{UserID: "userId", Email: "email", Name: "name", EmailVerified: "emailVerified"}) ||
		cc.Timeout != 2*time.Second || lc.CacheTTL != 30*time.Second || lc.CacheSize != 5000 ||
		lc.ClientID != "broker" || lc.ClientSecret != "s3cret" || !lc.TrustEmail {
		t.Errorf("parsed %+v %+v", cc, lc)
	}
	for _, tc := range []struct{ name, yaml, want string }{
		{"no validateURL", "    trustEmail: true\n", "validate URL"},
		{"relative validateURL", "    validateURL: /public/auth/validate\n", "not an absolute http(s) URL"},
		{"method PUT", "    validateURL: https://p/v\n    method: PUT\n", `method "PUT" is not GET or POST`},
		{"token in the query", "    validateURL: https://p/v\n    tokenIn: query:token\n", "is not header:<name>, bearer, body:<field> or form:<field>"},
		{"body with GET", "    validateURL: https://p/v\n    method: GET\n    tokenIn: body:token\n", "needs method POST"},
		{"negative timeout", "    validateURL: https://p/v\n    timeout: -1s\n", "is negative"},
		{"secret without id", "    validateURL: https://p/v\n    clientSecret: x\n", "no client id"},
		{"domains", "    validateURL: https://p/v\n    domains: [ey.com]\n", "domains do not apply"},
		{"misspelt field", "    validateURL: https://p/v\n    fields: { userID: id }\n", "userID"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := broker.ParseConfig([]byte(base+tc.yaml), env)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "config: ") {
				t.Errorf("err = %v, want one about %q", err, tc.want)
			}
		})
	}
}
