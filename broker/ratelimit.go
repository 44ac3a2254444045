package broker

import (
	"context"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/idbroker/broker/web"
	"github.com/zitadel/oidc/v3/pkg/oidc"
	"github.com/zitadel/oidc/v3/pkg/op"
)

// Limit is an abuse limit: at most Count events per Window. The counters
// live in storage, so a limit holds across replicas.
type Limit struct {
	Count  int           `yaml:"count"`
	Window time.Duration `yaml:"window"`
}

// LimitsConfig are the broker's abuse limits. (Wrong codes per challenge
// are otp.maxAttempts.)
type LimitsConfig struct {
	// OTPPerEmail bounds codes sent to one address, so the broker cannot
	// be used to flood an inbox.
	OTPPerEmail Limit `yaml:"otpPerEmail"`
	// OTPPerIP bounds codes requested from one client address.
	OTPPerIP Limit `yaml:"otpPerIP"`
	// TokenFailuresPerClient bounds failed client authentications at the
	// token, introspection and revocation endpoints; past it the client
	// is refused before its secret is even checked.
	TokenFailuresPerClient Limit `yaml:"tokenFailuresPerClient"`
}

func (l *LimitsConfig) setDefaults() {
	setDefault(&l.OTPPerEmail, Limit{Count: 5, Window: 15 * time.Minute})
	setDefault(&l.OTPPerIP, Limit{Count: 30, Window: 15 * time.Minute})
	setDefault(&l.TokenFailuresPerClient, Limit{Count: 20, Window: 5 * time.Minute})
}

func (l LimitsConfig) validate() error {
	for name, lim := range map[string]Limit{"otpPerEmail": l.OTPPerEmail, "otpPerIP": l.OTPPerIP, "tokenFailuresPerClient": l.TokenFailuresPerClient} {
		if lim.Count < 1 || lim.Window <= 0 {
			return fmt.Errorf("config: limits.%s needs a count of at least 1 and a positive window", name)
		}
	}
	return nil
}

// parseTrustedProxies reads IPs and CIDRs.
func parseTrustedProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("config: http.trustedProxies: %q is not an IP address or CIDR", s)
		}
		out = append(out, netip.PrefixFrom(a, a.BitLen()))
	}
	return out, nil
}

func (b *Broker) trusted(a netip.Addr) bool {
	for _, p := range b.trustedProxies {
		if p.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// clientIP is the address a request came from: the connection's peer,
// unless that peer is a trusted proxy, in which case the rightmost address
// in X-Forwarded-For that is not a trusted proxy. A client can write what
// it likes into X-Forwarded-For, so only what trusted proxies appended is
// believed.
func (b *Broker) clientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !b.trusted(peer) {
		return host
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			break // garbage: stop believing the header
		}
		if !b.trusted(a) {
			return a.Unmap().String()
		}
		peer = a
	}
	return peer.Unmap().String()
}

// take counts one event against a limit. It fails closed: a store that
// cannot count refuses the request.
func (b *Broker) take(ctx context.Context, name, key string, l Limit) (allowed bool, retryAfter time.Duration, err error) {
	allowed, retryAfter, err = b.store.TakeRateLimitSlot(ctx, name+":"+key, l.Count, l.Window, b.now())
	if err != nil {
		return false, 0, err
	}
	if !allowed {
		b.metrics.rateLimited.WithLabelValues(name).Inc()
		b.log.InfoContext(ctx, "rate limited", "limit", name, "retry_after", retryAfter.Round(time.Second))
	}
	return allowed, retryAfter, nil
}

// retryAfterSeconds is the Retry-After value for d: whole seconds, at
// least one.
func retryAfterSeconds(d time.Duration) string {
	return strconv.Itoa(max(1, int(math.Ceil(d.Seconds()))))
}

// waitPhrase says how long to wait in words a person reads, in lang.
func waitPhrase(lang string, d time.Duration) string {
	if d < time.Minute {
		return web.T(lang, "wait.minute")
	}
	return web.T(lang, "wait.minutes", int(math.Ceil(d.Minutes())))
}

type responseHeaderKey struct{}

// withResponseHeader lets handlers deeper in the library's call chain set
// response headers (Retry-After) on errors the library writes.
func withResponseHeader(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), responseHeaderKey{}, w.Header())))
	})
}

func setResponseHeader(ctx context.Context, key, value string) {
	if h, ok := ctx.Value(responseHeaderKey{}).(http.Header); ok {
		h.Set(key, value)
	}
}

// clientAuthLimited refuses a client that has failed authentication too
// often, before anything about its credentials is checked, so a secret
// cannot be guessed at speed. The answer is 429 with Retry-After.
//
// A client that authenticated on this replica within clientAuthRecheck,
// with no failure since, skips the store: a busy machine client would
// otherwise pay a store round trip on every token request for a check
// that is about guessing. A failure forgets the client at once, so a
// guesser gets at most the attempts already in flight per success, and
// every one of them is still counted.
func (b *Broker) clientAuthLimited(ctx context.Context, clientID string) error {
	if b.recentClientAuth.fresh(clientID, b.now()) {
		return nil
	}
	l := b.cfg.Limits.TokenFailuresPerClient
	// Count failures are allowed; the attempt after them is refused.
	limited, wait, err := b.store.RateLimited(ctx, "token-failures:"+clientID, l.Count-1, b.now())
	if err != nil {
		return b.storeFailure(ctx, "rate limited", err)
	}
	if !limited {
		return nil
	}
	b.metrics.rateLimited.WithLabelValues("token-failures").Inc()
	setResponseHeader(ctx, "Retry-After", retryAfterSeconds(wait))
	return op.NewStatusError(&oidc.Error{ErrorType: "slow_down", Description: "too many failed attempts for this client; retry later"}, http.StatusTooManyRequests)
}

// countClientAuthFailure records a failed client authentication.
func (b *Broker) countClientAuthFailure(ctx context.Context, clientID string) {
	b.recentClientAuth.forget(clientID)
	if _, _, err := b.take(ctx, "token-failures", clientID, b.cfg.Limits.TokenFailuresPerClient); err != nil {
		b.log.WarnContext(ctx, "could not count a failed client authentication", "err", err)
	}
}

// clientAuthRecheck is how long a successful client authentication lets
// the same client's next requests on this replica skip the failure count
// in storage.
const clientAuthRecheck = time.Second

// clientAuthSuccesses remembers when each client last authenticated on
// this replica. Only clients that proved themselves get an entry, so it
// holds at most one per registered client.
type clientAuthSuccesses struct {
	last sync.Map // client id → *atomic.Int64, Unix nanoseconds; 0 after a failure
}

func (c *clientAuthSuccesses) fresh(clientID string, now time.Time) bool {
	v, ok := c.last.Load(clientID)
	if !ok {
		return false
	}
	at := v.(*atomic.Int64).Load()
	return at != 0 && now.Sub(time.Unix(0, at)) < clientAuthRecheck
}

func (c *clientAuthSuccesses) succeeded(clientID string, now time.Time) {
	v, ok := c.last.Load(clientID)
	if !ok {
		v, _ = c.last.LoadOrStore(clientID, new(atomic.Int64))
	}
	v.(*atomic.Int64).Store(now.UnixNano())
}

func (c *clientAuthSuccesses) forget(clientID string) {
	if v, ok := c.last.Load(clientID); ok {
		v.(*atomic.Int64).Store(0)
	}
}
