package edge

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Proxies are the peers whose X-Forwarded-For is believed.
type Proxies []netip.Prefix

// ParseProxies reads IPs and CIDRs (http.trustedProxies).
func ParseProxies(list []string) (Proxies, error) {
	var out Proxies
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

func (p Proxies) trusted(a netip.Addr) bool {
	for _, prefix := range p {
		if prefix.Contains(a.Unmap()) {
			return true
		}
	}
	return false
}

// ClientIP is the address a request came from: the connection's peer,
// unless that peer is a trusted proxy, in which case the rightmost address
// in X-Forwarded-For that is not a trusted proxy. A client can write what
// it likes into X-Forwarded-For, so only what trusted proxies appended is
// believed.
func (p Proxies) ClientIP(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !p.trusted(peer) {
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
		if !p.trusted(a) {
			return a.Unmap().String()
		}
		peer = a
	}
	return peer.Unmap().String()
}

type sourceKey struct{}

// WithSource records every request's client address (ClientIP), for
// limits counted deep in the library's call chain, where the request
// itself is out of reach (client authentication).
func (p Proxies) WithSource(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), sourceKey{}, p.ClientIP(r))))
	})
}

// Source is the client address WithSource recorded, or "".
func Source(ctx context.Context) string {
	s, _ := ctx.Value(sourceKey{}).(string)
	return s
}

type responseHeaderKey struct{}

// WithResponseHeader lets handlers deeper in the library's call chain set
// response headers (Retry-After, WWW-Authenticate) on errors the library
// writes.
func WithResponseHeader(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), responseHeaderKey{}, w.Header())))
	})
}

// SetResponseHeader sets a header of the response to the request of ctx,
// when WithResponseHeader is in its chain.
func SetResponseHeader(ctx context.Context, key, value string) {
	if h, ok := ctx.Value(responseHeaderKey{}).(http.Header); ok {
		h.Set(key, value)
	}
}

// RoutePath is the path of a ServeMux pattern, without the method a
// pattern may start with ("GET /readyz"): what metrics and logs name an
// endpoint by, so that what a request sends never becomes a label.
func RoutePath(pattern string) string {
	if i := strings.IndexByte(pattern, ' '); i >= 0 {
		return pattern[i+1:]
	}
	return pattern
}

// MaxBody bounds every request body; forms and JSON here are small.
const MaxBody = 64 << 10

// LimitBody bounds the body of every request to MaxBody.
func LimitBody(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body != nil {
			r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
		}
		h.ServeHTTP(w, r)
	})
}
