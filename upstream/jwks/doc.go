// Package jwks owns verifying signatures with a published JSON Web Key
// Set: RemoteKeySet, the cache of a key set fetched from a URL (an
// upstream's, or a client's jwks_uri) that rate-limits refetches on
// unknown key ids, and the one list of asymmetric algorithms any such
// token may use (ParseCompact, Asymmetric, AlgorithmNames). "none" and HMAC are never
// accepted.
//
// It checks signatures only: claims (issuer, audience, expiry) and which
// of the algorithms a given upstream publishes are the caller's. A key set
// remembers, for a while, the exact tokens whose signatures it verified
// through VerifyCompact, so that the token a service presents on every
// token exchange costs one public-key operation, not one per call.
//
// Connectors (upstream/oidc, upstream/workos) and the broker's client
// authentication and token exchange use it. It imports upstream (for its
// errors) and upstream/internal/fetch only, and must not import any
// connector package nor broker, so that no connector imports another to
// verify a token.
package jwks
