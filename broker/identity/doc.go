// Package identity owns the one step that turns an upstream identity into
// a platform user (docs/design.md rule 1): Resolver.Resolve, which every
// path that meets an identity calls (browser login, token exchange
// subjects and actors, a machine client's service user). It owns the
// email-trust rule (rule 5: an email links to an existing user only when
// the connector is trusted with email and the upstream said the address
// is verified; an untrusted connector's "verified" is stored as
// unverified), the completion of a first contact by an upstream access
// token (upstream.IdentityCompleter), the check that the user's id is a
// platform UUID (rule 2) and the "user provisioned" log line.
//
// It does not verify tokens (the connectors do), decide who may ask, nor
// map its errors to answers: the broker maps them to the same HTTP and
// OAuth answers on every path.
//
// It imports storage and upstream only, and must not import the broker,
// the OpenID Connect library (zitadel/oidc) nor net/http.
package identity
