package broker_test

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/storage/postgres"
	"github.com/idbroker/broker/storage/postgres/pgtest"
)

// cachedReplicas are two replicas with exchange and the admin API over
// one database; two hears changes to users through a proxy, which the
// test may cut, while its queries go straight to the database.
type cachedReplicas struct {
	one, two *upstreams
	listen   *testenv.TCPProxy
	admin    string // a bearer token of the admin API at one
}

func newCachedReplicas(t *testing.T) *cachedReplicas {
	t.Helper()
	db := pgtest.New(t)
	u, err := url.Parse(db.DSN)
	if err != nil {
		t.Fatal(err)
	}
	port := u.Port()
	if port == "" {
		port = "5432"
	}
	listen := testenv.NewTCPProxy(t, net.JoinHostPort(u.Hostname(), port))
	u.Host = listen.Addr()
	storeTwo, err := postgres.Open(context.Background(), db.DSN, postgres.ListenDSN(u.String()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { storeTwo.Close() })
	secret := broker.NewEphemeralRootSecret()
	one := newExchange(t, withAdmin, func(c *broker.Config, o *broker.Options) { o.Storage, o.Secret = db.Open(t), secret })
	two := newUpstreamsOf(t, one, withExchange, withAdmin, func(c *broker.Config, o *broker.Options) { o.Storage, o.Secret = storeTwo, secret })
	return &cachedReplicas{one: one, two: two, listen: listen, admin: one.mustClientToken(adminBotID, adminBotSecret, adminAudience)}
}

// exchangeAtTwo exchanges person's upstream token at replica two.
func (r *cachedReplicas) exchangeAtTwo(person testenv.User) tokenResponse {
	r.two.t.Helper()
	return r.two.exchange(url.Values{"subject_token": {r.two.auth0.AccessToken(person, apiAudience)}, "subject_token_type": {accessTokenType}})
}

// subAtTwo exchanges at two, which must issue, and returns the sub.
func (r *cachedReplicas) subAtTwo(person testenv.User) string {
	r.two.t.Helper()
	er := r.exchangeAtTwo(person)
	if er.Status != http.StatusOK {
		r.two.t.Fatalf("exchange at two: %d %s: %s", er.Status, er.Error, er.Description)
	}
	return r.two.verifyAccess(er.AccessToken, apiAudience).Subject
}

// knownAtTwo exchanges the upstream subject's token at two until two
// holds its user in memory, and returns the person and their sub.
func (r *cachedReplicas) knownAtTwo(subject string) (testenv.User, string) {
	r.two.t.Helper()
	person := testenv.User{Sub: subject}
	sub := r.subAtTwo(person)
	r.subAtTwo(person)
	return person, sub
}

// adminAtOne calls replica one's admin API, which must answer 204.
func (r *cachedReplicas) adminAtOne(method, path string, body any) {
	r.one.t.Helper()
	wantStatus(r.one.t, method+" "+path, r.one.adminCall(method, path, r.admin, body, nil), http.StatusNoContent)
}

// A replica answers a known identity from memory, yet a disable, enable,
// delete or re-link made through the other replica's admin API is seen
// by its very next exchange: the change reaches it over LISTEN/NOTIFY.
func TestReplicas_UserChangesReachTheOtherReplicasNextExchange(t *testing.T) {
	r := newCachedReplicas(t)
	person := testenv.User{Sub: "auth0|cached"}
	sub := r.subAtTwo(person)
	for range 3 { // answered from two's cache from here on
		if again := r.subAtTwo(person); again != sub {
			t.Fatalf("sub changed from %s to %s", sub, again)
		}
	}

	r.adminAtOne("POST", "/users/"+sub+"/disable", map[string]any{})
	assertRefused(t, r.exchangeAtTwo(person), http.StatusBadRequest, "invalid_grant")
	r.adminAtOne("POST", "/users/"+sub+"/enable", map[string]any{})
	if again := r.subAtTwo(person); again != sub {
		t.Fatalf("enabled user exchanged as %s, want %s", again, sub)
	}

	// The identity moves to another user: the next exchange is theirs.
	other := r.subAtTwo(testenv.User{Sub: "auth0|other"})
	r.adminAtOne("DELETE", "/users/"+sub+"/identities?connector=auth0&subject="+url.QueryEscape(person.Sub), nil)
	r.adminAtOne("POST", "/users/"+other+"/identities", map[string]string{"connector": "auth0", "subject": person.Sub})
	if got := r.subAtTwo(person); got != other {
		t.Fatalf("re-linked identity exchanged as %s, want %s", got, other)
	}

	// A deleted user is never issued for again: the identity is new.
	r.adminAtOne("DELETE", "/users/"+other, nil)
	if got := r.subAtTwo(person); got == other || got == sub {
		t.Fatalf("deleted user %s still exchanged for", got)
	}
}

// With the connection that hears changes cut, a replica reads every
// resolution, so a user disabled through the other replica is refused by
// its next exchange all the same; when the connection comes back, so
// does the cache, and changes reach it again.
func TestReplicas_CutNotificationsFallBackToReads(t *testing.T) {
	r := newCachedReplicas(t)
	person, sub := r.knownAtTwo("auth0|cut")
	r.listen.Cut()
	r.adminAtOne("POST", "/users/"+sub+"/disable", map[string]any{})
	assertRefused(t, r.exchangeAtTwo(person), http.StatusBadRequest, "invalid_grant")
	r.adminAtOne("POST", "/users/"+sub+"/enable", map[string]any{})
	if again := r.subAtTwo(person); again != sub {
		t.Fatalf("enabled user exchanged as %s, want %s", again, sub)
	}

	r.listen.Restore()
	for deadline := time.Now().Add(5 * time.Second); r.listen.Connections() == 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("two does not listen again")
		}
	}
	for range 3 {
		r.subAtTwo(person)
	}
	r.adminAtOne("POST", "/users/"+sub+"/disable", map[string]any{})
	assertRefused(t, r.exchangeAtTwo(person), http.StatusBadRequest, "invalid_grant")
}

// When the connection that hears changes goes silent (nothing closed,
// nothing arrives), the replica's own heartbeats stop coming back, and
// within a second it reads again: a disable through the other replica is
// refused by it no more than a second late.
func TestReplicas_SilentNotificationsStopTheCacheWithinASecond(t *testing.T) {
	r := newCachedReplicas(t)
	person, sub := r.knownAtTwo("auth0|silent")
	r.listen.Freeze()
	r.adminAtOne("POST", "/users/"+sub+"/disable", map[string]any{})
	frozen := time.Now()
	for {
		er := r.exchangeAtTwo(person)
		if er.Status == http.StatusBadRequest && er.Error == "invalid_grant" {
			break
		}
		if er.Status != http.StatusOK {
			t.Fatalf("exchange at two: %d %s", er.Status, er.Error)
		}
		if time.Since(frozen) > 1500*time.Millisecond {
			t.Fatal("two answered a disabled user from memory for more than the bound")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// The replica that disables a user refuses them from its next request,
// without waiting for the notice: it drops what it holds of them as it
// writes. Here its notices are held back (the connection frozen), which
// used to let it answer the disabled user from memory for up to a second.
func TestReplicas_TheReplicaThatDisablesRefusesAtOnce(t *testing.T) {
	r := newCachedReplicas(t)
	person, sub := r.knownAtTwo("auth0|self")
	adminAtTwo := r.two.mustClientToken(adminBotID, adminBotSecret, adminAudience)
	r.listen.Freeze()
	wantStatus(t, "disable at two", r.two.adminCall("POST", "/users/"+sub+"/disable", adminAtTwo, map[string]any{}, nil), http.StatusNoContent)
	assertRefused(t, r.exchangeAtTwo(person), http.StatusBadRequest, "invalid_grant")
}
