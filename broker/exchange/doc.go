// Package exchange owns token exchange, RFC 8693: a confidential client
// trades a token it holds, an upstream's (Auth0, Entra ID, WorkOS, a
// legacy session service) or one of the broker's own access tokens, for
// a broker access token whose sub is the platform UUID. It verifies the
// subject and actor tokens (through the connector that trusts their
// issuer, or the broker's own keys), applies the client's audience, scope
// and actor policy, resolves the subject as a login would
// (broker/identity) and issues through the issuing core (broker/tokens).
//
// It receives those parts, never the broker, and must not import the
// broker nor the login flow (imports_test.go holds it to that).
package exchange
