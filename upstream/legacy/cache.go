package legacy

import (
	"container/list"
	"context"
	"fmt"
	"maps"
	"sync"
	"time"

	"github.com/idbroker/broker/upstream"
)

// tokenKey is the SHA-256 of a token: what the cache and the in-flight
// calls are keyed by, so no token is kept in memory beyond its request.
type tokenKey = [32]byte

// cache keeps successful answers for ttl and makes concurrent asks about
// the same token share one call to the legacy service.
type cache struct {
	ttl   time.Duration // <= 0: nothing is kept
	size  int
	clock func() time.Time

	mu      sync.Mutex // guards the fields below
	entries map[tokenKey]*list.Element
	// order holds *entry oldest first. Every entry lives for the same
	// ttl, so the oldest is also the first to expire, and evicting from
	// the front serves both the expiry sweep and the size bound; an LRU
	// would buy nothing, as a hit never extends an entry's life.
	order    *list.List
	inflight map[tokenKey]*call
}

type entry struct {
	key     tokenKey
	id      upstream.Identity
	expires time.Time
}

// call is one ask of the legacy service that several callers may wait on.
type call struct {
	done chan struct{} // closed once id and err are set
	id   upstream.Identity
	err  error
}

func newCache(ttl time.Duration, size int, clock func() time.Time) *cache {
	return &cache{
		ttl:      ttl,
		size:     size,
		clock:    clock,
		entries:  map[tokenKey]*list.Element{},
		order:    list.New(),
		inflight: map[tokenKey]*call{},
	}
}

// do returns the cached identity for key, or the result of fetch, which
// runs once for all callers asking about key at the same time. fetch runs
// detached from ctx's cancellation (it keeps its values), so a caller
// that gives up does not fail the others; fetch must bound its own time.
// A caller whose ctx ends stops waiting with upstream.ErrUnavailable.
func (c *cache) do(ctx context.Context, key tokenKey, fetch func(context.Context) (upstream.Identity, error)) (upstream.Identity, error) {
	c.mu.Lock()
	if id, ok := c.getLocked(key, c.clock()); ok {
		c.mu.Unlock()
		return cloneIdentity(id), nil
	}
	cl, ok := c.inflight[key]
	if !ok {
		cl = &call{done: make(chan struct{})}
		c.inflight[key] = cl
		go c.run(context.WithoutCancel(ctx), key, cl, fetch)
	}
	c.mu.Unlock()

	select {
	case <-cl.done:
		if cl.err != nil {
			return upstream.Identity{}, cl.err
		}
		return cloneIdentity(cl.id), nil
	case <-ctx.Done():
		return upstream.Identity{}, fmt.Errorf("legacy: waiting for the legacy service: %w: %w", context.Cause(ctx), upstream.ErrUnavailable)
	}
}

func (c *cache) run(ctx context.Context, key tokenKey, cl *call, fetch func(context.Context) (upstream.Identity, error)) {
	id, err := fetch(ctx)
	c.mu.Lock()
	// Stored and removed from inflight under one lock, so a new caller
	// finds either the call or the entry, never neither.
	if err == nil {
		c.putLocked(key, id, c.clock())
	}
	delete(c.inflight, key)
	cl.id, cl.err = id, err
	c.mu.Unlock()
	close(cl.done)
}

// getLocked returns the live entry for key, dropping it if expired.
func (c *cache) getLocked(key tokenKey, now time.Time) (upstream.Identity, bool) {
	el, ok := c.entries[key]
	if !ok {
		return upstream.Identity{}, false
	}
	e := el.Value.(*entry)
	if !now.Before(e.expires) {
		c.removeLocked(el)
		return upstream.Identity{}, false
	}
	return e.id, true
}

// putLocked stores id for key, first sweeping expired entries and, when
// full, the oldest ones.
func (c *cache) putLocked(key tokenKey, id upstream.Identity, now time.Time) {
	if c.ttl <= 0 {
		return
	}
	if el, ok := c.entries[key]; ok {
		c.removeLocked(el)
	}
	for el := c.order.Front(); el != nil; el = c.order.Front() {
		if len(c.entries) < c.size && now.Before(el.Value.(*entry).expires) {
			break
		}
		c.removeLocked(el)
	}
	c.entries[key] = c.order.PushBack(&entry{key: key, id: id, expires: now.Add(c.ttl)})
}

func (c *cache) removeLocked(el *list.Element) {
	delete(c.entries, el.Value.(*entry).key)
	c.order.Remove(el)
}

// cloneIdentity copies id so that no caller can change what the cache or
// another caller holds: Claims is the decoded answer, maps and slices.
func cloneIdentity(id upstream.Identity) upstream.Identity {
	if id.Claims != nil {
		id.Claims = cloneJSON(id.Claims).(map[string]any)
	}
	return id
}

func cloneJSON(v any) any {
	switch v := v.(type) {
	case map[string]any:
		m := maps.Clone(v)
		for k, x := range m {
			m[k] = cloneJSON(x)
		}
		return m
	case []any:
		s := make([]any, len(v))
		for i, x := range v {
			s[i] = cloneJSON(x)
		}
		return s
	}
	return v
}
