package clients

import (
	"strconv"
	"testing"
	"time"
)

// Key sets are kept for at most maxKeySets URLs, however many distinct
// jwks_uri values clients name (a metadata document names any it likes),
// and the one asked for last is kept.
func TestKeySets_BoundedHoweverManyURLs(t *testing.T) {
	now := time.Now()
	c := NewKeySets(nil, func() time.Time { return now })
	for i := range 5 * maxKeySets {
		c.Get("https://c" + strconv.Itoa(i) + ".example/jwks.json")
	}
	if n := len(c.sets); n > maxKeySets {
		t.Errorf("%d key sets kept, want at most %d", n, maxKeySets)
	}
	last := "https://c" + strconv.Itoa(5*maxKeySets-1) + ".example/jwks.json"
	if c.Get(last) != c.Get(last) {
		t.Error("the key set asked for last is not kept")
	}
	stale := c.Get(last)
	now = now.Add(jwksMaxAge)
	if c.Get(last) == stale {
		t.Error("a key set older than jwksMaxAge is still given")
	}
}

// BenchmarkKeySetsGetNewURL is what one more client's jwks_uri costs a
// cache that holds many: it used to walk all of them on every new URL.
func BenchmarkKeySetsGetNewURL(b *testing.B) {
	now := time.Now()
	c := NewKeySets(nil, func() time.Time { return now })
	urls := make([]string, maxKeySets-1+b.N)
	for i := range urls {
		urls[i] = "https://c" + strconv.Itoa(i) + ".example/jwks.json"
	}
	for _, u := range urls[:maxKeySets-1] {
		c.Get(u)
	}
	b.ResetTimer()
	for _, u := range urls[maxKeySets-1:] {
		c.Get(u)
	}
}
