// Package keys owns the broker's signing keys: generating them, encrypting
// their private parts at rest, rotating them on a schedule that several
// replicas agree on, publishing the public key set (JWKS), and signing and
// verifying the broker's own JWTs.
//
// A key lives four stages, each use (ID tokens, access tokens) with its own
// key and schedule:
//
//	published, not signing   PublishAt ≤ now < SignFrom   (PrePublish long)
//	signing                  SignFrom  ≤ now < SignUntil  (RotationPeriod long)
//	retired, still published SignUntil ≤ now < RemoveAt   (RetireAfter long)
//	gone                     RemoveAt  ≤ now
//
// Pre-publication outlasts every downstream JWKS cache, so no verifier meets
// a kid it has not seen; retirement outlasts every token the key signed, so
// none stops verifying early. The schedule is stored with each key, and every
// replica derives what to publish and what to sign with from those dates and
// its clock alone, so replicas switch at the same instant, not whenever they
// next read storage.
//
// Private keys are encrypted with AES-256-GCM under a key-encryption key
// (KEK) derived from the root secret; storage never sees them in the clear.
// The same envelope (envelope.go) seals the broker's other secrets at rest,
// upstream refresh tokens among them, through Envelope.
// TokenHash is the form in which the bearer secrets the broker hands out
// (codes, refresh tokens, sessions) are stored and looked up.
//
// Package keys imports storage and libraries only. It must not import broker
// or any other package of the project: the broker depends on it, never the
// other way round. It does no JWT claim checking (expiry, audience, issuer):
// Verify checks the signature and the key, and the caller checks the claims.
package keys
