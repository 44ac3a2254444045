package postgres

import (
	"slices"
	"sync"
	"time"

	"github.com/idbroker/broker/storage"
)

// identityCache keeps what the read of a known identity returned
// (resolveOneStatement), so that a replica answers repeated logins and
// exchanges of one identity without a round trip. It may answer only
// while this replica hears every change: the triggers of migration 015
// notify the channel broker_identities of any change to a user or an
// identity, from whichever replica, the CLI or anyone else, and the
// listener (listen.go) drops that user's entries. While the listener
// cannot vouch for the channel, because its session failed or its own
// heartbeat has not come back within maxStale, the cache answers nothing
// and every resolution reads, as without it.
type identityCache struct {
	maxEntries int
	// clock is a monotonic reading (time since the Store opened); live
	// and the heartbeats are measured on it, not on the wall clock.
	clock func() time.Duration

	mu      sync.RWMutex // guards the fields below
	entries map[identityKey]cachedIdentity
	byUser  map[string][]identityKey
	// gen moves on every change heard and every reset, so that a read
	// that started before a change never fills the cache after it
	// (begin, fill).
	gen uint64
	// live is until when (on clock) the cache may answer: the sending
	// time of the last heartbeat heard, plus maxStale.
	live time.Duration
}

// identityKey is an identity's primary key.
type identityKey struct{ connector, subject string }

// cachedIdentity is what resolveOneStatement reads of a known identity.
type cachedIdentity struct {
	user        storage.User
	email, name string // the identity's, as last recorded
	lastLogin   time.Time
}

func newIdentityCache(maxEntries int, clock func() time.Duration) *identityCache {
	return &identityCache{maxEntries: maxEntries, clock: clock,
		entries: map[identityKey]cachedIdentity{}, byUser: map[string][]identityKey{}}
}

// lookup returns the entry of k while the cache is live.
func (c *identityCache) lookup(k identityKey) (cachedIdentity, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.clock() >= c.live {
		return cachedIdentity{}, false
	}
	e, ok := c.entries[k]
	return e, ok
}

// begin returns the generation to give fill for what is read next.
func (c *identityCache) begin() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// fill keeps e for k unless something changed since begin returned gen.
// A full cache makes room by dropping an entry, any.
func (c *identityCache) fill(k identityKey, e cachedIdentity, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	if _, ok := c.entries[k]; ok {
		c.remove(k)
	}
	if len(c.entries) >= c.maxEntries {
		for old := range c.entries {
			c.remove(old)
			break
		}
	}
	c.entries[k] = e
	c.byUser[e.user.ID] = append(c.byUser[e.user.ID], k)
}

// remove drops k; c.mu is held.
func (c *identityCache) remove(k identityKey) {
	userID := c.entries[k].user.ID
	delete(c.entries, k)
	keys := slices.DeleteFunc(c.byUser[userID], func(o identityKey) bool { return o == k })
	if len(keys) == 0 {
		delete(c.byUser, userID)
	} else {
		c.byUser[userID] = keys
	}
}

// changed drops the entries of user userID, whose row or one of whose
// identities changed.
func (c *identityCache) changed(userID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	for _, k := range c.byUser[userID] {
		delete(c.entries, k)
	}
	delete(c.byUser, userID)
}

// reset drops everything and stops answering until a heartbeat is heard:
// changes may have gone unheard.
func (c *identityCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.live = 0
	clear(c.entries)
	clear(c.byUser)
}

// heard extends the cache's life: everything committed before sent, a
// heartbeat's sending time, has been heard.
func (c *identityCache) heard(sent, maxStale time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.live = max(c.live, sent+maxStale)
}
