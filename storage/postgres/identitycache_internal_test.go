package postgres

import (
	"strconv"
	"testing"
	"time"

	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/storage"
)

// identityCacheBytesBound is what a cache of identityCacheEntries may
// hold, however many identities pass through it.
const identityCacheBytesBound = 10 << 20

// A replica that sees far more identities than it keeps holds the same
// memory all day: a Go map that is held at its bound by deleting an
// arbitrary entry per insert does not reuse all of their room (this
// cache held 13.5 MiB after two million identities, 15.5 after four,
// and went on growing; now 8.6 throughout).
func TestIdentityCache_MemoryStaysBoundedAsIdentitiesPassThrough(t *testing.T) {
	c := newIdentityCache(identityCacheEntries, func() time.Duration { return 0 })
	const passing = 100 * identityCacheEntries
	grown := testenv.HeapGrowth(func() {
		for i := range passing {
			n := strconv.Itoa(i)
			user := storage.User{ID: "0190a6f2-7c3b-7e4d-8a5f-" + n, Email: "user" + n + "@example.com", Name: "User " + n}
			c.fill(identityKey{"auth0", "auth0|" + n}, cachedIdentity{user: user, email: user.Email, name: user.Name}, c.begin())
		}
	})
	c.mu.RLock()
	held := len(c.current.entries) + len(c.previous.entries)
	c.mu.RUnlock()
	t.Logf("%d identities through the cache: %d held in %.1f MiB", passing, held, float64(grown)/(1<<20))
	if held > identityCacheEntries {
		t.Errorf("%d identities held, want at most %d", held, identityCacheEntries)
	}
	if grown > identityCacheBytesBound {
		t.Errorf("%.1f MiB held, want at most %.1f MiB", float64(grown)/(1<<20), float64(identityCacheBytesBound)/(1<<20))
	}
}

// A change heard for a user drops its identities from both generations:
// one filled before the cache moved on still answers until then, and a
// disable must not leave it answering.
func TestIdentityCache_AChangeDropsTheUserFromTheOlderGenerationToo(t *testing.T) {
	c := newIdentityCache(4, func() time.Duration { return 0 })
	c.heard(0, time.Hour)
	alice := identityKey{"auth0", "alice"}
	c.fill(alice, cachedIdentity{user: storage.User{ID: "u-alice"}}, c.begin())
	for _, s := range []string{"bob", "carol"} {
		c.fill(identityKey{"auth0", s}, cachedIdentity{user: storage.User{ID: "u-" + s}}, c.begin())
	}
	if _, ok := c.lookup(alice); !ok {
		t.Fatal("an identity of the older generation no longer answers")
	}
	c.changed("u-alice")
	if e, ok := c.lookup(alice); ok {
		t.Fatalf("a changed user's identity still answers: %+v", e.user)
	}
	if _, ok := c.lookup(identityKey{"auth0", "bob"}); !ok {
		t.Error("another user's identity was dropped with the changed one")
	}
}
