package broker_test

import (
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/idbroker/broker/broker"
	"github.com/idbroker/broker/storage"
	"github.com/idbroker/broker/storage/memory"
	"github.com/idbroker/broker/storage/postgres/pgtest"
	"github.com/idbroker/broker/storage/storagetest"
)

// Fifty POST /token with one code at once. Held: the winning redemption
// is slow to create its refresh family (a slow store, a pool wait) and
// every replay revokes the grant before the family exists. Free: the
// replays land before, during or after the creation, as they come. Either
// way at most one redemption succeeds, and nothing it was given works
// afterwards.
func TestCodeExchange_ConcurrentRedemptionsLeaveNothingAlive(t *testing.T) {
	for name, open := range raceStores {
		for _, held := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/held=%v", name, held), func(t *testing.T) {
				testConcurrentRedemptions(t, open(t), held)
			})
		}
	}
}

// raceStores opens each store the races run against: memory, and
// Postgres, whose transactions race truly.
var raceStores = map[string]func(t *testing.T) storage.Storage{
	"memory":   func(t *testing.T) storage.Storage { return memory.New() },
	"postgres": func(t *testing.T) storage.Storage { return pgtest.NewStore(t) },
}

func testConcurrentRedemptions(t *testing.T, store storage.Storage, held bool) {
	// A held winner waits before it creates its family until every
	// replay has been answered, each having revoked the grant.
	release := make(chan struct{})
	if !held {
		close(release)
	}
	e := newEnv(t, func(c *broker.Config, o *broker.Options) {
		o.Storage = storagetest.HeldFamilies{Storage: store, Release: release}
	})
	l := e.login(e.browser(), "race@example.com", authRequest{})
	const n = 50
	answers := make([]tokenResponse, n)
	var answered atomic.Int32
	var ready, done sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		ready.Add(1)
		done.Go(func() {
			ready.Done()
			<-start
			answers[i] = e.redeem(l)
			if answered.Add(1) == n-1 && held {
				close(release)
			}
		})
	}
	ready.Wait()
	close(start)
	done.Wait()

	var won []tokenResponse
	for i, a := range answers {
		switch {
		case a.Status == http.StatusOK:
			won = append(won, a)
		case a.Status >= 500:
			t.Errorf("redemption %d: %d %s %s", i, a.Status, a.Error, a.Description)
		}
	}
	if len(won) > 1 {
		t.Fatalf("%d redemptions of one code succeeded", len(won))
	}
	for _, w := range won {
		if r := e.refresh(broker.DevClientID, w.RefreshToken); r.Status == http.StatusOK || r.Error != "invalid_grant" {
			t.Errorf("the winner's refresh token after the replays: %d %q; want invalid_grant", r.Status, r.Error)
		}
		if info := e.introspect(w.AccessToken, backendID, backendSecret); info["active"] != false {
			t.Errorf("the winner's access token introspects %v", info)
		}
	}
}
