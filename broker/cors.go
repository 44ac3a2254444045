package broker

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// storedClientsTTL bounds how long a change to a stored client made on
// another replica takes to reach this replica's CORS answers (an origin
// added or removed) and its discovery document (a client allowed
// client_credentials).
const storedClientsTTL = 30 * time.Second

// storedClientsRetry is how soon stored clients are read again after a
// failed read.
const storedClientsRetry = 5 * time.Second

// storedClientCache holds what the broker answers from stored clients
// without a storage read per request: the origins they allow. Reading
// them also notes their grant types for discovery (noteClient).
type storedClientCache struct {
	expires atomic.Int64 // Unix nanoseconds; 0 before the first read
	mu      sync.Mutex   // guards origins, and one read at a time
	origins map[string]bool
}

// refreshStoredClients reads the stored clients when the cache is older
// than storedClientsTTL. A failed read empties the origins, so CORS fails
// closed, and is retried after storedClientsRetry, so a store that is
// down costs one read per interval rather than one per request.
func (b *Broker) refreshStoredClients() error {
	c := &b.storedClients
	if b.now().UnixNano() < c.expires.Load() {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	now := b.now()
	if now.UnixNano() < c.expires.Load() {
		return nil // read by the request that held the lock
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	clients, err := b.store.ListClients(ctx)
	if err != nil {
		c.origins = nil
		c.expires.Store(now.Add(storedClientsRetry).UnixNano())
		return fmt.Errorf("list stored clients: %w", err)
	}
	origins := map[string]bool{}
	for _, cl := range clients {
		for _, o := range cl.AllowedOrigins {
			origins[o] = true
		}
		b.noteClient(cl.GrantTypes)
	}
	c.origins = origins
	c.expires.Store(now.Add(storedClientsTTL).UnixNano())
	return nil
}

// originAllowed reports whether a client registered origin: the broker
// answers CORS only for those, never with "*", so a browser never sends
// credentials cross-origin to a site nobody registered.
func (b *Broker) originAllowed(origin string) bool {
	if b.corsOrigins[origin] {
		return true
	}
	if err := b.refreshStoredClients(); err != nil {
		b.log.Warn("CORS: stored clients unavailable", "err", err)
	}
	c := &b.storedClients
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.origins[origin]
}
