package broker

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
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

// LimitsConfig are the broker's abuse limits. (Wrong codes are
// otp.maxAttempts.) Each counts per party and client address where a
// stranger could otherwise use it to lock the party out (docs/design.md rule 7).
type LimitsConfig struct {
	// OTPPerEmail bounds codes sent to one address at the request of one
	// client address, so nobody can flood an inbox from one place, nor
	// stop the owner's codes from another.
	OTPPerEmail Limit `yaml:"otpPerEmail"`
	// OTPPerEmailCeiling bounds codes sent to one address from anywhere.
	// No client address can reach it alone (validate), so it is reached
	// only by many addresses at once; a browser already holding a code
	// can still use it then. Unset, it is six times OTPPerEmail, over the
	// same window (otpPerEmailCeiling).
	OTPPerEmailCeiling Limit `yaml:"otpPerEmailCeiling"`
	// OTPPerIP bounds codes requested from one client address.
	OTPPerIP Limit `yaml:"otpPerIP"`
	// TokenFailuresPerClient bounds failed client authentications at the
	// token, introspection and revocation endpoints, per client and
	// client address; past it that address is refused for that client
	// before its credentials are even checked. The client elsewhere is
	// not. Assertions whose signature does not verify count per client
	// address alone, not for the client they name.
	TokenFailuresPerClient Limit `yaml:"tokenFailuresPerClient"`
}

func (l *LimitsConfig) setDefaults() {
	setDefault(&l.OTPPerEmail, Limit{Count: 5, Window: 15 * time.Minute})
	setDefault(&l.OTPPerIP, Limit{Count: 30, Window: 15 * time.Minute})
	setDefault(&l.TokenFailuresPerClient, Limit{Count: 20, Window: 5 * time.Minute})
}

// otpPerEmailCeiling is OTPPerEmailCeiling, or when it is unset six times
// OTPPerEmail: derived where it is used, so that raising otpPerEmail
// raises the ceiling with it.
func (l LimitsConfig) otpPerEmailCeiling() Limit {
	if l.OTPPerEmailCeiling == (Limit{}) {
		return Limit{Count: 6 * l.OTPPerEmail.Count, Window: l.OTPPerEmail.Window}
	}
	return l.OTPPerEmailCeiling
}

func (l LimitsConfig) validate() error {
	for name, lim := range map[string]Limit{"otpPerEmail": l.OTPPerEmail, "otpPerEmailCeiling": l.otpPerEmailCeiling(),
		"otpPerIP": l.OTPPerIP, "tokenFailuresPerClient": l.TokenFailuresPerClient} {
		if lim.Count < 1 || lim.Window <= 0 {
			return fmt.Errorf("config: limits.%s needs a count of at least 1 and a positive window", name)
		}
	}
	// Within one ceiling window one client address may be sent this
	// many codes for an address; were that the ceiling, one stranger
	// could stop the owner's codes.
	ceiling := l.otpPerEmailCeiling()
	windows := int((ceiling.Window + l.OTPPerEmail.Window - 1) / l.OTPPerEmail.Window)
	if oneSource := l.OTPPerEmail.Count * windows; ceiling.Count <= oneSource {
		return fmt.Errorf("config: limits.otpPerEmailCeiling (%d per %v) must be more than the %d codes one client address may ask for under limits.otpPerEmail (%d per %v)",
			ceiling.Count, ceiling.Window, oneSource, l.OTPPerEmail.Count, l.OTPPerEmail.Window)
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
		if err != nil || a.Zone() != "" {
			// Garbage, or a zone (any bytes, and meaningless beyond the
			// proxy's own link): stop believing the header.
			break
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

type requestSourceKey struct{}

// withRequestSource records every request's client address (clientIP), for
// limits counted deep in the library's call chain, where the request
// itself is out of reach (client authentication).
func (b *Broker) withRequestSource(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestSourceKey{}, b.clientIP(r))))
	})
}

// requestSource is the client address withRequestSource recorded, or "".
func requestSource(ctx context.Context) string {
	s, _ := ctx.Value(requestSourceKey{}).(string)
	return s
}

// limitSource is what limits count a client address as: the address
// itself, or for IPv6 its /64, the block one subscriber is routinely
// given, so that a client cannot multiply its allowance by the addresses
// of its own network.
func limitSource(source string) string {
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

// maxLimitParty is the longest party limitKey keeps as it is.
const maxLimitParty = 256

// limitKey is the rate-limit key of a party (an email address, a client
// id: whatever the requester chose to name) seen from a client address
// (limitSource). The address comes first and holds no "|", so no choice
// of party makes two pairs one key; a longer party is hashed, so a key
// stays short whatever is sent.
func limitKey(source, party string) string {
	if len(party) > maxLimitParty {
		sum := sha256.Sum256([]byte(party))
		party = "sha256:" + base64.RawURLEncoding.EncodeToString(sum[:])
	}
	return limitSource(source) + "|" + party
}

// Counters of failed client authentications. A failure is charged to
// whoever can be shown to have made it: a client and the address it
// came from once the client proved who it is (a verified assertion), or
// the address alone while nothing is proven (a forged one). Never to a
// client everywhere, so nobody's failures lock a client out where it
// authenticates correctly (docs/design.md rule 7).
const (
	clientFailures     = "token-failures"        // key: limitKey(address, client id)
	unprovenAssertions = "unverified-assertions" // key: limitSource(address)
)

// clientAuthLimited refuses a request whose failures under name and key
// reached limits.tokenFailuresPerClient, before anything about its
// credentials is checked, so a secret cannot be guessed at speed. The
// answer is 429 with Retry-After and temporarily_unavailable: RFC 6749
// section 5.2 has no error for a limit, and this one passes.
func (b *Broker) clientAuthLimited(ctx context.Context, name, key string) error {
	l := b.cfg.Limits.TokenFailuresPerClient
	// Count failures are allowed; the attempt after them is refused.
	limited, wait, err := b.store.RateLimited(ctx, name+":"+key, l.Count-1, b.now())
	if err != nil {
		return b.failures.Store(ctx, "rate limited", err)
	}
	if !limited {
		return nil
	}
	b.metrics.rateLimited.WithLabelValues(name).Inc()
	setResponseHeader(ctx, "Retry-After", retryAfterSeconds(wait))
	return op.NewStatusError(&oidc.Error{ErrorType: "temporarily_unavailable",
		Description: "too many failed client authentications from this address; retry later"}, http.StatusTooManyRequests)
}

// countClientAuthFailure records a failed client authentication under
// name and key. A failure for a client at an address also ends the
// shortcut a recent success there gave.
func (b *Broker) countClientAuthFailure(ctx context.Context, name, key string) {
	if name == clientFailures {
		b.recentClientAuth.Forget(key)
	}
	if _, _, err := b.take(ctx, name, key, b.cfg.Limits.TokenFailuresPerClient); err != nil {
		b.log.WarnContext(ctx, "could not count a failed client authentication", "err", err)
	}
}
