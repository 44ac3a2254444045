package safefetch_test

import (
	"net/netip"
	"testing"

	"github.com/idbroker/broker/broker/safefetch"
)

func TestPublic_RefusesEveryAddressThatIsNotPublicUnicast(t *testing.T) {
	for _, a := range []string{
		"0.0.0.0", "0.1.2.3", // unspecified, "this network"
		"127.0.0.1", "127.0.0.2", "127.255.255.254", // loopback
		"10.0.0.1", "172.16.0.1", "172.31.255.255", "192.168.1.1", // RFC 1918
		"100.64.0.1", "100.127.255.254", // carrier-grade NAT
		"169.254.169.254", "169.254.0.1", // link-local, cloud metadata services
		"192.0.0.8", "192.0.2.1", "198.51.100.7", "203.0.113.9", // protocol assignments, documentation
		"198.18.0.1", "198.19.255.255", // benchmarking
		"192.88.99.1",                                                  // 6to4 relay
		"224.0.0.1", "239.255.255.250", "255.255.255.255", "240.0.0.1", // multicast, reserved, broadcast
		"::", "::1", // unspecified, loopback
		"::ffff:127.0.0.1", "::ffff:10.0.0.1", "::ffff:8.8.8.8", // IPv4-mapped, public or not
		"::127.0.0.1",                    // IPv4-compatible (deprecated)
		"64:ff9b::a00:1", "64:ff9b:1::1", // NAT64
		"2002:a00:1::1", "2001:0:4136::1", // 6to4, Teredo
		"2001:db8::1", "3fff::1", // documentation
		"fc00::1", "fd12:3456::1", // unique local
		"fe80::1", "fec0::1", // link-local, site-local
		"ff02::1", "ff0e::1", // multicast
		"100::1",  // discard-only
		"5f00::1", // SRv6
		"4000::1", // outside 2000::/3
		"fe80::1%eth0",
	} {
		if safefetch.Public(netip.MustParseAddr(a)) {
			t.Errorf("Public(%s) = true", a)
		}
	}
	if safefetch.Public(netip.Addr{}) {
		t.Error("Public(zero Addr) = true")
	}
}

func TestPublic_AcceptsPublicUnicast(t *testing.T) {
	for _, a := range []string{
		"8.8.8.8", "1.1.1.1", "93.184.216.34", "100.63.255.255", "100.128.0.1",
		"172.15.255.255", "172.32.0.1", "192.0.1.1", "198.17.255.255", "198.20.0.1",
		"2606:4700:4700::1111", "2a00:1450:4001:81b::200e", "2001:4860:4860::8888",
	} {
		if !safefetch.Public(netip.MustParseAddr(a)) {
			t.Errorf("Public(%s) = false", a)
		}
	}
}
