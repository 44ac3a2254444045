package postgres

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// identitiesChannel is where migration 015's triggers name the users whose
// rows or identities changed.
const identitiesChannel = "broker_identities"

const (
	// heartbeatEvery is how often the Store sends itself a heartbeat on
	// identitiesChannel, through the pool, to prove the listening session
	// still hears the channel.
	heartbeatEvery = 250 * time.Millisecond
	// maxStale bounds how long after a heartbeat was sent the cache may
	// answer without hearing the next: when the listening session dies
	// without a word (a cut network), a change is missed for at most this
	// long. Notifications are delivered in commit order, so hearing a
	// heartbeat means every change committed before it was sent was heard.
	maxStale = time.Second
	// relistenAfter is the pause before a failed listening session is
	// opened again; meanwhile every resolution reads.
	relistenAfter = time.Second
	// identityCacheEntries bounds the identities one replica keeps, under
	// 10 MiB however many pass through (identitycache_internal_test.go):
	// an entry is read again within storage.LastLoginGranularity anyway,
	// so the cache need only hold the identities of a minute.
	identityCacheEntries = 20_000
)

// listener keeps one session LISTENing on identitiesChannel and feeds
// what it hears to cache.
type listener struct {
	cfg   *pgx.ConnConfig
	cache *identityCache
	// heartbeat starts the payload of this listener's own heartbeats;
	// other replicas' heartbeats (and other stores' in this process) are
	// ignored.
	heartbeat string
	send      func(ctx context.Context, payload string) error
}

func newListener(cfg *pgx.ConnConfig, cache *identityCache, send func(ctx context.Context, payload string) error) *listener {
	id := make([]byte, 8)
	rand.Read(id)
	return &listener{cfg: cfg, cache: cache, heartbeat: "heartbeat " + hex.EncodeToString(id) + " ", send: send}
}

// run listens, and sends heartbeats, until ctx ends.
func (l *listener) run(ctx context.Context) {
	beating := make(chan struct{})
	go func() {
		defer close(beating)
		l.beat(ctx)
	}()
	defer func() { <-beating }()
	for {
		l.listen(ctx)
		// Whatever ended the session, changes may go unheard from now on.
		l.cache.reset()
		select {
		case <-ctx.Done():
			return
		case <-time.After(relistenAfter):
		}
	}
}

// listen runs one listening session until it fails or ctx ends.
func (l *listener) listen(ctx context.Context) {
	connectCtx, cancel := context.WithTimeout(ctx, maxStale)
	conn, err := pgx.ConnectConfig(connectCtx, l.cfg)
	cancel()
	if err != nil {
		return
	}
	defer conn.Close(context.WithoutCancel(ctx))
	listenCtx, cancel := context.WithTimeout(ctx, maxStale)
	_, err = conn.Exec(listenCtx, "LISTEN "+identitiesChannel)
	cancel()
	if err != nil {
		return
	}
	// Changes before the LISTEN were not heard: start empty. The cache
	// answers again with the first heartbeat heard on this session, sent
	// at once rather than at the next tick.
	l.cache.reset()
	l.sendHeartbeat(ctx)
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return
		}
		if sent, ok := strings.CutPrefix(n.Payload, l.heartbeat); ok {
			if at, err := strconv.ParseInt(sent, 10, 64); err == nil {
				l.cache.heard(time.Duration(at), maxStale)
			}
			continue
		}
		if !strings.HasPrefix(n.Payload, "heartbeat ") {
			l.cache.changed(n.Payload)
		}
	}
}

// beat sends a heartbeat every heartbeatEvery until ctx ends. A heartbeat
// that cannot be sent is not retried: the cache stops answering when the
// last one heard grows too old.
func (l *listener) beat(ctx context.Context) {
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	for ctx.Err() == nil {
		l.sendHeartbeat(ctx)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}

// sendHeartbeat sends one heartbeat, stamped with the time it is sent.
func (l *listener) sendHeartbeat(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, heartbeatEvery)
	defer cancel()
	l.send(ctx, l.heartbeat+strconv.FormatInt(int64(l.cache.clock()), 10))
}
