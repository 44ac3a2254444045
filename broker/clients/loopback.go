package clients

import (
	"net"
	"net/url"
)

// LoopbackURL parses an http URL whose host is a loopback address or
// "localhost", with no user information that could disguise the host.
// It reports false for anything else, https included.
func LoopbackURL(raw string) (*url.URL, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return nil, false
	}
	h := u.Hostname()
	if h == "localhost" {
		return u, true
	}
	ip := net.ParseIP(h)
	return u, ip != nil && ip.IsLoopback()
}
