// Package resource is what a resource server (an API that accepts the
// broker's access tokens) needs: a Verifier that checks a token the way
// docs/verifying-tokens.md says every verifier must, a Middleware that
// puts the verified Token in the request context and answers refusals
// with RFC 6750 challenges, and the RFC 9728 protected resource
// metadata document that those challenges point to.
//
// It owns verifying the broker's JWT access tokens (RFC 9068) offline,
// against the broker's published key set, for one audience. It does not
// own anything the broker decides: revocation (ask the broker's
// introspection endpoint where a revoked token must stop at once), who
// may act for whom (act is reported, not judged), or which scopes a
// client may hold.
//
// Downstream services vendor this package, so it must not import
// anything under github.com/idbroker/broker/: it stands on the standard
// library, go-jose and google/uuid alone. Its tests may import the
// broker, to verify tokens a real broker issued.
package resource
