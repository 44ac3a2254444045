// Package clients owns the client model the broker serves: Client, built
// by New from the one stored model, storage.Client, whether the client is
// stored or defined in the configuration file, and implementing op.Client
// for the OpenID Connect library; the Directory that finds a client among
// the configuration's, then, for an https URL, the client its metadata
// document describes (through Documents, which broker/clientdoc
// implements; FromDocument builds such clients), then storage's; redirect
// URI matching (RFC 8252 section 7.3 loopback URIs included, except for
// metadata document clients); the audience a client may ask
// for; the rules every client follows wherever it is defined
// (CheckRules); and client authentication at the token, introspection and
// revocation endpoints (Authenticator): the constant-time secret check,
// private_key_jwt (RFC 7523, keys registered inline or fetched from a
// client's jwksURI and cached), the memory of which clients recently
// authenticated from which address, and the failure limits, counted per
// client and client address (docs/design.md rule 7).
//
// It imports the broker's answer, edge and ratelimit parts, storage,
// upstream and upstream/jwks, and must not import the broker package, the
// admin package nor a connector package.
package clients
