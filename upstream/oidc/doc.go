// Package oidc is the broker's connector for OpenID Connect upstreams:
// any provider through New, and the Auth0 (NewAuth0) and Entra ID
// (NewAzureAD) presets, whose quirks live in auth0.go and azuread.go.
//
// A Connector logs people in with the authorization code flow and PKCE,
// verifies upstream tokens for token exchange, and refreshes with the
// upstream's refresh token. Tokens are verified by go-oidc against the
// upstream's JWKS, fetched by RemoteKeySet, which rate-limits refreshes on
// unknown key ids. Algorithms are pinned to what discovery publishes;
// "none" and HMAC algorithms are always refused. Nothing in this package
// turns signature or issuer verification off, except the Entra ID
// multi-tenant verifier, which replaces go-oidc's issuer check with its own.
//
// The package imports no other package of the project but upstream.
package oidc
