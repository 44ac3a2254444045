// Package tokens is the broker's issuing core: the Grant every token
// response is issued from, the claims of its access tokens (RFC 9068)
// and ID tokens, signing them with the key manager, refresh families and
// their rotation, re-checking a family's user upstream, and verifying the
// broker's own access tokens wherever they come back: introspection (RFC
// 7662), revocation (RFC 7009), UserInfo (OpenID Connect Core section
// 5.3). It answers the authorization code, refresh token and client
// credentials grants; token exchange (broker/exchange) issues through it.
//
// It receives what it needs (a store, the key manager, the client
// directory, the connector set, a clock, a logger, its lifetimes), never
// the broker. It must not import the broker, nor the parts that serve
// the login flow or token exchange (imports_test.go holds it to that).
package tokens
