package safefetch

import "net/netip"

// notPublic are the ranges Public refuses beyond what netip classifies
// itself: the IANA IPv4 and IPv6 special-purpose address registries (RFC
// 6890 and its updates), and the IPv6 prefixes that embed an IPv4
// address a gateway would reach for the broker.
var notPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // shared address space (carrier-grade NAT), RFC 6598
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation (TEST-NET-1)
	netip.MustParsePrefix("192.31.196.0/24"), // AS112-v4
	netip.MustParsePrefix("192.52.193.0/24"), // AMT
	netip.MustParsePrefix("192.88.99.0/24"),  // 6to4 relay anycast
	netip.MustParsePrefix("192.175.48.0/24"), // direct delegation AS112
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation (TEST-NET-2)
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation (TEST-NET-3)
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and the limited broadcast address
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64, RFC 6052: an IPv4 address behind a translator
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64, RFC 8215
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001::/23"),       // IETF protocol assignments, Teredo (2001::/32) among them
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("2002::/16"),       // 6to4: an IPv4 address behind a relay
	netip.MustParsePrefix("3fff::/20"),       // documentation
	netip.MustParsePrefix("5f00::/16"),       // segment routing (SRv6) SIDs
	netip.MustParsePrefix("fec0::/10"),       // site-local, deprecated but still routed by some
}

// globalUnicast6 is the IPv6 global unicast space IANA allocates from.
var globalUnicast6 = netip.MustParsePrefix("2000::/3")

// Public reports whether a is an address the broker may fetch from on
// behalf of someone else: a unicast address reachable across the
// Internet. Unspecified, loopback, private (RFC 1918, unique local
// fc00::/7), link-local, multicast and the special-purpose ranges above
// are not, nor is an IPv4-mapped IPv6 address (::ffff:a.b.c.d), which no
// public host publishes and which dials the IPv4 address it carries.
func Public(a netip.Addr) bool {
	if !a.IsValid() || a.Is4In6() || a.Zone() != "" {
		return false
	}
	if !a.IsGlobalUnicast() || a.IsPrivate() {
		// IsGlobalUnicast is false for unspecified, loopback, multicast
		// and link-local addresses, and for the IPv4 limited broadcast.
		return false
	}
	if a.Is6() && !globalUnicast6.Contains(a) {
		return false
	}
	for _, p := range notPublic {
		if p.Contains(a) {
			return false
		}
	}
	return true
}
