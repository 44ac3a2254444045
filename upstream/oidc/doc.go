// Package oidc is the broker's connector for OpenID Connect upstreams:
// any provider through New, and the Auth0 (NewAuth0) and Entra ID
// (NewAzureAD) presets, whose quirks live in auth0.go and azuread.go.
//
// A Connector logs people in with the authorization code flow and PKCE,
// verifies upstream tokens for token exchange, and refreshes with the
// upstream's refresh token. ID tokens from the token endpoint (login,
// refresh) are verified by go-oidc; tokens presented for exchange, the hot
// path, by go-jose directly (exchange.go), which parses them once. Both
// verify signatures with the upstream's JWKS, fetched by upstream/jwks's
// RemoteKeySet, which rate-limits refreshes on unknown key ids.
// Algorithms are pinned to what discovery publishes; "none" and HMAC
// algorithms are always refused.
// Nothing in this package turns signature or issuer verification off,
// except for Entra ID multi-tenant connectors, whose issuer check is their
// own (it depends on the token's tid).
//
// The package imports no other package of the project but upstream,
// upstream/jwks and upstream/internal/fetch: never another connector.
package oidc
