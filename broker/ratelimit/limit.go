package ratelimit

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"log/slog"
	"math"
	"net/netip"
	"strconv"
	"time"

	"github.com/idbroker/broker/storage"
	"github.com/prometheus/client_golang/prometheus"
)

// Limit is an abuse limit: at most Count events per Window. The counters
// live in storage, so a limit holds across replicas.
type Limit struct {
	Count  int           `yaml:"count"`
	Window time.Duration `yaml:"window"`
}

// Limiter counts events against limits in storage.
type Limiter struct {
	Store storage.Abuse
	Now   func() time.Time
	Log   *slog.Logger
	// Refused counts refusals by limit name.
	Refused *prometheus.CounterVec
}

// Take counts one event against a limit. It fails closed: a store that
// cannot count refuses the request.
func (l *Limiter) Take(ctx context.Context, name, key string, lim Limit) (allowed bool, retryAfter time.Duration, err error) {
	allowed, retryAfter, err = l.Store.TakeRateLimitSlot(ctx, name+":"+key, lim.Count, lim.Window, l.Now())
	if err != nil {
		return false, 0, err
	}
	if !allowed {
		l.Refused.WithLabelValues(name).Inc()
		l.Log.InfoContext(ctx, "rate limited", "limit", name, "retry_after", retryAfter.Round(time.Second))
	}
	return allowed, retryAfter, nil
}

// Reached reports whether the events counted under name and key reached
// count, without counting one, and how long until one is allowed again.
// A refusal is counted as Take counts one.
func (l *Limiter) Reached(ctx context.Context, name, key string, count int) (reached bool, retryAfter time.Duration, err error) {
	reached, retryAfter, err = l.Store.RateLimited(ctx, name+":"+key, count, l.Now())
	if err == nil && reached {
		l.Refused.WithLabelValues(name).Inc()
	}
	return reached, retryAfter, err
}

// RetryAfter is the Retry-After value for d: whole seconds, at least one.
func RetryAfter(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}

// Source is what limits count a client address as: the address itself,
// or for IPv6 its /64, the block one subscriber is routinely given, so
// that a client cannot multiply its allowance by the addresses of its own
// network.
func Source(source string) string {
	a, err := netip.ParseAddr(source)
	if err != nil || a.Unmap().Is4() {
		return source
	}
	p, err := a.Prefix(64)
	if err != nil {
		return source
	}
	return p.String()
}

// maxParty is the longest party Key keeps as it is.
const maxParty = 256

// Key is the key of a party (an email address, a client id: whatever the
// requester chose to name) seen from a client address (Source). The
// address comes first and holds no "|", so no choice of party makes two
// pairs one key; a longer party is hashed, so a key stays short whatever
// is sent.
func Key(source, party string) string {
	if len(party) > maxParty {
		sum := sha256.Sum256([]byte(party))
		party = "sha256:" + base64.RawURLEncoding.EncodeToString(sum[:])
	}
	return Source(source) + "|" + party
}
