// Package clients owns what the broker knows about its OAuth clients
// apart from any request: which URLs count as loopback (RFC 8252 section
// 7.3), the key sets a client authenticates with by private_key_jwt (RFC
// 7523, registered inline or fetched from its jwksURI and cached), and
// which clients recently authenticated from which address, so that their
// next requests skip the failure count in storage.
//
// It does not decide whether a request's client authenticates, nor count
// or limit failures: the broker does, with these parts.
//
// It imports upstream/jwks, and must not import the broker package, the
// admin package, the OpenID Connect library (zitadel/oidc) nor a
// connector package.
package clients
