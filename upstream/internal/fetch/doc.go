// Package fetch is how the upstream side of the broker fetches what an
// upstream publishes: one attempt at a time shared by every caller, with a
// failure remembered for RetryBackoff (Attempt), and a JSON GET whose
// failures are sorted into upstream.ErrUnavailable and
// upstream.ErrInvalidToken (GetJSON). upstream/oidc fetches its discovery
// document and userinfo with it, upstream/jwks its key sets.
//
// It imports upstream and the standard library only: never a connector,
// nor upstream/jwks. Being internal to upstream, only the upstream
// packages can use it.
package fetch
