package clientdoc

import (
	"strconv"
	"testing"
	"time"
)

// A full cache makes room for the documents of many URLs and still keeps
// the ones being fetched, whose waiters would otherwise be orphaned, and
// the newest; it never holds more than maxEntries.
func TestResolver_FullCacheKeepsFetchesUnderWayAndStaysBounded(t *testing.T) {
	now := time.Now()
	r := New(Config{}, Options{Now: func() time.Time { return now }})
	pending := &entry{done: make(chan struct{})}
	r.add("https://pending.example/client.json", pending)
	for i := range 5 * maxEntries {
		r.add("https://c"+strconv.Itoa(i)+".example/client.json", &entry{done: closed(), fetched: true, expires: now.Add(time.Hour)})
	}
	if n := len(r.entries); n > maxEntries {
		t.Errorf("%d documents held, want at most %d", n, maxEntries)
	}
	if r.entries["https://pending.example/client.json"] != pending {
		t.Error("a fetch under way was dropped to make room")
	}
	if r.entry("https://c"+strconv.Itoa(5*maxEntries-1)+".example/client.json") == nil {
		t.Error("the document added last is not held")
	}
}

func closed() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

// BenchmarkResolverAddWhenFull is what one more URL's document costs a
// full cache: before the cache was rebuilt at its bound, every add walked
// all of it twice under the lock.
func BenchmarkResolverAddWhenFull(b *testing.B) {
	now := time.Now()
	r := New(Config{}, Options{Now: func() time.Time { return now }})
	ids := make([]string, maxEntries+b.N)
	for i := range ids {
		ids[i] = "https://c" + strconv.Itoa(i) + ".example/client.json"
	}
	for _, id := range ids[:maxEntries] {
		r.add(id, &entry{fetched: true, expires: now.Add(time.Hour)})
	}
	b.ResetTimer()
	for i := range b.N {
		r.add(ids[maxEntries+i], &entry{fetched: true, expires: now.Add(time.Hour)})
	}
}
