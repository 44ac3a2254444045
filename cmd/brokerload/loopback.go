package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"syscall"
	"time"
)

// checkLoopbackURL parses an http(s) URL and refuses it unless its host is
// a loopback address: load goes only to this machine.
func checkLoopbackURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%q is not a URL: %w", raw, err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("%q: scheme must be http or https", raw)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%q: user information is not allowed", raw)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%q has no host", raw)
	}
	if !isLoopbackHost(u.Hostname()) {
		return nil, fmt.Errorf("%q is not a loopback address (127.0.0.0/8, ::1 or localhost): brokerload sends load only to this machine", raw)
	}
	return u, nil
}

// checkLoopbackAddr refuses a listen address whose host is not a loopback
// address.
func checkLoopbackAddr(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	if !isLoopbackHost(host) {
		return fmt.Errorf("address %q is not a loopback address", addr)
	}
	return nil
}

// isLoopbackHost reports whether host is a loopback IP literal or
// "localhost". Other names are refused rather than resolved: a name's
// answer can change between the check and the dial.
func isLoopbackHost(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// errNotLoopback is what the dialer answers for any other address.
var errNotLoopback = errors.New("brokerload dials only loopback addresses")

// loopbackDialer returns a dialer that refuses any address but a loopback
// one (see loopbackOnly).
func loopbackDialer() *net.Dialer {
	return &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, ControlContext: loopbackOnly}
}

// loopbackOnly is a net.Dialer Control function. It checks the address
// actually dialled, after name resolution, so a redirect to another
// host or a name that resolves elsewhere cannot take load off the machine.
func loopbackOnly(_ context.Context, network, address string, _ syscall.RawConn) error {
	host, _, err := net.SplitHostPort(address)
	if err != nil {
		return fmt.Errorf("dial %s %q: %w", network, address, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("dial %s %q: %w", network, address, errNotLoopback)
	}
	return nil
}
