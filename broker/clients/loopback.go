package clients

import (
	"net"
	"net/url"
	"strings"
)

// LoopbackURL parses an http URL whose host is a loopback address or
// "localhost", with no user information that could disguise the host and
// no fragment (an empty one, a bare "#", included). It reports false for
// anything else, https included.
func LoopbackURL(raw string) (*url.URL, bool) {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "http" || u.User != nil || hasFragment(raw) || u.Opaque != "" {
		return nil, false
	}
	h := u.Hostname()
	if h == "localhost" {
		return u, true
	}
	ip := net.ParseIP(h)
	return u, ip != nil && ip.IsLoopback()
}

// hasFragment reports whether raw has a fragment component: url.Parse
// leaves Fragment empty for a bare "#", which RFC 6749 section 3.1.2
// refuses all the same.
func hasFragment(raw string) bool { return strings.Contains(raw, "#") }
