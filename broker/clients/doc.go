// Package clients owns the client model the broker serves: Client, built
// by New from the one stored model, storage.Client, whether the client is
// stored or defined in the configuration file, and implementing op.Client
// for the OpenID Connect library; the Directory that finds a client among
// the configuration's, then storage's; redirect URI matching (RFC 8252
// section 7.3 loopback URIs included); the audience a client may ask
// for; and the parts of client authentication that need no request: the
// constant-time secret check, the private_key_jwt key sets (RFC 7523,
// registered inline or fetched from a client's jwksURI and cached) and
// the memory of which clients recently authenticated from which address.
//
// It does not decide whether a request's client authenticates, nor count
// or limit failures, nor check a client against the client rules: the
// broker does, with these parts.
//
// It imports storage and upstream/jwks, and must not import the broker
// package, the admin package nor a connector package.
package clients
