package jwks

import (
	"crypto/sha256"
	"encoding/binary"
	"runtime"
	"testing"
	"time"

	"github.com/idbroker/broker/internal/testenv"
)

// What RemoteKeySet remembers of the tokens it verified: for rememberFor,
// with the keys it held then, and never more than maxRemembered.
func TestRemoteKeySet_RemembersForAWhileWithTheSameKeysAndWithinBounds(t *testing.T) {
	now := time.Now()
	ks := NewRemoteKeySet("https://upstream.example/keys", KeySetConfig{Clock: func() time.Time { return now }})
	digest := func(i int) [sha256.Size]byte {
		var d [sha256.Size]byte
		binary.BigEndian.PutUint64(d[:], uint64(i))
		return d
	}

	_, generation := ks.remembered(digest(0))
	ks.remember(digest(0), generation)
	if ok, _ := ks.remembered(digest(0)); !ok {
		t.Fatal("a token just verified is not remembered")
	}
	now = now.Add(rememberFor)
	if ok, _ := ks.remembered(digest(0)); ok {
		t.Error("a token is remembered past rememberFor")
	}

	// A verification that began before the keys were replaced.
	ks.mu.Lock()
	ks.generation++
	ks.mu.Unlock()
	ks.remember(digest(1), generation)
	if ok, _ := ks.remembered(digest(1)); ok {
		t.Error("a token verified with keys since replaced is remembered")
	}

	_, generation = ks.remembered(digest(0))
	for i := range maxRemembered + 10 {
		ks.remember(digest(i), generation)
	}
	ks.mu.Lock()
	n := len(ks.verified) + len(ks.previous)
	ks.mu.Unlock()
	if n > maxRemembered {
		t.Errorf("%d tokens remembered, want at most %d", n, maxRemembered)
	}
	if ok, _ := ks.remembered(digest(maxRemembered + 9)); !ok {
		t.Error("the token verified last is not remembered")
	}
}

// A key set at its bound keeps the same memory however many tokens pass
// through it: a Go map that entries are deleted from at its bound does
// not reuse all of their room, and one kept that way grew past 40 MiB for
// 20 million tokens.
func TestRemoteKeySet_RememberedTokensMemoryStaysBounded(t *testing.T) {
	now := time.Now()
	ks := NewRemoteKeySet("https://upstream.example/keys", KeySetConfig{Clock: func() time.Time { return now }})
	_, generation := ks.remembered([sha256.Size]byte{})
	grown := testenv.HeapGrowth(func() {
		for i := range 16 * maxRemembered {
			ks.remember(sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(i))), generation)
		}
	})
	runtime.KeepAlive(ks)
	t.Logf("%d tokens through the key set: %.1f MiB held", 16*maxRemembered, float64(grown)/(1<<20))
	if grown > rememberedBytesBound {
		t.Errorf("after %d tokens the key set holds %.1f MiB more, want at most %.1f MiB",
			16*maxRemembered, float64(grown)/(1<<20), float64(rememberedBytesBound)/(1<<20))
	}
}
