package safefetch

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"syscall"
	"time"
)

// ErrNotPublic is the dial error for an address Public refuses. The
// connection is refused before it is attempted.
var ErrNotPublic = errors.New("safefetch: the address is not a public one")

// ErrNotHTTPS is the error for a URL whose scheme is not https.
var ErrNotHTTPS = errors.New("safefetch: only https URLs are fetched")

// ErrRedirect is the error for an answer that redirects: a redirect is
// never followed, since its target is the sender's choice again.
var ErrRedirect = errors.New("safefetch: redirects are not followed")

// DefaultTimeout is Options.Timeout when it is not set: a server that
// never answers must not hold a fetch for ever.
const DefaultTimeout = 5 * time.Second

// Options configure a Client.
type Options struct {
	// Timeout bounds a whole request, reading the answer included
	// (DefaultTimeout when not positive).
	Timeout time.Duration
	// AllowHosts are hosts, as URLs name them (a DNS name or an IP
	// literal, without port), whose addresses are not checked: the
	// operator's own services, or a test server on loopback.
	AllowHosts []string
	// RootCAs verify the servers' certificates; nil for the system's.
	RootCAs *x509.CertPool
}

// NewClient returns an http.Client that fetches only https URLs, from
// public addresses (or allowed hosts), following no redirect (a
// redirect is ErrRedirect) and using no proxy.
func NewClient(o Options) *http.Client {
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	allowed := map[string]bool{}
	for _, h := range o.AllowHosts {
		allowed[normalHost(h)] = true
	}
	guarded := &net.Dialer{Timeout: o.Timeout, Control: refuseNotPublic}
	open := &net.Dialer{Timeout: o.Timeout}
	transport := &http.Transport{
		// A proxy from the environment would be dialled instead of the
		// host, and its address is not the one to check.
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, fmt.Errorf("safefetch: dial %q: %w", addr, err)
			}
			if allowed[normalHost(host)] {
				return open.DialContext(ctx, network, addr)
			}
			return guarded.DialContext(ctx, network, addr)
		},
		TLSClientConfig:        &tls.Config{RootCAs: o.RootCAs, MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout:    o.Timeout,
		ResponseHeaderTimeout:  o.Timeout,
		MaxResponseHeaderBytes: 16 << 10,
		MaxIdleConnsPerHost:    2, // a document and a key set, per client host
		IdleConnTimeout:        30 * time.Second,
	}
	return &http.Client{
		Transport: httpsOnly{transport},
		Timeout:   o.Timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return ErrRedirect
		},
	}
}

// httpsOnly refuses every request that is not https before it is sent.
type httpsOnly struct{ next http.RoundTripper }

func (t httpsOnly) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.URL.Scheme != "https" {
		return nil, fmt.Errorf("%w: %q", ErrNotHTTPS, r.URL.Redacted())
	}
	return t.next.RoundTrip(r)
}

// refuseNotPublic is the dialer's Control hook: it runs once the name is
// resolved, for each address about to be connected to, before the
// connection is attempted.
func refuseNotPublic(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("safefetch: dial %s %q: %w", network, address, err)
	}
	if !Public(ap.Addr()) {
		return fmt.Errorf("%w: %s", ErrNotPublic, ap.Addr())
	}
	return nil
}

// normalHost is a host as AllowHosts and dial addresses are compared:
// lower case, without the brackets of an IPv6 literal, an IP address in
// its canonical form.
func normalHost(h string) string {
	h = strings.ToLower(strings.TrimSuffix(strings.TrimPrefix(h, "["), "]"))
	if a, err := netip.ParseAddr(h); err == nil {
		return a.String()
	}
	return h
}
