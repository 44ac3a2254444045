package clients

import (
	"sync"
	"sync/atomic"
	"time"
)

// recheck is how long a successful client authentication lets the same
// client's next requests from the same address on this replica skip the
// failure count in storage: a busy machine client would otherwise pay a
// store round trip on every token request for a check that is about
// guessing. A failure there forgets the success at once, so a guesser
// gets at most the attempts already in flight per success, and every one
// of them is still counted.
const recheck = time.Second

// maxSuccesses is how many entries Successes holds before it drops those
// too old to matter.
const maxSuccesses = 10_000

// Successes remembers when each confidential client last authenticated
// from each address on this replica, by a key the caller makes of the
// two. Only clients that proved themselves get an entry, and stale ones
// are dropped once there are many, so a client used from many addresses
// cannot grow it for ever. It does not count failures; storage does. The
// zero value is ready to use.
type Successes struct {
	last sync.Map     // key → *atomic.Int64, Unix nanoseconds; 0 after a failure
	size atomic.Int64 // entries in last
}

// Fresh reports whether key authenticated less than a second before now
// and has not failed since.
func (c *Successes) Fresh(key string, now time.Time) bool {
	v, ok := c.last.Load(key)
	return ok && freshAt(v.(*atomic.Int64), now)
}

func freshAt(v *atomic.Int64, now time.Time) bool {
	at := v.Load()
	return at != 0 && now.Sub(time.Unix(0, at)) < recheck
}

// Succeeded records that key authenticated at now.
func (c *Successes) Succeeded(key string, now time.Time) {
	v, ok := c.last.Load(key)
	if !ok {
		var loaded bool
		if v, loaded = c.last.LoadOrStore(key, new(atomic.Int64)); !loaded && c.size.Add(1) > maxSuccesses {
			c.dropStale(now)
		}
	}
	v.(*atomic.Int64).Store(now.UnixNano())
}

// Forget ends the shortcut a recent success of key gave.
func (c *Successes) Forget(key string) {
	if v, ok := c.last.Load(key); ok {
		v.(*atomic.Int64).Store(0)
	}
}

// dropStale removes the entries that no longer let anything skip the
// store. A success recorded into an entry as it goes is lost, which
// costs that client one store round trip.
func (c *Successes) dropStale(now time.Time) {
	c.last.Range(func(k, v any) bool {
		if !freshAt(v.(*atomic.Int64), now) && c.last.CompareAndDelete(k, v) {
			c.size.Add(-1)
		}
		return true
	})
}
