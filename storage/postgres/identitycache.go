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

	mu sync.RWMutex // guards the fields below
	// current takes every fill. Once it holds maxEntries/2 it becomes
	// previous, whose entries still answer, and the one before is
	// dropped whole: Go does not reuse all of the room of entries
	// deleted from a map, and a cache held at its bound by dropping an
	// entry per fill grew for as long as identities passed through it.
	current, previous identityTable
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
	return &identityCache{maxEntries: maxEntries, clock: clock, current: newIdentityTable(), previous: newIdentityTable()}
}

// identityTable is one generation of an identityCache's entries, indexed
// by user as well, so that a user's change finds them.
type identityTable struct {
	entries map[identityKey]cachedIdentity
	byUser  map[string][]identityKey
}

func newIdentityTable() identityTable {
	return identityTable{entries: map[identityKey]cachedIdentity{}, byUser: map[string][]identityKey{}}
}

// add keeps e for k, which t does not hold.
func (t identityTable) add(k identityKey, e cachedIdentity) {
	t.entries[k] = e
	t.byUser[e.user.ID] = append(t.byUser[e.user.ID], k)
}

// remove drops k, if t holds it.
func (t identityTable) remove(k identityKey) {
	e, ok := t.entries[k]
	if !ok {
		return
	}
	delete(t.entries, k)
	keys := slices.DeleteFunc(t.byUser[e.user.ID], func(o identityKey) bool { return o == k })
	if len(keys) == 0 {
		delete(t.byUser, e.user.ID)
	} else {
		t.byUser[e.user.ID] = keys
	}
}

// removeUser drops the entries of user userID.
func (t identityTable) removeUser(userID string) {
	for _, k := range t.byUser[userID] {
		delete(t.entries, k)
	}
	delete(t.byUser, userID)
}

// lookup returns the entry of k while the cache is live.
func (c *identityCache) lookup(k identityKey) (cachedIdentity, bool) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.clock() >= c.live {
		return cachedIdentity{}, false
	}
	if e, ok := c.current.entries[k]; ok {
		return e, true
	}
	e, ok := c.previous.entries[k]
	return e, ok
}

// begin returns the generation to give fill for what is read next.
func (c *identityCache) begin() uint64 {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.gen
}

// fill keeps e for k unless something changed since begin returned gen.
// A full current generation becomes the previous one, and the one before
// is forgotten.
func (c *identityCache) fill(k identityKey, e cachedIdentity, gen uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if gen != c.gen {
		return
	}
	c.current.remove(k)
	c.previous.remove(k)
	if len(c.current.entries) >= c.maxEntries/2 {
		c.previous, c.current = c.current, newIdentityTable()
	}
	c.current.add(k, e)
}

// changed drops the entries of user userID, whose row or one of whose
// identities changed.
func (c *identityCache) changed(userID string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.current.removeUser(userID)
	c.previous.removeUser(userID)
}

// reset drops everything and stops answering until a heartbeat is heard:
// changes may have gone unheard.
func (c *identityCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.live = 0
	c.current, c.previous = newIdentityTable(), newIdentityTable()
}

// heard extends the cache's life: everything committed before sent, a
// heartbeat's sending time, has been heard.
func (c *identityCache) heard(sent, maxStale time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.live = max(c.live, sent+maxStale)
}
