package legacy

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/synctest"
	"time"

	"github.com/idbroker/broker/internal/testenv"
	"github.com/idbroker/broker/upstream"
)

func TestCache_KeyIsTheTokensHashNotTheToken(t *testing.T) {
	f := testenv.NewLegacy(t)
	c, err := New(Config{ID: "platform", ValidateURL: f.ValidateURL})
	if err != nil {
		t.Fatal(err)
	}
	tok := f.Issue(testenv.LegacyUser{UserID: "d75f5ee0-d9be-11ef-9dab-52d74335e147", Email: "jordan@ey.com"})
	if _, err := c.VerifyToken(t.Context(), tok, upstream.TokenTypeAccessToken); err != nil {
		t.Fatal(err)
	}

	c.cache.mu.Lock()
	defer c.cache.mu.Unlock()
	if len(c.cache.entries) != 1 || c.cache.order.Len() != 1 || len(c.cache.inflight) != 0 {
		t.Fatalf("cache holds %d entries, %d in order, %d in flight; want 1, 1, 0",
			len(c.cache.entries), c.cache.order.Len(), len(c.cache.inflight))
	}
	for key, el := range c.cache.entries {
		if key != sha256.Sum256([]byte(tok)) {
			t.Errorf("key %x is not the SHA-256 of the token", key)
		}
		if dump := fmt.Sprintf("%x %+v", key, *el.Value.(*entry)); strings.Contains(dump, tok) {
			t.Errorf("cache entry holds the token: %s", dump)
		}
	}
}

func TestCache_SizeIsBoundedOldestFirst(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c := newCache(time.Minute, 2, func() time.Time { return now })
	key := func(s string) tokenKey { return sha256.Sum256([]byte(s)) }

	c.mu.Lock()
	defer c.mu.Unlock()
	for i, name := range []string{"a", "b", "c"} {
		c.putLocked(key(name), upstream.Identity{Subject: name}, now.Add(time.Duration(i)*time.Second))
	}
	if len(c.entries) != 2 || c.order.Len() != 2 {
		t.Fatalf("%d entries, %d in order; want 2", len(c.entries), c.order.Len())
	}
	if _, ok := c.getLocked(key("a"), now); ok {
		t.Error("the oldest entry survived a full cache")
	}
	if id, ok := c.getLocked(key("c"), now); !ok || id.Subject != "c" {
		t.Errorf("newest entry: %+v, %v", id, ok)
	}
	// Putting sweeps what has expired, whatever the room.
	c.putLocked(key("d"), upstream.Identity{Subject: "d"}, now.Add(2*time.Minute))
	if len(c.entries) != 1 || c.order.Len() != 1 {
		t.Errorf("%d entries after expiry, want only the new one", len(c.entries))
	}
}

func TestCache_OneCallForConcurrentAsksWithoutCaching(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache(-1, 10, time.Now) // nothing kept: only the in-flight call can share
		key := sha256.Sum256([]byte("sess_abc"))
		release := make(chan struct{})
		var calls atomic.Int32
		fetch := func(context.Context) (upstream.Identity, error) {
			calls.Add(1)
			<-release
			return upstream.Identity{Subject: "x", Claims: map[string]any{"k": []any{"v"}}}, nil
		}

		const n = 20
		var done sync.WaitGroup
		ids := make([]upstream.Identity, n)
		for i := range n {
			done.Go(func() {
				ids[i], _ = c.do(context.Background(), key, fetch)
			})
		}
		synctest.Wait() // every caller waits on the one call, which waits on release
		close(release)
		done.Wait()

		if got := calls.Load(); got != 1 {
			t.Fatalf("%d fetches, want 1", got)
		}
		ids[0].Claims["k"].([]any)[0] = "changed"
		if ids[1].Claims["k"].([]any)[0] != "v" {
			t.Error("callers share the claims' slices")
		}
	})
}

func TestCache_CallerGivingUpDoesNotFailTheOthers(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		c := newCache(time.Minute, 10, time.Now)
		key := sha256.Sum256([]byte("sess_abc"))
		release := make(chan struct{})
		fetch := func(ctx context.Context) (upstream.Identity, error) {
			<-release
			return upstream.Identity{Subject: "x"}, ctx.Err()
		}

		first, cancel := context.WithCancel(context.Background())
		firstErr := make(chan error, 1)
		go func() {
			_, err := c.do(first, key, fetch)
			firstErr <- err
		}()
		synctest.Wait() // the first caller has started the call and waits on it
		second := make(chan error, 1)
		go func() {
			_, err := c.do(context.Background(), key, fetch)
			second <- err
		}()
		synctest.Wait() // the second has joined the call the first started
		cancel()
		if err := <-firstErr; !errors.Is(err, upstream.ErrUnavailable) || !errors.Is(err, context.Canceled) {
			t.Errorf("first caller: err = %v, want ErrUnavailable and Canceled", err)
		}
		close(release)
		if err := <-second; err != nil {
			t.Errorf("second caller: %v", err)
		}
	})
}
