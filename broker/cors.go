package broker

import (
	"context"
	"sync"
	"time"
)

// storedOriginsTTL bounds how long an origin added to or removed from a
// stored client takes to be honoured by CORS on every replica.
const storedOriginsTTL = 30 * time.Second

// originCache holds the origins stored clients allow, read at most once
// per storedOriginsTTL so that a CORS preflight is not a storage read.
type originCache struct {
	mu      sync.Mutex // guards the fields below
	origins map[string]bool
	expires time.Time
}

// originAllowed reports whether a client registered origin: the broker
// answers CORS only for those, never with "*", so a browser never sends
// credentials cross-origin to a site nobody registered.
func (b *Broker) originAllowed(origin string) bool {
	if b.corsOrigins[origin] {
		return true
	}
	c := &b.storedOrigins
	c.mu.Lock()
	defer c.mu.Unlock()
	if now := b.now(); now.After(c.expires) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		clients, err := b.store.ListClients(ctx)
		if err != nil {
			// Fail closed; ask again on the next preflight.
			b.log.Warn("CORS: stored clients unavailable", "err", err)
			return false
		}
		c.origins = map[string]bool{}
		for _, cl := range clients {
			for _, o := range cl.AllowedOrigins {
				c.origins[o] = true
			}
		}
		c.expires = now.Add(storedOriginsTTL)
	}
	return c.origins[origin]
}
