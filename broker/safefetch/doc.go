// Package safefetch owns fetching a URL that someone other than the
// operator chose (a client's metadata document, its jwks_uri) without
// letting that someone point the broker at the network behind it
// (server-side request forgery). Its Client speaks https only, follows
// no redirect, ignores proxy settings, and refuses, as the connection is
// dialled, every address that is not public unicast (Public): loopback,
// private, link-local, carrier-grade NAT, multicast, documentation and
// the other special-purpose ranges of RFC 6890 and the IANA registries,
// and IPv6 forms that carry an IPv4 address. The check is made on the
// address actually dialled, after resolution, so a name that resolves
// to a public address when looked up and a private one when connected
// to (DNS rebinding) gains nothing. Hosts the operator names
// (Options.AllowHosts) are exempt, for development and tests.
//
// It limits neither the size of an answer nor what it may contain: its
// callers read with their own caps and checks.
//
// It imports only the standard library, and no other package of the
// project.
package safefetch
