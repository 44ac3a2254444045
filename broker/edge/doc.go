// Package edge owns what the broker knows about a request before any
// handler reads it: the client address it came from (behind trusted
// proxies), the response headers a handler deep in the OpenID Connect
// library's call chain may still set, and the rule for text a request
// may carry (docs/design.md rule 8).
//
// Handlers reach these through the request context, which the broker's
// outermost middleware fills (WithSource, WithResponseHeader). It
// imports only the standard library; every other part of the broker may
// import it (imports_test.go holds it to that).
package edge
