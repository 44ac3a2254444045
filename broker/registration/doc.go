// Package registration owns dynamic client registration: RFC 7591 at
// /register and RFC 7592's read and delete at /register/{client_id},
// under the policy the configuration sets (Config: disabled, open or
// token); the rules a registered client's metadata follows (public
// clients only under open; https or loopback redirect URIs without
// wildcards, fragments or user information, by the client rules every
// client follows, clients.CheckRules); and the end of registered clients
// left unused (ExpireUnused). A registered client is the one client
// model, storage.Client, marked third-party, with the hash of its
// registration access token; the initial access tokens of the token
// policy are created by administrators (broker/admin).
//
// It imports the broker's answer, clients, edge and ratelimit parts, keys
// (random ids and token hashes) and storage, and must not import the broker, the admin API, nor the parts
// that issue tokens or serve the login flow (imports_test.go holds it to
// that).
package registration
