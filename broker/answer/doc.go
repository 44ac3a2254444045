// Package answer owns how the broker answers a request it refuses or
// cannot serve, for every part of the broker alike: the OAuth error body
// (RFC 6749 section 5.2, JSON), the answer to a store that failed (rule 2,
// fail closed: 503 temporarily_unavailable, the cause in the server log
// only and counted by operation; text the store cannot hold is the
// request's fault, rule 8: 400 invalid_request, logged at INFO and not
// counted) in OAuth JSON and as a page, and the error page itself.
//
// It decides nothing about a request: the caller says what was refused,
// with which status and words. It takes what it needs as values (a
// logger, a counter, the page renderer and branding), never the broker.
//
// Of the project it imports storage (for its error values) and web (for
// the page), besides the OpenID Connect library for its error type and
// Prometheus for the counter; it must not import the broker nor any
// upstream connector (imports_test.go holds it to that).
package answer
