// Package authflow owns the browser's side of signing in and out: the
// authorization endpoint (RFC 6749 section 4.1 with PKCE, its strict
// parameter checks and RFC 9207 iss on every redirect), the email-first
// login page with home realm discovery, one-time codes and their limits,
// the redirect to an upstream and its callback, the binding of every step
// to the browser that started the login (docs/design.md rule 6), single
// sign-on sessions, consent to third-party clients and the connected apps
// page where it is taken back, and logout (RP-initiated, with
// back-channel logout of the session's clients).
//
// It writes every answer of its endpoints itself, pages included. It
// receives what it needs (a store, the client directory, the connector
// set, the identity resolver, a clock, a logger, its settings), never the
// broker. Of the broker's parts it imports tokens only for what a login
// hands the token endpoint (the code's hash, the PKCE challenge rule, the
// ID token's claims), and of the connectors otp, whose codes it sends; it
// must not import the broker, exchange or admin (imports_test.go holds
// it to that).
package authflow
